"""Shipped training recipes and the launcher entry's arguments."""

from __future__ import annotations

import pytest
from corpus_factory import TINY_MODEL, tiny_recipe

from panel2patch.cli import main as cli_main
from panel2patch.config import build, component_keys, load, locate, validate
from panel2patch.errors import Panel2PatchError
from panel2patch.manager import build as build_component
from panel2patch.plugins.training.commands import parse_launcher_args
from panel2patch.plugins.training.export import load_weights
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


def test_load_weights_names_a_missing_checkpoint(tmp_path):
    loader = build_component("model_loaders", "open_clip", {"model": "p2p-test-tiny", "config": TINY_MODEL})
    model, _, _ = loader.load()
    with pytest.raises(Panel2PatchError, match="does not exist"):
        load_weights(model, str(tmp_path / "missing.pt"))


def test_training_commands_come_from_the_training_plugin(tmp_path, capsys):
    from panel2patch.manager import registry

    commands = registry("commands")
    for name in ("train", "run"):
        assert commands.get(name).owner == "panel2patch.plugins.training.commands"
    assert commands.get("eval").owner == "panel2patch.plugins.evaluation.commands"
    recipe = tiny_recipe(tmp_path / "recipe.yaml", tmp_path / "corpus", tmp_path / "out")
    assert cli_main(["run", str(recipe)]) == 2
    assert "'run' needs a 'mine' section" in capsys.readouterr().err
