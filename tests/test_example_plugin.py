"""The example third-party plugin: discovered from its entry point, listed, selectable, blockable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "panel2patch-histology"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True,
    )
    return target


def cli(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(site), **env}
    for name in ("PANEL2PATCH_BLOCK_PLUGINS", "PANEL2PATCH_DISABLE_PLUGIN_AUTOLOAD"):
        if name not in env:
            environ.pop(name, None)
    return subprocess.run([sys.executable, "-m", "panel2patch", *args], env=environ, capture_output=True, text=True, cwd=ROOT)


def test_plugin_is_discovered_and_listed(site):
    result = cli(site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    histology = rows["histology"]
    assert histology["distribution"] == "panel2patch-histology" and histology["version"] == "0.2.0"
    assert histology["components"] == {"box_cleaners": ["top_k_regions"], "region_miners": ["histology_regions"]}
    assert "register_stains" in histology["hooks"]  # the domain's own hook spec was added


def test_plugin_components_are_selectable_in_a_recipe(site):
    result = cli(site, "validate", str(EXAMPLE / "histology.yaml"), "mine.cleaners.2.args.k=1")
    assert result.returncode == 0, result.stderr
    assert "histology_regions" in result.stdout and "top_k_regions" in result.stdout
    bad = cli(site, "validate", str(EXAMPLE / "histology.yaml"), "mine.cleaners.2.args.k=many")
    assert bad.returncode == 2 and "'k' expects int" in bad.stderr


@pytest.mark.parametrize("env", [{"PANEL2PATCH_BLOCK_PLUGINS": "histology"}, {"PANEL2PATCH_DISABLE_PLUGIN_AUTOLOAD": "1"}])
def test_plugin_can_be_blocked(site, env):
    listed = cli(site, "plugins", "--json", **env)
    assert "histology" not in {row["name"] for row in json.loads(listed.stdout)}
    result = cli(site, "validate", str(EXAMPLE / "histology.yaml"), **env)
    assert result.returncode == 2
    assert "unknown region_miners component 'histology_regions'; available: markers" in result.stderr


def test_subclass_of_a_builtin_builds_with_its_own_defaults(site):
    code = (
        "from panel2patch.manager import build;"
        "from panel2patch.plugins.regions import MarkerRegionMiner;"
        "m = build('region_miners', 'histology_regions');"
        "print(isinstance(m, MarkerRegionMiner), m.arrow_scale)"
    )
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(site)},
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "2.5"]
