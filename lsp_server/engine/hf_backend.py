"""Transformers backend: greedy decoding with a reused KV cache and mid-decode cancellation.

On CUDA the KV cache is a preallocated ``StaticCache`` and the one-token decode step is compiled
with CUDA graphs (``torch.compile(mode="reduce-overhead")``): at batch 1 a small model's decode
is bound by kernel launches, which a captured graph replays at once. Prefill stays eager (its
chunks vary in length, and each new shape would recompile).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, StaticCache

from .device import pick_device
from .generate import Generation, GenerationRequest, StopScanner, common_prefix_length
from .lookup import DraftPolicy, propose

log = logging.getLogger(__name__)

PREFILL_CHUNK = 128
"""Prompt tokens evaluated between two checks for cancellation."""


def quantize_for_cpu(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 on every Linear except ``down_proj``, which FIM output needs in float.

    Measured (shared/STACK.md): int8 on every Linear broke FIM output; sparing ``down_proj``
    kept it correct at 2.4x the fp32 speed.
    """
    from torch.ao.quantization import quantize_dynamic

    names = {
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not name.endswith("down_proj")
    }
    return quantize_dynamic(model, names, dtype=torch.qint8)


def crop_to(cache: DynamicCache | StaticCache, length: int) -> None:
    """Keep the first ``length`` positions of a KV cache (dynamic or static).

    A negative argument to ``crop`` means "remove that many" in every transformers 5 release;
    a positive one meant "keep that many" before 5.2x and is refused since (static caches
    refuse it too).
    """
    extra = int(cache.get_seq_length()) - length
    if extra > 0:
        cache.crop(-extra)


class TransformersGenerator:
    """A causal LM loaded with transformers (safetensors only, never remote code)."""

    backend = "transformers"

    def __init__(
        self,
        model_dir: Path,
        *,
        model_id: str,
        device: str = "auto",
        threads: int = 0,
        int8: bool = True,
        n_ctx: int = 4096,
        static_cache: bool | None = None,
        compile_decode: bool | None = None,
        draft_policy: DraftPolicy | None = None,
    ) -> None:
        self.device = pick_device(device)
        on_gpu = self.device == "cuda"
        self._n_ctx = n_ctx
        self._static = on_gpu if static_cache is None else static_cache
        # CUDA graphs need fixed addresses: only with the preallocated static cache.
        self._compile = self._static and (on_gpu if compile_decode is None else compile_decode)
        self.model_id = model_id
        if threads > 0:
            torch.set_num_threads(threads)
        self._model_dir = model_dir
        self._int8 = self.device == "cpu" and int8
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(model_dir))
        self.model: Any = self._load(None)
        self._step: Any = self._decode_step(self.model)
        self._adapter: str | None = None
        self._cached_ids: list[int] = []
        self._cache: DynamicCache | StaticCache | None = None
        self._lock = threading.Lock()
        self.draft_policy = draft_policy
        """Prompt lookup for greedy requests on eager decode steps; ``None``: off. The
        compiled (CUDA graph) step has one token's shape, so drafts are not verified there;
        on CPU, dynamic int8 scales activations per batch, so a verified draft can change
        the output (exact in float: tests/engine/test_engine.py)."""
        self.drafts = (0, 0)
        """Draft tokens verified and accepted in the last request."""

    @property
    def adapter(self) -> str | None:
        """Name of the adapter in use, if any."""
        return self._adapter

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def has_token(self, text: str) -> bool:
        """Whether ``text`` is one token of the vocabulary."""
        return text in self.tokenizer.get_vocab()

    def _load(self, adapter: Path | None) -> Any:
        """The base model from disk, with the adapter applied, placed and quantized."""
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(self._model_dir), dtype=dtype, use_safetensors=True, trust_remote_code=False
        )
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter))
            if self._int8:
                # Dynamic int8 needs plain Linear layers: fold the LoRA weights in first.
                model = model.merge_and_unload()
        model = model.to(self.device).eval()
        return quantize_for_cpu(model) if self._int8 else model

    def _decode_step(self, model: Any) -> Any:
        """The function that feeds one token: compiled with CUDA graphs, or the model itself."""
        if not self._compile:
            return model
        return torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)

    def _new_cache(self) -> DynamicCache | StaticCache:
        if self._static:
            return StaticCache(config=self.model.config, max_cache_len=self._n_ctx)
        return DynamicCache()

    def reset(self) -> None:
        """Forget the KV cache: the next request pays its whole prompt (a cold start)."""
        with self._lock:
            self._cached_ids, self._cache = [], None

    def set_adapter(self, adapter: Path | None) -> None:
        """Serve with a PEFT LoRA adapter, or the base model for ``None``.

        The base is reloaded from disk rather than kept twice in memory (about 2.5 s).
        """
        model = self._load(adapter)
        with self._lock:
            self.model = model
            self._step = self._decode_step(model)
            self._cached_ids, self._cache = [], None
            self._adapter = adapter.name if adapter else None

    @torch.inference_mode()
    def generate(self, request: GenerationRequest, cancel: threading.Event) -> Generation:
        """Greedy (or sampled) decoding that reuses the longest cached prompt prefix."""
        with self._lock:
            return self._generate(request, cancel)

    def _generate(self, request: GenerationRequest, cancel: threading.Event) -> Generation:
        ids: list[int] = self.tokenizer.encode(request.prompt, add_special_tokens=False)
        # The context holds the prompt and what is generated; at most half of it is kept for
        # new tokens, and a longer prompt keeps its end (the cursor's side).
        room = self._n_ctx - min(request.max_tokens, self._n_ctx // 2) - 1
        if len(ids) > room:
            ids = ids[-room:]
        start = time.perf_counter()
        reused = common_prefix_length(self._cached_ids, ids)
        reused = min(reused, len(ids) - 1)  # at least one token must be fed to get logits
        if self._cache is not None and reused > 0:
            cache = self._cache
            crop_to(cache, reused)
        elif self._cache is not None and self._static:
            cache, reused = self._cache, 0  # preallocated: emptied, not reallocated
            crop_to(cache, 0)
        else:
            cache, reused = self._new_cache(), 0
        self._cache, self._cached_ids = None, []  # invalid until this request completes

        # Prefill in chunks so that a cancel takes effect within one chunk; what was evaluated
        # stays cached for the next request, which shares the prefix.
        todo = ids[reused:]
        out: Any = None
        for at in range(0, len(todo), PREFILL_CHUNK):
            if cancel.is_set():
                self._cache, self._cached_ids = cache, ids[: int(cache.get_seq_length())]
                return Generation(
                    text="",
                    prompt_tokens=len(ids),
                    new_tokens=0,
                    reused_tokens=reused,
                    prefill_ms=(time.perf_counter() - start) * 1000,
                    stop_reason="cancelled",
                )
            feed = torch.tensor([todo[at : at + PREFILL_CHUNK]], device=self.device)
            out = self.model(input_ids=feed, past_key_values=cache, use_cache=True)
        prefill_ms = (time.perf_counter() - start) * 1000
        scanner = StopScanner(request.stop, request.max_lines)
        all_ids = list(ids)
        new_ids: list[int] = []
        reason = "length"
        decode_start = time.perf_counter()
        pending: list[int] = []
        limit = min(request.max_tokens, self._n_ctx - len(ids) - 1)
        policy = None
        if self.draft_policy is not None and request.temperature <= 0 and not self._compile:
            policy = replace(self.draft_policy)  # fresh counts
        self.drafts = (0, 0)
        proposed: list[int] = []
        queue = [int(self._pick(out.logits[0, -1], request.temperature))]
        # ``queue``: chosen tokens not yet fed to the model (the last one always; with a
        # verified draft, the accepted ones before it are in the cache already).
        while queue and len(new_ids) < limit:
            if cancel.is_set():
                reason = "cancelled"
                break
            token = queue.pop(0)
            new_ids.append(token)
            all_ids.append(token)
            pending.append(token)
            piece = self.tokenizer.decode(pending, skip_special_tokens=False)
            if "\ufffd" not in piece:  # wait for a complete UTF-8 character
                pending = []
                stop = scanner.feed(piece)
                if stop:
                    reason = stop
                    break
            if queue or len(new_ids) >= limit:
                continue
            draft: list[int] = []
            if policy is not None:
                proposed = propose(all_ids, min(policy.k_max, limit - len(new_ids) - 1))
                draft = proposed if policy.wants(proposed) else []
            if self._compile:
                torch.compiler.cudagraph_mark_step_begin()  # the last step's outputs are read
            step = self._step if not draft else self.model
            out = step(
                input_ids=torch.tensor([[token, *draft]], device=self.device),
                past_key_values=cache,
                use_cache=True,
            )
            if not draft:
                queue = [int(self._pick(out.logits[0, -1], request.temperature))]
                if policy is not None:
                    policy.observe(proposed, queue[0])
                continue
            chosen = [int(t) for t in torch.argmax(out.logits[0], dim=-1)]
            accepted = 0
            while accepted < len(draft) and draft[accepted] == chosen[accepted]:
                accepted += 1
            assert policy is not None
            policy.record(len(draft), accepted)
            self.drafts = (self.drafts[0] + len(draft), self.drafts[1] + accepted)
            crop_to(cache, len(all_ids) + accepted)  # the rejected drafts' positions go
            queue = [*draft[:accepted], chosen[accepted]]
        decode_ms = (time.perf_counter() - decode_start) * 1000
        # The cache holds the prompt and every generated token fed back (not the last one),
        # cancelled or not; accepted draft tokens not read yet are cut off.
        crop_to(cache, len(all_ids))
        self._cache = cache
        self._cached_ids = all_ids[: int(cache.get_seq_length())]
        return Generation(
            text=scanner.text,
            prompt_tokens=len(ids),
            new_tokens=len(new_ids),
            reused_tokens=reused,
            prefill_ms=prefill_ms,
            decode_ms=decode_ms,
            stop_reason=reason,  # type: ignore[arg-type]
        )

    @staticmethod
    def _pick(logits: torch.Tensor, temperature: float) -> int:
        if temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        return int(torch.multinomial(probs, 1))
