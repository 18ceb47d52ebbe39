"""Hostile recipes and overrides through ``validate`` and ``train``: refused with the file and key, never run as code,
never a traceback; and a corpus mined from hostile inputs trains."""

from __future__ import annotations

import re

import pytest
from hostile_inputs import folder_source, run_cli

from panel2patch.cli import main

MINE = "mine:\n  source: {name: folder_index}\n  splitter: {name: label_splitter}\n  writer: {name: webdataset_corpus}\n"


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize("text, message", [
    ('mine:\n  source: !!python/object/apply:os.system ["touch {pwned}"]\n', "could not determine a constructor"),
    ("- mine\n- train\n", "a recipe is a mapping of sections"),
    ("mine: {source: {name: folder_index\n", "cannot read recipe"),
    ("mine:\n  chunk_size: ${oc.env:PANEL2PATCH_NO_SUCH_VARIABLE}\n", "key 'mine.chunk_size'"),
    ("train: 5\n", "key 'train' must be a mapping"),
    ("mining:\n  chunk_size: 5\n", "unknown section 'mining'"),
    (f"{MINE}  parser: {{name: cpu_layout, args: {{no_such_arg: 1}}}}\n", "takes no argument 'no_such_arg'"),
    (f"{MINE}  parser: {{name: cpu_layout, args: {{min_panel_frac: fifty}}}}\n", "expects"),
    (f"{MINE}  parser: [1, 2]\n", "must be a component name or a mapping"),
])
def test_a_hostile_recipe_file_is_refused_with_its_file_and_key(tmp_path, capsys, text, message):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text.replace("{pwned}", str(tmp_path / "pwned")))
    code, err = run(capsys, "validate", str(recipe))
    assert code == 2 and str(recipe) in err and message in err
    assert not (tmp_path / "pwned").exists()


def test_a_recipe_that_is_not_text_is_refused(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(b"\xff\xfe\x00garbage")
    code, err = run(capsys, "validate", str(recipe))
    assert code == 2 and "cannot read recipe" in err


@pytest.mark.parametrize("override, message", [
    ("train.data.batch_size=0", "key train.data.batch_size must be a positive int"),
    ("train.optim.lr=nan", "key train.optim.lr must be a finite number > 0, got nan"),
    ("train.optim.lr=-1", "key train.optim.lr must be a finite number > 0"),
    ("train.optim.max_steps=-3", "key train.optim.max_steps must be > 0, got -3"),
    ("train.data.workers=-1", "key train.data.workers must be >= 0"),
    ("train.data.held_out=1.5", "key train.data.held_out must be in [0, 1)"),
    ("train.precision=fp8", "key train.precision"),
    ("train.levels=5", "key 'train.levels' must be a list"),
    ("train.model.name=nope", "unknown model_loaders component 'nope'; available: open_clip"),
])
def test_hostile_overrides_are_refused_by_validate(capsys, override, message):
    code, err = run(capsys, "validate", "train_tiny", override)
    assert code == 2 and "train_tiny.yaml" in err and message in err


@pytest.fixture(scope="module")
def hostile_mined(tmp_path_factory):
    """The corpus mined from the hostile folder source (its good figures: rotated, 16-bit, CMYK, ...)."""
    root = tmp_path_factory.mktemp("hostile-train")
    folder_source(root / "figures")
    recipe = root / "mine.yaml"
    recipe.write_text(f"""
mine:
  source: {{name: folder_index, args: {{root: '{root / "figures"}', max_bytes: 2000000}}}}
  parser: {{name: cpu_layout}}
  splitter: {{name: label_splitter}}
  writer: {{name: webdataset_corpus, args: {{out: '{root / "corpus"}'}}}}
""")
    assert main(["mine", str(recipe)]) == 0
    return root / "corpus"


def test_component_values_a_factory_refuses_and_oversized_batches_stop_training_cleanly(hostile_mined, tmp_path):
    common = ("train", "train_tiny", f"train.data.corpus={hostile_mined}", "train.optim.max_steps=1")
    code, err = run_cli(*common, f"train.output_dir={tmp_path / 'a'}", "train.schedule.args.steps_per_phase=0")
    assert code == 2 and "key 'train.schedule': schedules 'alternating'" in err and "steps_per_phase must be >= 1" in err
    code, err = run_cli(*common, f"train.output_dir={tmp_path / 'b'}", "train.data.batch_size=1000000000")
    assert code == 2 and "train.data.batch_size of level 'figure' is 1000000000 per rank" in err


@pytest.mark.slow
def test_a_corpus_mined_from_hostile_inputs_trains(hostile_mined, tmp_path):
    from panel2patch.config import locate

    recipe = tmp_path / "figure_only.yaml"  # the hostile figures print no panel letters: train the figure level
    text = locate("train_tiny").read_text()
    recipe.write_text(re.sub(r"  schedule: .*\n", "  schedule: {name: single_level, args: {level: figure}}\n", text))
    code, err = run_cli("train", str(recipe), f"train.data.corpus={hostile_mined}", "train.optim.max_steps=2",
                    "train.data.batch_size=2", "train.data.held_out=0.0", "train.eval_every=1000",
                    f"train.output_dir={tmp_path / 'run'}")
    assert code == 0, err
    assert (tmp_path / "run").is_dir()
