"""Recipes: loading by name or path, overrides, launcher flags, validation errors naming file and key."""

import re
from pathlib import Path

import pytest

from panel2patch import config
from panel2patch.errors import RecipeError
from panel2patch.plugins.commands import describe

MINE = """\
# a test recipe
mine:
  source: {name: folder_index, args: {root: data}}
  parser: {name: cpu_layout}
  splitter: {name: label_splitter}
  cleaners:
    - {name: clip_to_image}
    - {name: box_nms, args: {iou: 0.4}}
  writer: {name: webdataset_corpus, args: {out: corpus}}
"""


@pytest.fixture
def recipe_file(tmp_path) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(MINE)
    return path


@pytest.mark.parametrize("name", sorted(config.shipped()))
def test_every_shipped_recipe_validates(name):
    recipe = config.load(name)
    checked = config.validate(recipe)
    assert checked, f"{name} names no component"
    assert describe(config.shipped()[name]), f"{name} has no header comment"
    text = config.shipped()[name].read_text()
    assert "panel2patch " in text.split("\n\n")[0] or "deepspeed " in text, f"{name}: header lacks its command"


def test_shipped_recipes_include_the_quickstart():
    assert "quickstart" in config.shipped()


def test_overrides_merge_on_top(recipe_file):
    recipe = config.load(str(recipe_file), ["mine.cleaners.1.args.iou=0.7", "mine.writer.args.out=elsewhere"])
    assert recipe.config["mine"]["cleaners"][1]["args"]["iou"] == 0.7
    assert recipe.config["mine"]["writer"]["args"]["out"] == "elsewhere"


def test_the_training_launcher_strips_the_flags_deepspeed_appends():
    from panel2patch.plugins.training.commands import parse_launcher_args, strip_launcher_flags

    assert strip_launcher_flags(["--local_rank=1", "a=1", "--local-rank", "3", "b=2"]) == ["a=1", "b=2"]
    args = parse_launcher_args(["--local_rank=0", "--recipe", "train_tiny", "train.seed=5"])
    assert args.recipe == "train_tiny" and args.overrides == ["train.seed=5"]


def test_override_without_equals_is_an_error(recipe_file):
    with pytest.raises(RecipeError, match="not of the form key=value"):
        config.load(str(recipe_file), ["mine.chunk_size"])


def test_unknown_component_names_file_key_and_choices(recipe_file):
    recipe = config.load(str(recipe_file), ["mine.cleaners.1.name=box_nmss"])
    with pytest.raises(RecipeError) as err:
        config.validate(recipe)
    message = str(err.value)
    assert str(recipe_file) in message and "mine.cleaners[1]" in message
    assert "'box_nmss'" in message and "available:" in message and "box_nms" in message


def test_misspelled_arg_names_file_and_key(recipe_file):
    recipe = config.load(str(recipe_file), ["mine.cleaners.1.args={iuo: 0.5}"])
    with pytest.raises(RecipeError, match=r"r\.yaml: key 'mine\.cleaners\[1\]'.*no argument 'iuo'.*accepts: iou"):
        config.validate(recipe)


def test_wrong_type_names_file_and_key(recipe_file):
    recipe = config.load(str(recipe_file), ["mine.cleaners.1.args.iou=high"])
    with pytest.raises(RecipeError, match=r"key 'mine\.cleaners\[1\]'.*'iou' expects float, got str"):
        config.validate(recipe)


def test_missing_required_slot(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("mine:\n  parser: layout\n")
    with pytest.raises(RecipeError, match="key 'mine.source' is missing"):
        config.validate(config.load(str(path)))


def test_unknown_recipe_name_lists_shipped():
    with pytest.raises(RecipeError, match="no recipe named 'nope'.*quickstart"):
        config.load("nope")


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("mine: [unclosed\n")
    with pytest.raises(RecipeError, match="bad.yaml: cannot read recipe"):
        config.load(str(path))


def test_build_makes_components(recipe_file):
    recipe = config.load(str(recipe_file))
    cleaners = config.build(recipe, "mine.cleaners")
    assert [type(c).__name__ for c in cleaners] == ["ClipToImage", "NonMaxSuppression"]
    assert cleaners[1].iou == 0.4
    assert config.build(recipe, "mine.regions") is None


def test_validate_checks_plain_training_settings():
    recipe = config.load("train_tiny", ["train.optim.betas=[0.9]"])
    with pytest.raises(RecipeError, match="train.optim.betas must hold two numbers"):
        config.validate(recipe)


@pytest.mark.parametrize("override, message", [
    ("mine.chunk_size=0", "key mine.chunk_size must be > 0, got 0"),
    ("mine.chunk_size=-1", "key mine.chunk_size must be > 0, got -1"),
    ("mine.chunk_size=many", "key mine.chunk_size: Value 'many' of type 'str' could not be converted to Integer"),
    ("mine.max_pixels=0", "key mine.max_pixels must be > 0"),
    ("mine.chunksize=4", "key mine.chunksize: Key 'chunksize' not in 'MineSettings'"),
])
def test_plain_mine_settings_are_checked_by_their_schema(recipe_file, override, message):
    with pytest.raises(RecipeError, match=re.escape(message)):
        config.validate(config.load(str(recipe_file), [override]))


TRAIN = {"model": {"name": "open_clip"}, "levels": [{"name": "panel"}], "losses": [{"name": "clip_contrastive"}],
         "schedule": {"name": "joint"}, "data": {"corpus": "c"}, "optim": {"max_steps": 10}}


@pytest.mark.parametrize("key, value, message", [
    ("optim.lr", 0, "key train.optim.lr must be a finite number > 0, got 0"),
    ("optim.lr", float("nan"), "key train.optim.lr must be a finite number > 0, got nan"),
    ("optim.max_steps", -5, "key train.optim.max_steps must be > 0"),
    ("data.batch_size", 0, "key train.data.batch_size must be a positive int"),
    ("data.batch_size", {"panel": -2}, "key train.data.batch_size must be a positive int"),
    ("validation.batch_size", 0, "key train.validation.batch_size must be > 0"),
    ("data.held_out", 1.5, "key train.data.held_out must be in [0, 1)"),
    ("data.workerz", 1, "key train.data.workerz: Key 'workerz' not in 'DataSettings'"),
    ("deepspeed.optimizer", {}, "key train.deepspeed.optimizer is set by panel2patch from train.optim"),
])
def test_plain_train_settings_are_checked_by_their_schema(key, value, message):
    section, field = key.split(".")
    train = {**TRAIN, section: {**TRAIN.get(section, {}), field: value}}
    with pytest.raises(RecipeError, match=re.escape(message)):
        config.validate(config.Recipe("r.yaml", {"train": train}))


def test_train_settings_accept_a_valid_section():
    from panel2patch.plugins.training.settings import parse_train_settings

    settings = parse_train_settings({**TRAIN, "data": {"corpus": "c", "batch_size": {"P": 4}}}, "r.yaml",
                                    config.component_keys("train"))
    assert settings.data.batch_size == {"P": 4} and settings.optim.max_steps == 10 and settings.optim.betas == [0.9, 0.95]


def test_environment_values_are_used_but_never_written_out(tmp_path, monkeypatch):
    from panel2patch.mining import Miner

    monkeypatch.setenv("P2P_SECRET_ROOT", str(tmp_path / "in"))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "captions.jsonl").write_text("")
    path = tmp_path / "r.yaml"
    path.write_text(MINE.replace("root: data", "root: '${oc.env:P2P_SECRET_ROOT}'").replace("out: corpus", f"out: {tmp_path / 'c'}"))
    recipe = config.load(str(path))
    assert recipe.config["mine"]["source"]["args"]["root"] == str(tmp_path / "in")
    Miner(recipe).run_shard(progress=False)
    manifest = (tmp_path / "c" / "manifest.json").read_text()
    assert "${oc.env:P2P_SECRET_ROOT}" in manifest and str(tmp_path / "in") not in manifest
