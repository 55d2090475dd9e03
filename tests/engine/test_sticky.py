"""Sticky snippets: a document keeps the context at the top of its prompts while typing near it."""

from __future__ import annotations

from pathlib import Path

from pilotfish.code_index.types import CursorContext, Snippet
from pilotfish.lsp_server.engine.context import CompletionRequest
from pilotfish.lsp_server.engine.engine import CompletionEngine, Pending
from pilotfish.lsp_server.engine.hf_backend import TransformersGenerator
from pilotfish.lsp_server.engine.sticky import REACH_LINES, Shown, sticky_snippets
from pilotfish.lsp_server.settings import CompletionSettings


def window(path: str, start: int) -> Snippet:
    return Snippet(path=path, start_line=start, end_line=start + 19,
                   text=f"# {path}:{start}\nvalue = compute({start})\n", score=0.5,
                   source="similar", reason="t")


def test_kept_while_the_best_snippet_is_still_one_of_them() -> None:
    first = sticky_snippets(None, 10, [window("a.py", 1), window("b.py", 40)])
    assert first == Shown(line=10, snippets=(window("a.py", 1), window("b.py", 40)))
    # The window moved two lines down (it is aligned on the cursor's place): kept as it was.
    assert sticky_snippets(first, 12, [window("a.py", 3)]) is first
    # A second window's file leads now, but overlaps one shown: kept.
    assert sticky_snippets(first, 10, [window("b.py", 45), window("c.py", 1)]) is first
    # Nothing beats the file here any more: what was shown stays (it costs no prefill).
    assert sticky_snippets(first, 11, []) is first


def test_replaced_by_a_new_best_snippet_or_far_from_where_they_were_retrieved() -> None:
    first = sticky_snippets(None, 10, [window("a.py", 1)])
    elsewhere = sticky_snippets(first, 11, [window("c.py", 100)])
    assert elsewhere == Shown(line=11, snippets=(window("c.py", 100),))
    assert sticky_snippets(first, 10, [window("a.py", 30)]).snippets == (window("a.py", 30),)
    far = 10 + REACH_LINES + 1
    assert sticky_snippets(first, far, [window("a.py", 3)]) == Shown(
        line=far, snippets=(window("a.py", 3),))
    assert sticky_snippets(first, far, []) == Shown(line=far, snippets=())
    # Nothing shown before: whatever is found now.
    none = sticky_snippets(None, 10, [])
    assert sticky_snippets(none, 10, [window("a.py", 1)]).snippets == (window("a.py", 1),)


def test_engine_keeps_the_prompt_head_while_typing_a_line(
    tiny_model_dir: Path,
) -> None:
    """Typing through a line, the prompts share their head: the KV cache can be reused."""
    generator = TransformersGenerator(tiny_model_dir, model_id="tiny", device="cpu", int8=False)
    calls: list[int] = []

    def retrieve(ctx: CursorContext, budget: int) -> list[Snippet]:
        calls.append(ctx.line)
        # A window aligned on what is typed: it moves with every keystroke.
        return [window("lib.py", 1 + len(ctx.prefix.rsplit("\n", 1)[-1]))]

    engine = CompletionEngine(generator, CompletionSettings(max_tokens=2), retrieve)
    head = "import os\n\n\ndef f():\n    "
    prompts = []
    for typed in ("", "t", "to", "tot", "tota"):
        text = head + typed
        lines = text.split("\n")
        prepared = engine.prepare(CompletionRequest(
            text=text, line=len(lines) - 1, column=len(lines[-1]), document_key="doc",
            path="a.py"))
        assert isinstance(prepared, Pending)
        prompts.append(prepared.prompt)
    assert len(calls) == 5  # retrieval still runs: a new best snippet would replace them
    assert all(p.snippets == prompts[0].snippets for p in prompts)
    assert prompts[0].snippets[0].start_line == 5  # retrieved at "    "
    # Another document, or no document key (the CLI), is not affected.
    other = engine.prepare(CompletionRequest(text=head + "tota", line=4, column=8,
                                             document_key="", path="a.py"))
    assert isinstance(other, Pending) and other.prompt.snippets[0].start_line == 9
