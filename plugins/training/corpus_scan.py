"""Train/held-out split of corpus figures (by article when the source names it) and the count of level samples per
split and shard."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from panel2patch.corpus import decode_figure, find_shards, iter_shard

SPLITS = ("train", "held_out")


def is_held_out(key: str, fraction: float) -> bool:
    """Whether figure ``key`` belongs to the held-out split: a stable hash, independent of seed and layout."""
    if fraction <= 0.0:
        return False
    digest = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big")
    return digest / 2.0**64 < fraction


def group_of(key: str, figure: Any) -> str:
    """What the split keeps together: the article (``metadata["article_id"]``, as the PMC source sets it), else the
    figure's own sample key."""
    article = figure.metadata.get("article_id")
    return f"article:{article}" if isinstance(article, str) and article else key


def split_of(key: str, fraction: float) -> str:
    """The split of group ``key`` (see :func:`group_of`)."""
    return "held_out" if is_held_out(key, fraction) else "train"


@dataclass
class CorpusCounts:
    """Samples per level and split, over the whole corpus and per shard."""

    shards: list[str]
    figures: dict[str, int]
    samples: dict[str, dict[str, int]]
    per_shard: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    held_out_groups: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {"shards": len(self.shards), "figures": self.figures, "samples": self.samples,
                "held_out_groups": len(self.held_out_groups)}

    def split_record(self, fraction: float) -> dict[str, Any]:
        """What ``split.json`` of a run records: the rule, the figures per split and every held-out group."""
        return {"held_out": fraction, "rule": "sha1(group) / 2**64 < held_out; group = 'article:' + "
                "metadata.article_id where the source names the article, else the figure's sample key",
                "figures": self.figures, "held_out_groups": sorted(self.held_out_groups)}


def scan(corpus: str, levels: Sequence[Any], held_out: float) -> CorpusCounts:
    """Count figures and level samples per split, reading only the JSON members of each shard."""
    shards = find_shards(corpus)
    figures = {s: 0 for s in SPLITS}
    held_out_groups: set[str] = set()
    samples = {lv.name: {s: 0 for s in SPLITS} for lv in levels}
    per_shard: dict[str, dict[str, dict[str, int]]] = {}
    for shard in shards:
        mine = {lv.name: {s: 0 for s in SPLITS} for lv in levels}
        # the keys are webdataset's sample keys, the ones the streams split by
        for key, members in iter_shard(shard, ("json",)):
            figure = decode_figure(members["json"], shard, key)
            group = group_of(key, figure)
            split = split_of(group, held_out)
            figures[split] += 1
            if split == "held_out":
                held_out_groups.add(group)
            for lv in levels:
                mine[lv.name][split] += len(lv.samples(figure))
        per_shard[shard] = mine
        for lv in levels:
            for s in SPLITS:
                samples[lv.name][s] += mine[lv.name][s]
    return CorpusCounts(shards, figures, samples, per_shard, held_out_groups)
