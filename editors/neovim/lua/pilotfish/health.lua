--- `:checkhealth pilotfish`: server found, model pulled, index state, GPU.
local M = {}

local health = vim.health

--- The server command with `serve` swapped for other arguments (for `pilotfish status --json`).
local function cli(cmd, args)
  local out = vim.deepcopy(cmd)
  if out[#out] == "serve" then
    out[#out] = nil
  end
  vim.list_extend(out, args)
  return out
end

local function run_json(argv, timeout_ms)
  local ok, obj = pcall(vim.system, argv, { text = true })
  if not ok then
    return nil, tostring(obj)
  end
  local res = obj:wait(timeout_ms)
  if res.code ~= 0 then
    return nil, ("exit %s: %s"):format(tostring(res.code), vim.trim(res.stderr or ""))
  end
  local decoded_ok, decoded = pcall(vim.json.decode, res.stdout or "")
  if not decoded_ok then
    return nil, "not JSON: " .. (res.stdout or ""):sub(1, 200)
  end
  return decoded
end

function M.check()
  local pilotfish = require("pilotfish")
  health.start("pilotfish: editor")
  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.10") ~= 1 then
    health.error("Neovim " .. version .. " is too old; pilotfish needs 0.10 or newer")
  elseif vim.lsp.inline_completion and pilotfish.config.inline ~= "ghost" then
    health.ok("Neovim " .. version .. ": native inline completion (vim.lsp.inline_completion)")
  else
    health.ok("Neovim " .. version .. ": pilotfish's extmark ghost text")
  end

  health.start("pilotfish: server")
  local root = vim.fs.root and vim.fs.root(0, pilotfish.config.root_markers) or vim.fn.getcwd()
  local cmd, source = pilotfish.server_cmd(root)
  if vim.fn.executable(cmd[1]) ~= 1 then
    health.error(("server command `%s` (from %s) not found"):format(cmd[1], source), { pilotfish.install_hint })
    return
  end
  health.ok(("server command: %s (from %s)"):format(table.concat(cmd, " "), source))

  local client = pilotfish.client(0) or pilotfish.client()
  local status = client and pilotfish.state.status[client.id]
  if client then
    health.ok(("server running (client id %d, root %s)"):format(client.id, tostring(client.root_dir)))
  else
    health.info("no pilotfish server attached to this buffer; asking the command line instead")
  end
  if not status then
    local err
    status, err = run_json(cli(cmd, { "status", "--json", "--repo", root }), 60000)
    if not status then
      health.warn("`pilotfish status --json` failed: " .. tostring(err))
      return
    end
  end

  health.start("pilotfish: model")
  if status.error and status.error ~= vim.NIL then
    health.error("model: " .. tostring(status.error), { "Run `pilotfish model pull` (see `pilotfish model list`)." })
  end
  local models, err = run_json(cli(cmd, { "model", "list", "--json" }), 30000)
  local wanted = tostring(status.model)
  if type(models) == "table" then
    local found = false
    for _, m in ipairs(models) do
      if m.name == wanted then
        found = true
        if m.pulled then
          health.ok(("model %s is pulled"):format(wanted))
        else
          health.error(("model %s is not pulled"):format(wanted), { "Run `pilotfish model pull " .. wanted .. "`." })
        end
      end
    end
    if not found then
      health.info(("model %s is not a bundle; it is loaded as a Hugging Face id, folder or .gguf"):format(wanted))
    end
  else
    health.info("model: " .. wanted .. " (could not list models: " .. tostring(err) .. ")")
  end
  health.info(("backend %s, device %s, adapter %s"):format(
    tostring(status.backend),
    tostring(status.device),
    status.adapter ~= vim.NIL and tostring(status.adapter) or "none"
  ))

  health.start("pilotfish: index")
  local index = status.index or {}
  local state = tostring(index.state)
  local detail = index.files and (" (%d files, %d chunks)"):format(index.files, index.chunks or 0) or ""
  if state == "ready" or state == "indexing" then
    health.ok("index " .. state .. detail)
  elseif state == "disabled" then
    health.warn("index disabled" .. detail, { "Completions use in-file context only; set settings.index.enable = true." })
  else
    health.info("index " .. state .. detail)
  end

  health.start("pilotfish: GPU")
  if tostring(status.device):match("^cuda") then
    health.ok("the model runs on " .. tostring(status.device))
  elseif vim.fn.executable("nvidia-smi") == 1 then
    health.warn("an NVIDIA GPU seems present but the model runs on " .. tostring(status.device), {
      "Install a CUDA build of torch in pilotfish's environment and set settings.model.device = 'cuda'.",
    })
  else
    health.info("no GPU: the model runs on " .. tostring(status.device) .. " (completions take about 1-5 s)")
  end
end

return M
