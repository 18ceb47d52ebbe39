"""Hierarchical data: corpus scan, splits, level batches, determinism and exact resume of the streams."""

from __future__ import annotations

import io
import json
import random
import tarfile

import pytest
import torch
import webdataset as wds
from corpus_factory import make_figure, write_corpus
from open_clip.transform import PreprocessCfg, image_transform_v2

from panel2patch.corpus import CorpusError, find_shards, read_corpus, sample_key
from panel2patch.data import Figure
from panel2patch.errors import RecipeError
from panel2patch.manager import build
from panel2patch.plugins.training.corpus_scan import is_held_out, scan
from panel2patch.plugins.training.loaders import LevelLoader, LoaderOptions, StreamSpec, held_out_batches

CFG = {"size": 32, "resize_mode": "shortest", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), figures=40, shard_size=10, seed=3)


@pytest.fixture(scope="module")
def levels():
    return {name: build("levels", name, {}) for name in ("figure", "panel", "region")}


def _transform():
    return image_transform_v2(PreprocessCfg(**CFG), is_train=False)


def _figures(root):
    return {record.key: record.figure for record in read_corpus(root, members=("json",))}


def _loader(corpus, level, **spec):
    args = dict(shards=find_shards(corpus), level=level, split="train", held_out=0.2, batch_size=4, seed=5,
                shuffle_buffer=16, by_shard=False, max_children=3)
    args.update(spec)
    workers = args.pop("workers", 0)
    return LevelLoader(StreamSpec(**args), _transform(), CFG, LoaderOptions(workers=workers))


def test_scan_counts_every_level_sample_per_split(corpus, levels):
    counts = scan(str(corpus), list(levels.values()), held_out=0.2)
    figures = _figures(corpus)
    assert sum(counts.figures.values()) == len(figures) == 40
    for name, level in levels.items():
        for split in ("train", "held_out"):
            expected = sum(len(level.samples(f)) for k, f in figures.items() if is_held_out(k, 0.2) == (split == "held_out"))
            assert counts.samples[name][split] == expected
    assert counts.figures["held_out"] > 0 and counts.figures["train"] > counts.figures["held_out"]
    assert len(counts.per_shard) == 4


def test_held_out_split_is_stable_and_about_the_requested_size():
    keys = [f"fig-{i}" for i in range(4000)]
    chosen = [k for k in keys if is_held_out(k, 0.1)]
    assert 300 < len(chosen) < 500
    assert chosen == [k for k in keys if is_held_out(k, 0.1)]
    assert not any(is_held_out(k, 0.0) for k in keys)


def test_missing_corpus_and_empty_corpus_are_clear_errors(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        find_shards(str(tmp_path / "nope"))
    with pytest.raises(CorpusError, match="no WebDataset shards"):
        find_shards(str(tmp_path))


def test_level_batches_hold_samples_related_crops_and_edges(corpus, levels):
    figures = _figures(corpus)
    for name in ("figure", "panel", "region"):
        batch = next(_loader(corpus, levels[name]))
        assert batch.level == name and batch.num_samples == 4
        assert batch.images.shape[1:] == (3, 32, 32) and batch.images.shape[0] == len(batch.texts) == len(batch.ids)
        for i, ident in enumerate(batch.ids[: batch.num_samples]):
            key, sample_id = ident.split("/")
            assert not is_held_out(key, 0.2)
            (sample,) = [s for s in levels[name].samples(figures[key]) if s.id == sample_id]
            assert batch.texts[i] in sample.texts
        child, parent = batch.edge_child.tolist(), batch.edge_parent.tolist()
        if name == "region":
            assert sorted(child) == list(range(batch.num_samples))
            assert all(p >= batch.num_samples for p in parent)
        else:
            assert all(c >= batch.num_samples for c in child) and all(p < batch.num_samples for p in parent)
            assert all(parent.count(p) <= 3 for p in set(parent))  # max_children
        valid = batch.roi_boxes[batch.roi_valid]
        assert torch.all(valid[:, 2] > valid[:, 0]) and torch.all(valid[:, 3] > valid[:, 1])
        assert float(valid.min()) >= 0.0 and float(valid.max()) <= 32.0


def test_roi_box_lands_on_the_region_inside_the_preprocessed_panel(tmp_path):
    """A region's shape is drawn on its panel: the mapped box must cover the shape's pixels in the input."""
    root = write_corpus(tmp_path / "c", figures=6, shard_size=6, seed=11)
    level = build("levels", "panel", {})
    transform = image_transform_v2(PreprocessCfg(size=64, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)), is_train=False)
    spec = StreamSpec(shards=find_shards(root), level=level, split="train", held_out=0.0, batch_size=6, seed=0,
                      shuffle_buffer=0, infinite=False, by_shard=False)
    loader = LevelLoader(spec, transform, {"size": 64, "resize_mode": "shortest"}, LoaderOptions(workers=0))
    batch = next(loader)
    checked = 0
    for e in range(batch.edge_child.numel()):
        if not batch.roi_valid[e]:
            continue
        panel = batch.images[batch.edge_parent[e]]
        x0, y0, x1, y1 = batch.roi_boxes[e].tolist()
        inside = panel[:, int(y0) + 2 : int(y1) - 2, int(x0) + 2 : int(x1) - 2]
        crop = batch.images[batch.edge_child[e]]
        # the region crop is mostly its shape; the box interior in the panel has the same mean colour
        assert torch.allclose(inside.mean(dim=(1, 2)), crop.mean(dim=(1, 2)), atol=0.12)
        checked += 1
    assert checked >= 3


def test_streams_are_deterministic_given_the_seed(corpus, levels):
    first = _loader(corpus, levels["panel"])
    second = _loader(corpus, levels["panel"])
    other = _loader(corpus, levels["panel"], seed=6)
    run_a = [(b.ids, b.texts) for b in (next(first) for _ in range(5))]
    run_b = [(b.ids, b.texts) for b in (next(second) for _ in range(5))]
    run_c = [(b.ids, b.texts) for b in (next(other) for _ in range(5))]
    assert run_a == run_b
    assert run_a != run_c


@pytest.mark.parametrize("workers, taken", [(0, 4), (2, 4), (2, 3)])
def test_a_loader_resumed_from_its_state_continues_with_the_next_batch(corpus, levels, workers, taken):
    full = _loader(corpus, levels["region"], workers=workers)
    reference = [next(full) for _ in range(taken + 3)]
    partial = _loader(corpus, levels["region"], workers=workers)
    for _ in range(taken):
        next(partial)
    state = partial.state_dict()
    assert state["consumed"] == taken
    resumed = _loader(corpus, levels["region"], workers=workers, skip=state["consumed"])
    for expected in reference[taken:]:
        got = next(resumed)
        assert got.ids == expected.ids and got.texts == expected.texts
        assert torch.equal(got.images, expected.images) and torch.equal(got.roi_boxes, expected.roi_boxes)


def test_ranks_read_disjoint_samples(corpus, levels):
    shards = find_shards(corpus)
    seen = []
    for rank in range(2):
        loader = _loader(corpus, levels["panel"], rank=rank, world_size=2, by_shard=True, shards=shards, batch_size=2)
        ids = [i for _ in range(4) for i in next(loader).ids[:2]]
        seen.append(set(ids))
    assert seen[0] and seen[1] and not (seen[0] & seen[1])


def test_held_out_batches_cover_the_held_out_split_once(corpus, levels):
    figures = _figures(corpus)
    expected = sorted(f"{k}/{s.id}" for k, f in figures.items() if is_held_out(k, 0.2) for s in levels["panel"].samples(f))
    got = [i for b in held_out_batches(levels["panel"], find_shards(corpus), 0.2, 4, _transform(), CFG)
           for i in b.ids[: b.num_samples]]
    assert sorted(got) == expected
    batch = next(held_out_batches(levels["panel"], find_shards(corpus), 0.2, 4, _transform(), CFG))
    assert batch.edge_child.numel() == 0 and batch.images.shape[0] == batch.num_samples


def test_a_stream_with_no_samples_for_its_reader_says_so(tmp_path, levels):
    figure, image = make_figure(random.Random(0), 0)
    figure.regions = []
    (tmp_path / "c").mkdir()
    with wds.TarWriter(str(tmp_path / "c" / "one.tar")) as sink:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        sink.write({"__key__": sample_key(figure.id), "png": buf.getvalue(), "txt": b"x",
                    "json": json.dumps(figure.to_json()).encode()})
    loader = _loader(tmp_path / "c", levels["region"], held_out=0.0)
    with pytest.raises(CorpusError, match="found no train samples"):
        next(loader)


def _panel_with_preamble():
    from panel2patch.data import Panel

    return Figure(id="f", width=100, height=50, caption="Shared title. (A) Left half. (B) Right half.", panels=[
        Panel(id="p0", box=(0, 0, 50, 50), label="A", subcaption="Shared title. Left half.",
              preamble="Shared title."),
        Panel(id="p1", box=(50, 0, 100, 50), label="B", subcaption="Right half."),
    ])


@pytest.mark.parametrize("place, expected", [
    ("after", ["Left half. Shared title.", "Right half."]),
    ("before", ["Shared title. Left half.", "Right half."]),
    ("drop", ["Left half.", "Right half."]),
])
def test_panel_text_places_the_shared_preamble(place, expected):
    figure = _panel_with_preamble()
    panel = build("levels", "panel", {"preamble": place})
    assert [s.texts[0] for s in panel.samples(figure)] == expected
    children = build("levels", "figure", {"preamble": place}).samples(figure)[0].children
    assert [c.texts[0] for c in children] == expected


def test_unknown_preamble_place_is_refused():
    with pytest.raises(RecipeError, match="levels .panel.: .*preamble must be one of after, before, drop"):
        build("levels", "panel", {"preamble": "middle"})


def test_scan_splits_by_the_same_keys_as_the_streams(tmp_path, corpus, levels):
    # members stored under a folder: webdataset's sample key keeps the folder, so the split must too
    foldered = tmp_path / "shards"
    foldered.mkdir()
    for shard in find_shards(corpus):
        with tarfile.open(shard) as src, tarfile.open(foldered / shard.rsplit("/", 1)[-1], "w") as dst:
            for member in src:
                data = src.extractfile(member).read()
                member.name = f"sub/{member.name}"
                dst.addfile(member, io.BytesIO(data))
    counts = scan(str(foldered), [levels["figure"]], held_out=0.5)
    streamed = sum(b.num_samples for b in held_out_batches(levels["figure"], find_shards(str(foldered)), 0.5, 8,
                                                           _transform(), CFG))
    assert counts.samples["figure"]["held_out"] == streamed > 0
