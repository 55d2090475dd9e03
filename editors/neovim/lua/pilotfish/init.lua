--- pilotfish for Neovim: starts `pilotfish serve` with the built-in LSP client and shows its
--- inline completions (native on Neovim 0.12+, extmark ghost text on 0.10/0.11).
local M = {}

local api = vim.api
local ghost = require("pilotfish.ghost")

local ACCEPTED = "pilotfish.completionAccepted"
local DISMISSED = "pilotfish.completionDismissed"

---@class pilotfish.Config
M.defaults = {
  --- Command that starts the server over stdio. nil: `<root>/.venv/bin/pilotfish serve`, else
  --- `pilotfish serve` from the PATH, or `python -m pilotfish.lsp_server serve` when `python` is set.
  cmd = nil, ---@type string[]?
  --- Interpreter with pilotfish installed (used when `cmd` is nil).
  python = nil, ---@type string?
  --- Files that mark the repository root (the first found upwards; else the current directory).
  root_markers = { ".git", "pyproject.toml", "setup.py", "package.json", "Cargo.toml", "go.mod" },
  --- Filetypes to attach to; nil means every file buffer except `filetypes_exclude`.
  filetypes = nil, ---@type string[]?
  filetypes_exclude = { "help", "gitcommit", "gitrebase", "hgcommit", "svn", "TelescopePrompt", "qf", "netrw" },
  --- Server settings, the same camelCase tree as VS Code's `pilotfish.*` settings, e.g.
  --- `{ model = { name = "qwen2.5-coder-0.5b" }, completion = { maxLines = 4 } }`.
  settings = {},
  --- Inline completion: "auto" uses `vim.lsp.inline_completion` on 0.12+, else extmark ghost text;
  --- "native" or "ghost" force one.
  inline = "auto",
  ghost = { debounce_ms = 75, hl_group = "PilotfishSuggestion" },
  --- Insert-mode keymaps (false disables one). Accept falls back to the key's usual meaning
  --- when no suggestion is shown.
  keymaps = {
    accept = "<Tab>",
    accept_line = "<M-l>",
    dismiss = "<C-]>",
    next = "<M-]>",
    prev = "<M-[>",
  },
  --- Show a message when the server cannot be started.
  notify_missing = true,
}

---@type pilotfish.Config
M.config = vim.deepcopy(M.defaults)

--- Latest `pilotfish/status` per client, and the latest `$/progress` message.
M.state = { status = {}, progress = nil }

local function notify(msg, level)
  vim.notify("pilotfish: " .. msg, level or vim.log.levels.INFO, { title = "pilotfish" })
end

local function has(version)
  return vim.fn.has("nvim-" .. version) == 1
end

--- Calls a client method the 0.11+ way (`client:m()`) or the 0.10 way (`client.m()`).
local function call(client, method, ...)
  if has("0.11") then
    return client[method](client, ...)
  end
  return client[method](...)
end

local function use_native()
  if M.config.inline == "ghost" then
    return false
  end
  return vim.lsp.inline_completion ~= nil and (M.config.inline == "native" or M.config.inline == "auto")
end

local function root_dir(bufnr)
  local found = vim.fs.root and vim.fs.root(bufnr, M.config.root_markers)
  return found or vim.fn.getcwd()
end

--- The command that starts the server for a repository root, and where it came from.
function M.server_cmd(root)
  local cfg = M.config
  if cfg.cmd then
    return cfg.cmd, "cmd option"
  end
  if cfg.python then
    return { vim.fn.expand(cfg.python), "-m", "pilotfish.lsp_server", "serve" }, "python option"
  end
  for _, venv in ipairs({ ".venv", "venv" }) do
    local exe = root and (root .. "/" .. venv .. "/bin/pilotfish")
    if exe and vim.fn.executable(exe) == 1 then
      return { exe, "serve" }, "workspace " .. venv
    end
  end
  return { "pilotfish", "serve" }, "PATH"
end

M.install_hint = "Install it into a Python 3.11+ environment (`pip install pilotfish`, or "
  .. "`pip install -e .` in a checkout), then pass `cmd = { '/path/to/pilotfish', 'serve' }` "
  .. "or `python = '/path/to/venv/bin/python'` to require('pilotfish').setup()."

local warned_missing = false

local function settings_tree()
  local s = M.config.settings or {}
  return next(s) and s or vim.empty_dict()
end

--- The pilotfish client attached to a buffer (or any pilotfish client).
function M.client(bufnr)
  local filter = { name = "pilotfish" }
  if bufnr then
    filter.bufnr = bufnr == 0 and api.nvim_get_current_buf() or bufnr
  end
  return vim.lsp.get_clients(filter)[1]
end

local function request(method, params, callback, bufnr)
  local client = M.client(bufnr) or M.client()
  if not client then
    notify("the server is not running (see :checkhealth pilotfish)", vim.log.levels.WARN)
    return
  end
  local handler = function(err, result)
    if err then
      notify(method .. " failed: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    elseif callback then
      callback(result, client)
    end
  end
  call(client, "request", method, params, handler, bufnr)
end

--- Runs a server command (`workspace/executeCommand`); `callback(result, client)`.
function M.execute(command, arguments, callback)
  request("workspace/executeCommand", { command = command, arguments = arguments or {} }, callback, api.nvim_get_current_buf())
end

local function on_status(_, status, ctx)
  local previous = M.state.status[ctx.client_id]
  M.state.status[ctx.client_id] = status
  -- Requests made while the model loaded got nothing: ask again once it is ready.
  if status.loaded and not (previous and previous.loaded) and not use_native() then
    vim.schedule(ghost.refresh)
  end
  pcall(api.nvim_exec_autocmds, "User", { pattern = "PilotfishStatus", modeline = false })
  vim.cmd("redrawstatus")
  return vim.NIL
end

--- Starts (or reuses) the server for a buffer and attaches it.
function M.attach(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  if vim.bo[bufnr].buftype ~= "" or api.nvim_buf_get_name(bufnr) == "" then
    return
  end
  local ft = vim.bo[bufnr].filetype
  if M.config.filetypes and not vim.tbl_contains(M.config.filetypes, ft) then
    return
  end
  if vim.tbl_contains(M.config.filetypes_exclude or {}, ft) then
    return
  end
  local root = root_dir(bufnr)
  local cmd, source = M.server_cmd(root)
  if vim.fn.executable(cmd[1]) ~= 1 then
    if M.config.notify_missing and not warned_missing then
      warned_missing = true
      notify(
        ("server command `%s` (from %s) was not found. %s"):format(cmd[1], source, M.install_hint),
        vim.log.levels.ERROR
      )
    end
    return
  end
  local settings = settings_tree()
  return vim.lsp.start({
    name = "pilotfish",
    cmd = cmd,
    root_dir = root,
    init_options = settings,
    settings = { pilotfish = settings },
    -- Declared so the server keeps its suggestions out of completion menus (its
    -- `completion.listFallback = "auto"` answers `textDocument/completion` only for clients
    -- without inline completions); 0.12 declares it itself.
    capabilities = vim.tbl_deep_extend("force", vim.lsp.protocol.make_client_capabilities(), {
      textDocument = { inlineCompletion = { dynamicRegistration = false } },
    }),
    handlers = { ["pilotfish/status"] = on_status },
    on_attach = function(client, buf)
      if use_native() then
        vim.lsp.inline_completion.enable(true, { bufnr = buf, client_id = client.id })
      else
        ghost.attach(buf, client.id)
      end
    end,
  }, { bufnr = bufnr })
end

--- Sends changed settings to the running server (`workspace/didChangeConfiguration`).
function M.update_settings(settings)
  M.config.settings = vim.tbl_deep_extend("force", M.config.settings or {}, settings or {})
  for _, client in ipairs(vim.lsp.get_clients({ name = "pilotfish" })) do
    client.settings = { pilotfish = settings_tree() }
    call(client, "notify", "workspace/didChangeConfiguration", { settings = client.settings })
  end
end

-- Suggestion actions -----------------------------------------------------------------------

local function native_item_id(item)
  return ghost.item_id(item)
end

--- Accepts the shown suggestion; false when there is none.
function M.accept()
  if use_native() then
    return vim.lsp.inline_completion.get()
  end
  return ghost.accept()
end

--- Accepts the first line of the shown suggestion; false when there is none.
function M.accept_line()
  if use_native() then
    return vim.lsp.inline_completion.get({
      on_accept = function(item)
        local text = type(item.insert_text) == "string" and item.insert_text or nil
        if not text then
          return item
        end
        local take = text:match("^\n?[^\n]*")
        if take ~= text then
          item.insert_text = take
          item.command = nil -- not the whole suggestion: no "accepted" event yet
        end
        return item
      end,
    })
  end
  return ghost.accept_line()
end

--- Hides the suggestion and reports the dismissal; false when there is none.
function M.dismiss()
  if use_native() then
    return vim.lsp.inline_completion.get({
      on_accept = function(item)
        local id = native_item_id(item)
        if id then
          M.execute(DISMISSED, { { id = id } })
        end
        return nil
      end,
    })
  end
  return ghost.dismiss()
end

--- Shows the next (count > 0) or previous candidate.
function M.next(count)
  if use_native() then
    vim.lsp.inline_completion.select({ count = count or 1 })
    return true
  end
  return ghost.next(nil, count or 1)
end

--- Whether a suggestion is shown (extmark ghost text only; native keeps its own state).
function M.visible()
  return ghost.visible()
end

local function map_with_fallback(lhs, fn, desc)
  if not lhs then
    return
  end
  vim.keymap.set("i", lhs, function()
    if not fn() then
      api.nvim_feedkeys(vim.keycode(lhs), "n", false)
    end
  end, { desc = "pilotfish: " .. desc, silent = true })
end

-- Commands --------------------------------------------------------------------------------

local function summary(status)
  local index = status.index or {}
  local lat = status.latency or status.completions or {}
  local lines = {
    ("model      %s (%s on %s)%s"):format(
      tostring(status.model),
      tostring(status.backend),
      tostring(status.device),
      status.loaded == false and ", loading" or ""
    ),
    ("adapter    %s"):format(status.adapter ~= vim.NIL and tostring(status.adapter) or "none"),
    ("index      %s%s"):format(
      tostring(index.state),
      index.files and (", %d files, %d chunks"):format(index.files, index.chunks or 0) or ""
    ),
    ("latency    p50 %s ms, p95 %s ms"):format(tostring(lat.p50Ms or "-"), tostring(lat.p95Ms or "-")),
    ("completion %s"):format(status.enabled == false and "disabled" or "enabled"),
  }
  if status.error and status.error ~= vim.NIL then
    lines[#lines + 1] = "error      " .. tostring(status.error)
  end
  return table.concat(lines, "\n")
end
M.summary = summary

function M.status(callback)
  M.execute("pilotfish.status", {}, function(status, client)
    M.state.status[client.id] = status
    if callback then
      callback(status)
    else
      notify("\n" .. summary(status))
    end
  end)
end

function M.reindex()
  M.execute("pilotfish.reindex", {}, function(result)
    if type(result) == "table" and result.started == false then
      notify("not reindexing: " .. tostring(result.reason), vim.log.levels.WARN)
    else
      notify("reindexing")
    end
  end)
end

function M.set_enabled(enabled)
  if enabled == nil then
    local client = M.client()
    local status = client and M.state.status[client.id]
    enabled = not (status and status.enabled ~= false)
  end
  M.execute("pilotfish.setEnabled", { enabled }, function()
    notify(enabled and "completions enabled" or "completions disabled")
  end)
  ghost.enabled = enabled
  if use_native() then
    vim.lsp.inline_completion.enable(enabled)
  end
end

--- Markdown lines for `pilotfish.explainCompletion`'s answer.
function M.explanation_lines(e)
  local out = { ("# Context of completion `%s`"):format(tostring(e.id)), "" }
  if e.prompt_tokens then
    out[#out + 1] = ("Prompt: %s tokens."):format(tostring(e.prompt_tokens))
    out[#out + 1] = ""
  end
  if type(e.context) == "string" and e.context ~= "" then
    out[#out + 1] = ("Repository context: %s."):format(e.context)
    out[#out + 1] = ""
  end
  for i, s in ipairs(e.snippets or {}) do
    out[#out + 1] = ("%d. %s:%s-%s (%s) %s"):format(
      i,
      tostring(s.path),
      tostring(s.start_line),
      tostring(s.end_line),
      tostring(s.source),
      s.reason and s.reason ~= vim.NIL and tostring(s.reason) or ""
    )
    if type(s.text) == "string" then
      out[#out + 1] = "```"
      vim.list_extend(out, vim.split(s.text, "\n", { plain = true }))
      out[#out + 1] = "```"
    end
  end
  if type(e.timings) == "table" then
    out[#out + 1] = ""
    out[#out + 1] = "## Timings (ms)"
    for stage, ms in pairs(e.timings) do
      out[#out + 1] = ("- %s: %s"):format(stage, tostring(ms))
    end
  end
  return out
end

function M.explain()
  M.execute("pilotfish.explainCompletion", {}, function(e)
    if type(e) ~= "table" then
      notify("no completion to explain yet")
      return
    end
    local buf = api.nvim_create_buf(false, true)
    api.nvim_buf_set_lines(buf, 0, -1, false, M.explanation_lines(e))
    vim.bo[buf].filetype = "markdown"
    vim.bo[buf].bufhidden = "wipe"
    vim.cmd("botright split")
    api.nvim_win_set_buf(0, buf)
  end)
end

--- A short text for statuslines, e.g. `pilotfish: indexing 40%` or `pilotfish 0.5b 320ms`.
function M.statusline()
  local client = M.client(0) or M.client()
  if not client then
    return ""
  end
  if M.state.progress then
    return "pilotfish: " .. M.state.progress
  end
  local status = M.state.status[client.id]
  if not status then
    return "pilotfish"
  end
  if status.enabled == false then
    return "pilotfish: off"
  end
  if status.error and status.error ~= vim.NIL then
    return "pilotfish: error"
  end
  local index = status.index or {}
  if index.state == "indexing" then
    return "pilotfish: indexing" .. (index.files and (" " .. index.files .. " files") or "")
  end
  if status.loaded == false then
    return "pilotfish: loading"
  end
  local lat = (status.latency or status.completions or {}).p50Ms
  local model = tostring(status.model or ""):match("([^/\\]+)$") or ""
  return ("pilotfish %s%s"):format(model, type(lat) == "number" and (" %dms"):format(lat) or "")
end

--- Trains an adapter on the repository's history (progress arrives as `$/progress`).
function M.train()
  M.execute("pilotfish.train", { vim.empty_dict() }, function(result)
    if type(result) == "table" and result.started == false then
      notify("not training: " .. tostring(result.reason), vim.log.levels.WARN)
    else
      notify("training an adapter on this repository's history")
    end
  end)
end

function M.cancel_training()
  M.execute("pilotfish.cancelTraining", {}, function(result)
    notify(type(result) == "table" and result.cancelled and "training cancelled" or "no training to cancel")
  end)
end

--- Switches to adapter `name` ("none" for the base model); without a name, lets you pick one.
function M.use_adapter(name)
  local function use(choice)
    M.execute("pilotfish.useAdapter", { { name = choice ~= "none" and choice or vim.NIL } }, function(result)
      if type(result) == "table" and result.ok == false then
        notify(tostring(result.reason), vim.log.levels.WARN)
      else
        notify("adapter: " .. tostring(choice))
      end
    end)
  end
  if name and name ~= "" then
    return use(name)
  end
  M.execute("pilotfish.adapters", {}, function(adapters)
    local names = {}
    for _, a in ipairs(type(adapters) == "table" and adapters or {}) do
      names[#names + 1] = a.name .. (a.current and " (current)" or "")
    end
    names[#names + 1] = "none"
    vim.ui.select(names, { prompt = "pilotfish adapter" }, function(choice)
      if choice then
        use((choice:gsub(" %(current%)$", "")))
      end
    end)
  end)
end

local function create_commands()
  local cmd = api.nvim_create_user_command
  cmd("PilotfishReindex", M.reindex, { desc = "pilotfish: reindex the repository" })
  cmd("PilotfishStatus", function()
    M.status()
  end, { desc = "pilotfish: show model, index and latency" })
  cmd("PilotfishExplain", M.explain, { desc = "pilotfish: show the context of the latest completion" })
  cmd("PilotfishEnable", function()
    M.set_enabled(true)
  end, { desc = "pilotfish: enable completions" })
  cmd("PilotfishDisable", function()
    M.set_enabled(false)
  end, { desc = "pilotfish: disable completions" })
  cmd("PilotfishToggle", function()
    M.set_enabled(nil)
  end, { desc = "pilotfish: toggle completions" })
  cmd("PilotfishTrain", M.train, { desc = "pilotfish: train an adapter on the repository's history" })
  cmd("PilotfishTrainCancel", M.cancel_training, { desc = "pilotfish: cancel adapter training" })
  cmd("PilotfishAdapter", function(args)
    M.use_adapter(args.args)
  end, { nargs = "?", desc = "pilotfish: switch the adapter (none = base model)" })
  cmd("PilotfishRestart", function()
    for _, client in ipairs(vim.lsp.get_clients({ name = "pilotfish" })) do
      call(client, "stop")
    end
    vim.defer_fn(function()
      for _, buf in ipairs(api.nvim_list_bufs()) do
        if api.nvim_buf_is_loaded(buf) then
          M.attach(buf)
        end
      end
    end, 500)
  end, { desc = "pilotfish: restart the server" })
end

---@param opts pilotfish.Config?
function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  -- Lists replace rather than merge (tbl_deep_extend merges list tables index by index).
  for _, key in ipairs({ "cmd", "root_markers", "filetypes", "filetypes_exclude" }) do
    if opts and opts[key] ~= nil then
      M.config[key] = opts[key]
    end
  end
  ghost.config = vim.tbl_extend("force", ghost.config, M.config.ghost or {})
  ghost.on_dismiss = function(client, id)
    local params = { command = DISMISSED, arguments = { { id = id } } }
    call(client, "request", "workspace/executeCommand", params, function() end)
  end
  api.nvim_set_hl(0, "PilotfishSuggestion", { link = "Comment", default = true })

  local keys = M.config.keymaps or {}
  map_with_fallback(keys.accept, M.accept, "accept suggestion")
  map_with_fallback(keys.accept_line, M.accept_line, "accept one line of the suggestion")
  map_with_fallback(keys.dismiss, M.dismiss, "dismiss suggestion")
  map_with_fallback(keys.next, function()
    return M.next(1)
  end, "next suggestion")
  map_with_fallback(keys.prev, function()
    return M.next(-1)
  end, "previous suggestion")
  create_commands()

  local group = api.nvim_create_augroup("pilotfish", { clear = true })
  api.nvim_create_autocmd("FileType", {
    group = group,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  api.nvim_create_autocmd("LspProgress", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if not client or client.name ~= "pilotfish" then
        return
      end
      local value = args.data.params and args.data.params.value or {}
      if value.kind == "end" then
        M.state.progress = nil
      else
        if value.kind == "begin" then
          M.state.progress_title = value.title
        end
        local pct = value.percentage and (" %d%%"):format(value.percentage) or ""
        local title = (M.state.progress_title or "working"):gsub("^pilotfish:%s*", "")
        M.state.progress = title .. pct
      end
      vim.cmd("redrawstatus")
    end,
  })
  for _, buf in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(buf) and vim.bo[buf].filetype ~= "" then
      M.attach(buf)
    end
  end
end

return M
