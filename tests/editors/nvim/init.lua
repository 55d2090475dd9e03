-- Test config: the plugin from this checkout, the server command from $PILOTFISH_SERVER_CMD.
local repo = vim.env.PILOTFISH_REPO
vim.opt.runtimepath:prepend(repo .. "/editors/neovim")
vim.cmd("filetype plugin on")
vim.cmd("filetype indent off")
vim.cmd("syntax on")
vim.o.autoindent = false
vim.o.swapfile = false
vim.o.shortmess = vim.o.shortmess .. "I"
vim.o.termguicolors = true
vim.o.laststatus = 2
vim.o.number = true
vim.o.statusline = "%f %m%=%{v:lua.require'pilotfish'.statusline()}  %l:%c "
pcall(vim.cmd.colorscheme, "habamax")

vim.lsp.log.set_level("debug") -- the test reads the JSON-RPC sent from lsp.log

local cmd = vim.json.decode(vim.env.PILOTFISH_SERVER_CMD or '["pilotfish", "serve"]')
require("pilotfish").setup({
  cmd = cmd,
  inline = vim.env.PILOTFISH_INLINE or "auto",
  settings = { completion = { maxLines = 4 } },
})

-- Helpers the driver calls through `nvim --server ... --remote-expr`.
_G.pf_test = {}

--- Every virtual text at or after the cursor line, joined (works for the plugin's extmarks and
--- for Neovim 0.12's own inline completion).
function _G.pf_test.ghost()
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  local parts = {}
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(0, -1, { row, 0 }, { row, -1 }, { details = true })) do
    local d = mark[4]
    if d.virt_text then
      for _, chunk in ipairs(d.virt_text) do
        if chunk[2] ~= "Comment" and chunk[2] ~= "ComplHintMore" then
          parts[#parts + 1] = chunk[1]
        end
      end
    end
    for _, line in ipairs(d.virt_lines or {}) do
      local l = {}
      for _, chunk in ipairs(line) do
        l[#l + 1] = chunk[1]
      end
      parts[#parts + 1] = "\n" .. table.concat(l)
    end
  end
  return table.concat(parts)
end

function _G.pf_test.state()
  local client = require("pilotfish").client()
  local status = client and require("pilotfish").state.status[client.id] or {}
  return vim.json.encode({
    attached = client ~= nil,
    loaded = status.loaded == true,
    index = status.index and status.index.state or vim.NIL,
    mode = vim.api.nvim_get_mode().mode,
    lines = vim.api.nvim_buf_get_lines(0, 0, -1, false),
    cursor = vim.api.nvim_win_get_cursor(0),
    ghost = _G.pf_test.ghost(),
    statusline = require("pilotfish").statusline(),
    native = vim.lsp.inline_completion ~= nil and (vim.env.PILOTFISH_INLINE or "auto") ~= "ghost",
    version = tostring(vim.version()),
  })
end

function _G.pf_test.command(name, args)
  local client = require("pilotfish").client()
  if not client then
    return vim.json.encode({ error = "no client" })
  end
  local res = client:request_sync("workspace/executeCommand", { command = name, arguments = args or {} }, 20000)
  return vim.json.encode(res or { error = "timeout" })
end

--- `:checkhealth pilotfish` as text.
function _G.pf_test.health()
  vim.cmd("checkhealth pilotfish")
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  vim.cmd("bwipeout")
  return text
end

--- Text of the first floating window (the hover), or "".
function _G.pf_test.float_text()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(win).relative ~= "" then
      local buf = vim.api.nvim_win_get_buf(win)
      return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")
    end
  end
  return ""
end
