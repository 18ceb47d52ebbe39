"""The example third-party plugin: discovered from its entry point, listed, selectable, blockable."""

import json
import os
import re
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
    assert histology["distribution"] == "panel2patch-histology" and histology["version"] == "0.3.0"
    assert {(c["kind"], c["name"], c["target"]) for c in histology["components"]} == {
        ("box_cleaners", "top_k_regions", "panel2patch_histology.plugin:TopKRegions"),
        ("region_miners", "histology_regions", "panel2patch_histology.plugin:HistologyRegionMiner"),
        ("stain_classifiers", "colour_stain", "panel2patch_histology.plugin:ColourStainClassifier"),
    }
    assert {"register_kinds", "register_stain_classifiers"} <= set(histology["hooks"])


def test_the_plugins_own_kind_runs_in_mining(site, tmp_path):
    """The domain kind end to end: its hook spec is added, its hook called, its component run by mining (in two
    worker processes, which find the plugin through its entry point as the parent does)."""
    out = tmp_path / "corpus"
    recipe = tmp_path / "histology.yaml"
    text = (EXAMPLE / "histology.yaml").read_text()
    recipe.write_text(re.sub(r"  source: .*", "  source: {name: demo_figures, args: {n: 3, seed: 1}}", text))
    result = cli(site, "mine", str(recipe), f"mine.writer.args.out={out}", "mine.stains.args.background=230",
                 "--workers", "2")
    assert result.returncode == 0, result.stderr
    code = (
        "import json, sys; from panel2patch.corpus import read_corpus;"
        f"print(json.dumps([[p.kind, p.description] for r in read_corpus({str(out)!r}) for p in r.figure.panels]))"
    )
    panels = json.loads(subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(site)},
                                       capture_output=True, text=True, check=True).stdout)
    photos = [d for kind, d in panels if kind == "photo"]
    assert photos and all(d in {"stain: H&E", "stain: DAB", "stain: fluorescence", "stain: other"} for d in photos)
    assert all(d is None or not d.startswith("stain:") for kind, d in panels if kind != "photo")
    for part in ("000", "001"):
        manifest = json.loads((out / f"manifest-{part}-of-002.json").read_text())
        assert manifest["config"]["mine"]["stains"]["name"] == "colour_stain"


def test_colour_stain_rules(site, monkeypatch):
    import numpy as np

    monkeypatch.syspath_prepend(str(site))
    from panel2patch_histology.plugin import ColourStainClassifier

    classify = ColourStainClassifier().stain
    pixels = lambda rgb, n=20: np.full((n, n, 3), rgb, dtype=np.float32)  # noqa: E731
    assert classify(pixels((200, 110, 190))) == "H&E"
    assert classify(pixels((150, 100, 50))) == "DAB"
    assert classify(pixels((10, 30, 10))) == "fluorescence"
    assert classify(pixels((120, 120, 120))) == "other"
    assert classify(pixels((250, 250, 250))) == "other"  # background only


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
    assert "unknown region_miners component 'histology_regions'; available: marker_regions" in result.stderr


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


def test_a_plugin_that_fails_to_import_is_named(tmp_path):
    site = tmp_path / "site"
    (site / "broken_stains-0.1.dist-info").mkdir(parents=True)
    (site / "broken_stains-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-stains\nVersion: 0.1\n")
    (site / "broken_stains-0.1.dist-info" / "entry_points.txt").write_text("[panel2patch]\nbroken = broken_stains\n")
    (site / "broken_stains.py").write_text("raise ImportError('needs a GPU driver')\n")
    result = cli(site, "plugins")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "plugin 'broken' (entry point 'broken_stains' of broken-stains) failed to load: ImportError: needs a GPU " \
           "driver; uninstall it or block it with PANEL2PATCH_BLOCK_PLUGINS=broken" in result.stderr
    assert cli(site, "plugins", PANEL2PATCH_BLOCK_PLUGINS="broken").returncode == 0
