"""The corpus layout and its one reader.

A corpus directory holds WebDataset tar shards with one sample per figure, written in chunks::

    shards/corpus-RRR-CCCCC.tar            KEY.<jpg|png|..> (original image bytes), KEY.txt (caption),
                                           KEY.json (:meth:`panel2patch.data.Figure.to_json`)
    shards/corpus-RRR-CCCCC.rejects.jsonl  {"id", "reason", "detail"} per rejected input
    shards/corpus-RRR-CCCCC.stats.json     counts of the chunk; its presence marks the chunk committed
    manifest.json                          counts over all chunks, config and versions
                                           (manifest-III-of-NNN.json per shard when mined in n > 1 shards)

``RRR`` is the mining shard (rank), ``CCCCC`` the chunk within it. KEY is :func:`sample_key` of the
figure id. Readers find shards anywhere below the corpus directory (``**/*.tar``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import Figure
from .errors import ImageError, Panel2PatchError
from .images import IMAGE_EXTS, MAX_PIXELS, open_image

SHARD_DIR = "shards"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class CorpusError(Panel2PatchError):
    """The corpus is missing, malformed, or too small for the requested run."""


def sample_key(figure_id: str) -> str:
    """A WebDataset key for a figure id: safe characters only (no dots, slashes), collision-free."""
    slug = _UNSAFE.sub("_", figure_id).strip("_")[:80] or "figure"
    digest = hashlib.sha1(figure_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{slug}_{digest}"


def find_shards(corpus: str | os.PathLike[str]) -> list[str]:
    """Every ``*.tar`` below ``corpus``, sorted."""
    root = Path(corpus)
    if not root.is_dir():
        raise CorpusError(f"corpus directory {str(root)!r} does not exist")
    shards = sorted(str(p) for p in root.glob("**/*.tar"))
    if not shards:
        raise CorpusError(f"corpus {str(root)!r} has no WebDataset shards (**/*.tar)")
    return shards


def decode_figure(raw: bytes, where: str, key: str) -> Figure:
    """The :class:`Figure` of a sample's JSON member; :class:`CorpusError` naming shard and key if bad."""
    try:
        return Figure.from_json(json.loads(raw))
    except (ValueError, TypeError, KeyError, RecursionError) as exc:  # RecursionError: JSON nested too deep
        raise CorpusError(f"{where}: sample {key!r}: unreadable figure JSON: {exc}") from None


def decode_sample(sample: Mapping[str, Any], where: str, key: str, need_image: bool = True) -> tuple[Figure, str | None]:
    """A WebDataset sample's figure and the extension of its image member (None when absent and not needed)."""
    if "json" not in sample:
        raise CorpusError(f"{where}: sample {key!r} has no .json member (members: {sorted(sample)})")
    ext = next((e for e in IMAGE_EXTS if e in sample), None)
    if ext is None and need_image:
        raise CorpusError(f"{where}: sample {key!r} has no image member ({'/'.join(IMAGE_EXTS)})")
    return decode_figure(sample["json"], where, key), ext


def iter_shard(shard: str | os.PathLike[str], members: Sequence[str] | None = None) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(key, {extension: bytes})`` per sample of one shard, streaming (a sample's members are adjacent); keys as
    WebDataset splits them. ``members`` restricts which extensions are read. A damaged or truncated shard is a
    :class:`CorpusError` naming the byte offset, never a silent stop."""
    from webdataset.tariterators import base_plus_ext

    key, sample, damage = None, {}, None
    try:
        with tarfile.open(shard) as tar:
            for member in tar:
                name_key, ext = base_plus_ext(member.name)
                if not member.isfile() or not ext:
                    continue
                if name_key != key and sample:
                    yield key, sample
                    sample = {}
                key = name_key
                if members is None or ext in members:
                    sample[ext] = tar.extractfile(member).read()
            tar.fileobj.seek(tar.offset)  # tarfile stops without a word at a damaged header: the end must be zeros
            end = tar.fileobj.read(2 * tarfile.BLOCKSIZE)
            if len(end) < 2 * tarfile.BLOCKSIZE or end.strip(b"\0"):
                damage = f"shard {shard} is damaged or truncated at byte {tar.offset}"
    except (tarfile.TarError, OSError) as exc:
        damage = f"cannot read shard {shard}: {exc}"
    if sample:  # the members read before the damage
        yield key, sample
    if damage:
        raise CorpusError(damage)


@dataclass
class CorpusRecord:
    """One figure of a corpus; ``image``/``image_ext`` are None when only JSON members were read."""

    key: str
    figure: Figure
    image: bytes | None
    image_ext: str | None
    where: str

    def decoded(self, max_pixels: int = MAX_PIXELS):
        """The image as RGB; :class:`ImageError` when it does not decode or is not the size its JSON gives."""
        image, (w, h) = open_image(self.image or b"", max_pixels), (self.figure.width, self.figure.height)
        if image.size != (w, h):
            raise ImageError(f"image is {image.width}x{image.height} but its JSON says {w}x{h}")
        return image


def read_corpus(corpus: str | os.PathLike[str], members: Sequence[str] | None = None,
                skipped: list[str] | None = None) -> Iterator[CorpusRecord]:
    """Every figure of every shard below ``corpus``, in shard order. ``members=("json",)`` skips images. A bad
    member or damaged shard is a :class:`CorpusError`, or, given a ``skipped`` list, noted there and passed over."""
    for shard in find_shards(corpus):
        samples = iter_shard(shard, members)
        while True:
            try:
                key, sample = next(samples, (None, None))  # after a damaged shard's error: exhausted
                if key is None:
                    break
                figure, ext = decode_sample(sample, shard, key, need_image=members is None)
            except CorpusError as exc:
                if skipped is None:
                    raise
                skipped.append(str(exc))
                continue
            yield CorpusRecord(key, figure, sample.get(ext) if ext else None, ext, f"{shard}:{key}")


def read_rejects(corpus: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every reject record of a corpus, in chunk order."""
    out = []
    for path in sorted(Path(corpus).glob("**/*.rejects.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except (ValueError, RecursionError) as exc:
                raise CorpusError(f"{path}:{n}: unreadable reject record: {exc}") from None
    return out


def read_manifest(corpus: str | os.PathLike[str]) -> dict[str, Any]:
    """The corpus manifest (``manifest.json``), or the shard manifests' list under ``"shards"``."""
    root = Path(corpus)
    single = root / "manifest.json"
    paths = [single] if single.is_file() else sorted(root.glob("manifest-*-of-*.json"))
    if not paths:
        raise CorpusError(f"{root}: no manifest.json; is this a panel2patch corpus directory?")
    try:
        loaded = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    except (OSError, ValueError, RecursionError) as exc:
        raise CorpusError(f"{root}: unreadable manifest: {exc}") from None
    return loaded[0] if single.is_file() else {"shards": loaded}
