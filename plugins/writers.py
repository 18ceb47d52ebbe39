"""Corpus writer: WebDataset tar shards, a rejects file per chunk, and a manifest.

Layout of a corpus directory::

    shards/corpus-RRR-CCCCC.tar          one sample per figure: KEY.<jpg|png|..>, KEY.txt, KEY.json
    shards/corpus-RRR-CCCCC.rejects.jsonl  {"id", "reason", "detail"} per rejected input
    shards/corpus-RRR-CCCCC.stats.json   counts of the chunk; its presence marks the chunk committed
    manifest.json                        counts over all chunks, config and versions
                                         (manifest-III-of-NNN.json per shard when mined in n > 1 shards)

``RRR`` is the mining shard (rank), ``CCCCC`` the chunk within it. Files are written under a ``.tmp``
name and renamed when the chunk commits, stats last.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from panel2patch.components import Writer
from panel2patch.data import Figure
from panel2patch.hookspecs import hookimpl

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def sample_key(figure_id: str) -> str:
    """A WebDataset key for a figure id: safe characters only (no dots, slashes), collision-free."""
    slug = _UNSAFE.sub("_", figure_id).strip("_")[:80] or "figure"
    digest = hashlib.sha1(figure_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{slug}_{digest}"


class WebDatasetWriter(Writer):
    """Writes the corpus layout above into ``out``."""

    def __init__(self, out: str = "corpus") -> None:
        self.out = Path(out)
        self.shard_dir = self.out / "shards"
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        self._chunk: str | None = None
        self._tar: Any = None
        self._tar_file: Any = None
        self._rejects: Any = None

    def _paths(self, chunk: str) -> dict[str, Path]:
        base = self.shard_dir / f"corpus-{chunk}"
        return {
            "tar": base.with_name(base.name + ".tar"),
            "rejects": base.with_name(base.name + ".rejects.jsonl"),
            "stats": base.with_name(base.name + ".stats.json"),
        }

    def completed(self, chunk: str) -> dict[str, Any] | None:
        stats = self._paths(chunk)["stats"]
        if not stats.is_file():
            return None
        return json.loads(stats.read_text(encoding="utf-8"))

    def begin(self, chunk: str) -> None:
        import webdataset as wds

        self._chunk = chunk
        paths = self._paths(chunk)
        self._tar_file = open(str(paths["tar"]) + ".tmp", "wb")
        self._tar = wds.TarWriter(self._tar_file)
        self._rejects = open(str(paths["rejects"]) + ".tmp", "w", encoding="utf-8")

    def write(self, figure: Figure, image_bytes: bytes, image_ext: str) -> None:
        key = sample_key(figure.id)
        self._tar.write(
            {
                "__key__": key,
                image_ext: image_bytes,
                "txt": figure.caption.encode("utf-8"),
                "json": json.dumps(figure.to_json(), ensure_ascii=False).encode("utf-8"),
            }
        )

    def reject(self, figure_id: str, reason: str, detail: str) -> None:
        record = {"id": figure_id, "reason": reason, "detail": detail}
        self._rejects.write(json.dumps(record, ensure_ascii=False) + "\n")

    def commit(self, stats: dict[str, Any]) -> None:
        paths = self._paths(self._chunk)
        self._tar.close()  # closes the file object too
        self._rejects.close()
        for name in ("tar", "rejects"):
            os.replace(str(paths[name]) + ".tmp", paths[name])
        tmp = str(paths["stats"]) + ".tmp"
        Path(tmp).write_text(json.dumps(stats, indent=1), encoding="utf-8")
        os.replace(tmp, paths["stats"])
        self._chunk = None

    def finish(self, manifest: dict[str, Any]) -> None:
        shard, num_shards = manifest.get("shard", 0), manifest.get("num_shards", 1)
        name = "manifest.json" if num_shards == 1 else f"manifest-{shard:03d}-of-{num_shards:03d}.json"
        tmp = self.out / (name + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.out / name)


def read_corpus(corpus: str | os.PathLike[str]):
    """Yield ``(key, Figure, image_bytes, image_ext)`` from every committed shard of a corpus, streaming."""
    import tarfile

    def emit(key: str, sample: dict[str, bytes]):
        figure = Figure.from_json(json.loads(sample["json"]))
        ext = next(e for e in sample if e not in ("json", "txt"))
        return key, figure, sample[ext], ext

    for shard in sorted(Path(corpus).glob("**/*.tar")):
        with tarfile.open(shard) as tar:
            key, sample = None, {}
            for member in tar:  # members of one sample are consecutive in a WebDataset shard
                if not member.isfile():
                    continue
                name_key, _, ext = os.path.basename(member.name).partition(".")
                if name_key != key and sample:
                    yield emit(key, sample)
                    sample = {}
                key = name_key
                sample[ext] = tar.extractfile(member).read()
            if sample:
                yield emit(key, sample)


def read_rejects(corpus: str | os.PathLike[str]) -> list[dict[str, Any]]:
    out = []
    for path in sorted(Path(corpus).glob("**/*.rejects.jsonl")):
        out.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return out


@hookimpl
def register_writers(register):
    register("webdataset", WebDatasetWriter)


__all__ = ["WebDatasetWriter", "read_corpus", "read_rejects", "sample_key"]
