"""Shipped training recipes, the launcher entry's arguments and ``panel2patch eval``."""

from __future__ import annotations

import json

import pytest
from corpus_factory import TINY_MODEL, tiny_recipe, write_corpus

from panel2patch.cli import main as cli_main
from panel2patch.config import build, component_keys, load, locate, validate
from panel2patch.corpus import read_corpus
from panel2patch.errors import Panel2PatchError
from panel2patch.manager import build as build_component
from panel2patch.plugins.training.commands import parse_launcher_args
from panel2patch.plugins.training.corpus_scan import is_held_out
from panel2patch.plugins.training.export import export_model, load_weights
from panel2patch.plugins.training.settings import parse_train_settings

TRAIN_RECIPES = ("train_tiny", "panel2patch_vitl14")


@pytest.mark.parametrize("name", TRAIN_RECIPES)
def test_shipped_training_recipes_validate_and_show_their_launch_command(name):
    recipe = load(name)
    assert [kind for _, kind, _ in validate(recipe)].count("levels") == 3
    cfg = parse_train_settings(recipe.section("train"), recipe.source, component_keys("train"))
    assert (cfg.optim.epochs or cfg.optim.max_steps) and cfg.deepspeed["gradient_clipping"] == 1.0
    lines = locate(name).read_text().splitlines()
    assert lines[0].startswith("# ") and len(lines[0]) > 20
    header = "\n".join(line for line in lines if line.startswith("#"))
    assert f"--module panel2patch.plugins.training --recipe {name}" in header
    assert "--resume latest" in header


def test_vitl14_recipe_has_the_paper_settings():
    cfg = load("panel2patch_vitl14").section("train")
    model = cfg["model"]["args"]
    assert model["model"] == "ViT-L-14" and model["pretrained"] == "hf-hub:BIOMEDICA/BMC_CLIP_CF/BMC_CLIP_CF.pt"
    assert model["unlocked_vision_blocks"] == 5 and model["lock_text"] is True
    optim = cfg["optim"]
    assert (optim["lr"], optim["weight_decay"], optim["betas"], optim["warmup_steps"], optim["epochs"]) == (
        1e-5, 0.05, [0.9, 0.95], 1000, 20)
    assert cfg["deepspeed"]["zero_optimization"]["stage"] == 2 and cfg["deepspeed"]["bf16"]["enabled"] is True
    assert cfg["schedule"] == {"name": "alternating", "args": {"order": ["M", "P", "R"], "steps_per_phase": 1}}
    assert cfg["aggregator"]["name"] == "mean_pool"


def test_tiny_recipe_model_builds_on_cpu_with_its_freezing_policy():
    loader = build(load("train_tiny"), "train.model")
    model, _, _ = loader.load()
    blocks = len(model.visual.transformer.resblocks)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "visual.proj" in trainable and "visual.transformer.resblocks.0.attn.in_proj_weight" not in trainable
    assert f"visual.transformer.resblocks.{blocks - 1}.attn.in_proj_weight" in trainable
    assert not any(n.startswith(("transformer.", "token_embedding", "text_projection")) for n in trainable)


def test_launcher_flags_are_stripped_from_the_module_entry():
    args = parse_launcher_args(["--local_rank=1", "--recipe", "train_tiny", "train.seed=3", "--resume", "latest"])
    assert (args.recipe, args.overrides, args.resume) == ("train_tiny", ["train.seed=3"], "latest")


def test_eval_command_reports_retrieval_per_level_for_an_exported_model(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus", figures=24, shard_size=12, seed=4)
    recipe = tiny_recipe(tmp_path / "recipe.yaml", corpus, tmp_path / "out")
    loader = build_component("model_loaders", "open_clip", {"model": "p2p-test-tiny", "config": TINY_MODEL})
    model, _, _ = loader.load()
    export_model(model, model.state_dict(), loader.model_config(), tmp_path / "out" / "export")
    assert cli_main(["eval", str(recipe), "eval.batch_size=4"]) == 0
    printed = capsys.readouterr().out
    assert "panel" in printed and "i2t R@1" in printed
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert report["checkpoint"].endswith("export")
    level = build_component("levels", "panel", {})
    held_out = sum(len(level.samples(r.figure)) for r in read_corpus(corpus, members=("json",))
                   if is_held_out(r.key, 0.2))
    # batches of 4 in corpus order; a last batch of one pair is skipped (nothing to retrieve among)
    expected = held_out - (1 if held_out % 4 == 1 else 0)
    assert held_out >= 2 and report["metrics"]["eval/panel/samples"] == expected
    for key, value in report["metrics"].items():
        if key.endswith(("_r1", "_r5")):
            assert 0.0 <= value <= 1.0

    with pytest.raises(Panel2PatchError, match="does not exist"):
        load_weights(model, str(tmp_path / "missing.pt"))


def test_training_commands_come_from_the_training_plugin(tmp_path, capsys):
    from panel2patch.manager import registry

    commands = registry("commands")
    for name in ("train", "eval", "run"):
        assert commands.get(name).owner == "panel2patch.plugins.training.commands"
    recipe = tiny_recipe(tmp_path / "recipe.yaml", tmp_path / "corpus", tmp_path / "out")
    assert cli_main(["run", str(recipe)]) == 2
    assert "'run' needs a 'mine' section" in capsys.readouterr().err
