"""The ``real`` demo style (``panel2patch demo-data OUT --style real``): determinism, exact and consistent
ground truth, the advertised variety, real pictures from scikit-image and pydicom, the command, the source."""

from __future__ import annotations

import argparse
import json
import math
import re
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from panel2patch.cli import main
from panel2patch.data import Figure
from panel2patch.errors import Panel2PatchError
from panel2patch.plugins.demo import plugin, real_sources
from panel2patch.plugins.demo.real_figure import MAX_PIXELS, MIN_PIXELS, REGION_KINDS, make_real_figure
from panel2patch.plugins.demo.real_text import BOILERPLATE, STATISTICS
from panel2patch.plugins.demo.write import write_demo

SEED = 0
N = 20


@pytest.fixture(scope="module")
def demos():
    return [make_real_figure(SEED, i) for i in range(N)]


@pytest.fixture(scope="module")
def figures(demos) -> list[Figure]:
    # through JSON, as written to annotations/<id>.json
    return [Figure.from_json(json.loads(json.dumps(d.figure.to_json()))) for d in demos]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _within(inner, outer, tol=0.0) -> bool:
    return (inner[0] >= outer[0] - tol and inner[1] >= outer[1] - tol and inner[2] <= outer[2] + tol
            and inner[3] <= outer[3] + tol)


def _features(figures) -> set[str]:
    return {f for fig in figures for f in fig.components["generator"]["features"]}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    for name, seed, n in (("a", 3, 2), ("b", 3, 2), ("c", 4, 1)):
        write_demo(tmp_path / name, n, seed, progress=False, style="real")
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert a == b
    assert a["captions.jsonl"] != c["captions.jsonl"]
    assert a["images/demo-00000.png"] != c["images/demo-00000.png"]
    assert json.loads(json.dumps(make_real_figure(3, 1).figure.to_json())) == json.loads((tmp_path / "a" / "annotations" /
                                                                  "demo-00001.json").read_text(encoding="utf-8"))


def test_figures_are_high_resolution_and_match_their_ground_truth(demos, figures):
    for demo, fig in zip(demos, figures):
        assert demo.image.mode == "RGB" and demo.image.size == (fig.width, fig.height)
        assert MIN_PIXELS <= fig.width * fig.height <= MAX_PIXELS, fig.id
        assert fig.components["generator"]["style"] == "real"
        assert len(fig.panels) >= 2


def test_ground_truth_is_inside_the_image_and_consistent(figures):
    for fig in figures:
        frame = (0.0, 0.0, float(fig.width), float(fig.height))
        panels = {p.id: p for p in fig.panels}
        for p in fig.panels:
            assert p.box[2] > p.box[0] and p.box[3] > p.box[1] and _within(p.box, frame), (fig.id, p.id)
            assert p.kind in ("photo", "chart")
            assert p.label and p.label_box is not None, (fig.id, p.id)
            assert _within(p.label_box, p.box), (fig.id, p.id)  # the label lies in its panel's reach
        for a in fig.panels:
            for b in fig.panels:
                if a.id < b.id:
                    assert (min(a.box[2], b.box[2]) <= max(a.box[0], b.box[0])
                            or min(a.box[3], b.box[3]) <= max(a.box[1], b.box[1])), (fig.id, a.id, b.id)
        for m in fig.markers:
            assert m.kind in REGION_KINDS + ("band_marker", "connector")
            assert _within(m.box, panels[m.panel_id].box), (fig.id, m.id)
        for r in fig.regions:
            assert _within(r.box, panels[r.panel_id].box), (fig.id, r.id)


def test_panel_boxes_hold_every_element_drawn_for_the_panel(demos, figures):
    for demo, fig in zip(demos, figures):
        for p in fig.panels:
            assert demo.parts[p.id], (fig.id, p.id)
            for part in demo.parts[p.id]:
                assert _within(part, p.box, tol=1.0), (fig.id, p.id, part, p.box)


def test_label_boxes_cover_drawn_label_ink(demos, figures):
    for demo, fig in zip(demos, figures):
        arr = np.asarray(demo.image.convert("L"), dtype=np.int16)
        for p in fig.panels:
            x0, y0, x1, y1 = (int(round(v)) for v in p.label_box)
            patch = arr[y0:y1, x0:x1]
            assert patch.size and patch.max() - patch.min() > 60, (fig.id, p.id)  # glyphs against their ground


def test_pointers_point_from_their_box_and_every_captioned_marker_has_one_region(figures):
    pointers = [m for fig in figures for m in fig.markers if m.kind in ("arrow", "arrowhead", "connector",
                                                                        "band_marker")]
    assert pointers
    for m in pointers:
        assert m.tip is not None and m.direction is not None and 0 <= m.direction < 360
        assert _within((*m.tip, *m.tip), m.box, tol=1.5), m
        cx, cy = (m.box[0] + m.box[2]) / 2, (m.box[1] + m.box[3]) / 2
        ux, uy = math.cos(math.radians(m.direction)), -math.sin(math.radians(m.direction))
        assert (m.tip[0] - cx) * ux + (m.tip[1] - cy) * uy > 0, m
    for fig in figures:
        panels = {p.id: p for p in fig.panels}
        by_marker = {mid: r for r in fig.regions for mid in r.marker_ids}
        for m in fig.markers:
            if m.kind in ("band_marker", "connector"):
                assert m.id not in by_marker
                continue
            r = by_marker[m.id]
            assert r.panel_id == m.panel_id and r.texts
            for text in r.texts:
                assert m.kind in text.lower() and text in panels[m.panel_id].subcaption, (m.kind, text)


def test_band_markers_sit_beside_blots_and_connectors_in_schematics(figures):
    for fig in figures:
        panels = {p.id: p for p in fig.panels}
        for m in fig.markers:
            if m.kind == "band_marker":
                assert panels[m.panel_id].provenance == "drawn:western_blot" and m.text
                assert m.direction == 180.0
            if m.kind == "connector":
                assert panels[m.panel_id].provenance == "chart:schematic"


def test_every_style_feature_appears_across_twenty_figures(figures):
    f = _features(figures)
    layout = {"touching", "shared_frame", "montage", "legend", "colour_bar", "blot", "schematic", "zoom_panel",
              "zoom_beside", "inset", "header", "footer", "running_text", "title", "jpeg", "label_above_left"}
    assert layout <= f, layout - f
    assert f & {"row_labels", "column_headers", "spanning_header"} >= {"row_labels", "column_headers"}
    labels = {"label_print_plain", "label_print_circled", "label_print_paren", "label_position_above",
              "label_position_inside", "label_position_left", "label_inside_white", "label_inside_dark",
              "label_sans_bold", "label_serif_bold", "label_multi_character"}
    assert labels <= f, labels - f
    assert {c for c in ("label_corner_tl", "label_corner_tr", "label_corner_bl", "label_corner_br") if c in f} \
        >= {"label_corner_tl", "label_corner_br"}
    assert {"arrow_outlined", "arrow_thin"} <= f
    kinds = {m.kind for fig in figures for m in fig.markers}
    assert {"arrow", "arrowhead", "circle", "box", "inset", "asterisk", "band_marker", "connector"} <= kinds
    assert {"caption_paren", "caption_pair", "caption_range", "caption_statistics", "caption_boilerplate"} <= f
    gens = [fig.components["generator"] for fig in figures]
    assert any(g["label_style"] == "lower" and g["label_print"] in ("close", "dot") for g in gens) or \
        any(re.search(r"(?:^|\. )[a-z][.)] ", fig.caption) for fig in figures)
    labels_seen = {p.label for fig in figures for p in fig.panels}
    assert any(re.fullmatch(r"[A-Za-z]\d", lab) for lab in labels_seen)  # b1, A2
    assert any(re.fullmatch(r"A[iv]+", lab) for lab in labels_seen)  # Ai, Aii
    assert any(re.fullmatch(r"[iv]{2,}", lab) for lab in labels_seen)  # ii


def test_outlined_white_arrows_are_white_with_a_dark_rim(demos, figures):
    found = 0
    for demo, fig in zip(demos, figures):
        if "jpeg" in fig.components["generator"]["features"]:
            continue
        arr = np.asarray(demo.image.convert("L"))
        for m in fig.markers:
            if m.kind != "arrow":
                continue
            x0, y0, x1, y1 = (int(v) for v in m.box)
            patch = arr[y0:y1, x0:x1]
            if (patch == 255).sum() > 20 and (patch <= 30).sum() > 20:
                found += 1
    assert found >= 3


def test_real_pictures_from_scikit_image_and_pydicom_are_used(tmp_path, figures):
    provenances = {p.provenance for fig in figures for p in fig.panels}
    assert any(p.startswith("skimage.data.") for p in provenances)
    assert any(p.startswith("pydicom.data:") for p in provenances)
    assert {"chart:bar", "drawn:western_blot", "chart:schematic"} <= provenances
    summary = write_demo(tmp_path, 6, SEED, progress=False, style="real")
    import pydicom.data
    import skimage.data

    assert summary["style"] == "real" and summary["pydicom_images"] and summary["skimage_images"]
    for name, info in summary["skimage_images"].items():
        assert (Path(skimage.data.__file__).parent / info["file"]).is_file(), name
    for name in summary["pydicom_images"]:
        assert (Path(pydicom.data.__file__).parent / "test_files" / name).is_file(), name
    assert json.loads((tmp_path / "demo.json").read_text(encoding="utf-8")) == summary


def test_generation_opens_no_network_connection_and_works_without_pydicom(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the demo generator tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    real_sources.clear_caches()
    try:
        make_real_figure(11, 0)
        monkeypatch.setattr(real_sources, "_pydicom_path", lambda src: None)
        real_sources.clear_caches()
        assert all(real_sources.REAL_SOURCES[s].package == "skimage" for s in real_sources.available_sources())
        fig = make_real_figure(11, 1).figure
        assert not any(p.provenance.startswith("pydicom") for p in fig.panels)
    finally:
        real_sources.clear_caches()


# An independent reader of the caption: label tokens open a sentence; groups and ranges name consecutive labels.
_TOKEN = re.compile(r"(?:^|(?<=\. ))(?:\((?P<paren>[^()]{1,12})\)|(?P<nature>[A-Za-z]\w{0,3}(?: and [A-Za-z]\w{0,3}"
                    r"|[-–][A-Za-z]\w{0,3})?),|(?P<dot>[A-Za-z]\w{0,3}(?: and [A-Za-z]\w{0,3}|[-–][A-Za-z]\w{0,3})?)"
                    r"\.)(?= [A-Z])")


def _names(group: str, series: list[str]) -> list[str] | None:
    parts = re.split(r", | and ", group)
    if len(parts) == 1 and re.fullmatch(r"\w+[-–]\w+", group):
        a, b = re.split(r"[-–]", group)
        if a in series and b in series and series.index(a) < series.index(b):
            return series[series.index(a):series.index(b) + 1]
    return parts if all(p in series for p in parts) else None


def _reference_split(caption: str, series: list[str], notes: str) -> tuple[str, dict[str, str]]:
    body = caption[: len(caption) - len(notes)].rstrip() if notes else caption
    tokens = []
    for tok in _TOKEN.finditer(body):
        group = next(g for g in tok.groupdict().values() if g is not None)
        names = _names(group, series)
        if names and (not tokens or series.index(names[0]) == series.index(tokens[-1][1][-1]) + 1):
            tokens.append((tok, names))
    segments = {}
    for k, (tok, names) in enumerate(tokens):
        end = tokens[k + 1][0].start() if k + 1 < len(tokens) else len(body)
        for name in names:
            segments[name] = body[tok.end():end].strip()
    return body[: tokens[0][0].start()].strip(), segments


def test_subcaptions_follow_the_documented_convention(figures):
    for fig in figures:
        gen = fig.components["generator"]
        shared, excluded = gen["shared_notes"] or "", gen["excluded_notes"] or ""
        notes = " ".join(s for s in (shared, excluded) if s)
        assert fig.caption.endswith(notes)
        series = [p.label for p in fig.panels]
        preamble, segments = _reference_split(fig.caption, series, notes)
        assert sorted(segments) == sorted(series), fig.caption
        for p in fig.panels:
            expected = " ".join(s for s in (preamble, segments[p.label], shared) if s)
            assert p.subcaption == expected, (fig.id, p.label)
            assert p.preamble == (preamble or None)
            for sentence in STATISTICS + BOILERPLATE:
                assert sentence not in p.subcaption


def test_cli_style_option_writes_a_real_set_and_rejects_unknown_styles(tmp_path, capsys):
    assert main(["demo-data", str(tmp_path / "d"), "--n", "2", "--seed", "5", "--style", "real"]) == 0
    assert "2 figures" in capsys.readouterr().out
    gt = json.loads((tmp_path / "d" / "annotations" / "demo-00001.json").read_text(encoding="utf-8"))
    assert gt["components"]["generator"]["style"] == "real"
    with Image.open(tmp_path / "d" / "images" / "demo-00001.png") as img:
        assert img.size == (gt["width"], gt["height"])
    with pytest.raises(SystemExit):
        main(["demo-data", str(tmp_path / "e"), "--style", "glossy"])
    assert "invalid choice" in capsys.readouterr().err
    parser = argparse.ArgumentParser()
    plugin.DemoDataCommand().configure(parser)
    assert vars(parser.parse_args(["OUT", "--style", "real"]))["style"] == "real"
    assert "style" not in vars(parser.parse_args(["OUT"]))  # default: callers' namespaces stay as they were
    with pytest.raises(Panel2PatchError, match="unknown --style"):
        write_demo(tmp_path / "f", 1, 0, progress=False, style="glossy")


def test_demo_figures_source_yields_what_write_demo_writes_in_the_real_style(tmp_path):
    write_demo(tmp_path, 2, 5, progress=False, style="real")
    rows = [json.loads(line) for line in (tmp_path / "captions.jsonl").read_text(encoding="utf-8").splitlines()]
    items = list(plugin.DemoFiguresSource(n=2, seed=5, style="real"))
    assert [item.id for item in items] == [row["id"] for row in rows]
    for index, (item, row) in enumerate(zip(items, rows)):
        assert item.image == (tmp_path / row["image"]).read_bytes()
        assert item.caption == row["caption"]
        assert item.origin == f"demo_figures:seed=5,style=real#{index}"
    with pytest.raises(Panel2PatchError, match="style must be"):
        plugin.DemoFiguresSource(style="glossy")
