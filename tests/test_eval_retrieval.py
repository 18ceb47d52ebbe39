"""Retrieval evaluators on fake models whose embeddings make every rank known, their bootstrap statistics, and the
held-out gallery they read."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from corpus_factory import make_figure, write_corpus
from PIL import Image

from panel2patch.corpus import read_corpus, sample_key
from panel2patch.data import Figure, LevelSample, Panel, Region, Score
from panel2patch.errors import Panel2PatchError
from panel2patch.manager import build
from panel2patch.plugins.evaluation.gallery import Gallery, Item, load_gallery
from panel2patch.plugins.evaluation.retrieval import (
    BoxTextRetrieval,
    CrossLevelRetrieval,
    Retrieval,
    best_positive_ranks,
    image_text_scores,
    rank_scores,
    text_id,
)
from panel2patch.plugins.evaluation.stats import interval, paired_difference
from panel2patch.plugins.training.corpus_scan import group_of, split_of

LEVELS = ("figure", "panel", "region")
METRICS = ("r1", "r5", "r10", "mrr", "median_rank")


def unit(*values: float) -> torch.Tensor:
    return F.normalize(torch.tensor(values, dtype=torch.float32), dim=0)


class FakeModel:
    """What an evaluator sees of a model, with embeddings chosen by the test: ``image_fn`` maps one gallery crop to
    its embedding, ``text_fn`` one text, ``dense_fn`` one crop to its patch map ``[D, gh, gw]`` (None: no patch map).
    """

    label = "fake"

    def __init__(self, image_fn, text_fn, dense_fn=None, patch=(8, 8), size=32, dim=4):
        self.image_fn, self.text_fn, self.dense_fn = image_fn, text_fn, dense_fn
        self.dim = dim
        self.patch = patch
        self.preprocess_cfg = {"size": size, "resize_mode": "shortest"}
        self.image_calls = 0
        self.texts_seen: list[str] = []

    def encode_images(self, images, total=None):
        self.image_calls += 1
        return self._stack([self.image_fn(im) for im in images])

    def encode_texts(self, texts):
        self.texts_seen.extend(texts)
        return self._stack([self.text_fn(t) for t in texts])

    def _stack(self, rows):
        return torch.stack(rows) if rows else torch.zeros((0, self.dim))

    def encode_dense(self, images, total=None):
        images = list(images)
        pooled = torch.stack([self.image_fn(im) for im in images])
        if self.dense_fn is None:
            return pooled, None
        return pooled, torch.stack([self.dense_fn(im) for im in images])


class ListGallery:
    """A gallery whose "crops" are its items themselves, so a fake model can embed each item by its uid."""

    def __init__(self, items: dict[str, list[Item]]):
        self.items = items

    def level(self, name):
        return self.items[name]

    def item_crops(self, items):
        return iter(items)


def item(key: str, node: str, *texts: str, level: str = "panel") -> Item:
    return Item(key, LevelSample(level, node, (0.0, 0.0, 10.0, 10.0), tuple(texts)))


def naive_ranks(sim: np.ndarray, positives) -> np.ndarray:
    """The definition, one query at a time: negatives scoring at least as high as the best positive."""
    out = []
    for row, pos in zip(sim, positives):
        pos = set(pos)
        best = max(row[j] for j in pos)
        out.append(sum(1 for j, s in enumerate(row) if j not in pos and s >= best))
    return np.array(out)


# --------------------------------------------------------------------------------------------- ranks and scores


def test_best_positive_counts_and_negatives_above_it_give_the_rank():
    queries = torch.tensor([[1.0, 0.0]] * 3)
    gallery = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    # similarities 1, 0.8, 0, -1: positive 1 has one negative above it; with positive 0 as well the best one
    # counts (rank 0); the worst row as the only positive has every other row above it
    ranks = best_positive_ranks(queries, gallery, [[1], [1, 0], [3]])
    assert ranks.tolist() == [1, 0, 3]


def test_ties_count_against_the_query_so_a_constant_model_ranks_last():
    queries = torch.ones((4, 3)) / 3**0.5
    gallery = torch.ones((6, 3)) / 3**0.5
    ranks = best_positive_ranks(queries, gallery, [[0], [1, 2], [5], [0, 1, 2, 3, 4]])
    assert ranks.tolist() == [5, 4, 5, 1]  # every negative ties with the positives: all of them rank above


def test_nan_similarities_rank_worst_so_a_broken_model_never_scores_well():
    broken = torch.full((3, 4), float("nan"))
    assert best_positive_ranks(broken, torch.full((5, 4), float("nan")), [[0], [1], [2]]).tolist() == [4, 4, 4]
    fine = unit(1, 0, 0, 0).repeat(2, 1)
    gallery = torch.cat([unit(1, 0, 0, 0)[None].reshape(1, 4), torch.full((2, 4), float("nan"))])
    # a NaN negative beats the finite positive; a NaN positive never helps
    assert best_positive_ranks(fine, gallery, [[0], [1]]).tolist() == [2, 2]


def test_chunked_ranks_over_many_queries_match_the_definition():
    rng = np.random.default_rng(3)
    # small integer vectors: exact dot products, many exact ties, on both sides of the 1024-query chunks
    queries = rng.integers(-2, 3, size=(2300, 4)).astype(np.float32)
    gallery = rng.integers(-2, 3, size=(40, 4)).astype(np.float32)
    positives = [sorted(set(rng.integers(0, 40, size=rng.integers(1, 4)).tolist())) for _ in range(len(queries))]
    ranks = best_positive_ranks(torch.from_numpy(queries), torch.from_numpy(gallery), positives)
    assert ranks.shape == (2300,)
    np.testing.assert_array_equal(ranks, naive_ranks(queries @ gallery.T, positives))


def test_rank_scores_are_recall_reciprocal_rank_and_median_position():
    ids = ("q0", "q1", "q2", "q3")
    scores = rank_scores("x/i2t", np.array([0, 2, 9, 4]), ids, [1, 5, 10])
    assert set(scores) == {f"x/i2t_{m}" for m in METRICS}
    assert scores["x/i2t_r1"].value == pytest.approx(0.25)
    assert scores["x/i2t_r5"].value == pytest.approx(0.75)
    assert scores["x/i2t_r10"].value == pytest.approx(1.0)
    assert scores["x/i2t_mrr"].value == pytest.approx((1 + 1 / 3 + 1 / 10 + 1 / 5) / 4)
    assert scores["x/i2t_median_rank"].value == pytest.approx(4.0)  # positions 1, 3, 10, 5
    assert scores["x/i2t_r5"].rows.tolist() == [1.0, 1.0, 0.0, 1.0]
    for score in scores.values():
        assert score.ids == ids and len(score.rows) == 4
        statistic = score.statistic or np.mean
        assert statistic(score.rows) == pytest.approx(score.value)


def image_text_case():
    """Four images over three distinct texts; ' a cat ' and 'a cat' are one target, the third image has no text."""
    basis = {"a cat": unit(1, 0, 0), "a dog": unit(0, 1, 0), "a bird": unit(0, 0, 1)}
    images = torch.stack([unit(0, 1, 0), unit(1, 0, 0), unit(1, 1, 1), unit(0.5, 0, 1)])
    texts = [["a cat"], ["a dog", " a cat "], ["", "  "], ["a bird"]]
    model = FakeModel(None, lambda t: basis[t], dim=3)
    return model, images, ["i0", "i1", "i2", "i3"], texts


def test_image_text_scores_merge_identical_texts_and_drop_images_without_text():
    model, images, ids, texts = image_text_case()
    scores = image_text_scores("t", images, ids, texts, model, [1, 5])
    assert scores["t/images"].value == 3 and scores["t/texts"].value == 3
    assert scores["t/images"].rows is None and scores["t/texts"].rows is None
    assert sorted(model.texts_seen) == ["a bird", "a cat", "a dog"]  # stripped, each once
    # i2t: i0 (a dog's direction) has its cat below the dog and tied with the bird -> rank 2; i1 best positive the
    # cat -> 0; i3 leans to the bird -> 0
    i2t = scores["t/i2t_r1"]
    assert i2t.ids == ("i0", "i1", "i3") and i2t.rows.tolist() == [0.0, 1.0, 1.0]
    assert scores["t/i2t_mrr"].value == pytest.approx((1 / 3 + 1 + 1) / 3)
    assert scores["t/i2t_median_rank"].value == pytest.approx(1.0)
    # t2i: the cat has two positive images (i0, i1): i1 scores 1 -> rank 0; the dog's only image i1 scores 0 and
    # i0 (1) and i3 (0) are at least as high -> rank 2; the bird -> 0
    t2i = dict(zip(scores["t/t2i_r1"].ids, scores["t/t2i_r1"].rows.tolist()))
    assert t2i == {text_id("a cat"): 1.0, text_id("a dog"): 0.0, text_id("a bird"): 1.0}
    mrr = dict(zip(scores["t/t2i_mrr"].ids, scores["t/t2i_mrr"].rows.tolist()))
    assert mrr[text_id("a dog")] == pytest.approx(1 / 3)
    for key, score in scores.items():
        if score.rows is not None:
            assert (score.statistic or np.mean)(score.rows) == pytest.approx(score.value), key
            assert len(set(score.ids)) == len(score.ids) == len(score.rows)


def test_score_ids_are_stable_across_calls_and_galleries():
    model, images, ids, texts = image_text_case()
    first = image_text_scores("t", images, ids, texts, model, [1])
    again = image_text_scores("t", images, ids, texts, model, [1])
    smaller = image_text_scores("t", images[[0, 3]], ["i0", "i3"], [texts[0], texts[3]], model, [1])
    assert first["t/t2i_r1"].ids == again["t/t2i_r1"].ids
    assert set(smaller["t/t2i_r1"].ids) < set(first["t/t2i_r1"].ids)
    assert text_id("a cat") != text_id("a dog") and text_id("a cat") == text_id("a cat")


def test_directions_can_be_limited_and_no_text_gives_only_counts():
    model, images, ids, texts = image_text_case()
    only = image_text_scores("t", images, ids, texts, model, [1], directions=("i2t",))
    assert any(k.startswith("t/i2t") for k in only) and not any(k.startswith("t/t2i") for k in only)
    empty = image_text_scores("t", images[[2]], ["i2"], [texts[2]], model, [1])
    assert set(empty) == {"t/images", "t/texts"} and empty["t/images"].value == 0


# --------------------------------------------------------------------------------------------- Retrieval


def retrieval_gallery(n: int = 8, perfect=(0, 1, 2, 5)):
    """``n`` panel items with one text each (``t0``..); ``perfect`` items embed as their text, the others
    orthogonally to every text (so they tie with all of them)."""
    dim = n + 1
    items = [item("k", f"p{i}", f"t{i}") for i in range(n)]
    emb = {it.uid: F.one_hot(torch.tensor(i if i in perfect else n), dim).float() for i, it in enumerate(items)}
    model = FakeModel(lambda it: emb[it.uid], lambda t: F.one_hot(torch.tensor(int(t[1:])), dim).float(), dim=dim)
    model.emb = emb
    return ListGallery({"panel": items}), model


def test_retrieval_reports_every_metric_of_every_level_over_the_full_gallery():
    gallery, model = retrieval_gallery()
    gallery.items["figure"] = [item("k", "f", "t1", level="figure"), item("j", "f", "t3", level="figure")]
    model.emb.update({"k/f": model.text_fn("t1"), "j/f": model.text_fn("t3")})
    scores = Retrieval(ks=[1, 5]).evaluate(model, gallery)
    for level in ("panel", "figure"):
        assert {f"retrieval/{level}/{d}_{m}" for d in ("i2t", "t2i") for m in ("r1", "r5", "mrr", "median_rank")} \
            | {f"retrieval/{level}/images", f"retrieval/{level}/texts"} <= set(scores)
    # perfect items hit; the others tie with all 8 texts -> rank 7
    assert scores["retrieval/panel/i2t_r1"].value == pytest.approx(4 / 8)
    assert scores["retrieval/panel/i2t_median_rank"].value == pytest.approx(np.median([1] * 4 + [8] * 4))
    assert scores["retrieval/panel/t2i_r1"].value == pytest.approx(4 / 8)
    assert scores["retrieval/figure/i2t_r1"].value == pytest.approx(1.0)
    assert scores["retrieval/figure/texts"].value == 2
    assert scores["retrieval/panel/images"].value == 8


def test_retrieval_embeds_each_level_once_per_model():
    gallery, model = retrieval_gallery()
    Retrieval().evaluate(model, gallery)
    Retrieval(ks=[2]).evaluate(model, gallery)
    assert model.image_calls == 1


def test_sub_galleries_pool_their_draws_with_unique_ids():
    gallery, model = retrieval_gallery(n=8)
    draws, size = 4, 3
    scores = Retrieval(ks=[1], gallery_size=size, draws=draws, seed=7).evaluate(model, gallery)
    prefix = f"retrieval/panel@{size}"
    r1 = scores[f"{prefix}/i2t_r1"]
    assert len(r1.ids) == draws * size and len(set(r1.ids)) == len(r1.ids)
    by_draw: dict[str, list[float]] = {}
    picked: dict[str, set[str]] = {}
    for q, hit in zip(r1.ids, r1.rows):
        uid, _, d = q.rpartition("#")
        by_draw.setdefault(d, []).append(hit)
        picked.setdefault(d, set()).add(uid)
    assert sorted(by_draw) == [str(d) for d in range(draws)]
    assert all(len(uids) == size for uids in picked.values())
    assert len({frozenset(u) for u in picked.values()}) > 1  # the draws differ
    # a perfect item hits whatever else is drawn; the others tie with every text of their draw and miss
    for d, uids in picked.items():
        expected = [1.0 if int(u.rsplit("/p", 1)[1]) in (0, 1, 2, 5) else 0.0 for u in sorted(uids)]
        assert sorted(by_draw[d]) == sorted(expected)
    assert r1.value == pytest.approx(np.mean([np.mean(v) for v in by_draw.values()]))
    t2i = scores[f"{prefix}/t2i_r1"]
    assert len(set(t2i.ids)) == len(t2i.ids) == draws * size
    assert t2i.value == pytest.approx(r1.value)  # unique texts: the text of each drawn item is its only query
    median = scores[f"{prefix}/i2t_median_rank"]
    assert median.statistic(median.rows) == pytest.approx(median.value)
    assert scores[f"{prefix}/images"].value == size and scores[f"{prefix}/images"].rows is None
    # the full gallery is still reported beside the sub-galleries
    assert scores["retrieval/panel/i2t_r1"].value == pytest.approx(0.5)


def test_sub_galleries_are_reproducible_from_their_seed():
    gallery, model = retrieval_gallery(n=8)
    ids = [Retrieval(ks=[1], gallery_size=3, draws=3, seed=s).evaluate(model, gallery)["retrieval/panel@3/i2t_r1"].ids
           for s in (1, 1, 2)]
    assert ids[0] == ids[1] and ids[0] != ids[2]


@pytest.mark.parametrize("kwargs, message", [
    ({"gallery_size": 1}, "gallery_size must be >= 2"),
    ({"gallery_size": 10, "draws": 0}, "draws must be >= 1"),
    ({"ks": [0, 5]}, "ks must be positive integers"),
])
def test_retrieval_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Retrieval(**kwargs)


@pytest.mark.parametrize("cls", [CrossLevelRetrieval, BoxTextRetrieval])
def test_other_retrieval_evaluators_refuse_bad_ks(cls):
    with pytest.raises(ValueError, match="ks must be positive integers"):
        cls(ks=[-1])


def test_retrieval_of_a_level_the_gallery_lacks_names_the_levels(corpus_gallery):
    gallery, model = corpus_gallery
    with pytest.raises(Panel2PatchError, match="no level 'patch'.*figure, panel, region"):
        Retrieval(levels=["patch"]).evaluate(model, gallery)


# --------------------------------------------------------------------------------------------- on a real corpus


def crop_key(image: Image.Image) -> tuple:
    return image.size, image.tobytes()


@pytest.fixture(scope="module")
def corpus_gallery(tmp_path_factory):
    """Every figure of a small corpus and a model embedding each crop as the normalised sum of one-hot vectors of
    the texts it should match: a figure its caption; a panel its texts, its figure's caption and its regions' texts;
    a region its texts and its panel's texts. Texts embed as their one-hot vector."""
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"), figures=10, shard_size=5, seed=0)
    levels = [build("levels", name, {}) for name in LEVELS]
    gallery = load_gallery(str(corpus), levels, 0.5, split="all")
    strip = lambda texts: {t.strip() for t in texts if t.strip()}
    captions = {it.key: strip(it.sample.texts) for it in gallery.level("figure")}
    panel_texts = {(it.key, it.sample.id): strip(it.sample.texts) for it in gallery.level("panel")}
    region_texts: dict[tuple[str, str], set[str]] = {}
    for it in gallery.level("region"):
        region_texts.setdefault((it.key, it.sample.parent.id), set()).update(strip(it.sample.texts))
    wanted = {
        "figure": [captions[it.key] for it in gallery.level("figure")],
        "panel": [panel_texts[node] | captions[node[0]] | region_texts.get(node, set())
                  for node in ((it.key, it.sample.id) for it in gallery.level("panel"))],
        "region": [strip(it.sample.texts) | panel_texts.get((it.key, it.sample.parent.id), set())
                   for it in gallery.level("region")],
    }
    vocab = sorted(set().union(*(s for sets in wanted.values() for s in sets)))
    index = {t: i for i, t in enumerate(vocab)}
    by_crop: dict[tuple, frozenset[str]] = {}
    for level in LEVELS:
        for crop, texts in zip(gallery.item_crops(gallery.level(level)), wanted[level]):
            assert by_crop.setdefault(crop_key(crop), frozenset(texts)) == frozenset(texts)  # crops tell items apart

    def embed_image(image):
        vec = torch.zeros(len(vocab))
        vec[[index[t] for t in by_crop[crop_key(image)]]] = 1.0
        return F.normalize(vec, dim=0)

    model = FakeModel(embed_image, lambda t: F.one_hot(torch.tensor(index[t]), len(vocab)).float(), dim=len(vocab))
    return gallery, model


def fresh(model: FakeModel) -> FakeModel:
    return FakeModel(model.image_fn, model.text_fn, model.dense_fn, model.patch, dim=model.dim)


def test_retrieval_with_matching_embeddings_is_perfect_at_every_level(corpus_gallery):
    gallery, model = corpus_gallery
    scores = Retrieval().evaluate(fresh(model), gallery)
    for level in LEVELS:
        for direction in ("i2t", "t2i"):
            assert scores[f"retrieval/{level}/{direction}_r1"].value == 1.0, (level, direction)
            assert scores[f"retrieval/{level}/{direction}_median_rank"].value == 1.0
        assert scores[f"retrieval/{level}/images"].value == len(gallery.level(level))


def test_cross_level_retrieval_with_matching_embeddings_is_perfect(corpus_gallery):
    gallery, model = corpus_gallery
    scores = CrossLevelRetrieval(ks=[1, 5]).evaluate(fresh(model), gallery)
    for key in ("cross/region_text_to_panel/t2i", "cross/panel_to_caption/i2t", "cross/region_to_subcaption/i2t"):
        assert scores[f"{key}_r1"].value == 1.0 and scores[f"{key}_mrr"].value == 1.0, key
    panels, regions = gallery.level("panel"), gallery.level("region")
    panel_ids = {(it.key, it.sample.id) for it in panels}
    parented = [r for r in regions if (r.key, r.sample.parent.id) in panel_ids]
    assert scores["cross/region_text_to_panel/images"].value == len(panels)
    assert scores["cross/region_text_to_panel/texts"].value == len({t.strip() for r in parented for t in r.sample.texts})
    assert scores["cross/panel_to_caption/images"].value == len(panels)
    assert scores["cross/panel_to_caption/texts"].value == len({it.sample.texts[0] for it in gallery.level("figure")})
    # every panel's sub-caption is a candidate, those of panels without regions included
    assert scores["cross/region_to_subcaption/texts"].value == len({t.strip() for p in panels for t in p.sample.texts})
    assert scores["cross/region_to_subcaption/images"].value == len(parented)
    assert len(scores["cross/region_to_subcaption/i2t_r1"].ids) == len(parented)
    assert not any(k.startswith("cross/region_to_subcaption/t2i") for k in scores)


def test_cross_level_retrieval_without_the_caption_signal_ranks_panels_at_chance(corpus_gallery):
    gallery, model = corpus_gallery
    captions = {it.sample.texts[0] for it in gallery.level("figure")}
    assert len(captions) > 2
    blind = FakeModel(model.image_fn,
                      lambda t: torch.full_like(model.text_fn(t), 1.0) if t in captions else model.text_fn(t))
    scores = CrossLevelRetrieval(ks=[1]).evaluate(blind, gallery)
    # every caption embeds the same: all tie, so a panel's caption ranks behind every other caption
    median = scores["cross/panel_to_caption/i2t_median_rank"]
    assert scores["cross/panel_to_caption/i2t_r1"].value == 0.0
    assert median.value == len(captions)


def test_box_text_crops_with_matching_embeddings_are_perfect(corpus_gallery):
    gallery, model = corpus_gallery
    model = fresh(model)
    model.dense_fn = lambda image: torch.zeros((corpus_gallery[1].dim, 4, 4))
    scores = BoxTextRetrieval(ks=[1]).evaluate(model, gallery)
    assert scores["box_text/crop/i2t_r1"].value == 1.0 and scores["box_text/crop/t2i_r1"].value == 1.0
    assert scores["box_text/crop/images"].value == len(gallery.level("region"))
    assert 0 < scores["box_text/roi/images"].value <= len(gallery.level("region"))


def test_box_text_roi_without_a_patch_map_is_a_clear_error(corpus_gallery):
    gallery, model = corpus_gallery
    with pytest.raises(Panel2PatchError, match="'fake' has no patch map: box_text 'roi' needs a ViT tower"):
        BoxTextRetrieval().evaluate(fresh(model), gallery)


# --------------------------------------------------------------------------------------------- ROI pooling

QUADRANTS = ("top left", "top right", "bottom left", "bottom right")


def quadrant_map(image=None) -> torch.Tensor:
    """A 4x4 patch map whose cells are the one-hot vector of their quadrant."""
    cells = torch.zeros((4, 4, 4))
    for r in range(4):
        for c in range(4):
            cells[2 * (r >= 2) + (c >= 2), r, c] = 1.0
    return cells


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buf, format="PNG")
    return buf.getvalue()


def roi_gallery() -> Gallery:
    """A square 64 px panel with a region in each quadrant of its model input (32 px: half scale), and a 128x32 px
    panel whose 32 px center crop keeps x in [48, 80): one region left of it (cut away), two inside it."""
    def region(rid, panel, x0, y0, x1, y1, text):
        return Region(id=rid, panel_id=panel, box=(x0 + 3.0, y0 + 3.0, x1 + 3.0, y1 + 3.0), texts=[text])

    square = Figure(id="square", width=70, height=70, caption="a square figure",
                    panels=[Panel(id="p0", box=(3.0, 3.0, 67.0, 67.0), subcaption="a square panel")],
                    regions=[region("tl", "p0", 4, 4, 28, 28, "top left"), region("tr", "p0", 36, 4, 60, 28, "top right"),
                             region("bl", "p0", 4, 36, 28, 60, "bottom left"),
                             region("br", "p0", 36, 36, 60, 60, "bottom right")])
    wide = Figure(id="wide", width=134, height=38, caption="a wide figure",
                  panels=[Panel(id="p0", box=(3.0, 3.0, 131.0, 35.0), subcaption="a wide panel")],
                  regions=[region("cut", "p0", 4, 4, 28, 28, "top left"), region("tl", "p0", 50, 2, 62, 14, "top left"),
                           region("br", "p0", 66, 18, 78, 30, "bottom right")])
    level = build("levels", "region", {})
    figures = {"sq": square, "wd": wide}
    return Gallery("memory", "all", 0.5, {"region": [Item(k, s) for k, f in figures.items() for s in level.samples(f)]},
                   figures=figures, images={"sq": png(70, 70), "wd": png(134, 38)})


def quadrant_text(text: str) -> torch.Tensor:
    return F.one_hot(torch.tensor(QUADRANTS.index(text)), 4).float()


def test_box_text_roi_pools_each_region_from_its_panels_patch_map():
    gallery = roi_gallery()
    constant = unit(1, 1, 1, 1)
    model = FakeModel(lambda image: constant, quadrant_text, dense_fn=quadrant_map)
    scores = BoxTextRetrieval(ks=[1], panels_per_batch=1).evaluate(model, gallery)
    assert scores["box_text/crop/images"].value == 7
    assert scores["box_text/roi/images"].value == 6  # the region the wide panel's center crop cuts away is left out
    assert "wd/cut" not in scores["box_text/roi/i2t_r1"].ids and "wd/cut" in scores["box_text/crop/i2t_r1"].ids
    assert set(scores["box_text/roi/i2t_r1"].ids) == {"sq/tl", "sq/tr", "sq/bl", "sq/br", "wd/tl", "wd/br"}
    assert scores["box_text/roi/texts"].value == 4
    assert scores["box_text/roi/i2t_r1"].value == 1.0 and scores["box_text/roi/t2i_r1"].value == 1.0
    # crops all embed the same: each region's text ranks behind the 3 other quadrant texts
    assert scores["box_text/crop/i2t_r1"].value == 0.0 and scores["box_text/crop/i2t_median_rank"].value == 4.0


def test_box_text_roi_gives_the_same_scores_whatever_the_panel_batch():
    gallery = roi_gallery()
    model = FakeModel(lambda image: unit(1, 1, 1, 1), quadrant_text, dense_fn=quadrant_map)
    one = BoxTextRetrieval(ks=[1]).evaluate(model, gallery)
    two = BoxTextRetrieval(ks=[1], panels_per_batch=1).evaluate(fresh(model), roi_gallery())
    for key in one:
        assert one[key].value == two[key].value and one[key].ids == two[key].ids


def test_box_text_roi_with_a_swapped_patch_map_misses():
    gallery = roi_gallery()
    flipped = lambda image: quadrant_map().flip(2)  # left and right swapped
    model = FakeModel(lambda image: unit(1, 1, 1, 1), quadrant_text, dense_fn=flipped)
    scores = BoxTextRetrieval(ks=[1]).evaluate(model, gallery)
    assert scores["box_text/roi/i2t_r1"].value == 0.0


# --------------------------------------------------------------------------------------------- statistics


def hits(n: int, rate: float, seed: int = 0) -> Score:
    rows = (np.random.default_rng(seed).random(n) < rate).astype(float)
    return Score(float(rows.mean()), rows, tuple(f"q{i}" for i in range(n)))


def test_interval_contains_the_value_and_narrows_with_more_queries():
    small, large = hits(30, 0.5), hits(3000, 0.5, seed=1)
    a, b = interval(small, resamples=500), interval(large, resamples=500)
    assert a.low < a.value < a.high and b.low < b.value < b.high
    assert a.value == small.value and a.n == 30
    assert (b.high - b.low) < (a.high - a.low) / 4  # width ~ 1 / sqrt(n): 100x the queries, ~1/10 the width
    assert interval(small, resamples=500, seed=3) != interval(small, resamples=500, seed=4)
    assert interval(small, resamples=500, seed=3) == interval(small, resamples=500, seed=3)


def test_interval_widens_with_the_confidence():
    score = hits(200, 0.3)
    narrow, wide = interval(score, confidence=0.5), interval(score, confidence=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_counts_single_queries_and_no_resampling_have_no_interval():
    count = interval(Score(12.0, None, ()))
    assert (count.value, count.low, count.high, count.n) == (12.0, 12.0, 12.0, 0)
    one = interval(Score(1.0, np.array([1.0]), ("q",)))
    assert (one.low, one.high, one.n) == (1.0, 1.0, 1)
    none = interval(hits(50, 0.5), resamples=0)
    assert none.low == none.high == none.value and none.n == 50
    assert count.to_json() == {"value": 12.0, "low": 12.0, "high": 12.0, "n": 0}


def test_interval_of_a_custom_statistic_resamples_it():
    rows = np.array([1.0, 2.0, 3.0, 4.0, 100.0, 5.0, 6.0, 7.0, 2.0, 3.0])
    median = interval(Score(float(np.median(rows)), rows, tuple("abcdefghij"), statistic=np.median), resamples=500)
    assert median.value == 3.5 and median.low <= 3.5 <= median.high < 100.0
    mean = interval(Score(float(rows.mean()), rows, tuple("abcdefghij")), resamples=500)
    assert mean.high > median.high  # the outlier drags the mean's resamples, not the median's


def test_paired_difference_of_a_score_with_itself_is_exactly_zero():
    score = hits(80, 0.4)
    diff = paired_difference(score, score, resamples=300)
    assert (diff.value, diff.low, diff.high, diff.n) == (0.0, 0.0, 0.0, 80)
    median = Score(2.0, np.arange(5.0), tuple("abcde"), statistic=np.median)
    assert paired_difference(median, median, resamples=100).high == 0.0


def test_paired_difference_pairs_queries_by_id_not_by_position():
    a = hits(60, 0.5, seed=2)
    reversed_a = Score(a.value, a.rows[::-1].copy(), a.ids[::-1])
    diff = paired_difference(a, reversed_a, resamples=300)
    assert diff.low == diff.high == diff.value == 0.0  # the same answers per query, listed in another order
    b = hits(60, 0.6, seed=5)
    order = np.random.default_rng(0).permutation(60)
    shuffled_b = Score(b.value, b.rows[order], tuple(b.ids[i] for i in order))
    assert paired_difference(a, b, resamples=300) == paired_difference(a, shuffled_b, resamples=300)


def test_paired_difference_uses_the_shared_queries_only():
    a = Score(0.5, np.array([1.0, 0.0, 1.0, 0.0]), ("q0", "q1", "q2", "q3"))
    b = Score(0.25, np.array([0.0, 0.0, 1.0, 0.0]), ("q2", "q3", "q4", "q5"))
    diff = paired_difference(a, b, resamples=200)
    assert diff.n == 2 and diff.value == pytest.approx((1.0 + 0.0) / 2 - (0.0 + 0.0) / 2)
    assert diff.low <= diff.value <= diff.high
    assert paired_difference(a, Score(0.0, np.zeros(2), ("x", "y"))) is None
    assert paired_difference(a, Score(3.0, None, ())) is None
    assert paired_difference(Score(3.0, None, ()), a) is None


def test_paired_difference_of_a_custom_statistic():
    a = Score(3.0, np.array([1.0, 3.0, 9.0, 2.0, 7.0]), tuple("abcde"), statistic=np.median)
    b = Score(2.0, np.array([2.0, 2.0, 1.0, 2.0, 8.0]), tuple("abcde"), statistic=np.median)
    diff = paired_difference(a, b, resamples=300)
    assert diff.value == pytest.approx(3.0 - 2.0)
    assert diff.low <= diff.value <= diff.high and diff.low < diff.high


def test_a_real_difference_has_an_interval_excluding_zero():
    n = 400
    rng = np.random.default_rng(1)
    base = (rng.random(n) < 0.4).astype(float)
    better = base.copy()
    better[rng.choice(np.flatnonzero(base == 0), 60, replace=False)] = 1.0  # 60 more hits, none lost
    ids = tuple(f"q{i}" for i in range(n))
    diff = paired_difference(Score(better.mean(), better, ids), Score(base.mean(), base, ids), resamples=500)
    assert diff.value == pytest.approx(60 / n) and 0.0 < diff.low < diff.value < diff.high


# --------------------------------------------------------------------------------------------- gallery


@pytest.fixture(scope="module")
def article_corpus(tmp_path_factory):
    """18 figures of 6 articles (three each), written like corpus_factory's corpora with metadata.article_id."""
    import random

    import webdataset as wds

    root = tmp_path_factory.mktemp("articles")
    (root / "shards").mkdir()
    rng = random.Random(5)
    with wds.TarWriter(str(root / "shards" / "corpus-000-00000.tar")) as writer:
        for i in range(18):
            figure, image = make_figure(rng, i, max_panels=2)
            figure.metadata["article_id"] = f"PMC{i // 3}"
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            writer.write({"__key__": sample_key(figure.id), "png": buf.getvalue(), "txt": figure.caption.encode(),
                          "json": json.dumps(figure.to_json()).encode()})
    return root


def test_held_out_split_is_trainings_split_by_article(article_corpus):
    levels = [build("levels", name, {}) for name in LEVELS]
    gallery = load_gallery(str(article_corpus), levels, 0.5)
    records = list(read_corpus(article_corpus, members=("json",)))
    expected = {r.key for r in records if split_of(f"article:{r.figure.metadata['article_id']}", 0.5) == "held_out"}
    by_key = {r.key for r in records if split_of(r.key, 0.5) == "held_out"}
    assert 0 < len(expected) < len(records) and expected != by_key  # the article, not the figure, decides
    assert set(gallery.figures) == expected
    articles = {r.key: r.figure.metadata["article_id"] for r in records}
    kept = {articles[k] for k in gallery.figures}
    assert all((articles[r.key] in kept) == (r.key in gallery.figures) for r in records)  # articles whole
    assert gallery.groups == {f"article:{a}" for a in kept}
    for level in levels:
        assert len(gallery.level(level.name)) == sum(len(level.samples(r.figure)) for r in records
                                                     if r.key in expected)


def test_held_out_split_of_figures_without_articles_goes_by_key(tmp_path):
    corpus = write_corpus(tmp_path / "c", figures=12, shard_size=5, seed=2)
    gallery = load_gallery(str(corpus), [build("levels", "panel", {})], 0.4)
    records = list(read_corpus(corpus, members=("json",)))
    expected = {r.key for r in records if split_of(group_of(r.key, r.figure), 0.4) == "held_out"}
    assert 0 < len(expected) < 12 and set(gallery.figures) == expected == gallery.groups
    assert all(it.key in expected and it.uid == f"{it.key}/{it.sample.id}" for it in gallery.level("panel"))
    seen = list(dict.fromkeys(it.key for it in gallery.level("panel")))
    assert seen == [r.key for r in records if r.key in set(seen)]  # corpus order


def test_split_all_keeps_every_figure_and_its_record_says_so(article_corpus):
    levels = [build("levels", name, {}) for name in LEVELS]
    gallery = load_gallery(str(article_corpus), levels, 0.5, split="all")
    records = list(read_corpus(article_corpus, members=("json",)))
    assert set(gallery.figures) == {r.key for r in records} and len(gallery.images) == 18
    record = gallery.split_record()
    assert json.loads(json.dumps(record)) == record
    assert record["corpus"] == str(article_corpus) and record["split"] == "all" and record["held_out"] == 0.5
    assert record["figures"] == 18 and record["groups"] == sorted(f"article:PMC{i}" for i in range(6))
    assert record["samples"] == {lv.name: sum(len(lv.samples(r.figure)) for r in records) for lv in levels}
    assert "sha1" in record["rule"] and "article_id" in record["rule"]


def test_gallery_crops_are_the_item_boxes(article_corpus):
    gallery = load_gallery(str(article_corpus), [build("levels", "panel", {})], 0.5, split="all")
    items = gallery.level("panel")[:4]
    crops = list(gallery.item_crops(items))
    assert len(crops) == 4
    for it, crop in zip(items, crops):
        box = tuple(int(v) for v in it.sample.box)
        assert box == it.sample.box  # the factory's boxes are whole pixels
        figure = Image.open(io.BytesIO(gallery.images[it.key])).convert("RGB")
        assert crop.convert("RGB").tobytes() == figure.crop(box).tobytes()


def test_a_bad_split_name_is_a_clear_error(article_corpus):
    with pytest.raises(Panel2PatchError, match="eval split must be one of held_out, all, got 'test'"):
        load_gallery(str(article_corpus), [build("levels", "panel", {})], 0.5, split="test")
