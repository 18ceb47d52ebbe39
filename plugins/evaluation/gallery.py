"""The evaluated part of a corpus: the level samples of the held-out split (or of every figure), and their crops.

The split is the one training uses (:func:`~panel2patch.plugins.training.corpus_scan.split_of` of the article or
figure group), so figures of one paper never straddle train and test. Samples keep corpus order; each figure's image
bytes are kept once and decoded once per pass over its crops.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from panel2patch.corpus import CorpusError, decode_sample, find_shards, iter_shard
from panel2patch.data import Box, Figure, LevelSample
from panel2patch.errors import Panel2PatchError
from panel2patch.plugins.training.corpus_scan import group_of, split_of
from panel2patch.plugins.training.geometry import crop_box

from .settings import SPLITS


@dataclass(frozen=True)
class Item:
    """One level sample of one corpus figure: ``uid`` (``KEY/NODE``) names it across models and runs."""

    key: str
    sample: LevelSample

    @property
    def uid(self) -> str:
        return f"{self.key}/{self.sample.id}"


@dataclass
class Gallery:
    """Held-out samples per level name, the figures they come from, and the groups the split kept."""

    corpus: str
    split: str
    held_out: float
    items: dict[str, list[Item]]
    figures: dict[str, Figure] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)

    def level(self, name: str) -> list[Item]:
        if name not in self.items:
            raise Panel2PatchError(f"the evaluation has no level {name!r}; it has {', '.join(self.items) or 'none'}")
        return self.items[name]

    def crops(self, regions: Sequence[tuple[str, Box]]) -> Iterator[Any]:
        """PIL crops of ``(figure key, box)`` pairs, in order (consecutive boxes of one figure decode it once)."""
        from panel2patch.images import open_image

        last_key, image = None, None
        for key, box in regions:
            if key != last_key:
                try:
                    image = open_image(self.images[key])
                except Panel2PatchError as exc:
                    raise CorpusError(f"figure {key!r}: {exc}") from None
                last_key = key
            yield image.crop(crop_box(box, image.width, image.height))

    def item_crops(self, items: Sequence[Item]) -> Iterator[Any]:
        return self.crops([(it.key, it.sample.box) for it in items])

    def split_record(self) -> dict[str, Any]:
        """What ``split.json`` of an evaluation records: the rule and every group evaluated."""
        return {"corpus": self.corpus, "split": self.split, "held_out": self.held_out,
                "rule": "sha1(group) / 2**64 < held_out; group = 'article:' + metadata.article_id where the source "
                        "names the article, else the figure's sample key",
                "figures": len(self.figures), "samples": {k: len(v) for k, v in self.items.items()},
                "groups": sorted(self.groups)}


def load_gallery(corpus: str, levels: Sequence[Any], held_out: float, split: str = "held_out") -> Gallery:
    """Read every shard of ``corpus`` and keep the figures of ``split`` (``held_out`` or ``all``); a damaged shard or
    member is a :class:`~panel2patch.corpus.CorpusError` naming it."""
    if split not in SPLITS:
        raise Panel2PatchError(f"eval split must be one of {', '.join(SPLITS)}, got {split!r}")
    gallery = Gallery(corpus, split, held_out, {lv.name: [] for lv in levels})
    for url in find_shards(corpus):
        for key, sample in iter_shard(url):
            figure, ext = decode_sample(sample, url, key)
            group = group_of(key, figure)
            if split == "held_out" and split_of(group, held_out) != "held_out":
                continue
            if key in gallery.figures:
                raise CorpusError(f"{url}: figure key {key!r} appears twice in the corpus")
            gallery.figures[key], gallery.images[key] = figure, sample[ext]
            gallery.groups.add(group)
            for level in levels:
                gallery.items[level.name].extend(Item(key, s) for s in level.samples(figure))
    return gallery
