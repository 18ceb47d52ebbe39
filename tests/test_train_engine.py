"""The DeepSpeed trainer in one process: run directory, hooks, checkpoints, exact resume, export."""

from __future__ import annotations

import json
import math

import pytest
import torch
from corpus_factory import tiny_recipe, write_corpus

from panel2patch.config import load
from panel2patch.corpus import read_corpus
from panel2patch.errors import RecipeError
from panel2patch.hookspecs import hookimpl
from panel2patch.manager import plugin_manager
from panel2patch.plugins.training.corpus_scan import is_held_out
from panel2patch.plugins.training.distributed import seed_everything
from panel2patch.plugins.training.errors import TrainError
from panel2patch.plugins.training.trainer import Trainer


class Recorder:
    """Records lifecycle hook calls; optionally crashes the run after a given step."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.calls: list[tuple] = []
        self.crash_after = crash_after

    @hookimpl
    def on_run_start(self, run, is_main):
        self.calls.append(("run_start", run.command, is_main))

    @hookimpl
    def on_stage_start(self, run, stage, is_main):
        self.calls.append(("stage_start", stage, is_main))

    @hookimpl
    def on_step_end(self, run, step, metrics, is_main):
        self.calls.append(("step_end", step, is_main, dict(metrics)))
        if self.crash_after is not None and step == self.crash_after:
            raise RuntimeError("simulated crash")

    @hookimpl
    def on_error(self, run, stage, error, is_main):
        self.calls.append(("error", stage, str(error)))

    @hookimpl
    def on_run_end(self, run, summary, is_main):
        self.calls.append(("run_end", summary["steps"], is_main))


@pytest.fixture
def recorder():
    def attach(crash_after=None):
        rec = Recorder(crash_after)
        plugin_manager().register(rec, name=f"test-recorder-{id(rec)}")
        attached.append(rec)
        return rec

    attached: list[Recorder] = []
    yield attach
    for rec in attached:
        if plugin_manager().is_registered(rec):
            plugin_manager().unregister(rec)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), figures=36, shard_size=12, seed=1)


def _recipe(tmp_path, corpus, name, **train):
    defaults = {"optim": {"max_steps": 6, "warmup_steps": 2, "lr": 2e-3}, "checkpoint": {"every_n_steps": 3, "keep": 3}}
    defaults.update(train)
    return load(str(tiny_recipe(tmp_path / f"{name}.yaml", corpus, tmp_path / name, **defaults)))


def _train_records(out_dir):
    lines = (out_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, corpus):
    tmp = tmp_path_factory.mktemp("full")
    recipe = _recipe(tmp, corpus, "full")
    rec = Recorder()
    plugin_manager().register(rec, name="test-recorder-full")
    try:
        trainer = Trainer(recipe)
        summary = trainer.fit()
    finally:
        plugin_manager().unregister(rec)
    return trainer, summary, rec, tmp / "full"


def test_training_writes_a_run_directory_checkpoints_and_metrics(uninterrupted):
    trainer, summary, _, out = uninterrupted
    assert summary["steps"] == 6
    info = json.loads((out / "run.json").read_text())
    assert info["plan"]["total_steps"] == 6 and info["world_size"] == 1
    assert info["parameters"]["trainable"] == sum(p.numel() for p in trainer.clip.parameters() if p.requires_grad)
    assert info["counts"]["samples"]["panel"]["train"] > 0 and "torch" in info["versions"]
    assert (out / "config.yaml").read_text().startswith("train:")
    split = json.loads((out / "split.json").read_text())
    assert split["figures"] == info["counts"]["figures"]
    assert len(split["held_out_groups"]) == info["counts"]["held_out_groups"] == split["figures"]["held_out"] > 0
    keys = [r.key for r in read_corpus(trainer.cfg.data.corpus, members=("json",))]
    assert split["held_out_groups"] == sorted(k for k in keys if is_held_out(k, split["held_out"]))
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00000006"
    assert (out / "checkpoints" / "step-00000003" / "rng_rank00000.json").is_file()
    records = _train_records(out)
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
    assert [r["levels"] for r in train] == ["figure", "panel", "region"] * 2
    assert all(f"{r['levels']}/clip_contrastive" in r and math.isfinite(r[f"{r['levels']}/loss"]) for r in train)
    assert "panel/roi_consistency" in train[1] and "figure/interlevel_contrastive" in train[0]
    assert [r["step"] for r in records if r["kind"] == "eval"] == [0, 6]
    assert summary["text_cache"]["hits"] > 0
    # linear warm-up over 2 steps from 0, then cosine decay (DeepSpeed's WarmupCosineLR)
    lrs = [r["lr"] for r in train]
    assert lrs[0] == 0.0 and lrs[1] == pytest.approx(1e-3) and max(lrs) <= 2e-3
    assert lrs[2:] == sorted(lrs[2:], reverse=True) and lrs[-1] < lrs[2]


def test_tensorboard_logs_hold_the_same_scalars_as_the_metrics_file(uninterrupted):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, _, _, out = uninterrupted
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    train = [r for r in _train_records(out) if r["kind"] == "train"]
    assert {"train/figure/clip_contrastive", "train/panel/loss", "train/lr", "eval/panel/i2t_r1"} <= tags
    logged = [(e.step, e.value) for e in events.Scalars("train/panel/loss")]
    expected = [(r["step"], r["panel/loss"]) for r in train if "panel/loss" in r]
    assert [s for s, _ in logged] == [s for s, _ in expected]
    assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-6)


def test_lifecycle_hooks_are_called_on_the_main_rank(uninterrupted):
    _, _, rec, _ = uninterrupted
    kinds = [c[0] for c in rec.calls]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end" and "error" not in kinds
    assert [c[1] for c in rec.calls if c[0] == "step_end"] == [1, 2, 3, 4, 5, 6]
    assert {c[1] for c in rec.calls if c[0] == "stage_start"} == {"train", "eval"}
    assert all(c[2] is True for c in rec.calls if c[0] in ("run_start", "step_end", "run_end"))
    assert "lr" in rec.calls[kinds.index("step_end")][3]


def test_exported_model_loads_in_stock_open_clip_with_the_trainers_embeddings(uninterrupted):
    import open_clip

    trainer, summary, _, out = uninterrupted
    stock = open_clip.create_model(f"local-dir:{out / 'export'}").eval()
    module = trainer.engine.module.eval()
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        inside = module(images)["image"]
        outside = stock.encode_image(images, normalize=True)
        text = stock.encode_text(trainer.tokenizer(["red solid."]), normalize=True)
    assert torch.allclose(inside, outside, atol=1e-5)
    assert torch.allclose(text, trainer.texts.embeddings(["red solid."]), atol=1e-5)
    # training changed the trainable weights, not the frozen ones (the run seeds before building the model)
    seed_everything(0)
    initial, _, _ = trainer.model_loader.load()
    assert not torch.allclose(initial.visual.proj, stock.visual.proj)
    assert torch.equal(initial.token_embedding.weight, stock.token_embedding.weight)


def test_resume_latest_reproduces_the_uninterrupted_losses(tmp_path, corpus, uninterrupted, recorder):
    _, _, _, full_out = uninterrupted
    recipe = _recipe(tmp_path, corpus, "resumed")
    crash = recorder(crash_after=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(recipe).fit()
    assert ("error", "train", "simulated crash") in crash.calls
    plugin_manager().unregister(crash)
    watch = recorder()
    Trainer(recipe, resume="latest").fit()
    assert [c[1] for c in watch.calls if c[0] == "step_end"] == [4, 5, 6]

    full = {r["step"]: r for r in _train_records(full_out) if r["kind"] == "train"}
    resumed = [r for r in _train_records(tmp_path / "resumed") if r["kind"] == "train"]
    assert [r["step"] for r in resumed] == [1, 2, 3, 4, 5, 6]  # the crash came before step 4 was logged
    for record in resumed[-3:]:
        expected = full[record["step"]]
        keys = [k for k in expected if "/" in k]
        assert keys and sorted(keys) == sorted(k for k in record if "/" in k)
        for key in keys:
            assert record[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), (record["step"], key)
        assert record["lr"] == pytest.approx(expected["lr"])


def test_resume_refuses_a_changed_run(tmp_path, corpus, uninterrupted):
    _, _, _, full_out = uninterrupted
    recipe = _recipe(tmp_path, corpus, "changed", checkpoint={"dir": str(full_out / "checkpoints")},
                     schedule={"name": "single_level", "args": {"level": "P"}})
    with pytest.raises(TrainError, match="schedule"):
        Trainer(recipe, resume="latest").fit()
    empty = _recipe(tmp_path, corpus, "nothing")
    with pytest.raises(TrainError, match="no checkpoint"):
        Trainer(empty, resume="latest").fit()


def test_recipe_errors_name_the_key(tmp_path, corpus):
    with pytest.raises(RecipeError, match=r"train\.data\.bach_size"):
        Trainer(_recipe(tmp_path, corpus, "typo", data={"bach_size": 3}))
    with pytest.raises(RecipeError, match="train.deepspeed.optimizer"):
        Trainer(_recipe(tmp_path, corpus, "ds", deepspeed={"optimizer": {"type": "Adam"}}))
    trainer = Trainer(_recipe(tmp_path, corpus, "levels", schedule={"name": "single_level", "args": {"level": "X"}}))
    with pytest.raises(RecipeError, match="names level 'X'"):
        trainer.fit()
    zero3 = Trainer(_recipe(tmp_path, corpus, "zero3", deepspeed={"zero_optimization": {"stage": 3}}))
    with pytest.raises(RecipeError, match="stage 3 is not supported"):
        zero3.fit()
    with pytest.raises(RecipeError, match="loss 'interlevel_contrastive' .* 'train.aggregator' is not set"):
        Trainer(_recipe(tmp_path, corpus, "no-aggregator", aggregator=None))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_training_on_gpu(tmp_path, corpus):
    recipe = _recipe(tmp_path, corpus, "gpu", deepspeed={"zero_optimization": {"stage": 2}, "bf16": {"enabled": True}})
    trainer = Trainer(recipe)
    summary = trainer.fit()
    assert trainer.dtype == torch.bfloat16 and summary["steps"] == 6
    assert all(math.isfinite(v) for k, v in summary["last"].items() if k.endswith("/loss"))
