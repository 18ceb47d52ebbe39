"""Text embeddings of a frozen text tower, computed once per unique text and kept on disk (SQLite).

With the text tower frozen, the embedding of a text never changes during training, so it is encoded
once and looked up afterwards. Entries are keyed by a fingerprint of the model (the text tower's
weights, dtype, tokenizer and context length) and the text itself; any change to the tower gives a new
fingerprint and thus a fresh table. Storage is one SQLite file per fingerprint
(``DIR/<fingerprint>.sqlite``: key = SHA-256 of the text, value = float32 bytes of the L2-normalised
embedding), with an in-memory layer in front. Several ranks may share the file; keep it on a local disk
(SQLite locking is unreliable on network file systems).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/panel2patch/text-embeddings`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "panel2patch", "text-embeddings")


def text_tower_names(model: Any) -> list[str]:
    """Names in ``model.state_dict()`` of the text path: everything but ``visual.`` and the logit terms."""
    return [k for k in model.state_dict() if not k.startswith("visual.") and k not in ("logit_scale", "logit_bias")]


def text_fingerprint(model: Any, tokenizer: Any, names: Sequence[str], extra: str = "") -> str:
    """SHA-256 over the text-path tensors ``names`` of ``model.state_dict()`` (bytes, shapes, dtypes) and
    the tokenizer's class and context length. Compute it before the model is cast or moved."""
    import torch

    state = model.state_dict()
    digest = hashlib.sha256()
    digest.update(f"{type(tokenizer).__name__}/{getattr(tokenizer, 'context_length', '')}/{extra}".encode())
    for name in sorted(names):
        tensor = state[name].detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class TextEmbeddingCache:
    """``cache(texts) -> Tensor [N, D]`` (float32, CPU), encoding only texts never seen before.

    ``misses`` counts texts encoded, ``hits`` the texts served without encoding.

    ``encode(texts)`` returns the L2-normalised embeddings of a list of texts (any device and dtype).
    ``directory`` None keeps entries in memory only. ``memory_items`` bounds the in-memory layer (LRU).
    """

    def __init__(
        self,
        encode: Callable[[list[str]], Any],
        fingerprint: str,
        directory: str | None = None,
        memory_items: int = 200_000,
        batch_size: int = 256,
    ) -> None:
        self.encode = encode
        self.fingerprint = fingerprint
        self.memory_items = memory_items
        self.batch_size = batch_size
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = self.misses = 0
        self.path: Path | None = None
        self._db: sqlite3.Connection | None = None
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)
            self.path = Path(directory) / f"{fingerprint}.sqlite"
            self._db = sqlite3.connect(self.path, timeout=120.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    def __call__(self, texts: Sequence[str]) -> Any:
        import torch

        keys = [_key(t) for t in texts]
        text_of = dict(zip(keys, texts))
        found: dict[str, np.ndarray] = {}
        for key in text_of:
            vec = self._memory.get(key)
            if vec is not None:
                self._memory.move_to_end(key)
                found[key] = vec
        missing = [k for k in text_of if k not in found]
        if missing and self._db is not None:
            for i in range(0, len(missing), 500):
                chunk = missing[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for key, blob in self._db.execute(f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        unseen = [k for k in text_of if k not in found]
        self.misses += len(unseen)
        self.hits += len(texts) - len(unseen)
        if unseen:
            fresh = self._encode([text_of[k] for k in unseen])
            rows = []
            for key, vec in zip(unseen, fresh):
                found[key] = vec
                rows.append((key, vec.tobytes()))
            if self._db is not None:
                self._db.executemany("INSERT OR IGNORE INTO emb (key, vec) VALUES (?, ?)", rows)
        for key in keys:
            self._remember(key, found[key])
        return torch.from_numpy(np.stack([found[k] for k in keys]))

    def _encode(self, texts: list[str]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for i in range(0, len(texts), self.batch_size):
            emb = self.encode(texts[i : i + self.batch_size])
            out.extend(emb.detach().float().cpu().numpy().astype(np.float32))
        return out

    def _remember(self, key: str, vec: np.ndarray) -> None:
        self._memory[key] = vec
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)

    def stats(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {"hits": self.hits, "misses": self.misses, "hit_rate": self.hits / total if total else 0.0,
                "path": str(self.path) if self.path else None}

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
