"""Corpus sources: a folder of images with a JSONL/CSV index, and WebDataset tar shards.

Sources never raise for a bad item, whatever the bytes: they yield a :class:`SourceItem` with ``error``
set, so that the miner writes a reject record for it and nothing is lost. Every text a source hands over
(ids, captions, metadata, origins, reject details) can be encoded as UTF-8, and no reject detail quotes
bytes of an image or shard.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import os
import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from panel2patch.components import Source
from panel2patch.data import SourceItem
from panel2patch.errors import Panel2PatchError, Reject
from panel2patch.hookspecs import hookimpl
from panel2patch.images import IMAGE_EXTS

#: The most lines one quoted CSV field may span (a caption with line breaks).
MAX_RECORD_LINES = 200
UTF8_BOM = b"\xef\xbb\xbf"
META_MEMBER = re.compile(r"__[^/]*__($|/)")


def escaped(text: str) -> str:
    """``text`` with code points UTF-8 cannot encode (lone surrogates) written as ``\\udcXX`` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def shown(value: Any, limit: int = 80) -> str:
    """A short printable quote of a value read from an index or a tar header, for reject details."""
    text = escaped(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unencodable(value: Any, name: str) -> str | None:
    """Why ``value`` (text, or JSON-like lists and dicts of it, walked without recursion) cannot be
    written as UTF-8, naming the field and code point; None when it can."""
    stack = [(name, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"{where} holds U+{ord(item[exc.start]):04X} at position {exc.start}, which UTF-8 cannot encode"
        elif isinstance(item, dict):
            stack += [(f"{where} key", k) for k in item] + [(f"{where}[{shown(k, 40)}]", v) for k, v in item.items()]
        elif isinstance(item, (list, tuple)):
            stack += [(f"{where}[{n}]", v) for n, v in enumerate(item)]
    return None


def encodable(item: SourceItem) -> SourceItem:
    """``item`` as the writer can take it: an item whose id, caption or metadata UTF-8 cannot encode becomes an
    ``unencodable_text`` reject; a reject's id, caption and detail and every origin are escaped, and a reject's
    unencodable metadata dropped."""
    item.origin = escaped(item.origin)
    if item.error is None:
        problem = unencodable(item.id, "id") or unencodable(item.caption, "caption") or unencodable(item.metadata, "metadata")
        if problem is not None:
            item.error = Reject("unencodable_text", problem)
    if item.error is not None:
        item.id = escaped(item.id)
        item.error = Reject(item.error.reason, escaped(item.error.detail))
        item.caption = escaped(item.caption) if isinstance(item.caption, str) else item.caption
        item.metadata = {} if unencodable(item.metadata, "metadata") else item.metadata
    return item


# --- index files -------------------------------------------------------------------------------------------------


class IndexRow(NamedTuple):
    """One record of an index file: lines ``first``..``last`` (1-based), its fields, or the problem it has."""

    first: int
    last: int
    fields: dict[str, Any] | None
    problem: str | None = None


def index_rows(raw: bytes, is_csv: bool) -> Iterator[IndexRow]:
    """Every record of an index file's bytes, in order; never raises. Blank lines are skipped, every other line
    belongs to exactly one yielded row (a good one or one with ``problem`` set)."""
    lines = raw.splitlines(keepends=True)
    if lines and lines[0].startswith(UTF8_BOM):
        lines[0] = lines[0][len(UTF8_BOM):]
    return csv_rows(lines) if is_csv else jsonl_rows(lines)


def not_utf8(line: bytes) -> str | None:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"is not UTF-8 (invalid byte at column {exc.start + 1})"
    return None


def jsonl_rows(lines: list[bytes]) -> Iterator[IndexRow]:
    """One JSON object per line."""
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        problem = not_utf8(line)
        if problem is not None:
            yield IndexRow(n, n, None, f"line {n} {problem}")
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except json.JSONDecodeError as exc:
            yield IndexRow(n, n, None, f"line {n} is not JSON ({exc.msg} at column {exc.colno})")
            continue
        except ValueError as exc:  # e.g. an integer beyond Python's digit limit
            yield IndexRow(n, n, None, f"line {n} is not usable JSON ({exc})")
            continue
        except RecursionError:
            yield IndexRow(n, n, None, f"line {n} is JSON nested too deeply")
            continue
        if not isinstance(row, dict):
            yield IndexRow(n, n, None, f"line {n} is not a JSON object")
            continue
        yield IndexRow(n, n, row)


def csv_record(texts: list[str], start: int) -> tuple[list[str] | None, int, str | None]:
    """``(fields, lines used, problem)`` of the CSV record that begins on line index ``start``."""
    used = 0

    def feed() -> Iterator[str]:
        nonlocal used
        for text in texts[start : start + MAX_RECORD_LINES]:
            used += 1
            yield text

    try:
        return next(csv.reader(feed(), strict=True)), used, None
    except csv.Error as exc:
        if str(exc) == "unexpected end of data":
            closed = f"still open after {MAX_RECORD_LINES} lines" if used >= MAX_RECORD_LINES else "never closed"
            return None, 1, f"a quoted field opened on line {start + 1} is {closed}"
        return None, 1, f"line {start + used} is not a CSV row ({exc})"


def single_line_row(text: str, width: int, image_column: int | None) -> bool:
    """Whether ``text`` alone is a complete row of ``width`` fields naming an image file."""
    try:
        fields = next(csv.reader([text], strict=True))
    except (csv.Error, StopIteration):
        return False
    if len(fields) != width:
        return False
    return image_column is None or os.path.splitext(fields[image_column].strip())[1].lower().lstrip(".") in IMAGE_EXTS


def csv_rows(lines: list[bytes]) -> Iterator[IndexRow]:
    """CSV with a header row. A record is one line; a quoted field may continue onto the following lines (a
    caption with line breaks) for at most :data:`MAX_RECORD_LINES` lines, and only if none of those lines is on
    its own a complete row naming an image file: that is a quote left open, which would swallow the rows after
    it. A record that cannot be parsed (open quote, stray quote, oversized field) rejects its first line and
    reading resumes with the next line; a record with a non-UTF-8 byte or more fields than the header is one
    rejected row. Missing trailing fields are None."""
    texts = [line.decode("utf-8", "surrogateescape") for line in lines]
    header: list[str] | None = None
    header_problem: str | None = None
    image_column: int | None = None
    i = 0
    while i < len(texts):
        if not lines[i].strip():
            i += 1
            continue
        first = i + 1
        if header_problem is not None:
            yield IndexRow(first, first, None, header_problem)
            i += 1
            continue
        fields, used, problem = csv_record(texts, i)
        if problem is None and used > 1 and header is not None:
            swallowed = next((k for k in range(i + 1, i + used) if single_line_row(texts[k], len(header), image_column)), None)
            if swallowed is not None:
                used, problem = 1, f"a quoted field opened on line {first} runs into line {swallowed + 1}, a row of its own"
        last = first + used - 1
        if problem is None:
            problem = next((f"line {k + 1} {p}" for k in range(i, i + used) if (p := not_utf8(lines[k]))), None)
        if problem is None and header is not None and len(fields) > len(header):
            problem = f"has {len(fields)} fields, the header has {len(header)}"
        i += used
        if header is None:
            if problem is not None:
                header_problem = f"the header (line {first}) cannot be read: {problem}"
                yield IndexRow(first, last, None, header_problem)
            header = fields
            image_column = header.index("image") if header and "image" in header else None
            continue
        if problem is not None:
            yield IndexRow(first, last, None, problem)
            continue
        row = dict.fromkeys(header)
        row.update(zip(header, fields))
        yield IndexRow(first, last, row)


def field_text(value: Any) -> str | None:
    """A row's ``id``/``image`` value as text (empty when absent); None when it is not text or a number."""
    if not value:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


class FolderSource(Source):
    """Images in ``root`` described by an index file of ``id, image, caption`` rows.

    ``index`` is JSONL (one object per line) or CSV with a header (see :func:`csv_rows` for quoted fields that
    span lines); ``image`` is a path relative to ``root`` that must stay inside it: absolute paths, ``..``
    escapes and symlinks resolving outside ``root`` are rejected as ``unsafe_path``. Rows that cannot be read
    become items with ``error`` set (``bad_index_row``), keyed ``INDEX:LINE``; every non-blank line of the
    index ends in exactly one item.
    """

    def __init__(self, root: str = ".", index: str = "captions.jsonl", max_bytes: int = 256_000_000) -> None:
        self.root = Path(root)
        self.index = self.root / index if not Path(index).is_absolute() else Path(index)
        self.max_bytes = max_bytes
        self.real_root = Path(os.path.realpath(self.root))
        if not self.index.is_file():
            raise Panel2PatchError(f"folder source: index file {self.index} does not exist")

    def __iter__(self) -> Iterator[SourceItem]:
        try:
            raw = self.index.read_bytes()
        except OSError as exc:
            raise Panel2PatchError(f"folder source: cannot read index file {self.index}: {exc}") from None
        for row in index_rows(raw, self.index.suffix.lower() == ".csv"):
            yield encodable(self._item(row))

    def _item(self, row: IndexRow) -> SourceItem:
        origin = f"{self.index.name}:{row.first}"

        def rejected(reason: str, detail: str, figure_id: str = origin, caption: Any = None) -> SourceItem:
            return SourceItem(figure_id, b"", caption, origin, error=Reject(reason, detail))

        if row.fields is None:
            return rejected("bad_index_row", row.problem or "unreadable row")
        figure_id, image_ref = field_text(row.fields.get("id")), field_text(row.fields.get("image"))
        if figure_id is None or image_ref is None:
            name = "id" if figure_id is None else "image"
            return rejected("bad_index_row", f"field {name!r} is a {type(row.fields[name]).__name__}, not text")
        figure_id = figure_id.strip()
        if not figure_id:
            return rejected("missing_id", "row has no id")
        caption = row.fields.get("caption")
        meta = {k: v for k, v in row.fields.items() if k not in ("id", "image", "caption")}
        problem = unencodable(figure_id, "id") or unencodable(image_ref, "image")
        if problem is not None:
            return rejected("unencodable_text", problem, figure_id)
        path, error = self._image_path(image_ref)
        if error is not None:
            return rejected(error.reason, error.detail, figure_id, caption)
        return SourceItem(figure_id, b"", caption, origin, metadata=meta, path=str(path))

    def _image_path(self, ref: str) -> tuple[Path | None, Reject | None]:
        """The real path of an index's image reference inside ``root``, or why there is none."""
        if not ref:
            return None, Reject("missing_image", f"{ref!r} not found under {self.root}")
        if "\0" in ref or Path(ref).is_absolute():
            what = "contains a NUL character" if "\0" in ref else "is absolute"
            return None, Reject("unsafe_path", f"image path {shown(ref)} {what}; image paths are relative to {self.root}")
        real = Path(os.path.realpath(self.root / ref))
        if not real.is_relative_to(self.real_root):
            return None, Reject("unsafe_path", f"image path {shown(ref)} resolves outside {self.root}")
        try:
            size = real.stat().st_size if real.is_file() else None
        except OSError:
            size = None
        if size is None:
            return None, Reject("missing_image", f"{shown(ref)} not found under {self.root}")
        if size > self.max_bytes:
            return None, Reject("file_too_large", f"{size} bytes > {self.max_bytes}")
        return real, None


# --- tar shards --------------------------------------------------------------------------------------------------


def is_meta_member(name: str) -> bool:
    """Members WebDataset skips: ``__name__`` entries at the top of the archive or as a leading folder."""
    return ("/" not in name and name.startswith("__") and name.endswith("__")) or META_MEMBER.match(name) is not None


def read_shard(url: str) -> Iterator[tuple[dict[str, Any], Reject | None]]:
    """``(sample, problem)`` per sample of one tar shard, streaming, grouped as WebDataset groups members.

    Python's tarfile stops without a word at a damaged header, so the end is checked too: the last member must
    be followed by the end-of-archive marker and nothing but zero bytes. A sample whose member is cut off or
    appears twice comes with ``problem`` set (a ``bad_shard`` reject); a shard that cannot be opened, is damaged
    or truncated ends with ``({}, problem)`` naming the byte offset (of the uncompressed archive) and the last
    member read. Samples before the damage are yielded as usual.
    """
    from webdataset.gopen import gopen

    try:
        stream = gopen(url, "rb")
    except (OSError, ValueError) as exc:
        yield {}, Reject("bad_shard", f"cannot open shard {url}: {exc}")
        return
    try:
        yield from tar_samples(stream, url)
    finally:
        with contextlib.suppress(Exception):
            stream.close()


def tar_samples(stream: Any, url: str) -> Iterator[tuple[dict[str, Any], Reject | None]]:
    from webdataset.tariterators import base_plus_ext

    header_errors: list[Exception] = []

    class CheckedTarInfo(tarfile.TarInfo):
        @classmethod
        def fromtarfile(cls, tar: tarfile.TarFile) -> tarfile.TarInfo:
            try:
                return super().fromtarfile(tar)
            except tarfile.HeaderError as exc:  # past the first member tarfile treats any of these as the end
                header_errors.append(exc)
                raise

    tar: tarfile.TarFile | None = None
    sample: dict[str, Any] = {}
    problem: Reject | None = None
    reading: tarfile.TarInfo | None = None
    last: str | None = None
    count = 0
    try:
        tar = tarfile.open(fileobj=stream, mode="r|*", tarinfo=CheckedTarInfo)
        for member in tar:
            tar.members = []
            key, ext = base_plus_ext(member.name) if member.isreg() and not is_meta_member(member.name) else (None, None)
            if key is None:
                continue
            if sample and key != sample["__key__"]:
                yield sample, problem
                sample, problem, count = {}, None, count + 1
            sample = sample or {"__key__": key, "__url__": url}
            reading = member
            data = tar.extractfile(member).read()
            reading, last, ext = None, member.name, ext.lower()
            if ext in sample:
                problem = problem or Reject("bad_shard", f"{url}: member {shown(member.name)} appears twice in sample {shown(key)}")
            else:
                sample[ext] = data
        damage = archive_end_problem(tar, header_errors)
    except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error) as exc:
        what = str(exc) or type(exc).__name__
        if reading is not None:
            cut = f"member {shown(reading.name)} (header at byte {reading.offset}) is cut off ({what}); the shard ends there"
            yield sample, Reject("bad_shard", f"{url}: {cut}, after {count} samples")
            return
        if tar is None:
            damage = f"cannot be read as a tar archive ({what})"
        else:
            damage = f"cannot be read past byte {tar.offset} ({what})"
    if sample:
        yield sample, problem
        count += 1
    if damage is not None:
        after = f" after member {shown(last)}" if last else ""
        yield {}, Reject("bad_shard", f"{url}: {damage}{after}; {count} samples read before it, the rest of the shard is lost")


def archive_end_problem(tar: tarfile.TarFile, header_errors: list[Exception]) -> str | None:
    """Why a tar stream that tarfile finished reading did not end properly, or None."""
    error = header_errors[-1] if header_errors else None
    if isinstance(error, tarfile.EOFHeaderError):
        position = tar.offset + tarfile.BLOCKSIZE
        while chunk := tar.fileobj.read(1 << 16):
            zeros = len(chunk) - len(chunk.lstrip(b"\0"))
            if zeros < len(chunk):
                return f"has data after its end-of-archive marker, at byte {position + zeros}"
            position += len(chunk)
        return None
    if isinstance(error, tarfile.EmptyHeaderError):
        return f"ends at byte {tar.offset} without an end-of-archive marker (truncated)"
    if isinstance(error, tarfile.TruncatedHeaderError):
        return f"ends inside the member header at byte {tar.offset} (truncated)"
    if error is not None:
        return f"has a damaged member header at byte {tar.offset} ({error})"
    return None


class WebDatasetSource(Source):
    """Figures from WebDataset tar shards in the open_clip/BIOMEDICA layout, read as a stream.

    Each sample needs an image member (``jpg``/``png``/...) and a ``txt`` caption; an optional ``json``
    member is kept as metadata. ``urls`` is a brace pattern (``shards/{000..009}.tar``), a glob or a
    directory (all ``*.tar`` below it, sorted). A damaged, truncated or unreadable shard gives a
    ``bad_shard`` reject after the samples read before the damage (see :func:`read_shard`).
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
        for shard in self.shards():
            for sample, problem in read_shard(shard):
                if not sample:
                    origin = f"{os.path.basename(shard)}#shard"
                    yield encodable(SourceItem(origin, b"", None, origin, error=problem))
                    continue
                item = self._item(shard, sample)
                item.error = problem or item.error
                yield encodable(item)

    @staticmethod
    def _item(shard: str, sample: dict) -> SourceItem:
        key = sample.get("__key__", "")
        origin = f"{os.path.basename(shard)}:{key}"
        meta: Any = {}
        if "json" in sample:
            try:
                meta = json.loads(sample["json"])
            except (ValueError, UnicodeDecodeError, RecursionError):
                meta = {}
        figure_id = (field_text(meta.get("id")) or key) if isinstance(meta, dict) else key
        image = next((sample[e] for e in IMAGE_EXTS if e in sample), None)
        caption: str | None = None
        error = None
        if "txt" in sample:
            try:
                caption = sample["txt"].decode("utf-8")
            except UnicodeDecodeError as exc:
                error = Reject("caption_not_utf8", f"caption is not UTF-8 (invalid byte at offset {exc.start})")
        if image is None:
            error = error or Reject("missing_image", f"sample has members {sorted(k for k in sample if not k.startswith('__'))}")
        return SourceItem(figure_id, image or b"", caption, origin, metadata=meta if isinstance(meta, dict) else {}, error=error)


@hookimpl
def register_sources(register):
    register("folder_index", FolderSource)
    register("webdataset_source", WebDatasetSource)
