"""Corpus sources: a folder of images with a JSONL/CSV index, and WebDataset tar shards.

Sources never raise for a bad item: they yield a :class:`SourceItem` with ``error`` set, so that the
miner writes a reject record for it and nothing is lost.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

from panel2patch.components import Source
from panel2patch.data import SourceItem
from panel2patch.errors import Panel2PatchError, Reject
from panel2patch.hookspecs import hookimpl
from panel2patch.images import IMAGE_EXTS


class FolderSource(Source):
    """Images in ``root`` described by an index file of ``id, image, caption`` rows.

    ``index`` is JSONL (one object per line) or CSV with a header; ``image`` is a path relative to
    ``root``. Rows that cannot be read become items with ``error`` set, keyed ``INDEX:LINE``.
    """

    def __init__(self, root: str = ".", index: str = "captions.jsonl", max_bytes: int = 256_000_000) -> None:
        self.root = Path(root)
        self.index = self.root / index if not Path(index).is_absolute() else Path(index)
        self.max_bytes = max_bytes
        if not self.index.is_file():
            raise Panel2PatchError(f"folder source: index file {self.index} does not exist")

    def _rows(self) -> Iterator[tuple[int, dict | None, str | None]]:
        raw = self.index.read_bytes()
        if self.index.suffix.lower() == ".csv":
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                yield 1, None, f"index is not UTF-8 ({exc})"
                return
            for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
                yield n, row, None
            return
        for n, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield n, None, f"line is not UTF-8 ({exc})"
                continue
            except json.JSONDecodeError as exc:
                yield n, None, f"line is not JSON ({exc})"
                continue
            if not isinstance(row, dict):
                yield n, None, "line is not a JSON object"
                continue
            yield n, row, None

    def __iter__(self) -> Iterator[SourceItem]:
        for line, row, error in self._rows():
            origin = f"{self.index.name}:{line}"
            if error is not None:
                yield SourceItem(id=origin, image=b"", caption=None, origin=origin, error=Reject("bad_index_row", error))
                continue
            figure_id = str(row.get("id") or "").strip()
            if not figure_id:
                yield SourceItem(id=origin, image=b"", caption=None, origin=origin, error=Reject("missing_id", "row has no id"))
                continue
            caption = row.get("caption")
            image_ref = str(row.get("image") or "")
            path = (self.root / image_ref) if image_ref else None
            if path is None or not path.is_file():
                yield SourceItem(figure_id, b"", caption, origin, error=Reject("missing_image", f"{image_ref!r} not found under {self.root}"))
                continue
            size = path.stat().st_size
            if size > self.max_bytes:
                yield SourceItem(figure_id, b"", caption, origin, error=Reject("file_too_large", f"{size} bytes > {self.max_bytes}"))
                continue
            meta = {k: v for k, v in row.items() if k not in ("id", "image", "caption")}
            yield SourceItem(figure_id, b"", caption, origin, metadata=meta, path=str(path))


class WebDatasetSource(Source):
    """Figures from WebDataset tar shards in the open_clip/BIOMEDICA layout, read as a stream.

    Each sample needs an image member (``jpg``/``png``/...) and a ``txt`` caption; an optional ``json``
    member is kept as metadata. ``urls`` is a brace pattern (``shards/{000..009}.tar``), a glob or a
    directory (all ``*.tar`` below it, sorted).
    """

    def __init__(self, urls: str = "") -> None:
        if not urls:
            raise Panel2PatchError("webdataset source: 'urls' is required (a brace pattern, glob or directory)")
        self.urls = urls

    def shards(self) -> list[str]:
        import braceexpand

        if os.path.isdir(self.urls):
            found = sorted(glob.glob(os.path.join(self.urls, "**", "*.tar"), recursive=True))
        else:
            found = [p for pattern in braceexpand.braceexpand(self.urls) for p in sorted(glob.glob(pattern)) or [pattern]]
        if not found:
            raise Panel2PatchError(f"webdataset source: no shards match {self.urls!r}")
        return found

    def __iter__(self) -> Iterator[SourceItem]:
        import webdataset as wds

        for shard in self.shards():
            errors: list[str] = []

            def keep_going(exc: Exception, _errors: list[str] = errors) -> bool:
                _errors.append(f"{type(exc).__name__}: {exc}")
                return True

            pipeline = wds.DataPipeline(
                wds.SimpleShardList([shard]),
                wds.tarfile_to_samples(handler=keep_going),
            )
            for sample in pipeline:
                yield self._item(shard, sample)
            for n, message in enumerate(errors):
                origin = f"{os.path.basename(shard)}#error{n}"
                yield SourceItem(origin, b"", None, origin, error=Reject("bad_shard", message))

    @staticmethod
    def _item(shard: str, sample: dict) -> SourceItem:
        key = sample.get("__key__", "")
        origin = f"{os.path.basename(shard)}:{key}"
        meta: dict = {}
        if "json" in sample:
            try:
                meta = json.loads(sample["json"])
            except (ValueError, UnicodeDecodeError):
                meta = {}
        figure_id = str(meta.get("id") or key) if isinstance(meta, dict) else key
        image = next((sample[e] for e in IMAGE_EXTS if e in sample), None)
        caption: str | None = None
        error = None
        if "txt" in sample:
            try:
                caption = sample["txt"].decode("utf-8")
            except UnicodeDecodeError as exc:
                error = Reject("caption_not_utf8", str(exc))
        if image is None:
            error = error or Reject("missing_image", f"sample has members {sorted(k for k in sample if not k.startswith('__'))}")
        return SourceItem(figure_id, image or b"", caption, origin, metadata=meta if isinstance(meta, dict) else {}, error=error)


@hookimpl
def register_sources(register):
    register("folder_index", FolderSource)
    register("webdataset_source", WebDatasetSource)
