"""The tiny recipe learns on CPU: every level's loss falls and held-out panel retrieval at least doubles."""

from __future__ import annotations

import json

import pytest
from corpus_factory import tiny_recipe, write_corpus

from panel2patch.cli import main


@pytest.mark.slow
def test_tiny_training_lowers_every_level_loss_and_doubles_panel_retrieval(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", figures=96, shard_size=24, seed=0)
    recipe = tiny_recipe(
        tmp_path / "recipe.yaml", corpus, tmp_path / "out",
        optim={"max_steps": 90, "lr": 3e-3, "warmup_steps": 5},
        data={"batch_size": {"figure": 8, "panel": 16, "region": 16}, "held_out": 0.25},
        validation={"batch_size": 16, "max_batches": 8},
    )
    assert main(["train", str(recipe), "train.log_every=1"]) == 0

    records = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert len(train) == 90
    for level in ("figure", "panel", "region"):
        losses = [r[f"{level}/loss"] for r in train if r["levels"] == level]
        assert len(losses) == 30
        first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6
        assert last < 0.9 * first, (level, first, last)

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    start, end = summary["eval_start"], summary["eval_end"]
    assert end["eval/panel/samples"] >= 32
    before, after = start["eval/panel/i2t_r1"], end["eval/panel/i2t_r1"]
    assert after >= max(2.0 * before, before + 0.15), (before, after)
    assert end["eval/panel/t2i_r1"] >= max(2.0 * start["eval/panel/t2i_r1"], start["eval/panel/t2i_r1"] + 0.15)
