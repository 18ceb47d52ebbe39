"""``panel2patch parse``: parser and detector from a test plugin, JSON output, overlays, bad images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from panel2patch.cli import main
from panel2patch.components import FigureParser, MarkerDetector
from panel2patch.data import Figure, FigureParse, Marker, Panel, Region
from panel2patch.hookspecs import hookimpl
from panel2patch.parsers.tools.parse_images import MARKER_COLOR, PANEL_COLORS, REGION_COLOR

GRAY = (128, 128, 128)


class HalvesParser(FigureParser):
    """Two panels: the left and the right half of the image, labelled A and B."""

    def __init__(self, kind: str = "photo") -> None:
        self.kind = kind

    def parse(self, image, caption):
        w, h = image.size
        panels = [
            Panel("p0", (0.0, 0.0, w / 2, float(h)), label="A", label_box=(4.0, 4.0, 20.0, 20.0), kind=self.kind),
            Panel("p1", (w / 2, 0.0, float(w), float(h)), label="B", kind=self.kind),
        ]
        proposal = Region("r0", "p0", (10.0, 30.0, 40.0, 60.0), provenance="test")
        return FigureParse(w, h, panels, markers=[Marker("m0", "label", (4.0, 4.0, 20.0, 20.0), panel_id="p0")],
                           proposals=[proposal])


class CornerArrowDetector(MarkerDetector):
    """One arrow per panel, pointing right, its tip 10 px inside the panel's bottom-right corner."""

    def detect(self, image, panels):
        out = []
        for p in panels:
            tip = (p.box[2] - 10, p.box[3] - 10)
            out.append(Marker("m0", "arrow", (tip[0] - 30, tip[1] - 5, tip[0], tip[1] + 5), panel_id=p.id,
                              tip=tip, direction=0.0))
        return out


class _TestPlugin:
    @hookimpl
    def register_figure_parsers(self, register):
        register("test-halves", HalvesParser)

    @hookimpl
    def register_marker_detectors(self, register):
        register("test-arrows", CornerArrowDetector)


@pytest.fixture
def plugin(add_plugin, monkeypatch):
    monkeypatch.setenv("PANEL2PATCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    return add_plugin(_TestPlugin(), "test-parse-plugin")


@pytest.fixture
def images(tmp_path):
    paths = []
    for name, size in (("fig1.png", (200, 120)), ("fig2.jpg", (160, 100))):
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", size, GRAY).save(path)
        paths.append(path)
    return paths


def test_writes_one_figure_json_per_image(plugin, images, tmp_path):
    out = tmp_path / "out"
    argv = ["parse", *map(str, images), "--parser", "test-halves", "--markers", "test-arrows", "--out", str(out)]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["fig1.json", "fig2.json"]
    fig = Figure.from_json(json.loads((out / "fig1.json").read_text()))
    assert (fig.id, fig.width, fig.height, fig.caption) == ("fig1", 200, 120, "")
    assert [(p.id, p.label, p.box) for p in fig.panels] == [("p0", "A", (0.0, 0.0, 100.0, 120.0)),
                                                            ("p1", "B", (100.0, 0.0, 200.0, 120.0))]
    # The parser's marker and the detector's two arrows all claimed "m0": ids are made unique.
    assert [m.kind for m in fig.markers] == ["label", "arrow", "arrow"]
    assert len({m.id for m in fig.markers}) == 3
    assert fig.markers[2].tip == (190.0, 110.0) and fig.markers[2].panel_id == "p1"
    assert [r.id for r in fig.regions] == ["r0"]
    assert fig.components == {"figure_parser": {"name": "test-halves", "args": {}},
                              "marker_detector": {"name": "test-arrows", "args": {}}}


def test_prints_json_lines_without_out_and_skips_markers_on_request(plugin, images, capsys):
    assert main(["parse", *map(str, images), "--parser", "test-halves", "--markers", "none"]) == 0
    lines = capsys.readouterr().out.splitlines()
    figs = [Figure.from_json(json.loads(line)) for line in lines]
    assert [f.id for f in figs] == ["fig1", "fig2"]
    assert [m.kind for m in figs[1].markers] == ["label"]
    assert "marker_detector" not in figs[1].components


def test_overlay_draws_panels_markers_and_regions(plugin, images, tmp_path):
    overlay = tmp_path / "overlay"
    argv = ["parse", str(images[0]), "--parser", "test-halves", "--markers", "test-arrows", "--out",
            str(tmp_path / "out"), "--overlay", str(overlay)]
    assert main(argv) == 0
    img = Image.open(overlay / "fig1.png").convert("RGB")
    assert img.size == (200, 120)
    px = np.asarray(img)
    # Left edges of p0 and p1, left edge of region r0, the arrow's tip dot and box, and an untouched spot.
    assert tuple(px[60, 0]) == PANEL_COLORS[0]
    assert tuple(px[60, 100]) == PANEL_COLORS[1]
    assert tuple(px[50, 10]) == REGION_COLOR
    assert tuple(px[110, 190]) == (255, 0, 0)
    assert tuple(px[105, 170]) == MARKER_COLOR
    assert tuple(px[80, 60]) == GRAY


def test_unreadable_images_are_reported_and_the_rest_still_parsed(plugin, images, tmp_path, capsys):
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    missing = tmp_path / "in" / "missing.png"
    out = tmp_path / "out"
    argv = ["parse", str(broken), str(images[0]), str(missing), "--parser", "test-halves", "--markers", "none",
            "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{broken}: cannot read image: " in err and "Traceback" not in err
    assert f"{missing}: cannot read image: No such file or directory" in err
    assert "2 of 3 images failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["fig1.json"]


def test_unknown_parser_lists_what_is_available(plugin, images, capsys):
    assert main(["parse", str(images[0]), "--parser", "nope", "--markers", "none"]) == 2
    err = capsys.readouterr().err
    assert "unknown figure_parsers component 'nope'" in err and "test-halves" in err


def test_same_stem_twice_is_refused_when_writing_files(plugin, images, tmp_path, capsys):
    twin = tmp_path / "other" / "fig1.png"
    twin.parent.mkdir()
    Image.new("RGB", (50, 50), GRAY).save(twin)
    argv = ["parse", str(images[0]), str(twin), "--parser", "test-halves", "--markers", "none", "--out",
            str(tmp_path / "out")]
    assert main(argv) == 2
    assert "share the file stem 'fig1'" in capsys.readouterr().err


def test_defaults_name_the_built_in_parser_and_detector():
    import argparse

    from panel2patch import manager
    from panel2patch.parsers.tools.commands import ParseCommand

    parser = argparse.ArgumentParser()
    ParseCommand().configure(parser)
    args = parser.parse_args(["fig.png"])
    assert (args.parser, args.markers, args.out, args.overlay) == ("cpu_layout", "shape_markers", None, None)
    assert manager.registry("figure_parsers").get(args.parser)
    assert manager.registry("marker_detectors").get(args.markers)
