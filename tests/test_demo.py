"""The demo figure generator: determinism, files written, consistency of the ground truth, and its
command and source."""

from __future__ import annotations

import argparse
import json
import math
import re
import socket
from pathlib import Path

import pluggy
import pytest
from PIL import Image

from panel2patch import hookspecs
from panel2patch.cli import main
from panel2patch.components import Command, Source
from panel2patch.data import Figure
from panel2patch.errors import Panel2PatchError, RecipeError
from panel2patch.plugins.demo import figure, photos, plugin
from panel2patch.plugins.demo.figure import MAX_SIDE, MIN_SIDE, make_figure
from panel2patch.plugins.demo.text import SHARED_SENTENCES
from panel2patch.plugins.demo.write import write_demo
from panel2patch.registry import Registry

N = 10
SEED = 7


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    write_demo(out, N, SEED, progress=False)
    return out


@pytest.fixture(scope="module")
def figures(demo_set) -> list[Figure]:
    return [Figure.from_json(json.loads(p.read_text(encoding="utf-8")))
            for p in sorted((demo_set / "annotations").glob("*.json"))]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_demo(tmp_path / name, 4, seed, progress=False)
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert a["captions.jsonl"] != c["captions.jsonl"]
    assert a["images/demo-00000.png"] != c["images/demo-00000.png"]


def test_writes_the_documented_layout(demo_set):
    ids = [f"demo-{i:05d}" for i in range(N)]
    assert sorted(p.name for p in (demo_set / "images").iterdir()) == [f"{i}.png" for i in ids]
    assert sorted(p.name for p in (demo_set / "annotations").iterdir()) == [f"{i}.json" for i in ids]
    lines = [json.loads(line) for line in (demo_set / "captions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in lines] == ids
    for row in lines:
        assert set(row) == {"id", "image", "caption"}
        assert (demo_set / row["image"]).is_file()
        gt = json.loads((demo_set / "annotations" / f"{row['id']}.json").read_text(encoding="utf-8"))
        assert gt["caption"] == row["caption"] and gt["id"] == row["id"]
    summary = json.loads((demo_set / "demo.json").read_text(encoding="utf-8"))
    assert summary["seed"] == SEED and summary["n"] == N
    assert summary["counts"]["figures"] == N


def test_uses_only_images_bundled_in_the_scikit_image_wheel(demo_set):
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    used = json.loads((demo_set / "demo.json").read_text(encoding="utf-8"))["skimage_images"]
    assert used, "no photo panel drawn"
    for name, info in used.items():
        assert (folder / info["file"]).is_file(), name


def test_generation_opens_no_network_connection(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the demo generator tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    photos.load_photo.cache_clear()
    try:
        for index in range(3):
            make_figure(11, index)
    finally:
        photos.load_photo.cache_clear()


def test_images_match_annotations_and_stay_within_size_bounds(demo_set, figures):
    for fig in figures:
        with Image.open(demo_set / "images" / f"{fig.id}.png") as img:
            assert img.mode == "RGB"
            assert img.size == (fig.width, fig.height)
        assert MIN_SIDE <= fig.width <= MAX_SIDE
        assert MIN_SIDE <= fig.height <= MAX_SIDE


def _within(inner, outer, tol=0.0) -> bool:
    return (inner[0] >= outer[0] - tol and inner[1] >= outer[1] - tol and inner[2] <= outer[2] + tol
            and inner[3] <= outer[3] + tol)


def _valid(box) -> bool:
    return box[2] > box[0] and box[3] > box[1]


def test_boxes_are_valid_and_nested(figures):
    for fig in figures:
        frame = (0.0, 0.0, float(fig.width), float(fig.height))
        panels = {p.id: p for p in fig.panels}
        assert [p.id for p in fig.panels] == [f"p{i}" for i in range(len(fig.panels))]
        for p in fig.panels:
            assert _valid(p.box) and _within(p.box, frame), (fig.id, p.id)
            assert p.kind in ("photo", "chart")
            if p.label_box is not None:
                assert _valid(p.label_box) and _within(p.label_box, p.box), (fig.id, p.id)
        for a in fig.panels:
            for b in fig.panels:
                if a.id < b.id:
                    overlap_w = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
                    overlap_h = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
                    assert overlap_w <= 0 or overlap_h <= 0, (fig.id, a.id, b.id)
        for m in fig.markers:
            assert m.kind in ("arrow", "asterisk", "box", "inset")
            assert _valid(m.box) and _within(m.box, panels[m.panel_id].box), (fig.id, m.id)
        for r in fig.regions:
            assert _valid(r.box) and _within(r.box, panels[r.panel_id].box), (fig.id, r.id)


def test_arrow_tips_sit_at_the_front_of_the_arrow(figures):
    arrows = [m for fig in figures for m in fig.markers if m.kind == "arrow"]
    assert arrows
    for m in arrows:
        assert m.tip is not None and m.direction is not None and 0 <= m.direction < 360
        assert _within((*m.tip, *m.tip), m.box, tol=1.5), m
        cx, cy = (m.box[0] + m.box[2]) / 2, (m.box[1] + m.box[3]) / 2
        ux, uy = math.cos(math.radians(m.direction)), -math.sin(math.radians(m.direction))  # y grows downwards
        assert (m.tip[0] - cx) * ux + (m.tip[1] - cy) * uy > 0, m
    for fig in figures:
        for m in fig.markers:
            if m.kind != "arrow":
                assert m.tip is None and m.direction is None


def test_every_marker_has_one_region_with_clauses_of_its_kind(figures):
    for fig in figures:
        markers = {m.id: m for m in fig.markers}
        panels = {p.id: p for p in fig.panels}
        assert sorted(mid for r in fig.regions for mid in r.marker_ids) == sorted(markers)
        for r in fig.regions:
            (mid,) = r.marker_ids
            marker = markers[mid]
            assert r.panel_id == marker.panel_id
            assert r.texts, (fig.id, r.id)
            for text in r.texts:
                assert marker.kind in text.lower(), (marker.kind, text)
                assert text in panels[r.panel_id].subcaption
            if marker.kind == "arrow":
                assert _within((*marker.tip, *marker.tip), r.box, tol=0.5)
            if marker.kind in ("box", "inset"):
                assert _within(r.box, marker.box)
            if marker.text is not None:
                assert marker.kind in ("arrow", "box")


def test_the_set_covers_the_advertised_variety(figures):
    kinds = {p.kind for fig in figures for p in fig.panels}
    markers = {m.kind for fig in figures for m in fig.markers}
    layouts = {fig.components["generator"]["layout"] for fig in figures}
    assert kinds == {"photo", "chart"}
    assert markers == {"arrow", "asterisk", "box", "inset"}
    assert len(layouts) >= 2
    assert any(m.text for fig in figures for m in fig.markers)


# An independent reader of the caption grammar: label tokens at the start of the caption or of a sentence.
_L = r"(?:[A-Z]\d+|[ivx]+|[A-Za-z])"
_TOKEN = re.compile(
    rf"(?:^|(?<=\. ))(?:\((?P<paren>{_L}(?:(?:, | and |[-–]){_L})?)\)"
    rf"|(?P<comma>{_L}(?: and {_L}|[-–]{_L})?),"
    rf"|(?P<bare>[A-Za-z][-–][A-Za-z])"
    rf"|(?P<close>{_L}(?: and {_L}|[-–]{_L})?)\))(?= )"
)


def _expand(group: str) -> list[str]:
    range_ = re.fullmatch(r"([A-Za-z])[-–]([A-Za-z])", group)
    if range_:
        return [chr(c) for c in range(ord(range_[1]), ord(range_[2]) + 1)]
    return re.split(r", | and ", group)


def _reference_split(caption: str) -> tuple[str, dict[str, str], str]:
    shared_parts: list[str] = []
    body = caption
    for _ in range(len(SHARED_SENTENCES)):
        tail = next((s for s in SHARED_SENTENCES if body.endswith(" " + s) or body == s), None)
        if tail is None:
            break
        shared_parts.insert(0, tail)
        body = body[: -len(tail)].rstrip()
    tokens = list(_TOKEN.finditer(body))
    if not tokens:
        return body, {}, " ".join(shared_parts)
    segments: dict[str, str] = {}
    for k, tok in enumerate(tokens):
        end = tokens[k + 1].start() if k + 1 < len(tokens) else len(body)
        group = next(g for g in tok.groupdict().values() if g is not None)
        for label in _expand(group):
            assert label not in segments, f"label {label!r} named twice in {caption!r}"
            segments[label] = body[tok.end():end].strip()
    return body[: tokens[0].start()].strip(), segments, " ".join(shared_parts)


def test_subcaptions_follow_the_documented_convention(figures):
    for fig in figures:
        preamble, segments, shared = _reference_split(fig.caption)
        labelled = [p for p in fig.panels if p.label is not None]
        assert sorted(segments) == sorted(p.label for p in labelled), fig.caption
        for p in fig.panels:
            segment = segments.get(p.label, "") if p.label is not None else ""
            expected = " ".join(part for part in (preamble, segment, shared) if part)
            assert p.subcaption == expected, (fig.id, p.id)
            assert p.preamble == (preamble or None)
            if p.label is not None:
                assert segment, (fig.id, p.label)


def test_the_reference_reader_handles_every_token_form():
    caption = ("Title. (A) one. (B, C) two. (D and E) three. (F–H) four. (I-J) five. a, six. b and c, seven. "
               "d–f, eight. g–h nine. i) ten. j and k) eleven. l–m) twelve. (A1, A2) thirteen. (ii) fourteen. "
               "Scale bar, 100 µm.")
    preamble, segments, shared = _reference_split(caption)
    assert preamble == "Title." and shared == "Scale bar, 100 µm."
    assert segments["C"] == "two." and segments["E"] == "three." and segments["G"] == "four."
    assert segments["J"] == "five." and segments["e"] == "eight." and segments["h"] == "nine."
    assert segments["k"] == "eleven." and segments["m"] == "twelve." and segments["A2"] == "thirteen."
    assert segments["ii"] == "fourteen."


def test_rewriting_replaces_a_previous_demo_set_and_refuses_foreign_folders(tmp_path):
    out = tmp_path / "set"
    write_demo(out, 3, 0, progress=False)
    write_demo(out, 2, 0, progress=False)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["demo-00000.png", "demo-00001.png"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(Panel2PatchError, match="not empty"):
        write_demo(foreign, 1, 0, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_cli_writes_a_demo_set_and_rejects_bad_arguments(tmp_path, capsys):
    assert main(["demo-data", str(tmp_path / "d"), "--n", "2", "--seed", "5"]) == 0
    assert "2 figures" in capsys.readouterr().out
    assert len(list((tmp_path / "d" / "images").glob("*.png"))) == 2
    assert main(["demo-data", str(tmp_path / "e"), "--n", "0"]) == 2
    assert "--n must be at least 1" in capsys.readouterr().err
    assert main(["demo-data", str(tmp_path / "e"), "--seed", "-1"]) == 2


def _registered(hook: str) -> dict[str, object]:
    pm = pluggy.PluginManager("panel2patch")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    found: dict[str, object] = {}
    getattr(pm.hook, hook)(register=lambda name, factory: found.setdefault(name, factory))
    return found


def test_the_plugin_registers_the_command_and_the_source():
    assert _registered("register_commands") == {"demo-data": plugin.DemoDataCommand}
    assert _registered("register_sources") == {"demo_figures": plugin.DemoFiguresSource}
    assert isinstance(plugin.DemoDataCommand(), Command)
    assert isinstance(plugin.DemoFiguresSource(), Source)


def test_demo_data_command_parses_its_arguments_and_writes_a_demo_set(tmp_path, capsys):
    command = plugin.DemoDataCommand()
    assert command.help == "generate demo compound figures with exact ground truth"
    parser = argparse.ArgumentParser()
    command.configure(parser)
    assert vars(parser.parse_args(["OUT"])) == {"out": "OUT", "n": 24, "seed": 0}
    out = tmp_path / "set"
    assert command.run(argparse.Namespace(out=str(out), n=3, seed=2)) == 0
    summary = json.loads((out / "demo.json").read_text(encoding="utf-8"))
    c = summary["counts"]
    printed = capsys.readouterr().out
    assert printed == (f"3 figures, {sum(c['panels'].values())} panels, {sum(c['markers'].values())} markers, "
                       f"{c['regions']} regions -> {out}\n")
    assert summary["seed"] == 2 and summary["n"] == 3
    ids = [f"demo-{i:05d}" for i in range(3)]
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{i}.png" for i in ids]
    assert sorted(p.name for p in (out / "annotations").iterdir()) == [f"{i}.json" for i in ids]
    assert [json.loads(line)["id"] for line in (out / "captions.jsonl").read_text().splitlines()] == ids
    with pytest.raises(Panel2PatchError, match="--n must be at least 1"):
        command.run(argparse.Namespace(out=str(tmp_path / "e"), n=0, seed=0))


def test_demo_figures_source_yields_what_write_demo_writes(tmp_path):
    write_demo(tmp_path, 3, 5, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "captions.jsonl").read_text(encoding="utf-8").splitlines()]
    items = list(plugin.DemoFiguresSource(n=3, seed=5))
    assert [item.id for item in items] == [row["id"] for row in rows] == [f"demo-{i:05d}" for i in range(3)]
    for index, (item, row) in enumerate(zip(items, rows)):
        assert item.image == (tmp_path / row["image"]).read_bytes()
        assert item.image_bytes() == item.image and item.path is None
        assert item.caption == row["caption"]
        assert item.origin == f"demo_figures:seed=5#{index}"
        assert item.error is None and item.metadata == {}


def test_demo_figures_source_generates_one_figure_at_a_time(monkeypatch):
    made: list[int] = []
    real = figure.make_figure

    def counting(seed: int, index: int):
        made.append(index)
        return real(seed, index)

    monkeypatch.setattr(figure, "make_figure", counting)
    items = iter(plugin.DemoFiguresSource(n=3, seed=0))
    assert made == []
    assert next(items).id == "demo-00000" and made == [0]
    assert next(items).id == "demo-00001" and made == [0, 1]


def test_demo_figures_source_is_built_from_typed_recipe_args():
    registry = Registry("sources", Source)
    registry.add("demo_figures", plugin.DemoFiguresSource, "panel2patch.plugins.demo.plugin")
    source = registry.build("demo_figures", {"n": 2, "seed": 4})
    assert (source.n, source.seed) == (2, 4)
    with pytest.raises(RecipeError, match="'n'"):
        registry.build("demo_figures", {"n": "two"})
    with pytest.raises(Panel2PatchError, match="n must be at least 1"):
        plugin.DemoFiguresSource(n=0)
    with pytest.raises(Panel2PatchError, match="seed must be >= 0"):
        plugin.DemoFiguresSource(seed=-1)
