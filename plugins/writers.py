"""Corpus writer: the layout of :mod:`panel2patch.corpus`, written in atomically committed chunks.

Files are written under a ``.tmp`` name and renamed when the chunk commits, stats last; a chunk whose
stats file exists is complete. A writer holds an exclusive lock (``shards/.lock-RRR``) on the mining shard it
writes from its first chunk to :meth:`~WebDatasetWriter.finish`, so two runs never interleave in one folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from panel2patch.components import Writer
from panel2patch.corpus import SHARD_DIR, sample_key
from panel2patch.data import Figure
from panel2patch.errors import Panel2PatchError
from panel2patch.hookspecs import hookimpl


class ChunkFiles(NamedTuple):
    """The files of one committed chunk."""

    tar: Path
    rejects: Path
    stats: Path


def chunk_files(out: str | os.PathLike[str], chunk: str) -> ChunkFiles:
    base = Path(out) / SHARD_DIR / f"corpus-{chunk}"
    return ChunkFiles(*(base.with_name(base.name + suffix) for suffix in (".tar", ".rejects.jsonl", ".stats.json")))


def file_sha1(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def manifest_name(shard: int, num_shards: int) -> str:
    return "manifest.json" if num_shards == 1 else f"manifest-{shard:03d}-of-{num_shards:03d}.json"


class WebDatasetWriter(Writer):
    """Writes a corpus (WebDataset shards, rejects, stats, manifest) into ``out``."""

    def __init__(self, out: str = "corpus") -> None:
        self.out = Path(out)
        (self.out / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        self._chunk: str | None = None
        self._tar: Any = None
        self._rejects: Any = None
        self._lock: Any = None

    @property
    def location(self) -> str:
        return str(self.out)

    def _hold_lock(self, chunk: str) -> None:
        import fcntl

        if self._lock is not None:
            return
        path = self.out / SHARD_DIR / f".lock-{chunk.split('-')[0]}"
        lock = open(path, "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise Panel2PatchError(
                f"another run is writing mining shard {chunk.split('-')[0]} into {self.out} (it holds {path}); "
                "wait for it to finish, or write to another folder"
            ) from None
        self._lock = lock

    def completed(self, chunk: str) -> dict[str, Any] | None:
        self._hold_lock(chunk)
        stats = chunk_files(self.out, chunk).stats
        if not stats.is_file():
            return None
        try:
            return json.loads(stats.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise Panel2PatchError(f"{stats}: the stats of a committed chunk are unreadable ({exc}); remove the chunk's "
                                   "files to mine it again") from None

    def begin(self, chunk: str) -> None:
        import webdataset as wds

        self._hold_lock(chunk)
        self._chunk = chunk
        files = chunk_files(self.out, chunk)
        self._tar = wds.TarWriter(open(str(files.tar) + ".tmp", "wb"))
        self._rejects = open(str(files.rejects) + ".tmp", "w", encoding="utf-8")

    def write(self, figure: Figure, image_bytes: bytes, image_ext: str) -> None:
        self._tar.write(
            {
                "__key__": sample_key(figure.id),
                image_ext: image_bytes,
                "txt": figure.caption.encode("utf-8"),
                "json": json.dumps(figure.to_json(), ensure_ascii=False).encode("utf-8"),
            }
        )

    def reject(self, figure_id: str, reason: str, detail: str) -> None:
        record = {"id": figure_id, "reason": reason, "detail": detail}
        self._rejects.write(json.dumps(record, ensure_ascii=False) + "\n")

    def commit(self, stats: dict[str, Any]) -> None:
        files = chunk_files(self.out, self._chunk)
        self._tar.close()  # closes the file object too
        self._rejects.close()
        digests = {kind: file_sha1(str(path) + ".tmp") for kind, path in (("tar", files.tar), ("rejects", files.rejects))}
        for path in (files.tar, files.rejects):
            os.replace(str(path) + ".tmp", path)
        tmp = str(files.stats) + ".tmp"
        Path(tmp).write_text(json.dumps({**stats, "sha1": digests}, indent=1), encoding="utf-8")
        os.replace(tmp, files.stats)
        self._chunk = None

    def finish(self, manifest: dict[str, Any]) -> None:
        name = manifest_name(manifest.get("shard", 0), manifest.get("num_shards", 1))
        tmp = self.out / (name + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.out / name)
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None


@hookimpl
def register_writers(register):
    register("webdataset_corpus", WebDatasetWriter)
