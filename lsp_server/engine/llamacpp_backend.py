"""llama.cpp backend (llama-cpp-python): the fast CPU path, serving the GGUF directly."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from .generate import Generation, GenerationRequest, StopScanner, common_prefix_length

log = logging.getLogger(__name__)

ADAPTER_GGUF = "adapter.gguf"
PREFILL_CHUNK = 128
"""Prompt tokens evaluated between two checks for cancellation."""


def llamacpp_available() -> bool:
    """Whether llama-cpp-python is installed."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def default_threads() -> int:
    """Threads for ``threads = 0``: leave a core to the editor and everything else.

    llama.cpp's worker threads spin at barriers, so one more thread than free cores collapses
    its speed. Measured on this project's 2-core machine under load (BENCHMARKS.md): a
    291-token prompt prefilled in 4.8-5.4 s with 1 thread and 15.8-19.3 s with 2. With more
    cores, half the logical CPUs approximates the physical cores llama.cpp recommends.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus - 1) if cpus <= 4 else cpus // 2


class LlamaCppGenerator:
    """A GGUF model served by llama.cpp; its own KV cache reuses the common prompt prefix."""

    backend = "llamacpp"

    def __init__(self, gguf: Path, *, model_id: str, threads: int = 0, n_ctx: int = 4096) -> None:
        self.device = "cpu"
        self.model_id = model_id
        self._gguf = gguf
        self._threads = threads or default_threads()
        self._n_ctx = n_ctx
        self._adapter: str | None = None
        self._lock = threading.Lock()
        self._llm: Any = self._load(None)

    def _load(self, lora: Path | None) -> Any:
        from llama_cpp import Llama

        return Llama(
            model_path=str(self._gguf),
            n_ctx=self._n_ctx,
            n_threads=self._threads,
            n_threads_batch=self._threads,
            lora_path=str(lora) if lora else None,
            verbose=False,
        )

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

    @staticmethod
    def _prefill(llm: Any, ids: list[int], reused: int, cancel: threading.Event) -> bool:
        """Evaluate the new prompt tokens (all but the last) in chunks; ``False`` if cancelled.

        ``Llama.generate`` evaluates the whole prompt before its first token, so a request
        could not be cancelled during a long prefill, and a newer keystroke waited for it.
        In chunks, a cancel takes effect within one chunk, and what was evaluated stays in the
        KV cache: the next request, which shares the prefix, starts from there.
        """
        llm.n_tokens = reused  # eval() drops the cache past this point first
        todo = ids[reused:-1]
        for at in range(0, len(todo), PREFILL_CHUNK):
            if cancel.is_set():
                return False
            llm.eval(todo[at : at + PREFILL_CHUNK])
        return not cancel.is_set()

    def generate(self, request: GenerationRequest, cancel: threading.Event) -> Generation:
        """Greedy decoding; llama.cpp re-evaluates only the prompt tokens that changed."""
        with self._lock:
            llm = self._llm
            ids = llm.tokenize(request.prompt.encode(), add_bos=False, special=True)
            budget = self._n_ctx - request.max_tokens - 1
            if len(ids) > budget:
                ids = ids[-budget:]
            # The last prompt token is always evaluated again: its logits start the decoding
            # (the logits held now may belong to a generated token of the last request).
            reused = min(common_prefix_length(list(llm._input_ids), ids), len(ids) - 1)
            start = time.perf_counter()
            if not self._prefill(llm, ids, reused, cancel):
                return Generation(
                    text="",
                    prompt_tokens=len(ids),
                    new_tokens=0,
                    reused_tokens=reused,
                    prefill_ms=(time.perf_counter() - start) * 1000,
                    stop_reason="cancelled",
                )
            scanner = StopScanner(request.stop, request.max_lines)
            eos = llm.token_eos()
            pending = b""
            new_tokens = 0
            reason = "length"
            prefill_ms = 0.0
            decode_start = start
            for token in llm.generate(
                ids,
                temp=request.temperature,
                top_k=1 if request.temperature <= 0 else 40,
                top_p=1.0,
                min_p=0.0,
                repeat_penalty=1.0,
            ):
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
        return Generation(
            text=scanner.text,
            prompt_tokens=len(ids),
            new_tokens=new_tokens,
            reused_tokens=reused,
            prefill_ms=prefill_ms,
            decode_ms=decode_ms,
            stop_reason=reason,  # type: ignore[arg-type]
        )
