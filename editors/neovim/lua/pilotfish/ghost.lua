--- Ghost text from `textDocument/inlineCompletion` drawn with extmarks, for Neovim 0.10/0.11
--- (Neovim 0.12+ has `vim.lsp.inline_completion`, which init.lua prefers).
local M = {}

local api = vim.api
local ns = api.nvim_create_namespace("pilotfish.ghost")
local augroup = api.nvim_create_augroup("pilotfish.ghost", { clear = true })

--- Per-buffer state: the request in flight, the items of the last answer and what is shown.
---@class pilotfish.GhostState
---@field client_id integer
---@field timer? uv.uv_timer_t
---@field request_id? integer
---@field items? table[] normalised items: { text, start = {row, col}, stop = {row, col}, command }
---@field index integer
---@field shown? { row: integer, col: integer, text: string } what is displayed, at the cursor
---@field tick? integer b:changedtick when `shown` was drawn
---@type table<integer, pilotfish.GhostState>
local states = {}

M.config = { debounce_ms = 75, hl_group = "PilotfishSuggestion" }

--- Called with (client, item_id) when a suggestion is dismissed; set by init.lua.
---@type fun(client: vim.lsp.Client, id: string)?
M.on_dismiss = nil

local function client_request(client, method, params, handler, bufnr)
  if vim.fn.has("nvim-0.11") == 1 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function client_cancel(client, id)
  if vim.fn.has("nvim-0.11") == 1 then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

local function exec_cmd(client, command, bufnr)
  if vim.fn.has("nvim-0.11") == 1 then
    return client:exec_cmd(command, { bufnr = bufnr })
  end
  client_request(client, "workspace/executeCommand", {
    command = command.command,
    arguments = command.arguments,
  }, function() end, bufnr)
end

local function stop_timer(state)
  if state.timer then
    state.timer:stop()
    state.timer:close()
    state.timer = nil
  end
end

local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

--- The id the server put in the item's command arguments (`[{ id = ... }]`).
local function item_id(item)
  local args = item and item.command and item.command.arguments
  local first = type(args) == "table" and args[1] or nil
  return type(first) == "table" and first.id or nil
end
M.item_id = item_id

local function hide(bufnr)
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  end
  local state = states[bufnr]
  if state then
    state.shown = nil
  end
end

--- Text of the current item still to be inserted at the cursor, or nil when it does not fit.
local function remaining(bufnr, item)
  local row, col = cursor()
  if item.start[1] ~= row or item.start[2] > col then
    return nil
  end
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
  local typed = line:sub(item.start[2] + 1, col)
  if item.text:sub(1, #typed) ~= typed then
    return nil
  end
  return item.text:sub(#typed + 1)
end

local function render(bufnr)
  local state = states[bufnr]
  hide(bufnr)
  local item = state and state.items and state.items[state.index]
  if not item then
    return false
  end
  local text = remaining(bufnr, item)
  if not text or text == "" then
    return false
  end
  local row, col = cursor()
  local lines = vim.split(text, "\n", { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], M.config.hl_group } }
  end
  local suffix = (#state.items > 1) and (" (%d/%d)"):format(state.index, #state.items) or nil
  local first = { { lines[1], M.config.hl_group } }
  if suffix and #virt_lines == 0 then
    first[#first + 1] = { suffix, "Comment" }
  end
  api.nvim_buf_set_extmark(bufnr, ns, row, col, {
    virt_text = first,
    virt_text_pos = "inline",
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = "combine",
    priority = 65534,
  })
  state.shown = { row = row, col = col, text = text }
  state.tick = api.nvim_buf_get_changedtick(bufnr)
  return true
end

--- Turns the server's items into byte positions of this buffer.
local function normalise(bufnr, client, result)
  local items = {}
  local row, col = cursor()
  for _, raw in ipairs(result and (result.items or result) or {}) do
    local text = raw.insertText
    if type(text) == "table" then
      -- A snippet: show and insert its plain text.
      local ok, parsed = pcall(function()
        return tostring(vim.lsp._snippet_grammar.parse(text.value))
      end)
      text = ok and parsed or text.value
    end
    if type(text) == "string" and text ~= "" then
      local start, stop = { row, col }, { row, col }
      if raw.range then
        local enc = client.offset_encoding or "utf-16"
        local s, e = raw.range.start, raw.range["end"]
        start = { s.line, vim.lsp.util._get_line_byte_from_position(bufnr, s, enc) }
        stop = { e.line, vim.lsp.util._get_line_byte_from_position(bufnr, e, enc) }
      end
      items[#items + 1] = { text = text, start = start, stop = stop, command = raw.command }
    end
  end
  return items
end

--- Sends `textDocument/inlineCompletion` for the cursor; `kind` 1 = invoked, 2 = automatic.
function M.request(bufnr, kind)
  local state = states[bufnr]
  if not state then
    return
  end
  local client = vim.lsp.get_client_by_id(state.client_id)
  if not client then
    return
  end
  if state.request_id then
    client_cancel(client, state.request_id)
    state.request_id = nil
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding or "utf-16")
  params.context = { triggerKind = kind or 2 }
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local ok, id
  ok, id = client_request(client, "textDocument/inlineCompletion", params, function(err, result)
    if state.request_id ~= id then
      return -- superseded
    end
    state.request_id = nil
    if err or not api.nvim_buf_is_valid(bufnr) or api.nvim_get_current_buf() ~= bufnr then
      return
    end
    if not vim.startswith(api.nvim_get_mode().mode, "i") or api.nvim_buf_get_changedtick(bufnr) ~= tick then
      return
    end
    state.items = normalise(bufnr, client, result)
    state.index = 1
    render(bufnr)
  end, bufnr)
  state.request_id = ok and id or nil
end

local function schedule_request(bufnr)
  local state = states[bufnr]
  if not state or not M.enabled then
    return
  end
  stop_timer(state)
  state.timer = vim.uv.new_timer()
  state.timer:start(M.config.debounce_ms, 0, vim.schedule_wrap(function()
    stop_timer(state)
    if api.nvim_get_current_buf() == bufnr and vim.startswith(api.nvim_get_mode().mode, "i") then
      M.request(bufnr, 2)
    end
  end))
end

M.enabled = true

--- Asks again for the current buffer when in insert mode and nothing is shown.
function M.refresh()
  local bufnr = api.nvim_get_current_buf()
  local state = states[bufnr]
  if state and not state.shown and vim.startswith(api.nvim_get_mode().mode, "i") then
    schedule_request(bufnr)
  end
end

--- True when a suggestion is displayed in the current buffer.
function M.visible(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local state = states[bufnr]
  return state ~= nil and state.shown ~= nil
end

--- The buffer's state and its displayed item, or nil when no suggestion is shown.
local function shown_item(bufnr)
  local state = states[bufnr]
  if not (state and state.shown) then
    return nil
  end
  return state, state.items[state.index]
end

--- The displayed text and the item's id, for tests and statuslines.
function M.current(bufnr)
  local state, item = shown_item(bufnr or api.nvim_get_current_buf())
  if not state then
    return nil
  end
  return { text = state.shown.text, id = item_id(item) }
end

local function finish(bufnr, state, item)
  local client = vim.lsp.get_client_by_id(state.client_id)
  state.items = nil
  hide(bufnr)
  if client and item.command then
    exec_cmd(client, item.command, bufnr)
  end
end

--- Puts `text` over the range from (row, col) to `stop` and the cursor after it; returns
--- the 0-based end position.
local function put_text(bufnr, row, col, stop, text)
  local lines = vim.split(text, "\n", { plain = true })
  api.nvim_buf_set_text(bufnr, row, col, stop[1], stop[2], lines)
  local end_row = row + #lines - 1
  local end_col = (#lines == 1 and col or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { end_row + 1, end_col })
  return end_row, end_col
end

--- Accepts the whole suggestion; returns false when none is shown.
function M.accept(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local state, item = shown_item(bufnr)
  if not state then
    return false
  end
  local row, col = cursor()
  -- Replace from the cursor to the item's end (the server may replace text after the cursor).
  local stop = item.stop
  if stop[1] < row or (stop[1] == row and stop[2] < col) then
    stop = { row, col }
  end
  put_text(bufnr, row, col, stop, state.shown.text)
  finish(bufnr, state, item)
  return true
end

--- Accepts the suggestion up to the end of its current line (or the next line when it starts
--- with a line break); the rest stays displayed. Returns false when none is shown.
function M.accept_line(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local state, item = shown_item(bufnr)
  if not state then
    return false
  end
  local text = state.shown.text
  local take = text:match("^\n?[^\n]*")
  if take == text then
    return M.accept(bufnr)
  end
  local row, col = cursor()
  local end_row, end_col = put_text(bufnr, row, col, { row, col }, take)
  -- The rest of the suggestion now starts at the cursor.
  state.items = { { text = text:sub(#take + 1), start = { end_row, end_col }, stop = { end_row, end_col }, command = item.command } }
  state.index = 1
  render(bufnr)
  return true
end

--- Hides the suggestion and tells the server it was dismissed. Returns false when none is shown.
function M.dismiss(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local state, item = shown_item(bufnr)
  if not state then
    return false
  end
  state.items = nil
  hide(bufnr)
  local client = vim.lsp.get_client_by_id(state.client_id)
  local id = item_id(item)
  if client and id and M.on_dismiss then
    M.on_dismiss(client, id)
  end
  return true
end

--- Shows the next (or, with a negative count, previous) candidate; asks for one when none is shown.
function M.next(bufnr, count)
  bufnr = bufnr or api.nvim_get_current_buf()
  local state = states[bufnr]
  if not state then
    return false
  end
  if not (state.shown and state.items and #state.items > 0) then
    M.request(bufnr, 1)
    return true
  end
  state.index = (state.index - 1 + (count or 1)) % #state.items + 1
  render(bufnr)
  return true
end

--- Starts ghost text in a buffer for the given client.
function M.attach(bufnr, client_id)
  if states[bufnr] then
    states[bufnr].client_id = client_id
    return
  end
  states[bufnr] = { client_id = client_id, index = 1 }
  -- Typing what the suggestion says (or moving within it) keeps it, shorter, instead of asking
  -- again; anything else hides it and asks again after the debounce.
  api.nvim_create_autocmd({ "TextChangedI", "TextChangedP", "CursorMovedI" }, {
    group = augroup,
    buffer = bufnr,
    callback = function()
      local state = states[bufnr]
      if not state then
        return
      end
      if state.shown then
        local row, col = cursor()
        if row == state.shown.row and col == state.shown.col and state.tick == api.nvim_buf_get_changedtick(bufnr) then
          return
        end
      end
      if state.items and render(bufnr) then
        return
      end
      hide(bufnr)
      schedule_request(bufnr)
    end,
  })
  api.nvim_create_autocmd("InsertEnter", {
    group = augroup,
    buffer = bufnr,
    callback = function()
      schedule_request(bufnr)
    end,
  })
  api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = augroup,
    buffer = bufnr,
    callback = function()
      local state = states[bufnr]
      if not state then
        return
      end
      stop_timer(state)
      M.dismiss(bufnr)
      hide(bufnr)
    end,
  })
  api.nvim_create_autocmd("BufUnload", {
    group = augroup,
    buffer = bufnr,
    callback = function()
      M.detach(bufnr)
    end,
  })
end

function M.detach(bufnr)
  local state = states[bufnr]
  if not state then
    return
  end
  stop_timer(state)
  hide(bufnr)
  states[bufnr] = nil
  pcall(api.nvim_clear_autocmds, { group = augroup, buffer = bufnr })
end

M.namespace = ns
return M
