"""The FAISS vector index, rebuilt from SQLite's embeddings when missing, stale or corrupt."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import faiss  # type: ignore[import-untyped]
import numpy as np

from .store import Store

log = logging.getLogger(__name__)

FAISS_NAME = "vectors.faiss"
META_NAME = "vectors.json"


class VectorIndex:
    """A main FAISS index (exact, or HNSW above a size) plus a small exact delta for updates.

    Removed or replaced chunk ids go to a deleted set and are filtered out of results, so an
    update never waits for an HNSW rebuild.
    """

    def __init__(self, data_dir: Path, dim: int, model: str, exact_limit: int = 50_000) -> None:
        self.data_dir = data_dir
        self.dim = dim
        self.model = model
        self.exact_limit = exact_limit
        self._lock = threading.Lock()
        self._main = self._new_exact()
        self._delta = self._new_exact()
        self._deleted: set[int] = set()
        self.version = ""
        self.kind = "flat"

    def _new_exact(self):
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    @property
    def size(self) -> int:
        """Vectors searchable now."""
        return int(self._main.ntotal + self._delta.ntotal - len(self._deleted))

    def load_or_rebuild(self, store: Store) -> str:
        """Load the FAISS file if it matches SQLite, else rebuild it; returns what happened."""
        version = store.get_meta("vectors_version", "0") or "0"
        path, meta_path = self.data_dir / FAISS_NAME, self.data_dir / META_NAME
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("version") == version and meta.get("model") == self.model and (
                meta.get("dim") == self.dim
            ):
                index = faiss.read_index(str(path))
                if index.ntotal != meta.get("count") or index.d != self.dim:
                    raise ValueError("vector count does not match its metadata")
                with self._lock:
                    self._main, self._delta, self._deleted = index, self._new_exact(), set()
                    self.version, self.kind = version, meta.get("kind", "flat")
                return "loaded"
            reason = "stale"
        except FileNotFoundError:
            reason = "missing"
        except Exception as exc:  # a truncated or garbled file: rebuild from SQLite
            log.warning("vector index %s unusable (%s); rebuilding", path, exc)
            reason = "corrupt"
        self.rebuild(store)
        return f"rebuilt ({reason})"

    def rebuild(self, store: Store) -> None:
        """Build from every stored chunk vector and save it (write, then rename)."""
        version = store.get_meta("vectors_version", "0") or "0"
        ids, vectors = store.chunk_vectors(self.dim)
        self.build_from(ids, vectors, version)
        self.save(version)

    def build_from(self, ids: np.ndarray, vectors: np.ndarray, version: str = "") -> None:
        """Replace the searchable vectors (exact up to ``exact_limit``, else HNSW)."""
        if len(ids) > self.exact_limit:
            hnsw = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 40
            hnsw.hnsw.efSearch = 64
            index = faiss.IndexIDMap2(hnsw)
            kind = "hnsw"
        else:
            index = self._new_exact()
            kind = "flat"
        if len(ids):
            index.add_with_ids(vectors, ids)
        with self._lock:
            self._main, self._delta, self._deleted = index, self._new_exact(), set()
            self.version, self.kind = version, kind

    def save(self, version: str) -> None:
        """Persist the main index atomically (only when no unsaved delta is pending)."""
        with self._lock:
            if self._delta.ntotal or self._deleted:
                return
            index, kind = self._main, self.kind
            count = int(index.ntotal)
        tmp = self.data_dir / f".{FAISS_NAME}.tmp"
        faiss.write_index(index, str(tmp))
        os.replace(tmp, self.data_dir / FAISS_NAME)
        meta_tmp = self.data_dir / f".{META_NAME}.tmp"
        meta_tmp.write_text(json.dumps(
            {"version": version, "model": self.model, "dim": self.dim, "count": count,
             "kind": kind}
        ))
        os.replace(meta_tmp, self.data_dir / META_NAME)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Make new chunk vectors searchable at once (into the delta index)."""
        if not len(ids):
            return
        with self._lock:
            self._deleted.difference_update(int(i) for i in ids)
            self._delta.add_with_ids(vectors.astype(np.float32), ids.astype(np.int64))

    def remove(self, ids: list[int]) -> None:
        """Hide chunk ids from results."""
        with self._lock:
            self._deleted.update(ids)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids with inner-product scores, best first."""
        with self._lock:
            main, delta, deleted = self._main, self._delta, set(self._deleted)
        q = query.reshape(1, -1).astype(np.float32)
        hits: dict[int, float] = {}
        want = k + len(deleted)
        for index in (main, delta):
            if index.ntotal == 0:
                continue
            scores, ids = index.search(q, min(want, int(index.ntotal)))
            for score, i in zip(scores[0], ids[0], strict=True):
                if i >= 0 and int(i) not in deleted:
                    hits[int(i)] = max(float(score), hits.get(int(i), -1e9))
        return sorted(hits.items(), key=lambda item: -item[1])[:k]

    @property
    def pending(self) -> int:
        """Updates not yet folded into the saved main index."""
        return int(self._delta.ntotal) + len(self._deleted)
