"""Runs Neovim's real terminal UI in a pseudo-terminal, types into it, and renders its screen."""

from __future__ import annotations

import contextlib
import html
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyte

_DCS = re.compile(rb"\x1bP.*?(?:\x1b\\|\x07)", re.S)

ANSI = {
    "black": "#1c1c1c",
    "red": "#d75f5f",
    "green": "#87af87",
    "brown": "#afaf87",
    "yellow": "#afaf87",
    "blue": "#5f87af",
    "magenta": "#af87af",
    "cyan": "#5f8787",
    "white": "#9e9e9e",
}


class NeovimTerminal:
    """One `nvim` process with a TUI in a pty, remote-controlled over its `--listen` socket."""

    def __init__(
        self,
        nvim: str,
        args: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        socket: Path,
        size: tuple[int, int] = (110, 30),
    ) -> None:
        self.nvim = nvim
        self.socket = socket
        self.cols, self.rows = size
        self.screen = pyte.Screen(self.cols, self.rows)
        self.stream = pyte.ByteStream(self.screen)
        self._lock = threading.Lock()
        pid, fd = pty.fork()
        if pid == 0:  # the child: become nvim
            os.chdir(cwd)
            os.execvpe(
                nvim, [nvim, "--listen", str(socket), *args], {**env, "TERM": "xterm-256color"}
            )
        self.pid, self.fd = pid, fd
        _set_size(fd, self.rows, self.cols)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                # pyte does not parse DCS strings (Neovim 0.12's XTGETTCAP queries): drop them.
                self.stream.feed(_DCS.sub(b"", data))
                # Answer the terminal queries Neovim's TUI makes, as a real terminal would.
                for query, reply in ((b"\x1b[c", b"\x1b[?62;22c"), (b"\x1b[6n", b"\x1b[1;1R")):
                    if query in data:
                        os.write(self.fd, reply)

    def type(self, keys: str, delay: float = 0.03) -> None:
        """Types keys one at a time, as a person would (bytes as a terminal sends them)."""
        for ch in keys:
            os.write(self.fd, ch.encode())
            time.sleep(delay)

    def expr(self, expression: str, timeout: float = 30) -> str:
        """Evaluates a Vimscript expression in the running editor."""
        out = subprocess.run(
            [
                self.nvim,
                "--headless",
                "--clean",
                "--server",
                str(self.socket),
                "--remote-expr",
                expression,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"remote-expr failed: {out.stderr}")
        return out.stdout

    def lua(self, code: str, timeout: float = 30) -> Any:
        """Evaluates a Lua expression returning a JSON string, and decodes it."""
        text = self.expr(f"luaeval({json.dumps(code)})", timeout=timeout)
        return json.loads(text) if text.strip() else None

    def wait_for(self, what: Callable[[], Any], timeout: float, step: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = what()
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError):
                last = None
            if last:
                return last
            time.sleep(step)
        return last

    def wait_socket(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"nvim did not open {self.socket}:\n{self.text()}")
            time.sleep(0.1)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.screen.display)

    def html(self, title: str) -> str:
        """The screen as HTML (one span per run of same-styled cells)."""
        with self._lock:
            buffer = self.screen.buffer
            cursor = (self.screen.cursor.y, self.screen.cursor.x)
            rows = []
            for y in range(self.rows):
                line = buffer[y]
                spans = []
                for x in range(self.cols):
                    ch = line[x]
                    fg = _color(ch.fg, "#bcbcbc")
                    bg = _color(ch.bg, "#1c1c1c")
                    if ch.reverse:
                        fg, bg = bg, fg
                    if (y, x) == cursor:
                        fg, bg = "#1c1c1c", "#d0d0d0"
                    style = f"color:{fg};background:{bg}"
                    if ch.bold:
                        style += ";font-weight:bold"
                    if ch.italics:
                        style += ";font-style:italic"
                    spans.append((style, ch.data or " "))
                merged: list[list[str]] = []
                for style, data in spans:
                    if merged and merged[-1][0] == style:
                        merged[-1][1] += data
                    else:
                        merged.append([style, data])
                rows.append(
                    "".join(f'<span style="{s}">{html.escape(d)}</span>' for s, d in merged)
                )
        body = "\n".join(rows)
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{margin:0;background:#1c1c1c}pre{margin:0;padding:8px;"
            "font:15px/1.25 'DejaVu Sans Mono',monospace}</style></head>"
            f"<body><pre>{body}</pre></body></html>"
        )

    def screenshot(self, path: Path, title: str) -> bool:
        """Renders the screen to a PNG with headless Chromium; False when there is no Chromium."""
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            return False
        page = path.with_suffix(".html")
        page.write_text(self.html(title), encoding="utf-8")
        width, height = self.cols * 9 + 16, self.rows * 19 + 16
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--disable-background-networking",
                f"--screenshot={path}",
                f"--window-size={width},{height}",
                page.as_uri(),
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        page.unlink(missing_ok=True)
        return path.exists()

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.expr("execute('qall!')", timeout=5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.1)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


def _color(value: str, default: str) -> str:
    if value == "default":
        return default
    if value in ANSI:
        return ANSI[value]
    if len(value) == 6 and all(c in "0123456789abcdefABCDEF" for c in value):
        return "#" + value
    return default


def _set_size(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
