"""Level streams and loaders: corpus shards -> seeded, resumable batches of crops for one level.

One stream per level reads the shards (webdataset), keeps the figures of one split (``train`` or
``held_out``, decided by a hash of the figure key), expands them into level samples, shuffles them in a
buffer, batches them and only then decodes images, cuts crops and runs the model's preprocessing:

* level ``figure`` (M): whole figures, with their panels as children;
* level ``panel`` (P): panel crops, with their regions as children;
* level ``region`` (R): region crops, with the panel holding each region as its parent.

Everything random (shard order, shuffle buffer, text choice, child subsets) is seeded from the run seed,
the level, the rank and the batch position, so a stream is a pure function of the seed and the number
of batches already taken from it: :class:`LevelLoader` resumes exactly by skipping that many batches
before any image is decoded. The corpus layout is :mod:`panel2patch.corpus`'s.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from panel2patch.corpus import CorpusError, decode_sample
from panel2patch.data import Box, LevelSample
from panel2patch.errors import Panel2PatchError

from .corpus_scan import group_of, split_of
from .geometry import crop_box, preprocess_geometry, relative_box


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
                    figure, ext = decode_sample(sample, url, key)
                    if split_of(group_of(key, figure), spec.held_out) != spec.split:
                        continue
                    image = sample[ext]
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

        from panel2patch.images import open_image

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
