"""Ablation grids: shipped grids resolve for every variant, grid errors, seed pooling, and the smoke grid end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from corpus_factory import tiny_recipe, write_corpus

from panel2patch.cli import main as cli_main
from panel2patch.config import Recipe, build, load, validate
from panel2patch.data import Score
from panel2patch.plugins.evaluation import ablation
from panel2patch.plugins.evaluation.ablation import AblationError, load_grid, pooled, summarise, variant_config
from panel2patch.plugins.evaluation.report import ModelResult

PAPER_VARIANTS = {"full", "figure_only", "panel_only", "region_only", "figure_panel", "joint", "multi_then_single",
                  "no_interlevel", "no_roi"}


@pytest.mark.parametrize("grid", sorted(ablation.shipped_grids()))
def test_every_variant_of_a_shipped_grid_is_a_valid_recipe_with_equal_steps(grid, tmp_path):
    source, body = load_grid(grid)
    base = load("train_tiny")
    steps = set()
    for variant in body["variants"]:
        config = variant_config(base.config, body, variant, 1, tmp_path / variant, source)
        recipe = Recipe(f"{variant}", config)
        validate(recipe)
        schedule = build(recipe, "train.schedule")
        schedule.bind(["figure", "panel", "region"])
        codes = {lv.code: lv.name for lv in build(recipe, "train.levels")} | {"figure": "figure", "panel": "panel",
                                                                                "region": "region"}
        assert all(name in codes for step in range(400) for name in schedule.levels(step))
        assert config["train"]["seed"] == 1 and config["train"]["output_dir"] == str(tmp_path / variant)
        steps.add(config["train"]["optim"]["max_steps"])
    assert len(steps) == 1
    assert "panel2patch ablate" in (ablation.shipped_grids()[grid]).read_text().splitlines()[1]


def test_the_paper_grid_has_the_papers_variants():
    _, grid = load_grid("paper")
    assert set(grid["variants"]) == PAPER_VARIANTS and grid["reference"] == "full"
    base = load("train_tiny").config
    losses = {v: [t["name"] for t in variant_config(base, grid, v, 0, "x", "g")["train"]["losses"]]
              for v in ("full", "no_interlevel", "no_roi")}
    assert losses == {"full": ["clip_contrastive", "interlevel_contrastive", "roi_consistency"],
                      "no_interlevel": ["clip_contrastive", "roi_consistency"],
                      "no_roi": ["clip_contrastive", "interlevel_contrastive"]}
    sequence = build(Recipe("g", variant_config(base, grid, "multi_then_single", 0, "x", "g")), "train.schedule")
    assert [sequence.levels(i)[0] for i in (0, 1, 2, 147, 150, 299)] == ["M", "P", "R", "M", "P", "P"]


@pytest.mark.parametrize("text, message", [
    ("variants: {}", "non-empty 'variants'"),
    ("variants: {a: {}}\nextra: 1", "unknown keys ['extra']"),
    ("variants: {a: {}}\nreference: b", "reference 'b' is not a variant"),
    ("variants: {a: [1, 2]}", "'a' must map dotted recipe keys"),
    ("variants: {'a/b': {}}", "variant name 'a/b'"),
    ("variants: [", "cannot read it"),
])
def test_a_bad_grid_is_refused_with_its_reason(tmp_path, text, message):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(AblationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_grid(str(path))


def test_an_unknown_grid_name_lists_the_shipped_ones():
    with pytest.raises(AblationError, match="shipped grids: .*paper.*smoke"):
        load_grid("nope")


def _result(label, values):
    rows = np.array(values, dtype=float)
    return ModelResult(label, {}, {"m": Score(float(rows.mean()), rows, tuple(f"q{i}" for i in range(len(rows))))})


def test_seeds_pool_into_one_paired_difference_and_a_sample_sd():
    runs = {"full": {0: _result("full/seed-0", [1, 1, 0, 0]), 1: _result("full/seed-1", [1, 0, 0, 0])},
            "cut": {0: _result("cut/seed-0", [0, 1, 0, 0]), 1: _result("cut/seed-1", [0, 0, 0, 0])}}
    summary = summarise(runs, "full", ["m", "absent"], resamples=200, confidence=0.9, seed=0)
    cut = summary["cut"]["m"]
    assert cut["seeds"] == {"0": 0.25, "1": 0.0}
    assert cut["mean"] == pytest.approx(0.125) and cut["sd"] == pytest.approx(np.std([0.25, 0.0], ddof=1))
    # two of the eight pooled queries lose a hit: -0.25 on average over the seeds
    assert cut["difference"]["value"] == pytest.approx(-0.25) and cut["difference"]["n"] == 8
    assert cut["difference"]["low"] <= -0.25 <= cut["difference"]["high"] <= 0.0
    assert "difference" not in summary["full"]["m"] and "absent" not in summary["cut"]
    both = pooled([(0, runs["cut"][0].scores["m"]), (1, runs["cut"][1].scores["m"])])
    assert both.ids[0] == "seed-0:q0" and both.ids[-1] == "seed-1:q3" and both.value == pytest.approx(0.125)


@pytest.mark.slow
def test_the_smoke_grid_trains_each_run_once_and_writes_one_table(tmp_path, monkeypatch):
    import socket

    held = socket.socket()  # a rendezvous port this process holds, as after an earlier run in the same process
    held.bind(("127.0.0.1", 0))
    held.listen()
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(held.getsockname()[1]))
    corpus = write_corpus(tmp_path / "corpus", figures=24, shard_size=12, seed=4)
    recipe = tiny_recipe(tmp_path / "recipe.yaml", corpus, tmp_path / "unused")
    out = tmp_path / "ablate"
    assert cli_main(["ablate", str(recipe), "--grid", "smoke", "--seeds", "2", "--out", str(out)]) == 0
    record = json.loads((out / "ablation.json").read_text())
    assert set(record["summary"]) == {"full", "panel_only"} and record["reference"] == "full"
    assert record["steps"] == {"full": [4], "panel_only": [4]}
    assert record["images_seen"]["full"] > 0 and record["images_seen"]["full"] != record["images_seen"]["panel_only"]
    panel = record["summary"]["panel_only"]["retrieval/panel/i2t_r5"]
    assert set(panel["seeds"]) == {"0", "1"} and "difference" in panel and "sd" in panel
    table = (out / "ablation.md").read_text().splitlines()
    assert [line.split("|")[1].strip() for line in table if line.startswith("| ") and "variant" not in line] == [
        "full", "panel_only"]
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for variant in ("full", "panel_only"):
        for seed in (0, 1):
            run = out / "runs" / variant / f"seed-{seed}"
            assert (run / "export" / "open_clip_model.safetensors").is_file()
            assert load(str(run / "recipe.yaml")).config["train"]["seed"] == seed

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(ablation, "train_run", no_training)
    again = ablation.ablate(str(recipe), "smoke", 2, out=str(out))
    assert again["summary"]["full"]["retrieval/panel/i2t_r5"]["mean"] == pytest.approx(
        record["summary"]["full"]["retrieval/panel/i2t_r5"]["mean"])


def test_a_variant_that_breaks_the_recipe_is_refused_before_anything_trains(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus", figures=8, shard_size=8, seed=1)
    recipe = tiny_recipe(tmp_path / "recipe.yaml", corpus, tmp_path / "unused")
    grid = tmp_path / "grid.yaml"
    grid.write_text("variants:\n  full: {}\n  broken: {train.schedule: {name: no_such_schedule}}\n")
    monkeypatch.setattr(ablation, "train_run", lambda *a, **k: pytest.fail("trained before checking every variant"))
    with pytest.raises(AblationError, match="variant 'broken'.*no_such_schedule"):
        ablation.ablate(str(recipe), str(grid), 1, out=str(tmp_path / "out"))
