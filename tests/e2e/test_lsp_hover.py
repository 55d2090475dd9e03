"""Hover through a real LSP client with the real model: definitions, docs, cited sources."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp_fixture import server_client

pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="module")]

APP = '''import json

from fancylib import shout
from util import slugify


class Page:
    def __init__(self, title):
        self.title = title

    def slug(self):
        return slugify(self.title)

    def dump(self):
        return json.dumps({"title": shout(self.title), "slug": self.slug()})
'''

UTIL = '''def slugify(title: str, sep: str = "-") -> str:
    """Turn a title into a lowercase URL slug, words joined by ``sep``."""
    words = [w for w in title.lower().split() if w.isalnum()]
    return sep.join(words)
'''

FANCY = '''"""fancylib: loud strings."""


def shout(text: str) -> str:
    """Return ``text`` in upper case with an exclamation mark."""
    return text.upper() + "!"
'''


def make_workspace(root: Path) -> None:
    (root / "app.py").write_text(APP)
    (root / "util.py").write_text(UTIL)
    site = root / ".venv" / "lib" / "python3.11" / "site-packages"
    (site / "fancylib").mkdir(parents=True)
    (site / "fancylib" / "__init__.py").write_text(FANCY)
    dist = site / "fancylib-1.2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fancylib\nVersion: 1.2.0\n")
    (dist / "top_level.txt").write_text("fancylib\n")
    (root / ".gitignore").write_text(".venv/\n")


@server_client
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("hover-workspace")
    make_workspace(root)
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=root.as_uri(),
            initialization_options={"dataDir": str(root / ".pilotfish-data"),
                                    "index": {"embeddings": False}},
        )
    )
    lsp_client.root = root  # type: ignore[attr-defined]
    uri = (root / "app.py").as_uri()
    lsp_client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                                 text=APP)
        )
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status = await lsp_client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="pilotfish.status")
        )
        if status["loaded"] and status["index"].get("ready"):
            break
        await asyncio.sleep(0.5)
    else:
        pytest.fail("server did not become ready")
    yield
    await lsp_client.shutdown_session()


async def hover(client: LanguageClient, needle: str, line: int, offset: int = 0) -> str:
    text = APP.split("\n")[line]
    character = text.index(needle) + offset
    uri = (client.root / "app.py").as_uri()  # type: ignore[attr-defined]
    result = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
        )
    )
    assert result is not None
    assert isinstance(result.contents, types.MarkupContent)
    return result.contents.value


def assert_links_resolve(markdown: str) -> list[tuple[Path, int]]:
    links = re.findall(r"\((file://[^)#]+)#L(\d+)\)", markdown)
    assert links, markdown
    out = []
    for uri, line in links:
        path = Path(unquote(urlparse(uri).path))
        assert path.is_file(), path
        assert 1 <= int(line) <= len(path.read_text().split("\n"))
        out.append((path, int(line)))
    return out


async def test_function_in_another_file(client: LanguageClient) -> None:
    markdown = await hover(client, "slugify(self", 11)
    assert "```python\ndef slugify(title: str" in markdown
    links = assert_links_resolve(markdown)
    assert (client.root / "util.py", 1) in links  # type: ignore[attr-defined]


async def test_method_on_a_class(client: LanguageClient) -> None:
    markdown = await hover(client, "slug()", 14)
    assert "def slug(self)" in markdown and "Page.slug" in markdown
    assert_links_resolve(markdown)


async def test_stdlib_json_dumps(client: LanguageClient) -> None:
    markdown = await hover(client, "dumps", 14)
    assert "def dumps(obj" in markdown
    (path, line), *_ = assert_links_resolve(markdown)
    assert path.parent.name == "json"
    assert path.read_text().split("\n")[line - 1].startswith("def dumps(")


async def test_third_party_function_in_the_workspace_venv(client: LanguageClient) -> None:
    markdown = await hover(client, "shout", 14)
    assert "def shout(text: str) -> str:" in markdown
    links = assert_links_resolve(markdown)
    assert any("site-packages/fancylib" in str(p) for p, _ in links)


async def test_explanation_arrives_in_the_background_and_cites(client: LanguageClient) -> None:
    deadline = time.monotonic() + 180
    markdown = ""
    while time.monotonic() < deadline:
        started = time.monotonic()
        markdown = await hover(client, "slugify(self", 11)
        # Never hangs the editor: the default budget is 1.5 s (plus slack for a busy machine).
        assert time.monotonic() - started < 15
        if "**Explanation**" in markdown:
            break
        assert "in progress" in markdown
        await asyncio.sleep(1)
    assert "**Explanation**" in markdown, markdown
    explanation = markdown.split("**Explanation**", 1)[1].split("**Sources**", 1)[0]
    sources = len(re.findall(r"^\d+\. \[", markdown, flags=re.M))
    for number in re.findall(r"\[(\d+)\]", explanation):
        assert 1 <= int(number) <= sources  # invalid markers were removed
