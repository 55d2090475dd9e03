"""llama.cpp backend (llama-cpp-python): the fast CPU path, serving the GGUF directly."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ...code_index.embed import usable_cores as cpu_count
from .cpu_load import OtherLoad, threads_for
from .generate import Generation, GenerationRequest, StopScanner, common_prefix_length
from .lookup import DraftPolicy, propose

log = logging.getLogger(__name__)

ADAPTER_GGUF = "adapter.gguf"
PREFILL_CHUNK = 128
"""Prompt tokens evaluated between two checks for cancellation."""
MIN_TAIL_REUSE = 16
"""Shorter common tails are evaluated again: moving them saves less than it risks."""
TAIL_REFRESH = 32
"""Tokens at the start of a moved tail evaluated again anyway (see ``LlamaCppGenerator``)."""
MAX_STALE_TOKENS = 64
"""Tokens inserted or removed before a moved tail before it is evaluated again in full."""

_MAIN_SEQ = 0
_PARKED_SEQ = 1
"""The KV sequence that holds a reused prompt tail while the tokens before it are evaluated."""


def llamacpp_available() -> bool:
    """Whether llama-cpp-python is installed."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


EXTRA_BUFFERS_ENV = "PILOTFISH_LLAMA_EXTRA_BUFFERS"
"""``1`` / ``0`` forces llama.cpp's extra weight buffer types (AMX, repacked) on or off."""

_PARAMS_LOCK = threading.Lock()


def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU reports Intel AMX (Linux; ``False`` where that cannot be read)."""
    try:
        with cpuinfo.open(encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    return False


def extra_buffers_enabled() -> bool:
    """Whether llama.cpp may move weights into its extra buffer types (AMX, repacked).

    Not on CPUs with AMX: llama.cpp's AMX matrix multiply segfaulted on the first decode of the
    default Q4_K_M model (seen on a Xeon with AMX here, 2026-12-07; upstream
    ggml-org/llama.cpp#20824, open). Without extra buffers the weights stay in the plain CPU
    buffer and the AVX-512 kernels run them. ``PILOTFISH_LLAMA_EXTRA_BUFFERS=1``/``0`` overrides.
    """
    forced = os.environ.get(EXTRA_BUFFERS_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return not cpu_has_amx()


@contextlib.contextmanager
def model_params(*, extra_buffers: bool) -> Iterator[None]:
    """While loading a ``llama_cpp.Llama``: its model parameters with ``use_extra_bufts`` set.

    llama-cpp-python (0.3.x) takes its parameters from ``llama_model_default_params()`` and has
    no argument for this one, so the function is wrapped for the duration of the load (a lock
    keeps two loads from interleaving).
    """
    import llama_cpp.llama_cpp as lib

    with _PARAMS_LOCK:
        default = lib.llama_model_default_params

        def params() -> Any:
            found = default()
            found.use_extra_bufts = extra_buffers
            return found

        lib.llama_model_default_params = params
        try:
            yield
        finally:
            lib.llama_model_default_params = default


def open_llama(model_path: Path | str, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(model_path, **kwargs)``, with extra buffers only where they are safe.

    Every load of a GGUF in this project goes through here (server, benchmarks, tests).
    """
    from llama_cpp import Llama

    with model_params(extra_buffers=extra_buffers_enabled()):
        return Llama(model_path=str(model_path), **kwargs)


def default_threads() -> int:
    """Threads for ``threads = 0`` before anything is known: leave a core to everything else.

    llama.cpp's worker threads spin at barriers, so one more thread than free cores collapses
    its speed. Measured on this project's 2-core machine (BENCHMARKS.md, "Completion engine"):
    idle, 2 threads prefilled ~1.6x faster than 1; with other work running (load average
    3.2-3.6, 1 and 2 threads alternating on the same 757-token prompt) 2 threads took 3.3x the
    wall time and 3.4x the CPU time of 1, and decoded at 9-15 tok/s against 39-44. From the
    second request on, an automatic count follows the other processes' load (cpu_load.py).
    With more cores, half the logical CPUs approximates the physical cores llama.cpp
    recommends.
    """
    return threads_for(cpu_count(), None)


@dataclass(frozen=True, kw_only=True)
class KvPlan:
    """How a new prompt's KV cache is assembled from the previous prompt's.

    The new prompt is ``head + middle + tail + last``: ``head`` tokens are the common prefix,
    kept in place; ``tail`` tokens end both prompts (the text after the cursor, in a FIM
    prompt) and are moved by ``shift`` positions from ``tail_at``; the middle and the last
    token are evaluated.
    """

    head: int
    tail: int = 0
    tail_at: int = 0
    shift: int = 0
    recompute_tail: bool = False
    """Evaluate the tail again while the moved one waits; the moved one stays if cancelled."""

    @property
    def reused(self) -> int:
        """Prompt tokens served from the cache."""
        return self.head + self.tail


def plan_reuse(
    cached: Sequence[int],
    ids: Sequence[int],
    *,
    min_tail: int = MIN_TAIL_REUSE,
    refresh: int = 0,
) -> KvPlan:
    """Plan the reuse of ``cached`` (the previous prompt's evaluated tokens) for ``ids``.

    The last prompt token is never reused: its logits start the decoding. A common tail is
    reused only if both prompts end with it (``cached`` must be the previous prompt alone,
    without generated tokens) and it is at least ``min_tail`` tokens long. The first
    ``refresh`` tokens of the common tail are evaluated again rather than moved.
    """
    head = min(common_prefix_length(list(cached), list(ids)), len(ids) - 1)
    if min_tail <= 0 or not cached:
        return KvPlan(head=head)
    # The common ending, not reaching into the common prefix of either prompt.
    limit = min(len(cached), len(ids)) - head
    same = 0
    while same < limit and cached[-1 - same] == ids[-1 - same]:
        same += 1
    tail = same - 1 - refresh  # the last token is evaluated again
    if tail < min_tail:
        return KvPlan(head=head)
    return KvPlan(
        head=head, tail=tail, tail_at=len(cached) - same + refresh, shift=len(ids) - len(cached)
    )


@dataclass(frozen=True, kw_only=True)
class Staleness:
    """Which cached KV was computed for other text before it than the cache now holds."""

    at: int | None = None
    """First stale position (where a moved tail starts); ``None`` when all of it is exact."""
    changed: int = 0
    """Tokens inserted or removed before ``at`` since the tail was last evaluated in place."""


def bound_staleness(
    plan: KvPlan, stale: Staleness, *, refresh: int, limit: int = MAX_STALE_TOKENS
) -> tuple[KvPlan, Staleness]:
    """The plan to run given the cache's staleness, and the staleness after running it.

    A moved tail's KV still reflects the text that stood before it when it was evaluated;
    once more than ``limit`` tokens have changed there, the tail is evaluated again. The
    staleness returned is the one if the tail ends up moved (a recompute that was cancelled);
    a completed recompute leaves nothing stale.
    """
    changed = 0
    if plan.tail:
        old_gap = plan.tail_at - refresh - plan.head  # tokens removed before the tail
        changed = old_gap + (old_gap + plan.shift)  # ... and inserted
    reuses_in_place = stale.at is not None and plan.head > stale.at
    moves_stale = stale.at is not None and plan.tail > 0 and plan.tail_at + plan.tail > stale.at
    if not plan.tail and not reuses_in_place:
        return plan, Staleness()
    total = changed + (stale.changed if reuses_in_place or moves_stale else 0)
    if total > limit and reuses_in_place:
        assert stale.at is not None
        return KvPlan(head=min(plan.head, stale.at)), Staleness()  # evaluate from there on
    starts = [plan.tail_at + plan.shift] if plan.tail else []
    if reuses_in_place and stale.at is not None:
        starts.append(stale.at)
    return replace(plan, recompute_tail=total > limit), Staleness(at=min(starts), changed=total)


@dataclass(kw_only=True)
class LookupStats:
    """Prompt lookup in one request: drafts verified, their tokens, and those accepted."""

    steps: int = 0
    drafted: int = 0
    accepted: int = 0


class LlamaCppGenerator:
    """A GGUF model served by llama.cpp; its KV cache reuses what consecutive prompts share.

    Typing appends to the prompt's prefix, so the common prefix is reused as is. In a FIM
    prompt the text after the cursor (up to 384 tokens) comes after the prefix, and typing in
    the middle of a file would evaluate it again on every keystroke. With ``reuse_tail`` its KV
    is moved to its new positions instead, as llama.cpp's server does with ``--cache-reuse``.
    That KV was computed for the text before it at the time, so it is an approximation:
    measured on mid-file typing (BENCHMARKS.md), moving all of it changed the suggestion,
    while evaluating its first ``tail_refresh`` tokens again (the lines right after the cursor,
    which attend most to what was just typed) gave the exact suggestion. After
    ``MAX_STALE_TOKENS`` typed or deleted tokens the whole tail is evaluated again, while
    the moved one waits: a keystroke that cancels that keeps the moved one for the next.
    """

    backend = "llamacpp"

    def __init__(
        self,
        gguf: Path,
        *,
        model_id: str,
        threads: int = 0,
        n_ctx: int = 4096,
        reuse_tail: bool = True,
        tail_refresh: int = TAIL_REFRESH,
        max_stale: int = MAX_STALE_TOKENS,
        prompt_lookup: bool = False,
        draft_policy: DraftPolicy | None = None,
    ) -> None:
        self.device = "cpu"
        self.model_id = model_id
        self._gguf = gguf
        self._threads = threads or default_threads()
        # threads = 0: the count follows how busy the other processes keep the CPUs.
        self._cpus = cpu_count()
        self._load_meter = OtherLoad() if threads == 0 and self._cpus <= 4 else None
        self._n_ctx = n_ctx
        self._adapter: str | None = None
        self._lock = threading.Lock()
        self._reuse_tail = reuse_tail
        self._tail_refresh = tail_refresh
        self._max_stale = max_stale
        self._prompt_len = 0
        """Tokens of the last prompt held in the KV cache (generated tokens follow them)."""
        self._stale = Staleness()
        self.draft_policy = (draft_policy or DraftPolicy()) if prompt_lookup else None
        """Prompt lookup's policy for greedy requests (counts start afresh each); ``None``: off."""
        self.lookup_stats = LookupStats()
        """What prompt lookup drafted and saw accepted in the last greedy request."""
        self._llm: Any = self._load(None)
        if self._load_meter is not None:
            self._load_meter.sample()  # from model load on: the first request has a measure

    def _load(self, lora: Path | None) -> Any:
        llm = open_llama(
            self._gguf,
            n_ctx=self._n_ctx,
            n_threads=self._threads,
            n_threads_batch=self._threads,
            lora_path=str(lora) if lora else None,
            verbose=False,
        )
        if self._reuse_tail:
            _enable_parking(llm)
        self._prompt_len = 0
        self._stale = Staleness()
        return llm

    @property
    def adapter(self) -> str | None:
        """Name of the adapter in use, if any."""
        return self._adapter

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes."""
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    def has_token(self, text: str) -> bool:
        """Whether ``text`` is one token of the vocabulary."""
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=True)) == 1

    def reset(self) -> None:
        """Forget the KV cache: the next request pays its whole prompt (a cold start)."""
        with self._lock:
            self._llm.reset()
            self._prompt_len = 0
            self._stale = Staleness()

    def set_adapter(self, adapter: Path | None) -> None:
        """Reload with the adapter's GGUF LoRA file (``adapter.gguf`` in the adapter folder)."""
        lora = None
        if adapter is not None:
            lora = adapter / ADAPTER_GGUF
            if not lora.is_file():
                raise FileNotFoundError(
                    f"adapter {adapter} has no {ADAPTER_GGUF} for llama.cpp; "
                    "re-export it with `pilotfish adapters use` or serve with the transformers "
                    "backend"
                )
        with self._lock:
            self._llm = self._load(lora)
            self._adapter = adapter.name if adapter else None

    def _plan(self, ids: list[int]) -> tuple[KvPlan, Staleness]:
        """What to reuse for ``ids``, and the cache's staleness once it is done."""
        llm = self._llm
        # What the cache holds of the last prompt: all of it, or what a cancelled prefill
        # evaluated; tokens generated after it never end a new prompt.
        cached = list(llm.input_ids[: min(llm.n_tokens, self._prompt_len)])
        if not self._reuse_tail:
            return KvPlan(head=min(common_prefix_length(cached, ids), len(ids) - 1)), Staleness()
        plan = plan_reuse(cached, ids, refresh=self._tail_refresh)
        return bound_staleness(plan, self._stale, refresh=self._tail_refresh, limit=self._max_stale)

    def _prefill(
        self, ids: list[int], plan: KvPlan, cancel: threading.Event
    ) -> Literal["fresh", "moved", "stopped"]:
        """Evaluate the prompt tokens the cache lacks (all but the last).

        Returns whether the cache now holds the prompt (but its last token) with all of its KV
        computed for it (``fresh``), with a moved tail (``moved``), or only part of it.

        ``Llama.generate`` evaluates the whole prompt before its first token, so a request
        could not be cancelled during a long prefill, and a newer keystroke waited for it.
        In chunks, a cancel takes effect within one chunk, and what was evaluated stays in the
        KV cache: the next request, which shares the prefix, starts from there. With a moved
        tail the first chunk is always evaluated: it is short (what was typed and the refreshed
        tokens), and stopping before it would drop the tail, which the next keystroke's prompt
        ends with too.
        """
        llm = self._llm
        end = len(ids) - 1 - plan.tail  # evaluated: ids[plan.head:end]
        if plan.tail:
            _park_tail(llm, plan)
        else:
            # Llama.eval drops the cache past n_tokens first; an empty prompt never reaches it.
            llm.n_tokens = plan.head
            _memory_call(llm, "llama_memory_seq_rm", -1, plan.head, -1)
        self._prompt_len = plan.head
        for at in range(plan.head, end, PREFILL_CHUNK):
            if cancel.is_set() and not (plan.tail and at == plan.head):
                break
            _decode(llm, ids[at : min(at + PREFILL_CHUNK, end)])
            self._prompt_len = llm.n_tokens
        if llm.n_tokens < end:
            if plan.tail:
                _memory_call(llm, "llama_memory_seq_rm", _PARKED_SEQ, -1, -1)
            return "stopped"
        if plan.recompute_tail:
            fresh = ids[end : end + plan.tail]
            for at in range(0, len(fresh), PREFILL_CHUNK):
                if cancel.is_set():
                    break
                # The moved tail waits in its own sequence at the same positions.
                _decode(llm, fresh[at : at + PREFILL_CHUNK])
            if llm.n_tokens == end + plan.tail:
                _memory_call(llm, "llama_memory_seq_rm", _PARKED_SEQ, -1, -1)
                self._prompt_len = llm.n_tokens
                return "fresh"
            # Stopped: the moved tail takes the place of what was evaluated of the new one.
            _memory_call(llm, "llama_memory_seq_rm", _MAIN_SEQ, end, -1)
            llm.n_tokens = end
        if plan.tail:
            _unpark_tail(llm, ids[end : end + plan.tail])
        self._prompt_len = llm.n_tokens
        return "moved" if plan.tail else "fresh"

    def _adapt_threads(self, llm: Any) -> None:
        """All cores while the other processes leave them idle, one fewer otherwise."""
        if self._load_meter is None:
            return
        wanted = threads_for(self._cpus, self._load_meter.sample())
        if wanted != self._threads:
            import llama_cpp

            llama_cpp.llama_set_n_threads(llm._ctx.ctx, wanted, wanted)
            log.debug("llama.cpp threads: %d -> %d", self._threads, wanted)
            self._threads = wanted

    @property
    def threads(self) -> int:
        """Threads llama.cpp computes with now."""
        return self._threads

    def generate(self, request: GenerationRequest, cancel: threading.Event) -> Generation:
        """Greedy decoding (with prompt lookup if on); only uncached prompt tokens are evaluated."""
        with self._lock:
            llm = self._llm
            self._adapt_threads(llm)
            ids = llm.tokenize(request.prompt.encode(), add_bos=False, special=True)
            budget = self._n_ctx - request.max_tokens - 1
            if len(ids) > budget:
                ids = ids[-budget:]
            plan, stale = self._plan(ids)
            self.lookup_stats = LookupStats()
            start = time.perf_counter()
            prefilled = self._prefill(ids, plan, cancel)
            reused = plan.head if prefilled == "fresh" else plan.reused
            if prefilled == "moved":
                self._stale = stale
            elif prefilled == "fresh" or self._stale.at is None or plan.head <= self._stale.at:
                self._stale = Staleness()  # evaluated from the exact prefix on
            if prefilled == "stopped" or cancel.is_set():
                if prefilled == "moved":
                    # Keep the moved tail for the next prompt, which ends the same way.
                    _decode(llm, ids[-1:])
                    self._prompt_len = len(ids)
                return Generation(
                    text="",
                    prompt_tokens=len(ids),
                    new_tokens=0,
                    reused_tokens=reused,
                    prefill_ms=(time.perf_counter() - start) * 1000,
                    stop_reason="cancelled",
                )
            # The last prompt token is always evaluated again here: its logits start the
            # decoding (the logits held now may belong to a generated token of the last request).
            self._prompt_len = len(ids)
            scanner = StopScanner(request.stop, request.max_lines)
            eos = llm.token_eos()
            pending = b""
            new_tokens = 0
            reason = "length"
            prefill_ms = 0.0
            decode_start = start
            tokens = (
                self._greedy(llm, ids, request.max_tokens)
                if request.temperature <= 0
                else llm.generate(
                    ids,
                    temp=request.temperature,
                    top_k=40,
                    top_p=1.0,
                    min_p=0.0,
                    repeat_penalty=1.0,
                )
            )
            for token in tokens:
                if new_tokens == 0:
                    prefill_ms = (time.perf_counter() - start) * 1000
                    decode_start = time.perf_counter()
                new_tokens += 1
                if token == eos:
                    reason = "stop"
                    break
                pending += llm.detokenize([token], special=True)
                try:
                    piece = pending.decode("utf-8")
                except UnicodeDecodeError:
                    piece = None
                if piece is not None:
                    pending = b""
                    stop = scanner.feed(piece)
                    if stop:
                        reason = stop
                        break
                if cancel.is_set():
                    reason = "cancelled"
                    break
                if new_tokens >= request.max_tokens:
                    break
            decode_ms = (time.perf_counter() - decode_start) * 1000
            stats = self.lookup_stats
            if stats.steps:
                log.debug(
                    "prompt lookup: %d drafts, %d of %d tokens accepted, %d new tokens",
                    stats.steps,
                    stats.accepted,
                    stats.drafted,
                    new_tokens,
                )
        return Generation(
            text=scanner.text,
            prompt_tokens=len(ids),
            new_tokens=new_tokens,
            reused_tokens=reused,
            prefill_ms=prefill_ms,
            decode_ms=decode_ms,
            stop_reason=reason,  # type: ignore[arg-type]
        )

    def _greedy(self, llm: Any, ids: list[int], max_tokens: int) -> Iterator[int]:
        """Greedy tokens after ``ids``, several per model call where prompt lookup pays.

        The cache holds ``ids`` but its last token. Each step evaluates the last chosen token,
        followed by a draft when the policy wants one, with logits at every position: the
        draft's tokens are accepted while they equal the model's choice after the token
        before them, and the model's choice after the last accepted one comes free. The KV
        cells of rejected draft tokens are dropped at once, so ``n_tokens`` and ``input_ids``
        describe the cache after every step, as the next request's plan reads them. A
        consumer that stops early leaves accepted but unread tokens in the cache; the next
        plan reuses only the prompt, so they do no harm. Without a draft a step is the plain
        one-token step ``Llama.generate`` took (same tokens, same cost). With one, the output
        is the plain one but for near-ties: llama.cpp's CPU kernels compute a batch a little
        differently from one token (BENCHMARKS.md, "Prompt-lookup decoding").
        """
        history = list(ids)
        policy = replace(self.draft_policy or DraftPolicy(k_max=0))  # fresh counts
        stats = self.lookup_stats
        _memory_call(llm, "llama_memory_seq_rm", _MAIN_SEQ, llm.n_tokens, -1)
        emitted = 0
        while emitted < max_tokens:
            room = min(max_tokens - emitted - 1, self._n_ctx - llm.n_tokens - 2, llm.n_batch - 1)
            draft = propose(history, min(policy.k_max, room)) if policy.k_max > 0 else []
            verify = draft if policy.wants(draft) else []
            chosen = _evaluate(llm, [history[-1], *verify])
            accepted = 0
            while accepted < len(verify) and verify[accepted] == chosen[accepted]:
                accepted += 1
            if verify:
                policy.record(len(verify), accepted)
                stats.steps += 1
                stats.drafted += len(verify)
                stats.accepted += accepted
                # Cells past the last accepted token belong to rejected drafts.
                llm.n_tokens -= len(verify) - accepted
                _memory_call(llm, "llama_memory_seq_rm", _MAIN_SEQ, llm.n_tokens, -1)
            else:
                policy.observe(draft, chosen[0])
            for token in [*verify[:accepted], chosen[accepted]]:
                history.append(token)
                emitted += 1
                yield token


# llama.cpp accepts a batch for a sequence only at the position after the sequence's last one
# ("inconsistent sequence positions"), so tokens cannot be inserted before a tail kept in the
# same sequence. The tail is parked in a second sequence of the same (unified) cache while
# the tokens before it are evaluated, then both are joined again; parking copies no data.


def _enable_parking(llm: Any) -> None:
    """Recreate ``llm``'s context with a second KV sequence in one unified cache."""
    import llama_cpp
    from llama_cpp import _internals

    params = llm.context_params
    params.n_seq_max = 2
    params.kv_unified = True  # one cache for both: parking moves metadata, not tensors
    old = llm._ctx
    llm._ctx = llm._stack.enter_context(
        contextlib.closing(_internals.LlamaContext(model=llm._model, params=params, verbose=False))
    )
    old.close()
    if llm._lora_adapter is not None:  # Llama set the adapter on the context it made
        import ctypes

        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(llm._lora_adapter)
        scales = (ctypes.c_float * 1)(llm.lora_scale)
        if llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, adapters, 1, scales):
            raise RuntimeError("llama.cpp could not set the LoRA adapter on the new context")
    if not _memory_call(llm, "llama_memory_can_shift"):
        raise RuntimeError("this model's KV cache cannot shift positions")


def _memory_call(llm: Any, name: str, *args: int) -> Any:
    from llama_cpp import llama_cpp

    return getattr(llama_cpp, name)(llama_cpp.llama_get_memory(llm._ctx.ctx), *args)


def _park_tail(llm: Any, plan: KvPlan) -> None:
    """Move the reused tail to the parking sequence at its new positions; cut the rest."""
    rm = "llama_memory_seq_rm"
    _memory_call(llm, rm, _PARKED_SEQ, -1, -1)
    _memory_call(
        llm, "llama_memory_seq_cp", _MAIN_SEQ, _PARKED_SEQ, plan.tail_at, plan.tail_at + plan.tail
    )
    _memory_call(llm, rm, _MAIN_SEQ, plan.head, -1)  # the tail's cells stay, parked
    _memory_call(llm, "llama_memory_seq_add", _PARKED_SEQ, -1, -1, plan.shift)
    llm.n_tokens = plan.head


def _unpark_tail(llm: Any, tail: list[int]) -> None:
    """Join the parked tail to the main sequence, right after what was evaluated."""
    _memory_call(llm, "llama_memory_seq_cp", _PARKED_SEQ, _MAIN_SEQ, -1, -1)
    _memory_call(llm, "llama_memory_seq_rm", _PARKED_SEQ, -1, -1)
    llm.input_ids[llm.n_tokens : llm.n_tokens + len(tail)] = tail
    llm.n_tokens += len(tail)


def _evaluate(llm: Any, tokens: list[int]) -> list[int]:
    """Evaluate ``tokens`` after the cache; the model's greedy choice after each of them."""
    import numpy as np

    at = llm.n_tokens
    llm._batch.set_batch(batch=tokens, n_past=at, logits_all=True)
    llm._ctx.decode(llm._batch)
    llm.input_ids[at : at + len(tokens)] = tokens
    llm.n_tokens += len(tokens)
    llm._requires_eval = False
    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(tokens), llm.n_vocab()))
    # The first of several equal logits, as llama.cpp's greedy sampler picks.
    return [int(i) for i in logits.argmax(axis=1)]


def _decode(llm: Any, tokens: list[int]) -> None:
    """``Llama.eval`` without its first step, which would drop the parked tail's cells too."""
    for at in range(0, len(tokens), llm.n_batch):
        batch = tokens[at : at + llm.n_batch]
        llm._batch.set_batch(batch=batch, n_past=llm.n_tokens, logits_all=False)
        llm._ctx.decode(llm._batch)
        llm.input_ids[llm.n_tokens : llm.n_tokens + len(batch)] = batch
        llm.n_tokens += len(batch)
    llm._requires_eval = False
