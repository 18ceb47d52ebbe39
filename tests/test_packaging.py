"""The built wheel contains every module of the four mapped folders and the recipes, and works alone."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"core": "panel2patch", "plugins": "panel2patch/plugins", "parsers": "panel2patch/parsers",
           "objectives": "panel2patch/objectives"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )
    (found,) = out.glob("panel2patch-*.whl")
    return found


def test_wheel_contains_every_module_and_recipe(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"{pkg}/{p.relative_to(ROOT / folder)}" for folder, pkg in FOLDERS.items() for p in (ROOT / folder).rglob("*.py")}
    expected |= {f"panel2patch/recipes/{p.relative_to(ROOT / 'recipes')}" for p in (ROOT / "recipes").rglob("*.yaml")}
    assert any(n.startswith("panel2patch/recipes/grids/") for n in expected)
    assert expected - names == set()
    assert not any(n.startswith(("core/", "tests/", "examples/")) for n in names)


def test_installed_wheel_lists_plugins_and_validates_recipes(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "panel2patch", *a], cwd=tmp_path, env=env,
                                    capture_output=True, text=True)
    probe = subprocess.run([sys.executable, "-c", "import panel2patch; print(panel2patch.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.startswith(str(target))
    plugins = run("plugins", "--json")
    assert plugins.returncode == 0, plugins.stderr
    assert "panel2patch.plugins.cleaners" in {row["name"] for row in json.loads(plugins.stdout)}
    recipes = run("recipes")
    assert "quickstart" in recipes.stdout
    for name in (line.split()[0] for line in recipes.stdout.splitlines() if line.strip()):
        result = run("validate", name)
        assert result.returncode == 0, result.stderr
    grid = subprocess.run([sys.executable, "-c", "from panel2patch.plugins.evaluation.ablation import load_grid; "
                           "print(sorted(load_grid('paper')[1]['variants']))"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert grid.returncode == 0 and "multi_then_single" in grid.stdout, grid.stderr


@pytest.mark.slow
def test_the_vllm_extra_resolves_beside_the_pinned_torch():
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", f"{ROOT}[vllm]"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    would = next(line for line in result.stdout.splitlines() if line.startswith("Would install"))
    assert " vllm-0.33." in f" {would}" and " torch-2.14." in f" {would}"
