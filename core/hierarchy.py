"""Hierarchical training data: level samples from corpus figures, crops cut at load time, level batches.

A corpus is a directory with WebDataset tar shards anywhere below it (``**/*.tar``) holding one sample
per figure: ``KEY.png|jpg`` (the original image bytes), ``KEY.txt`` (the caption) and ``KEY.json``
(:meth:`panel2patch.data.Figure.to_json`). Boxes are ``(x0, y0, x1, y1)`` in original-image pixels.

A :class:`~panel2patch.components.GranularityLevel` turns a figure into :class:`LevelSample` records.
One stream per level reads the shards (webdataset), keeps the figures of one split (``train`` or
``held_out``, decided by a hash of the figure key), expands them into level samples, shuffles them in a
buffer, batches them and only then decodes images, cuts crops and runs the model's preprocessing:

* level ``figure`` (M): whole figures, with their panels as children;
* level ``panel`` (P): panel crops, with their regions as children;
* level ``region`` (R): region crops, with the panel holding each region as its parent.

Everything random (shard order, shuffle buffer, text choice, child subsets) is seeded from the run seed,
the level, the rank and the batch position, so a stream is a pure function of the seed and the number
of batches already taken from it: :class:`LevelLoader` resumes exactly by skipping that many batches
before any image is decoded.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data import Box, Figure
from .errors import Panel2PatchError

SPLITS = ("train", "held_out")
IMAGE_EXTS = ("png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp", "gif")


class CorpusError(Panel2PatchError):
    """The corpus is missing, malformed, or too small for the requested run."""


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """A related box of a level sample (a child panel or region, or the parent panel), figure pixels."""

    id: str
    box: Box
    texts: tuple[str, ...]


@dataclass(frozen=True)
class LevelSample:
    """One training sample of a level: the crop ``box`` (figure pixels) and its candidate ``texts``.

    One text is picked at random per use. ``children`` are the boxes encoded with it for inter-level
    message passing (M: panels, P: regions); ``parent`` is the box whose feature map the sample is
    compared with (R: its panel).
    """

    level: str
    id: str
    box: Box
    texts: tuple[str, ...]
    children: tuple[Node, ...] = ()
    parent: Node | None = None


@dataclass
class LevelBatch:
    """A batch of one level, ready for the model.

    ``images`` is a float tensor ``[N, 3, H, W]`` preprocessed by the model's own transform; rows
    ``[0, num_samples)`` are the level's samples, the rest their related crops (children or parents).
    ``texts[i]`` is the text paired with ``images[i]``. Edge ``e`` links image ``edge_child[e]`` to image
    ``edge_parent[e]``; ``roi_boxes[e]`` is the child's box in the parent's preprocessed image (pixels of
    the ``H x W`` model input), valid where ``roi_valid[e]`` (a child cropped away by the parent's
    center crop has no box there). ``index`` is the batch's position in its rank's stream.
    """

    level: str
    num_samples: int
    images: Any
    texts: list[str]
    ids: list[str]
    edge_child: Any
    edge_parent: Any
    roi_boxes: Any
    roi_valid: Any
    index: int = 0

    def pin_memory(self) -> LevelBatch:
        self.images = self.images.pin_memory()
        return self

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])


# --------------------------------------------------------------------------------------------------
# Geometry: figure pixels -> crop -> preprocessed model input
# --------------------------------------------------------------------------------------------------


def crop_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """The integer pixel rectangle cut for ``box``: outward-rounded, clipped to the image, at least 1 px."""
    x0 = min(max(int(math.floor(box[0])), 0), width - 1)
    y0 = min(max(int(math.floor(box[1])), 0), height - 1)
    x1 = max(min(int(math.ceil(box[2])), width), x0 + 1)
    y1 = max(min(int(math.ceil(box[3])), height), y0 + 1)
    return x0, y0, x1, y1


@dataclass(frozen=True)
class Geometry:
    """How preprocessing maps crop pixels to model-input pixels: ``x' = x * sx + ox``, ``y' = y * sy + oy``.

    ``width``/``height`` are the model input size; points mapped outside it were cropped away.
    """

    sx: float
    sy: float
    ox: float
    oy: float
    width: int
    height: int

    def map_box(self, box: Box) -> Box | None:
        """Map a box given in crop pixels; clipped to the input, None when nothing of it remains."""
        x0 = min(max(box[0] * self.sx + self.ox, 0.0), float(self.width))
        y0 = min(max(box[1] * self.sy + self.oy, 0.0), float(self.height))
        x1 = min(max(box[2] * self.sx + self.ox, 0.0), float(self.width))
        y1 = min(max(box[3] * self.sy + self.oy, 0.0), float(self.height))
        if x1 - x0 <= 0.0 or y1 - y0 <= 0.0:
            return None
        return (x0, y0, x1, y1)


def preprocess_geometry(width: int, height: int, cfg: Mapping[str, Any]) -> Geometry:
    """The geometry of open_clip's evaluation transform for a ``width x height`` crop.

    ``cfg`` is the model's ``visual.preprocess_cfg`` (``size``, ``resize_mode``); the formulas follow
    ``open_clip.transform.image_transform`` (``shortest``: resize the short side then center-crop;
    ``longest``: resize the long side then center-pad; ``squash``: resize both sides).
    """
    size = cfg.get("size", 224)
    th, tw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    mode = cfg.get("resize_mode", "shortest") or "shortest"
    if mode == "squash":
        return Geometry(tw / width, th / height, 0.0, 0.0, tw, th)
    if mode == "shortest" and th == tw:
        # torchvision Resize(int): short side -> size, long side truncated
        if width <= height:
            new_w, new_h = tw, int(tw * height / width)
        else:
            new_w, new_h = int(th * width / height), th
    elif mode in ("shortest", "longest"):
        # open_clip ResizeKeepRatio
        longest = 1.0 if mode == "longest" else 0.0
        rh, rw = height / th, width / tw
        ratio = max(rh, rw) * longest + min(rh, rw) * (1.0 - longest)
        new_h, new_w = round(height / ratio), round(width / ratio)
    else:
        raise CorpusError(f"unsupported preprocess resize_mode {mode!r}; expected shortest, longest or squash")
    sx, sy = new_w / width, new_h / height
    if mode == "longest":  # CenterCropOrPad pads smaller sides (left/top gets the floor half)
        ox = (tw - new_w) // 2 if tw > new_w else -int(round((new_w - tw) / 2.0))
        oy = (th - new_h) // 2 if th > new_h else -int(round((new_h - th) / 2.0))
    else:  # CenterCrop
        ox = -int(round((new_w - tw) / 2.0))
        oy = -int(round((new_h - th) / 2.0))
    return Geometry(sx, sy, float(ox), float(oy), tw, th)


def relative_box(box: Box, origin: tuple[int, int, int, int]) -> Box:
    """``box`` (figure pixels) in the frame of the crop rectangle ``origin``."""
    return (box[0] - origin[0], box[1] - origin[1], box[2] - origin[0], box[3] - origin[1])


# --------------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------------


def find_shards(corpus: str | os.PathLike[str]) -> list[str]:
    """Every ``*.tar`` below ``corpus``, sorted."""
    root = Path(corpus)
    if not root.is_dir():
        raise CorpusError(f"corpus directory {str(root)!r} does not exist (set train.data.corpus)")
    shards = sorted(str(p) for p in root.glob("**/*.tar"))
    if not shards:
        raise CorpusError(f"corpus {str(root)!r} has no WebDataset shards (**/*.tar)")
    return shards


def is_held_out(key: str, fraction: float) -> bool:
    """Whether figure ``key`` belongs to the held-out split: a stable hash, independent of seed and layout."""
    if fraction <= 0.0:
        return False
    digest = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big")
    return digest / 2.0**64 < fraction


def split_of(key: str, fraction: float) -> str:
    return "held_out" if is_held_out(key, fraction) else "train"


def _figure(raw: bytes, where: str, key: str) -> Figure:
    try:
        return Figure.from_json(json.loads(raw))
    except (ValueError, TypeError, KeyError) as exc:
        raise CorpusError(f"{where}: sample {key!r}: unreadable figure JSON: {exc}") from None


def decode_record(sample: Mapping[str, Any], where: str) -> tuple[Figure, bytes]:
    """The figure and image bytes of one WebDataset sample (``json`` + an image member)."""
    key = sample.get("__key__", "?")
    if "json" not in sample:
        raise CorpusError(f"{where}: sample {key!r} has no .json member (members: {sorted(sample)})")
    figure = _figure(sample["json"], where, key)
    image = next((sample[e] for e in IMAGE_EXTS if e in sample), None)
    if image is None:
        raise CorpusError(f"{where}: sample {key!r} has no image member ({'/'.join(IMAGE_EXTS)})")
    return figure, image


@dataclass
class CorpusCounts:
    """Samples per level and split, over the whole corpus and per shard."""

    shards: list[str]
    figures: dict[str, int]
    samples: dict[str, dict[str, int]]
    per_shard: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"shards": len(self.shards), "figures": self.figures, "samples": self.samples}


def scan(corpus: str, levels: Sequence[Any], held_out: float) -> CorpusCounts:
    """Count figures and level samples per split, reading only the JSON members of each shard."""
    from webdataset.tariterators import base_plus_ext

    shards = find_shards(corpus)
    figures = {s: 0 for s in SPLITS}
    samples = {lv.name: {s: 0 for s in SPLITS} for lv in levels}
    per_shard: dict[str, dict[str, dict[str, int]]] = {}
    for shard in shards:
        mine = {lv.name: {s: 0 for s in SPLITS} for lv in levels}
        try:
            with tarfile.open(shard) as tar:
                for member in tar:
                    key, ext = base_plus_ext(member.name)  # the sample key webdataset gives the stream
                    if not member.isfile() or ext != "json":
                        continue
                    figure = _figure(tar.extractfile(member).read(), shard, key)
                    split = split_of(key, held_out)
                    figures[split] += 1
                    for lv in levels:
                        mine[lv.name][split] += len(lv.samples(figure))
        except (tarfile.TarError, OSError) as exc:
            raise CorpusError(f"cannot read shard {shard}: {exc}") from None
        per_shard[shard] = mine
        for lv in levels:
            for s in SPLITS:
                samples[lv.name][s] += mine[lv.name][s]
    return CorpusCounts(shards, figures, samples, per_shard)


# --------------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------------


@dataclass
class StreamSpec:
    """What one level stream reads and how it is split, shuffled and batched on one rank.

    ``by_shard``: split shards over (rank, worker) slots (needs at least one shard with samples per
    slot); otherwise every slot reads every shard and keeps every ``slots``-th sample.
    ``skip``: batches of this rank's stream already consumed (resume).
    """

    shards: list[str]
    level: Any
    split: str
    held_out: float
    batch_size: int
    seed: int
    rank: int = 0
    world_size: int = 1
    shuffle_buffer: int = 1000
    infinite: bool = True
    by_shard: bool = True
    skip: int = 0
    max_children: int = 8
    related: bool = True


@dataclass
class _Item:
    key: str
    sample: LevelSample
    image: bytes


def _worker() -> tuple[int, int]:
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


class _Samples:
    """Pipeline source: level samples of this (rank, worker) slot, epoch after epoch."""

    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec

    def __call__(self) -> Iterator[_Item]:
        import webdataset as wds

        spec = self.spec
        worker, workers = _worker()
        slots = spec.world_size * workers
        slot = spec.rank * workers + worker
        epoch = 0
        while True:
            order = list(spec.shards)
            if spec.infinite:
                random.Random(f"{spec.seed}/shards/{epoch}").shuffle(order)
            if spec.by_shard:
                order = order[slot::slots]
            produced = index = 0
            for url in order:
                for sample in wds.tarfile_to_samples()(iter([{"url": url}])):
                    key = sample["__key__"]
                    if split_of(key, spec.held_out) != spec.split:
                        continue
                    figure, image = decode_record(sample, url)
                    for level_sample in spec.level.samples(figure):
                        if not spec.by_shard:
                            index += 1
                            if (index - 1) % slots != slot:
                                continue
                        produced += 1
                        yield _Item(key, level_sample, image)
            if produced == 0 and spec.infinite:
                raise CorpusError(
                    f"level {spec.level.name!r}: rank {spec.rank} worker {worker} found no {spec.split} samples "
                    f"in {len(order)} shard(s); the corpus is too small for {slots} reader(s) "
                    "(lower train.data.workers or add figures)"
                )
            epoch += 1
            if not spec.infinite:
                return


class _Batches:
    """Shuffle, batch, number and skip: ``(index, items)`` with ``index`` the position in the rank's stream."""

    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec

    def __call__(self, items: Iterator[_Item]) -> Iterator[tuple[int, list[_Item]]]:
        import webdataset as wds

        spec = self.spec
        worker, workers = _worker()
        if spec.infinite and spec.shuffle_buffer > 1:
            seed = f"{spec.seed}/shuffle/{spec.level.name}/{spec.rank}/{worker}/{workers}"
            items = wds.shuffle(spec.shuffle_buffer, initial=spec.shuffle_buffer, seed=seed)(items)
        batches = wds.batched(spec.batch_size, collation_fn=None, partial=not spec.infinite)(items)
        # The DataLoader takes batches from its workers in turn, starting with worker 0, so every worker
        # restarts in the same round; the reader drops the ``skip % workers`` batches before ``skip``.
        start = spec.skip - spec.skip % workers
        for j, batch in enumerate(batches):
            index = worker + workers * j
            if index < start:
                continue
            yield index, batch


class BatchBuilder:
    """Decodes figures, cuts crops, runs the model transform and builds a :class:`LevelBatch`.

    ``transform`` is the model's evaluation preprocessing (PIL image -> tensor) and ``preprocess_cfg``
    its open_clip config, from which crop boxes are mapped into model-input pixels.
    """

    def __init__(self, transform: Any, preprocess_cfg: Mapping[str, Any], spec: StreamSpec) -> None:
        self.transform = transform
        self.cfg = dict(preprocess_cfg)
        self.spec = spec

    def __call__(self, numbered: tuple[int, list[_Item]]) -> LevelBatch:
        import torch

        from .images import open_image

        index, items = numbered
        spec = self.spec
        rng = random.Random(f"{spec.seed}/batch/{spec.level.name}/{spec.split}/{spec.rank}/{index}")
        decoded: dict[str, Any] = {}

        def figure(item: _Item):
            if item.key not in decoded:
                try:
                    decoded[item.key] = open_image(item.image)
                except Panel2PatchError as exc:
                    raise CorpusError(f"figure {item.key!r}: {exc}") from None
            return decoded[item.key]

        images: list[Any] = []
        texts: list[str] = []
        ids: list[str] = []
        rects: list[tuple[int, int, int, int]] = []

        def add(item: _Item, node_id: str, box: Box, candidates: Sequence[str]) -> int:
            img = figure(item)
            rect = crop_box(box, img.width, img.height)
            images.append(self.transform(img.crop(rect)))
            texts.append(rng.choice(list(candidates)))
            ids.append(f"{item.key}/{node_id}")
            rects.append(rect)
            return len(images) - 1

        for item in items:
            add(item, item.sample.id, item.sample.box, item.sample.texts)
        edges: list[tuple[int, int]] = []
        if spec.related:
            parents: dict[tuple[str, str], int] = {}
            for i, item in enumerate(items):
                children = list(item.sample.children)
                if len(children) > spec.max_children:
                    keep = sorted(rng.sample(range(len(children)), spec.max_children))
                    children = [children[k] for k in keep]
                for child in children:
                    edges.append((add(item, child.id, child.box, child.texts), i))
                parent = item.sample.parent
                if parent is not None:
                    slot = (item.key, parent.id)
                    if slot not in parents:
                        parents[slot] = add(item, parent.id, parent.box, parent.texts)
                    edges.append((i, parents[slot]))
        boxes, valid = [], []
        for child, parent in edges:
            prect, crect = rects[parent], rects[child]
            geom = preprocess_geometry(prect[2] - prect[0], prect[3] - prect[1], self.cfg)
            mapped = geom.map_box(relative_box(crect, prect))
            boxes.append(mapped or (0.0, 0.0, 0.0, 0.0))
            valid.append(mapped is not None)
        return LevelBatch(
            level=spec.level.name,
            num_samples=len(items),
            images=torch.stack(images),
            texts=texts,
            ids=ids,
            edge_child=torch.tensor([c for c, _ in edges], dtype=torch.long),
            edge_parent=torch.tensor([p for _, p in edges], dtype=torch.long),
            roi_boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            roi_valid=torch.tensor(valid, dtype=torch.bool),
            index=index,
        )


def level_pipeline(spec: StreamSpec, transform: Any, preprocess_cfg: Mapping[str, Any]):
    """The webdataset pipeline (an ``IterableDataset``) of one level stream, yielding :class:`LevelBatch`."""
    import webdataset as wds

    return wds.DataPipeline(_Samples(spec), _Batches(spec), wds.map(BatchBuilder(transform, preprocess_cfg, spec)))


def _init_worker(_: int) -> None:
    import torch

    torch.set_num_threads(1)  # workers decode and resize; threads would only oversubscribe the cores


@dataclass
class LoaderOptions:
    """DataLoader settings shared by the level streams."""

    workers: int = 2
    pin_memory: bool = False
    prefetch: int = 2


class LevelLoader:
    """An endless iterator of one level's batches on this rank, which counts what it hands out.

    :meth:`state_dict` records how many batches were consumed; a loader built with the same spec and
    ``skip`` set to that count continues with exactly the next batch.
    """

    def __init__(self, spec: StreamSpec, transform: Any, preprocess_cfg: Mapping[str, Any], options: LoaderOptions):
        self.spec = spec
        self.transform = transform
        self.cfg = preprocess_cfg
        self.options = options
        self.consumed = spec.skip
        self._it: Iterator[LevelBatch] | None = None

    def _loader(self):
        from torch.utils.data import DataLoader

        workers = self.options.workers
        return DataLoader(
            level_pipeline(self.spec, self.transform, self.cfg),
            batch_size=None,
            num_workers=workers,
            pin_memory=self.options.pin_memory,
            prefetch_factor=self.options.prefetch if workers > 0 else None,
            persistent_workers=workers > 0 and self.spec.infinite,
            worker_init_fn=_init_worker if workers > 0 else None,
        )

    def __iter__(self) -> Iterator[LevelBatch]:
        return self

    def __next__(self) -> LevelBatch:
        if self._it is None:
            self._it = iter(self._loader())
            for _ in range(self.spec.skip % max(1, self.options.workers)):
                next(self._it)  # batches of the restarted round that were consumed before
        batch = next(self._it)
        self.consumed += 1
        return batch

    def close(self) -> None:
        """Stop the loader's worker processes (a later ``next`` starts over from ``consumed``)."""
        self.spec.skip = self.consumed
        self._it = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "batch_size": self.spec.batch_size,
            "workers": self.options.workers,
            "world_size": self.spec.world_size,
            "seed": self.spec.seed,
        }


def check_resumable(level: str, saved: Mapping[str, Any], spec: StreamSpec, workers: int) -> int:
    """The batch count to skip for ``saved`` (a :meth:`LevelLoader.state_dict`), after checking that the
    stream would be the same one; raises naming the setting that changed."""
    now = {"batch_size": spec.batch_size, "workers": workers, "world_size": spec.world_size, "seed": spec.seed}
    for key, value in now.items():
        if key in saved and saved[key] != value:
            raise CorpusError(
                f"cannot resume level {level!r} exactly: {key} was {saved[key]} in the checkpoint and is {value} "
                "now; resume with the same data settings, seed and number of ranks"
            )
    return int(saved.get("consumed", 0))


def held_out_batches(
    level: Any,
    shards: list[str],
    held_out: float,
    batch_size: int,
    transform: Any,
    preprocess_cfg: Mapping[str, Any],
    seed: int = 0,
    workers: int = 0,
    max_batches: int | None = None,
) -> Iterator[LevelBatch]:
    """One pass over the held-out samples of ``level`` in corpus order (no related crops): for evaluation.

    Every rank sees the same batches.
    """
    spec = StreamSpec(
        shards=shards, level=level, split="held_out", held_out=held_out, batch_size=batch_size, seed=seed,
        infinite=False, by_shard=False, related=False, shuffle_buffer=0,
    )
    yield from itertools.islice(LevelLoader(spec, transform, preprocess_cfg, LoaderOptions(workers=workers)),
                                max_batches)

