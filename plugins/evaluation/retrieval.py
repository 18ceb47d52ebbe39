"""Retrieval evaluators over the full held-out gallery: per level, across levels, and region boxes against texts.

A query is a hit at K when any of its positives ranks in the top K. Identical texts (after stripping) are merged into
one gallery entry with several positive images, as PMC-CLIP and BIOMEDICA count them. A positive's rank counts the
negatives scoring at least as high as the best positive (ties go against the query, so a model that gives every input
the same embedding scores at chance, not at the top). Every metric is a :class:`~panel2patch.data.Score` whose rows are
its queries: ``R@K`` (hit or not), ``mrr`` (reciprocal rank) and ``median_rank`` (1 is best).

Metric keys: ``retrieval/LEVEL/{i2t,t2i}_{r1,r5,r10,mrr,median_rank}`` (``retrieval/LEVEL@N/...`` for the mean over
``draws`` random sub-galleries of N images, the PMC-CLIP 2,000-pair protocol), ``cross/{region_text_to_panel,
panel_to_caption,region_to_subcaption}/...`` and ``box_text/{roi,crop}/...``; ``.../images`` and ``.../texts`` are the
gallery sizes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from panel2patch.components import Evaluator
from panel2patch.data import Score
from panel2patch.errors import Panel2PatchError

from .gallery import Gallery, Item

_CHUNK = 1024


def text_id(text: str) -> str:
    return "text:" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def best_positive_ranks(queries: Any, gallery: Any, positives: Sequence[Sequence[int]]) -> np.ndarray:
    """0-based rank of each query's best positive among ``gallery`` rows (cosine similarity, rows normalised)."""
    import torch

    ranks = np.zeros(len(positives), dtype=np.int64)
    for start in range(0, len(positives), _CHUNK):
        sim = queries[start:start + _CHUNK] @ gallery.T
        mask = torch.zeros_like(sim, dtype=torch.bool)
        for row, pos in enumerate(positives[start:start + _CHUNK]):
            mask[row, list(pos)] = True
        # a NaN similarity (a broken model) is the worst case: a NaN positive never counts, a NaN negative beats all
        best = torch.where(mask, sim.nan_to_num(nan=-torch.inf), torch.full_like(sim, -torch.inf)).max(dim=1).values
        sim = sim.nan_to_num(nan=torch.inf)
        ranks[start:start + len(sim)] = ((sim >= best[:, None]) & ~mask).sum(dim=1).numpy()
    return ranks


def rank_scores(prefix: str, ranks: np.ndarray, ids: Sequence[str], ks: Sequence[int]) -> dict[str, Score]:
    ids = tuple(ids)
    out = {}
    for k in ks:
        hits = (ranks < k).astype(np.float64)
        out[f"{prefix}_r{k}"] = Score(float(hits.mean()) if len(hits) else float("nan"), hits, ids)
    reciprocal = 1.0 / (ranks + 1.0)
    out[f"{prefix}_mrr"] = Score(float(reciprocal.mean()) if len(ranks) else float("nan"), reciprocal, ids)
    position = ranks + 1.0
    out[f"{prefix}_median_rank"] = Score(float(np.median(position)) if len(ranks) else float("nan"), position, ids,
                                         statistic=np.median)
    return out


def _texts(texts: Sequence[str]) -> list[str]:
    return [t.strip() for t in texts if t and t.strip()]


def image_text_scores(prefix: str, images: Any, image_ids: Sequence[str], image_texts: Sequence[Sequence[str]],
                      model: Any, ks: Sequence[int], directions: Sequence[str] = ("i2t", "t2i")) -> dict[str, Score]:
    """Both directions between images and their texts, identical texts merged into one multi-positive target."""
    index: dict[str, int] = {}
    positives = [[index.setdefault(t, len(index)) for t in _texts(texts)] for texts in image_texts]
    keep = [i for i, pos in enumerate(positives) if pos]
    gallery_texts = list(index)
    text_emb = model.encode_texts(gallery_texts)
    out = {f"{prefix}/images": Score(float(len(keep)), None, ()), f"{prefix}/texts": Score(float(len(index)), None, ())}
    if not keep:
        return out
    if "i2t" in directions:
        ranks = best_positive_ranks(images[keep], text_emb, [positives[i] for i in keep])
        out.update(rank_scores(f"{prefix}/i2t", ranks, [image_ids[i] for i in keep], ks))
    if "t2i" in directions:
        owners: list[list[int]] = [[] for _ in gallery_texts]
        for row, i in enumerate(keep):
            for t in positives[i]:
                owners[t].append(row)
        ranks = best_positive_ranks(text_emb, images[keep], owners)
        out.update(rank_scores(f"{prefix}/t2i", ranks, [text_id(t) for t in gallery_texts], ks))
    return out


def item_embeddings(model: Any, gallery: Gallery, level: str) -> tuple[list[Item], Any]:
    """The level's items and their crop embeddings, computed once per model and level."""
    memo = model.__dict__.setdefault("_gallery_embeddings", {})
    held = memo.get((id(gallery), level))
    if held is None or held[0] is not gallery:  # the gallery is kept, so its id cannot be reused meanwhile
        items = gallery.level(level)
        held = memo[(id(gallery), level)] = (gallery, items, model.encode_images(gallery.item_crops(items),
                                                                                total=len(items)))
    return held[1], held[2]


def _check_ks(ks: Sequence[int]) -> list[int]:
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    return ks


class Retrieval(Evaluator):
    """Image->text and text->image retrieval of each level over its whole held-out gallery.

    ``levels``: level names (None: every level of the run). ``gallery_size``: also score ``draws`` seeded random
    sub-galleries of that many images, the queries of every draw pooled (ids suffixed ``#d``): image->text values are
    the mean over draws, text->image values weigh each draw by its number of distinct texts. A level with no more
    than ``gallery_size`` images has only its full-gallery scores.
    """

    def __init__(self, levels: list[str] | None = None, ks: list[int] | None = None, gallery_size: int | None = None,
                 draws: int = 5, seed: int = 0) -> None:
        self.levels = levels
        self.ks = _check_ks(ks or [1, 5, 10])
        if gallery_size is not None and gallery_size < 2:
            raise ValueError(f"gallery_size must be >= 2, got {gallery_size}")
        if draws < 1:
            raise ValueError(f"draws must be >= 1, got {draws}")
        self.gallery_size, self.draws, self.seed = gallery_size, draws, seed

    def evaluate(self, model: Any, data: Gallery) -> dict[str, Score]:
        out: dict[str, Score] = {}
        for level in self.levels or list(data.items):
            items, emb = item_embeddings(model, data, level)
            texts = [it.sample.texts for it in items]
            uids = [it.uid for it in items]
            out.update(image_text_scores(f"retrieval/{level}", emb, uids, texts, model, self.ks))
            if self.gallery_size is not None and len(items) > self.gallery_size:
                out.update(self._sub_galleries(level, emb, uids, texts, model))
        return out

    def _sub_galleries(self, level: str, emb: Any, uids: list[str], texts: list[Any], model: Any) -> dict[str, Score]:
        rng = np.random.default_rng(self.seed)
        prefix = f"retrieval/{level}@{self.gallery_size}"
        pooled: dict[str, list[Score]] = {}
        for draw in range(self.draws):
            pick = np.sort(rng.choice(len(uids), self.gallery_size, replace=False))
            scores = image_text_scores(prefix, emb[pick], [f"{uids[i]}#{draw}" for i in pick],
                                       [texts[i] for i in pick], model, self.ks)
            for key, score in scores.items():
                pooled.setdefault(key, []).append(score)
        out = {}
        for key, scores in pooled.items():
            if scores[0].rows is None:
                out[key] = Score(float(np.mean([s.value for s in scores])), None, ())
                continue
            ids = tuple(q if key.split("/")[-1].startswith("i2t") else f"{q}#{d}"
                        for d, s in enumerate(scores) for q in s.ids)
            rows = np.concatenate([s.rows for s in scores])
            statistic = scores[0].statistic
            out[key] = Score(float(np.mean(rows) if statistic is None else statistic(rows)), rows, ids, statistic)
        return out


class CrossLevelRetrieval(Evaluator):
    """Retrieval across levels: a region's text finds its parent panel among all panel images
    (``region_text_to_panel``), a panel image its figure's caption (``panel_to_caption``), a region crop its panel's
    sub-caption (``region_to_subcaption``). Needs the figure, panel and region levels."""

    def __init__(self, ks: list[int] | None = None, figure: str = "figure", panel: str = "panel",
                 region: str = "region") -> None:
        self.ks = _check_ks(ks or [1, 5, 10])
        self.names = (figure, panel, region)

    def evaluate(self, model: Any, data: Gallery) -> dict[str, Score]:
        figure, panel, region = self.names
        panels, panel_emb = item_embeddings(model, data, panel)
        regions, region_emb = item_embeddings(model, data, region)
        captions = {it.key: it.sample.texts for it in data.level(figure)}
        panel_row = {(it.key, it.sample.id): i for i, it in enumerate(panels)}
        out: dict[str, Score] = {}

        # region text -> parent panel image, among every panel of the gallery
        owners: dict[str, list[int]] = {}
        for r in regions:
            if r.sample.parent is not None and (r.key, r.sample.parent.id) in panel_row:
                for t in _texts(r.sample.texts):
                    owners.setdefault(t, []).append(panel_row[(r.key, r.sample.parent.id)])
        prefix = "cross/region_text_to_panel"
        out[f"{prefix}/images"] = Score(float(len(panels)), None, ())
        out[f"{prefix}/texts"] = Score(float(len(owners)), None, ())
        if owners:
            ranks = best_positive_ranks(model.encode_texts(list(owners)), panel_emb, list(owners.values()))
            out.update(rank_scores(f"{prefix}/t2i", ranks, [text_id(t) for t in owners], self.ks))

        with_caption = [i for i, it in enumerate(panels) if it.key in captions]
        out.update(image_text_scores("cross/panel_to_caption", panel_emb[with_caption],
                                     [panels[i].uid for i in with_caption],
                                     [captions[panels[i].key] for i in with_caption], model, self.ks,
                                     directions=("i2t",)))

        parented = [(i, panel_row[(r.key, r.sample.parent.id)]) for i, r in enumerate(regions)
                    if r.sample.parent is not None and (r.key, r.sample.parent.id) in panel_row]
        # the gallery is every panel's sub-caption, not only those with regions
        scores = self._against_all(model, region_emb[[i for i, _ in parented]], [regions[i].uid for i, _ in parented],
                                   [panels[p].sample.texts for _, p in parented], [it.sample.texts for it in panels])
        out.update(scores)
        return out

    def _against_all(self, model: Any, queries: Any, ids: list[str], positives: list[Any],
                     gallery: list[Any]) -> dict[str, Score]:
        index: dict[str, int] = {}
        for texts in gallery:
            for t in _texts(texts):
                index.setdefault(t, len(index))
        prefix = "cross/region_to_subcaption"
        out = {f"{prefix}/images": Score(float(len(ids)), None, ()), f"{prefix}/texts": Score(float(len(index)), None, ())}
        keep = [i for i, texts in enumerate(positives) if _texts(texts)]
        if not keep or not index:
            return out
        ranks = best_positive_ranks(queries[keep], model.encode_texts(list(index)),
                                    [[index[t] for t in _texts(positives[i])] for i in keep])
        out.update(rank_scores(f"{prefix}/i2t", ranks, [ids[i] for i in keep], self.ks))
        return out


class BoxTextRetrieval(Evaluator):
    """Region boxes against region texts, two ways: pooled from the parent panel's patch map with ROI-align
    (``roi``; boxes the panel's center crop cuts away are left out) and from separately encoded region crops
    (``crop``). Needs a vision tower with a patch map (ViT) for ``roi``."""

    def __init__(self, ks: list[int] | None = None, region: str = "region", output_size: int = 2,
                 sampling_ratio: int = 2, panels_per_batch: int = 32) -> None:
        self.ks = _check_ks(ks or [1, 5, 10])
        self.region = region
        self.output_size, self.sampling_ratio = output_size, sampling_ratio
        self.panels_per_batch = max(1, panels_per_batch)

    def evaluate(self, model: Any, data: Gallery) -> dict[str, Score]:
        regions, crop_emb = item_embeddings(model, data, self.region)
        texts = [r.sample.texts for r in regions]
        out = image_text_scores("box_text/crop", crop_emb, [r.uid for r in regions], texts, model, self.ks)
        rows, pooled = self._roi(model, data, regions)
        if rows:
            out.update(image_text_scores("box_text/roi", pooled, [regions[i].uid for i in rows],
                                         [texts[i] for i in rows], model, self.ks))
        else:
            out.update({"box_text/roi/images": Score(0.0, None, ()), "box_text/roi/texts": Score(0.0, None, ())})
        return out

    def _roi(self, model: Any, data: Gallery, regions: list[Item]) -> tuple[list[int], Any]:
        import torch
        import torch.nn.functional as F
        from torchvision.ops import roi_align

        from panel2patch.plugins.training.geometry import crop_box, preprocess_geometry, relative_box

        parents: dict[tuple[str, str], tuple[Any, list[tuple[int, Any]]]] = {}
        for i, r in enumerate(regions):
            if r.sample.parent is None:
                continue
            figure = data.figures[r.key]
            prect = crop_box(r.sample.parent.box, figure.width, figure.height)
            geom = preprocess_geometry(prect[2] - prect[0], prect[3] - prect[1], model.preprocess_cfg)
            mapped = geom.map_box(relative_box(crop_box(r.sample.box, figure.width, figure.height), prect))
            if mapped is not None:
                entry = parents.setdefault((r.key, r.sample.parent.id), (r.sample.parent.box, []))
                entry[1].append((i, mapped))
        keys = list(parents)
        rows: list[int] = []
        pooled: list[Any] = []
        ph, pw = model.patch
        for start in range(0, len(keys), self.panels_per_batch):
            chunk = keys[start:start + self.panels_per_batch]
            _, dense = model.encode_dense(data.crops([(key, parents[(key, pid)][0]) for key, pid in chunk]))
            if dense is None:
                raise Panel2PatchError(f"model {model.label!r} has no patch map: box_text 'roi' needs a ViT tower")
            boxes = [[j, b[0] / pw, b[1] / ph, b[2] / pw, b[3] / ph]
                     for j, slot in enumerate(chunk) for _, b in parents[slot][1]]
            rows.extend(i for slot in chunk for i, _ in parents[slot][1])
            feats = roi_align(dense, torch.tensor(boxes, dtype=dense.dtype), self.output_size, spatial_scale=1.0,
                              sampling_ratio=self.sampling_ratio, aligned=True).mean(dim=(2, 3))
            pooled.append(F.normalize(feats, dim=-1))
        return rows, (torch.cat(pooled) if pooled else None)

