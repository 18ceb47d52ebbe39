"""The panel2patch command: plugins, recipes, cp, validate, and error reporting."""

import json
import subprocess
import sys

from panel2patch import config
from panel2patch.cli import main
from panel2patch.plugins.commands import describe


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "panel2patch", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("plugins", "recipes", "cp", "validate", "mine", "train", "eval", "report", "run",
                    "export-pairs", "demo-data", "parse", "score", "split-caption"):
        assert command in out


def test_plugins_json_lists_builtin_components(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    names = lambda plugin: {(c["kind"], c["name"]) for c in rows[plugin]["components"]}  # noqa: E731
    assert ("box_cleaners", "clip_to_image") in names("panel2patch.plugins.cleaners")
    assert ("sources", "folder_index") in names("panel2patch.plugins.sources")
    assert ("commands", "mine") in names("panel2patch.plugins.commands")


def test_plugins_text_output(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "panel2patch.plugins.writers  (panel2patch" in out
    assert "writers            webdataset_corpus      -> panel2patch.plugins.writers:WebDatasetWriter" in out


def test_recipes_lists_shipped_recipes_with_descriptions(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name, path in config.shipped().items():
        assert name in out and describe(path) in out


def test_cp_copies_a_recipe_and_refuses_to_overwrite(tmp_path, capsys):
    assert main(["cp", "quickstart", str(tmp_path)]) == 0
    copied = tmp_path / "quickstart.yaml"
    assert copied.read_text() == config.shipped()["quickstart"].read_text()
    assert main(["cp", "quickstart", str(copied)]) == 2
    assert "exists" in capsys.readouterr().err


def test_validate_reports_errors_without_traceback(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text("mine:\n  source: {name: foldr}\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "r.yaml: key 'mine.source': unknown sources component 'foldr'; available: demo_figures, folder_index, pmc_oa, webdataset_source" in err
    assert "Traceback" not in err
