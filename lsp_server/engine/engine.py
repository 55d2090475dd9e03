"""The completion engine: runs the named stages for one request and records what each cost.

prefilter -> context -> typing-through -> retrieval -> prompt -> cache -> generate -> postprocess
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ...code_index.types import CursorContext, Snippet
from ..errors import UserError
from ..settings import CompletionSettings
from .context import CompletionRequest, build_context, wants_multiline
from .generate import GenerationRequest, Generator
from .postprocess import PostContext, postprocess
from .prefilter import PrefilterOptions, skip_reason
from .prompt import PromptBudget, build_prompt, restore_trailing_space
from .templates import FimTemplate, template_for

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

    def to_json(self) -> dict[str, object]:
        """The JSON form of ``pilotfish complete --json`` and ``pilotfish.explainCompletion``."""
        return {
            "id": self.id,
            "completion": self.text,
            "source": self.source,
            "skipped": self.skipped,
            "snippets": [s.to_json() for s in self.snippets],
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
            "model": self.model,
            "backend": self.backend,
            "adapter": self.adapter,
            "prompt_tokens": self.prompt_tokens,
            "new_tokens": self.new_tokens,
            "reused_tokens": self.reused_tokens,
            "stop_reason": self.stop_reason,
        }


@dataclass(frozen=True)
class _Shown:
    prefix: str
    suffix: str
    text: str


class CompletionEngine:
    """Turns completion requests into suggestions with one loaded generator."""

    def __init__(
        self,
        generator: Generator,
        settings: CompletionSettings,
        retrieve: RetrieveFn | None = None,
        *,
        cache_size: int = 256,
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
        self._cache: OrderedDict[tuple[object, ...], str] = OrderedDict()
        self._cache_size = cache_size
        self._shown: dict[str, _Shown] = {}
        self._recent: OrderedDict[str, Completion] = OrderedDict()
        self._lock = threading.Lock()
        self.latencies_ms: deque[float] = deque(maxlen=200)
        self.counts = {"requests": 0, "model": 0, "cache": 0, "typing-through": 0, "skipped": 0}

    def complete(
        self, request: CompletionRequest, cancel: threading.Event | None = None
    ) -> Completion:
        """Run all stages for ``request``; ``cancel`` stops the model mid-decode."""
        cancel = cancel or threading.Event()
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
                Completion(id=request_id, text="", source="none", skipped=reason, timings=timings),
                request,
                ctx,
                started,
            )

        through = self._typing_through(request.document_key, ctx)
        if through is not None:
            lap("typing_through", t)
            return self._finish(
                Completion(
                    id=request_id,
                    text=through,
                    source="typing-through",
                    timings=timings,
                    **self._model_fields(),
                ),
                request,
                ctx,
                started,
            )

        snippets: Sequence[Snippet] = ()
        if self.retrieve is not None and self.settings.retrieval_tokens > 0:
            try:
                snippets = self.retrieve(ctx, self.settings.retrieval_tokens)
            except Exception:  # retrieval must never cost the user a completion
                log.exception("retrieval failed; completing with in-file context only")
        t = lap("retrieval", t)

        budget = PromptBudget(
            infile_tokens=self.settings.context_tokens,
            retrieval_tokens=self.settings.retrieval_tokens,
        )
        prompt = build_prompt(ctx, self.template, self.generator.count_tokens, budget, snippets)
        t = lap("prompt", t)

        multiline = wants_multiline(ctx)
        max_lines = self.settings.max_lines + 1 if multiline else 1
        key = (prompt.text, self.generator.adapter, self.settings.max_tokens, max_lines)
        with self._lock:
            raw = self._cache.get(key)
            if raw is not None:
                self._cache.move_to_end(key)
        t = lap("cache", t)

        generation = None
        if raw is None:
            generation = self.generator.generate(
                GenerationRequest(
                    prompt=prompt.text,
                    max_tokens=self.settings.max_tokens,
                    stop=self.template.stop,
                    max_lines=max_lines,
                    temperature=self.settings.temperature,
                ),
                cancel,
            )
            timings["prefill"] = generation.prefill_ms
            timings["decode"] = generation.decode_ms
            t = time.perf_counter()
            if generation.stop_reason == "cancelled":
                return self._finish(
                    Completion(
                        id=request_id,
                        text="",
                        source="none",
                        skipped="cancelled",
                        snippets=prompt.snippets,
                        timings=timings,
                        **self._model_fields(),
                    ),
                    request,
                    ctx,
                    started,
                )
            raw = generation.text
            with self._lock:
                self._cache[key] = raw
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)

        post = PostContext(ctx=ctx, multiline=multiline, max_lines=self.settings.max_lines)
        text = postprocess(restore_trailing_space(raw, prompt.trimmed), post)
        lap("postprocess", t)
        return self._finish(
            Completion(
                id=request_id,
                text=text or "",
                source="model" if generation else "cache",
                skipped=None if text else "postprocess rejected the suggestion",
                snippets=prompt.snippets,
                timings=timings,
                prompt_tokens=generation.prompt_tokens if generation else 0,
                new_tokens=generation.new_tokens if generation else 0,
                reused_tokens=generation.reused_tokens if generation else 0,
                stop_reason=generation.stop_reason if generation else "cache",
                **self._model_fields(),
            ),
            request,
            ctx,
            started,
        )

    def _model_fields(self) -> dict[str, str | None]:
        return {
            "model": self.generator.model_id,
            "backend": self.generator.backend,
            "adapter": self.generator.adapter,
        }

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
            self.counts["skipped" if completion.source == "none" else completion.source] += 1
            if completion.source == "model":
                self.latencies_ms.append(total)
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
        """Counts, cache hit rate and recent latency percentiles."""
        with self._lock:
            lat = sorted(self.latencies_ms)
            counts = dict(self.counts)
        served = counts["model"] + counts["cache"] + counts["typing-through"]
        return {
            **counts,
            "cacheHitRate": round((counts["cache"] + counts["typing-through"]) / served, 3)
            if served
            else 0.0,
            "p50Ms": round(lat[len(lat) // 2], 1) if lat else None,
            "p95Ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.95))], 1) if lat else None,
        }
