;;; driver.el --- drive eglot against the real pilotfish server, report JSON  -*- lexical-binding: t -*-

;; Run by tests/editors/test_emacs_eglot.py as `emacs --batch -l driver.el'.  Environment:
;;   PILOTFISH_SERVER_CMD   the server command, a JSON list
;;   PILOTFISH_INIT_OPTIONS initializationOptions, a JSON object
;;   PILOTFISH_WORKSPACE    a git workspace holding report.py and inventory.py
;;   PILOTFISH_STEPS        a JSON list of steps (see `pf-run-step')
;;   PILOTFISH_RESULT       where the JSON report is written
;; Each step's outcome is one object in the report's "steps"; errors are reported, not raised, so
;; that the Python side can say what failed.  The last step is always the shutdown.

(require 'cl-lib)
(require 'json)
(require 'eglot)
(require 'python)

(setq jsonrpc-default-request-timeout 10) ; eglot's own default; completions are asked with more
(setq eglot-sync-connect t
      eglot-connect-timeout 60
      eglot-autoshutdown nil
      python-indent-guess-indent-offset nil
      indent-tabs-mode nil)

(defun pf-env-json (name)
  "The JSON in environment variable NAME, objects as plists (what eglot sends as objects)."
  (json-parse-string (getenv name) :object-type 'plist :array-type 'array
                     :null-object nil :false-object :json-false))

(defvar pf-server-cmd (append (pf-env-json "PILOTFISH_SERVER_CMD") nil))
(defvar pf-workspace (file-name-as-directory (getenv "PILOTFISH_WORKSPACE")))
(defvar pf-report nil "The report: a plist, written as JSON at the end.")
(defvar pf-completion-exchanges nil "Every textDocument/completion request and its answer.")

(setq eglot-server-programs
      `((python-mode . (,@pf-server-cmd
                        :initializationOptions ,(pf-env-json "PILOTFISH_INIT_OPTIONS")))))

;; Record what eglot's completion-at-point sends and gets, as the server saw it.
(advice-add
 'jsonrpc-request :around
 (lambda (orig connection method params &rest args)
   (let ((result (apply orig connection method params args)))
     (when (eq method :textDocument/completion)
       (push (list :params params :result result) pf-completion-exchanges))
     result)))

(defun pf-server ()
  (eglot-current-server))

(defun pf-execute (command &optional timeout)
  "Run the server's COMMAND through workspace/executeCommand, as eglot does."
  (jsonrpc-request (pf-server) :workspace/executeCommand
                   `(:command ,command :arguments [])
                   :timeout (or timeout 20)))

(defun pf-wait-loaded (timeout)
  "Poll pilotfish.status until the model is loaded (or failed) and the index is not indexing."
  (let ((deadline (+ (float-time) timeout)) status)
    (while (and (< (float-time) deadline)
                (progn (setq status (pf-execute "pilotfish.status"))
                       (not (or (plist-get status :error) ; e.g. the model is not pulled
                                (and (eq (plist-get status :loaded) t)
                                     (not (equal (plist-get (plist-get status :index) :state)
                                                 "indexing")))))))
      (accept-process-output nil 0.5))
    status))

(defun pf-goto (line column)
  "Move to 0-based LINE and COLUMN (characters)."
  (goto-char (point-min))
  (forward-line line)
  (forward-char column))

(defun pf-line-at (pos)
  (save-excursion (goto-char pos)
                  (buffer-substring-no-properties (line-beginning-position) (line-end-position))))

(defun pf-complete (text timeout)
  "Type TEXT on a new last line, run `completion-at-point' as a user would (C-M-i), report."
  (goto-char (point-max))
  (unless (bolp) (insert "\n"))
  (insert text)
  (eglot--signal-textDocument/didChange)
  (let ((before (buffer-substring-no-properties (point-min) (point-max)))
        (line (1- (line-number-at-pos)))
        (exchanges-before (length pf-completion-exchanges))
        (jsonrpc-default-request-timeout timeout)
        (completion-styles '(basic))
        error)
    (condition-case err
        (completion-at-point)
      (error (setq error (error-message-string err))))
    (let ((exchange (and (> (length pf-completion-exchanges) exchanges-before)
                         (car pf-completion-exchanges))))
      (list :typed text
            :line line
            :error error
            :sent (plist-get exchange :params)
            :answer (plist-get exchange :result)
            :lineAfter (pf-line-at (point))
            :pointChar (- (point) (line-beginning-position))
            :before before
            :after (buffer-substring-no-properties (point-min) (point-max))))))

(defun pf-hover (needle offset)
  "Hover (as eldoc asks it) at OFFSET characters into the last occurrence of NEEDLE."
  (goto-char (point-max))
  (search-backward needle)
  (forward-char offset)
  (let* ((params (eglot--TextDocumentPositionParams))
         (answer (jsonrpc-request (pf-server) :textDocument/hover params :timeout 30)))
    (list :sent params
          :answer answer
          :shown (and answer (eglot--hover-info (plist-get answer :contents)
                                                (plist-get answer :range))))))

(defun pf-shutdown ()
  "`eglot-shutdown', timed; whether the server process is still alive after it."
  (let* ((server (pf-server))
         (proc (jsonrpc--process server))
         (pid (process-id proc))
         (children (pf-children pid))
         (started (float-time))
         error)
    (condition-case err
        (eglot-shutdown server)
      (error (setq error (error-message-string err))))
    (let ((seconds (- (float-time) started)))
      (accept-process-output nil 1)
      (list :pid pid
            :children (vconcat children)
            :seconds seconds
            :error error
            :live (process-live-p proc)
            :status (symbol-name (process-status proc))
            :exitCode (process-exit-status proc)))))

(defun pf-children (pid)
  "The pids whose parent is PID (from /proc)."
  (cl-loop for entry in (directory-files "/proc" nil "\\`[0-9]+\\'")
           for stat = (ignore-errors
                        (with-temp-buffer
                          (insert-file-contents (format "/proc/%s/stat" entry))
                          (buffer-string)))
           when (and stat (string-match ") [A-Za-z] \\([0-9]+\\)" stat)
                     (= (string-to-number (match-string 1 stat)) pid))
           collect (string-to-number entry)))

(defun pf-eglot-version ()
  "The Version: header of the eglot.el that is loaded."
  (require 'lisp-mnt)
  (let ((source (locate-library "eglot.el" t)))
    (or (and source (lm-version source)) "unknown")))

(defun pf-run-step (step)
  "Run STEP, a plist with :kind and its arguments."
  (condition-case err
      (pcase (plist-get step :kind)
        ("wait" (list :status (pf-wait-loaded (plist-get step :timeout))))
        ("append" (goto-char (point-max)) (insert (plist-get step :text))
         (eglot--signal-textDocument/didChange) nil)
        ("complete" (pf-complete (plist-get step :text) (plist-get step :timeout)))
        ("hover" (pf-hover (plist-get step :needle) (plist-get step :offset)))
        (kind (list :error (format "unknown step %s" kind))))
    (error (list :error (error-message-string err)))))

(defun pf-main ()
  (let ((default-directory pf-workspace)
        (steps (append (pf-env-json "PILOTFISH_STEPS") nil))
        results)
    (find-file (expand-file-name "report.py" pf-workspace))
    (python-mode)
    (condition-case err
        (progn
          (apply #'eglot (eglot--guess-contact))
          (setq pf-report (list :connected (and (pf-server) t)
                                :emacs emacs-version
                                :eglot (pf-eglot-version)
                                :capabilities (eglot--capabilities (pf-server))))
          (dolist (step steps)
            (push (pf-run-step step) results))
          (setq pf-report (append pf-report
                                  (list :steps (vconcat (nreverse results))
                                        ;; workspace/didChangeWatchedFiles registrations
                                        :fileWatches (hash-table-count
                                                      (eglot--file-watches (pf-server)))
                                        :shutdown (pf-shutdown)))))
      (error (setq pf-report (append pf-report
                                     (list :fatal (error-message-string err)
                                           :steps (vconcat (nreverse results)))))))
    (with-temp-file (getenv "PILOTFISH_RESULT")
      (insert (json-serialize pf-report :null-object nil :false-object :json-false)))))

(pf-main)
(kill-emacs 0)
;;; driver.el ends here
