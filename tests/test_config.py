"""Recipes: loading by name or path, overrides, launcher flags, validation errors naming file and key."""

from pathlib import Path

import pytest

from panel2patch import config
from panel2patch.errors import RecipeError

MINE = """\
# a test recipe
mine:
  source: {name: folder, args: {root: data}}
  parser: {name: layout}
  splitter: {name: labels}
  cleaners:
    - {name: clip}
    - {name: nms, args: {iou: 0.4}}
  writer: {name: webdataset, args: {out: corpus}}
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
    assert config.describe(config.shipped()[name]), f"{name} has no header comment"
    text = config.shipped()[name].read_text()
    assert "panel2patch " in text.split("\n\n")[0] or "deepspeed " in text, f"{name}: header lacks its command"


def test_shipped_recipes_include_the_quickstart():
    assert "quickstart" in config.shipped()


def test_overrides_merge_on_top(recipe_file):
    recipe = config.load(str(recipe_file), ["mine.cleaners.1.args.iou=0.7", "mine.writer.args.out=elsewhere"])
    assert recipe.config["mine"]["cleaners"][1]["args"]["iou"] == 0.7
    assert recipe.config["mine"]["writer"]["args"]["out"] == "elsewhere"


def test_launcher_flags_are_stripped(recipe_file):
    assert config.strip_launcher_flags(["--local_rank=1", "a=1", "--local-rank", "3", "b=2"]) == ["a=1", "b=2"]
    recipe = config.load(str(recipe_file), ["--local_rank=0", "mine.chunk_size=5"])
    assert recipe.config["mine"]["chunk_size"] == 5


def test_override_without_equals_is_an_error(recipe_file):
    with pytest.raises(RecipeError, match="not of the form key=value"):
        config.load(str(recipe_file), ["mine.chunk_size"])


def test_unknown_component_names_file_key_and_choices(recipe_file):
    recipe = config.load(str(recipe_file), ["mine.cleaners.1.name=nmss"])
    with pytest.raises(RecipeError) as err:
        config.validate(recipe)
    message = str(err.value)
    assert str(recipe_file) in message and "mine.cleaners[1]" in message
    assert "'nmss'" in message and "available:" in message and "nms" in message


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
