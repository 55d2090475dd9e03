"""The completion engine: runs the named stages for one request and records what each cost.

context -> prefilter -> typing-through -> retrieval -> prompt -> cache -> generate -> postprocess
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from ...code_index.types import CursorContext, Snippet
from ..errors import UserError
from ..settings import CompletionSettings
from .anchor import anchored_start
from .context import CompletionRequest, build_context, wants_multiline
from .generate import Generation, GenerationRequest, Generator
from .postprocess import PostContext, postprocess
from .prefilter import PrefilterOptions, skip_reason
from .prompt import (
    Prompt,
    PromptBudget,
    build_prompt,
    keep_head,
    restore_trailing_space,
    shows_context,
)
from .sticky import Shown, sticky_snippets
from .templates import ContextStyle, FimTemplate, template_for

log = logging.getLogger(__name__)

RetrieveFn = Callable[[CursorContext, int], Sequence[Snippet]]
Source = Literal["model", "cache", "typing-through", "none"]


@dataclass(frozen=True, kw_only=True)
class Completion:
    """The answer to one request: the text to insert and how it was made."""

    id: str
    text: str
    source: Source
    skipped: str | None = None
    snippets: tuple[Snippet, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    model: str = ""
    backend: str = ""
    adapter: str | None = None
    prompt_tokens: int = 0
    new_tokens: int = 0
    reused_tokens: int = 0
    stop_reason: str = ""
    prompt: str = ""
    """The prompt sent to the model (or found in the cache); empty when none was built."""
    context: str = ""
    """Why the prompt shows the repository context it shows, or none (empty: no prompt)."""

    def to_json(self) -> dict[str, object]:
        """The JSON form of ``pilotfish complete --json`` and ``pilotfish.explainCompletion``."""
        return {
            "id": self.id,
            "completion": self.text,
            "source": self.source,
            "skipped": self.skipped,
            "snippets": [s.to_json() for s in self.snippets],
            "context": self.context,
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
            "model": self.model,
            "backend": self.backend,
            "adapter": self.adapter,
            "prompt_tokens": self.prompt_tokens,
            "new_tokens": self.new_tokens,
            "reused_tokens": self.reused_tokens,
            "stop_reason": self.stop_reason,
            "prompt": self.prompt,
        }


@dataclass(frozen=True)
class _Shown:
    prefix: str
    suffix: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Pending:
    """A request that got through the cheap stages and now needs the model."""

    id: str
    request: CompletionRequest
    ctx: CursorContext
    prompt: Prompt
    key: tuple[object, ...]
    multiline: bool
    max_lines: int
    started: float
    timings: dict[str, float]


class CompletionEngine:
    """Turns completion requests into suggestions with one loaded generator.

    :meth:`prepare` runs the cheap stages (context, prefilter, typing-through, retrieval,
    prompt, cache) and :meth:`run` the model and postprocessing, so a scheduler can answer
    typing-through and cache hits at once and debounce only what needs the model.
    """

    def __init__(
        self,
        generator: Generator,
        settings: CompletionSettings,
        retrieve: RetrieveFn | None = None,
        *,
        cache_size: int = 256,
        context_style: ContextStyle | Callable[[], ContextStyle] = "repo",
        context_at_line_start: bool = True,
    ) -> None:
        template = template_for(generator.has_token)
        if template is None:
            raise UserError(
                f"model {generator.model_id} has no fill-in-the-middle tokens pilotfish knows"
            )
        self.template: FimTemplate = template
        self.generator = generator
        self.settings = settings
        self.retrieve = retrieve
        # How snippets are shown, or a function that says it per request (the server's: the
        # model's format, or the repository-level one an adapter was trained on).
        self.context_style: ContextStyle | Callable[[], ContextStyle] = context_style
        # Retrieved context where nothing is typed on the line yet (served to every model).
        self.context_at_line_start = context_at_line_start
        self._cache: OrderedDict[tuple[object, ...], str] = OrderedDict()
        self._cache_size = cache_size
        self._shown: dict[str, _Shown] = {}
        self._anchors: dict[str, int] = {}
        self._snippets: dict[str, Shown] = {}  # per document: what its prompts show (sticky.py)
        self._recent: OrderedDict[str, Completion] = OrderedDict()
        self._lock = threading.Lock()
        self.count_tokens = TokenCounter(generator.count_tokens)
        self.latencies_ms: deque[float] = deque(maxlen=200)
        self.overheads_ms: deque[float] = deque(maxlen=200)
        """Time of model-served requests outside the model and the queue (engine overhead)."""
        self.counts = {
            "requests": 0,
            "model": 0,
            "cache": 0,
            "typing-through": 0,
            "skipped": 0,
            "cancelled": 0,
            "modelRuns": 0,
        }

    def complete(
        self, request: CompletionRequest, cancel: threading.Event | None = None
    ) -> Completion:
        """Run all stages for ``request``; ``cancel`` stops the model mid-decode."""
        prepared = self.prepare(request)
        if isinstance(prepared, Completion):
            return prepared
        return self.run(prepared, cancel or threading.Event())

    def _style(self) -> ContextStyle:
        """How this request's snippets are shown (``context_style``, called if a function)."""
        style = self.context_style
        return style() if callable(style) else style

    def prepare(self, request: CompletionRequest) -> Completion | Pending:
        """The stages before the model: a finished completion, or what the model must do."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        request_id = uuid.uuid4().hex[:12]

        def lap(stage: str, since: float) -> float:
            now = time.perf_counter()
            timings[stage] = (now - since) * 1000
            return now

        ctx = build_context(request)
        t = lap("context", started)
        options = PrefilterOptions(
            skip_inside_word=self.settings.skip_inside_word,
            skip_in_comments=self.settings.skip_in_comments,
            max_file_bytes=self.settings.max_file_bytes,
        )
        reason = skip_reason(ctx, options, selection_active=request.selection_active)
        t = lap("prefilter", t)
        if reason:
            return self._finish(
                self._completion(request_id, "", "none", timings, skipped=reason),
                request,
                ctx,
                started,
            )

        through = self._typing_through(request.document_key, ctx)
        if through is not None:
            lap("typing_through", t)
            return self._finish(
                self._completion(request_id, through, "typing-through", timings),
                request,
                ctx,
                started,
            )

        budget = PromptBudget(
            infile_tokens=self.settings.context_tokens,
            retrieval_tokens=self.settings.retrieval_tokens,
            context_at_line_start=self.context_at_line_start,
        )
        snippets: Sequence[Snippet] = ()
        # No retrieval where the prompt would not show it (the start of a line, when told so).
        if (self.retrieve is not None and self.settings.retrieval_tokens > 0
                and shows_context(ctx, budget)):
            try:
                snippets = self.retrieve(ctx, self.settings.retrieval_tokens)
            except Exception:  # retrieval must never cost the user a completion
                log.exception("retrieval failed; completing with in-file context only")
            snippets = self._sticky(request.document_key, ctx.line, snippets)
        t = lap("retrieval", t)

        ctx_for_prompt = self._anchor(request.document_key, ctx, budget)
        prompt = build_prompt(ctx_for_prompt, self.template, self.count_tokens, budget, snippets,
                              style=self._style())
        if self.retrieve is None and shows_context(ctx, budget):
            prompt = replace(prompt, context_note="none: no repository index for this file")
        t = lap("prompt", t)

        multiline = wants_multiline(ctx)
        max_lines = self.settings.max_lines + 1 if multiline else 1
        key = (prompt.text, self.generator.adapter, self.settings.max_tokens, max_lines)
        with self._lock:
            raw = self._cache.get(key)
            if raw is not None:
                self._cache.move_to_end(key)
        t = lap("cache", t)
        pending = Pending(
            id=request_id,
            request=request,
            ctx=ctx,
            prompt=prompt,
            key=key,
            multiline=multiline,
            max_lines=max_lines,
            started=started,
            timings=timings,
        )
        if raw is not None:
            return self._postprocess(pending, raw, None)
        return pending

    def run(self, pending: Pending, cancel: threading.Event) -> Completion:
        """Generate for a prepared request (on the model thread), then postprocess."""
        # Debounce and the wait for the model thread: time the request spent queued.
        queued = time.perf_counter() - pending.started - sum(pending.timings.values()) / 1000
        pending.timings["wait"] = max(0.0, queued * 1000)
        if cancel.is_set():
            return self._cancelled(pending)
        with self._lock:
            self.counts["modelRuns"] += 1
        generation = self.generator.generate(
            GenerationRequest(
                prompt=pending.prompt.text,
                max_tokens=self.settings.max_tokens,
                stop=self.template.stop,
                max_lines=pending.max_lines,
                temperature=self.settings.temperature,
            ),
            cancel,
        )
        pending.timings["prefill"] = generation.prefill_ms
        pending.timings["decode"] = generation.decode_ms
        if generation.stop_reason == "cancelled":
            return self._cancelled(pending)
        with self._lock:
            self._cache[pending.key] = generation.text
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return self._postprocess(pending, generation.text, generation)

    def _cancelled(self, pending: Pending) -> Completion:
        completion = self._completion(
            pending.id,
            "",
            "none",
            pending.timings,
            skipped="cancelled",
            snippets=pending.prompt.snippets,
            prompt=pending.prompt,
        )
        return self._finish(completion, pending.request, pending.ctx, pending.started)

    def _postprocess(self, pending: Pending, raw: str, generation: Generation | None) -> Completion:
        t = time.perf_counter()
        post = PostContext(
            ctx=pending.ctx, multiline=pending.multiline, max_lines=self.settings.max_lines
        )
        text = postprocess(restore_trailing_space(raw, pending.prompt.trimmed), post) or ""
        pending.timings["postprocess"] = (time.perf_counter() - t) * 1000
        completion = self._completion(
            pending.id,
            text,
            "model" if generation else "cache",
            pending.timings,
            skipped=None if text else "postprocess rejected the suggestion",
            snippets=pending.prompt.snippets,
            generation=generation,
            prompt=pending.prompt,
        )
        return self._finish(completion, pending.request, pending.ctx, pending.started)

    def _sticky(self, key: str, line: int, retrieved: Sequence[Snippet]) -> Sequence[Snippet]:
        """The snippets to show: the document's last ones while they still fit (sticky.py)."""
        if not key:
            return retrieved
        with self._lock:
            shown = sticky_snippets(self._snippets.get(key), line, retrieved)
            self._snippets[key] = shown
        return shown.snippets

    def _anchor(self, key: str, ctx: CursorContext, budget: PromptBudget) -> CursorContext:
        """The context with its prefix cut at the document's sticky anchor (see anchor.py)."""
        count = self.count_tokens
        suffix = keep_head(ctx.suffix, int(budget.infile_tokens * budget.suffix_share), count)
        prefix_budget = budget.infile_tokens - count(suffix)
        with self._lock:
            previous = self._anchors.get(key) if key else None
        start = anchored_start(ctx.prefix, previous, prefix_budget, count)
        if key:
            with self._lock:
                self._anchors[key] = start
        return replace(ctx, prefix=ctx.prefix[start:]) if start else ctx

    def _completion(
        self,
        request_id: str,
        text: str,
        source: Source,
        timings: dict[str, float],
        *,
        skipped: str | None = None,
        snippets: tuple[Snippet, ...] = (),
        generation: Generation | None = None,
        prompt: Prompt | None = None,
    ) -> Completion:
        return Completion(
            id=request_id,
            text=text,
            source=source,
            skipped=skipped,
            snippets=snippets,
            timings=timings,
            model=self.generator.model_id,
            backend=self.generator.backend,
            adapter=self.generator.adapter,
            prompt_tokens=generation.prompt_tokens if generation else 0,
            new_tokens=generation.new_tokens if generation else 0,
            reused_tokens=generation.reused_tokens if generation else 0,
            stop_reason=generation.stop_reason if generation else source,
            prompt=prompt.text if prompt else "",
            context=prompt.context_note if prompt else "",
        )

    def _typing_through(self, key: str, ctx: CursorContext) -> str | None:
        """The rest of the suggestion shown last, when the user typed its first characters."""
        if not key:
            return None
        with self._lock:
            shown = self._shown.get(key)
        if shown is None or ctx.suffix != shown.suffix or not ctx.prefix.startswith(shown.prefix):
            return None
        typed = ctx.prefix[len(shown.prefix) :]
        if not typed or not shown.text.startswith(typed):
            return None
        rest = shown.text[len(typed) :]
        return rest if rest.strip() else None

    def _finish(
        self, completion: Completion, request: CompletionRequest, ctx: CursorContext, started: float
    ) -> Completion:
        total = (time.perf_counter() - started) * 1000
        completion.timings["total"] = total
        with self._lock:
            self.counts["requests"] += 1
            if completion.skipped == "cancelled":
                self.counts["cancelled"] += 1
            else:
                self.counts["skipped" if completion.source == "none" else completion.source] += 1
            if completion.source == "model":
                self.latencies_ms.append(total)
                outside = sum(completion.timings.get(k, 0.0) for k in ("prefill", "decode", "wait"))
                self.overheads_ms.append(total - outside)
            # Typing-through keys on where the suggestion was first shown.
            if completion.text and request.document_key and completion.source != "typing-through":
                self._shown[request.document_key] = _Shown(ctx.prefix, ctx.suffix, completion.text)
            self._recent[completion.id] = completion
            while len(self._recent) > 50:
                self._recent.popitem(last=False)
        log.info(
            "completion %s source=%s skipped=%s tokens=%d+%d reused=%d %s",
            completion.id,
            completion.source,
            completion.skipped,
            completion.prompt_tokens,
            completion.new_tokens,
            completion.reused_tokens,
            " ".join(f"{k}={v:.1f}ms" for k, v in completion.timings.items()),
        )
        return completion

    def recent(self, completion_id: str | None = None) -> Completion | None:
        """A recent completion by id, or the latest one."""
        with self._lock:
            if completion_id is None:
                return next(reversed(self._recent.values()), None)
            return self._recent.get(completion_id)

    def stats(self) -> dict[str, object]:
        """Counts, cache and typing-through hit rates, recent latency and overhead percentiles."""
        with self._lock:
            lat = sorted(self.latencies_ms)
            over = sorted(self.overheads_ms)
            counts = dict(self.counts)
        served = counts["model"] + counts["cache"] + counts["typing-through"]
        return {
            **counts,
            "cacheHitRate": round((counts["cache"] + counts["typing-through"]) / served, 3)
            if served
            else 0.0,
            "typingThroughRate": round(counts["typing-through"] / served, 3) if served else 0.0,
            "p50Ms": _percentile(lat, 0.5),
            "p95Ms": _percentile(lat, 0.95),
            "overheadP50Ms": _percentile(over, 0.5),
        }


class TokenCounter:
    """Memoized token counting: the prompt stage counts the same texts on every keystroke.

    The suffix (and its binary-search cuts) is unchanged while the user types, and the
    anchored prefix is counted twice per request; an LRU of recent texts makes those free.
    """

    def __init__(self, count: Callable[[str], int], size: int = 256) -> None:
        self._count = count
        self._memo: OrderedDict[str, int] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __call__(self, text: str) -> int:
        """Tokens ``text`` takes."""
        with self._lock:
            hit = self._memo.get(text)
            if hit is not None:
                self._memo.move_to_end(text)
                return hit
        n = self._count(text)
        with self._lock:
            self._memo[text] = n
            if len(self._memo) > self._size:
                self._memo.popitem(last=False)
        return n


def _percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile of sorted ``values`` (nearest rank), rounded; ``None`` if empty."""
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * q))], 1)
