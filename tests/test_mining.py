"""Mining: every input ends in the corpus or the rejects file; resume after a kill; sharding; hooks."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from panel2patch import config, manager
from panel2patch.cli import main
from panel2patch.components import CaptionSplitter, FigureParser, MarkerDetector
from panel2patch.corpus import read_corpus, read_rejects, sample_key
from panel2patch.data import CaptionSplit, FigureParse, Marker, MarkerClause, Panel
from panel2patch.hookspecs import hookimpl

FAIL_WIDTH = 77  # the test parser raises on images of this width


class HalvesParser(FigureParser):
    """Splits a figure into a left panel A and a right panel B."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def parse(self, image, caption):
        if image.width == FAIL_WIDTH:
            raise RuntimeError("cannot parse this layout")
        time.sleep(self.delay)
        w, h = image.size
        return FigureParse(w, h, [Panel("p0", (0.0, 0.0, w / 2, float(h)), label="A"),
                                  Panel("p1", (w / 2, 0.0, float(w), float(h)), label="B")])


class CentreArrow(MarkerDetector):
    def detect(self, image, panels):
        p = panels[0]
        cx, cy = (p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2
        return [Marker("", "arrow", (cx - 10, cy - 4, cx, cy + 4), panel_id=p.id, tip=(cx, cy), direction=0.0)]


class ParenSplitter(CaptionSplitter):
    def split(self, caption, labels):
        parts = re.split(r"\(([AB])\)", caption)
        segments = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
        clauses = [MarkerClause("arrow", s.strip(), ["A"]) for s in re.findall(r"[^.,()]*[Aa]rrow[^.]*\.", caption)]
        return CaptionSplit(caption, parts[0].strip(), segments, "", clauses)


class TestComponents:
    @hookimpl
    def register_figure_parsers(self, register):
        register("halves", HalvesParser)

    @hookimpl
    def register_marker_detectors(self, register):
        register("centre_arrow", CentreArrow)

    @hookimpl
    def register_caption_splitters(self, register):
        register("paren", ParenSplitter)


def recipe_text(root: Path, out: Path, chunk_size: int = 3, delay: float = 0.0) -> str:
    return f"""\
# test recipe
mine:
  source: {{name: folder_index, args: {{root: "{root}", index: captions.jsonl}}}}
  parser: {{name: halves, args: {{delay: {delay}}}}}
  markers: centre_arrow
  splitter: paren
  regions: marker_regions
  cleaners: [clip_to_image, panel_containment, {{name: box_nms, args: {{iou: 0.5}}}}]
  writer: {{name: webdataset_corpus, args: {{out: "{out}"}}}}
  chunk_size: {chunk_size}
  max_pixels: 4000000
"""


def png(size=(120, 80), colour=(200, 30, 30), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour if mode == "RGB" else 128).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG whose header claims a huge image while the file is tiny."""
    data = bytearray(png((8, 8)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


CAPTION = "Two views. (A) Tissue, arrow marks a vessel. (B) Control."


def write_inputs(root: Path, good: int = 7) -> dict[str, str]:
    """A folder source with ``good`` valid figures and one of each kind of bad input.

    Returns the expected reject reason per figure id (valid ones absent)."""
    (root / "img").mkdir(parents=True)
    rows, expected = [], {}
    for i in range(good):
        (root / "img" / f"ok{i}.png").write_bytes(png(colour=(10 * i, 100, 50)))
        rows.append({"id": f"ok{i}", "image": f"img/ok{i}.png", "caption": CAPTION})
    jpeg = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: stored pixels are transposed
    Image.new("RGB", (90, 60), (0, 90, 200)).save(jpeg, format="JPEG", exif=exif)
    (root / "img" / "rotated.jpg").write_bytes(jpeg.getvalue())
    rows.append({"id": "rotated", "image": "img/rotated.jpg", "caption": CAPTION})
    cmyk = io.BytesIO()
    Image.new("CMYK", (64, 64), (0, 50, 100, 0)).save(cmyk, format="JPEG")
    (root / "img" / "cmyk.jpg").write_bytes(cmyk.getvalue())
    rows.append({"id": "cmyk", "image": "img/cmyk.jpg", "caption": CAPTION})
    bad = {
        "corrupt": (b"\x89PNG\r\n\x1a\n" + os.urandom(200), "undecodable_image"),
        "truncated": (png()[:60], "undecodable_image"),
        "empty": (b"", "undecodable_image"),
        "textfile": (b"this is not an image\n", "undecodable_image"),
        "bomb": (bomb_png(), "image_too_large"),
        "fails": (png(size=(FAIL_WIDTH, 40)), "component_error"),
    }
    for name, (data, reason) in bad.items():
        (root / "img" / f"{name}.png").write_bytes(data)
        rows.append({"id": name, "image": f"img/{name}.png", "caption": CAPTION})
        expected[name] = reason
    rows += [
        {"id": "nocaption", "image": "img/ok0.png"},
        {"id": "blankcaption", "image": "img/ok0.png", "caption": "   "},
        {"id": "ok1", "image": "img/ok1.png", "caption": CAPTION},
        {"id": "../evil", "image": "img/ok0.png", "caption": CAPTION},
        {"id": "dir/name", "image": "img/ok0.png", "caption": CAPTION},
        {"id": "missing", "image": "img/nothere.png", "caption": CAPTION},
        {"image": "img/ok0.png", "caption": CAPTION},
    ]
    expected.update({"nocaption": "missing_caption", "blankcaption": "missing_caption", "ok1#dup": "duplicate_id",
                     "../evil": "unsafe_id", "dir/name": "unsafe_id", "missing": "missing_image"})
    lines = [json.dumps(r).encode() for r in rows]
    lines.insert(3, b'{"id": "latin1", "image": "img/ok0.png", "caption": "caf\xe9"}')
    (root / "captions.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return expected


@pytest.fixture
def test_plugin(add_plugin):
    return add_plugin(TestComponents(), "test-components")


def mine(recipe_path: Path, *extra: str) -> int:
    return main(["mine", str(recipe_path), *extra])


def test_every_input_ends_in_corpus_or_rejects(tmp_path, test_plugin, capsys):
    expected = write_inputs(tmp_path / "in")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(recipe_text(tmp_path / "in", tmp_path / "corpus"))
    assert mine(recipe) == 0
    figures = {r.figure.id: r.figure for r in read_corpus(tmp_path / "corpus")}
    rejects = read_rejects(tmp_path / "corpus")
    manifest = json.loads((tmp_path / "corpus" / "manifest.json").read_text())
    index_lines = len((tmp_path / "in" / "captions.jsonl").read_bytes().splitlines())
    assert manifest["inputs"] == index_lines == len(figures) + len(rejects)
    assert set(figures) == {f"ok{i}" for i in range(7)} | {"rotated", "cmyk"}
    reasons = {}
    for r in rejects:
        key = r["id"] + "#dup" if r["reason"] == "duplicate_id" else r["id"]
        reasons[key] = r["reason"]
    for figure_id, reason in expected.items():
        assert reasons.get(figure_id) == reason, (figure_id, reasons.get(figure_id))
    assert any(r["reason"] == "bad_index_row" and "not UTF-8" in r["detail"] for r in rejects)
    assert any(r["reason"] == "missing_id" for r in rejects)
    assert "cannot parse this layout" in next(r["detail"] for r in rejects if r["id"] == "fails")
    assert manifest["rejects"] == dict(__import__("collections").Counter(r["reason"] for r in rejects))
    assert "mined 23 inputs: 9 figures" in capsys.readouterr().out


def test_mined_hierarchy_and_stored_frame(tmp_path, test_plugin):
    write_inputs(tmp_path / "in", good=1)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(recipe_text(tmp_path / "in", tmp_path / "corpus"))
    assert mine(recipe) == 0
    samples = {r.figure.id: (r.key, r.figure, r.image, r.image_ext) for r in read_corpus(tmp_path / "corpus")}
    key, fig, data, ext = samples["ok0"]
    assert key == sample_key("ok0") and ext == "png" and data == (tmp_path / "in/img/ok0.png").read_bytes()
    assert [p.subcaption for p in fig.panels] == ["Two views. Tissue, arrow marks a vessel.", "Two views. Control."]
    assert fig.panels[0].preamble == "Two views."
    (region,) = fig.regions
    assert region.panel_id == "p0" and region.marker_ids == [fig.markers[0].id]
    assert region.texts == ["arrow marks a vessel."]
    assert fig.components["parser"] == {"name": "halves", "args": {"delay": 0.0}}
    # An EXIF-rotated JPEG is stored re-encoded in the frame its boxes refer to.
    _, rotated, data, ext = samples["rotated"]
    assert ext == "png" and Image.open(io.BytesIO(data)).size == (60, 90) == (rotated.width, rotated.height)


def test_shards_partition_the_source(tmp_path, test_plugin):
    write_inputs(tmp_path / "in")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    (tmp_path / "w.yaml").write_text(recipe_text(tmp_path / "in", whole))
    (tmp_path / "p.yaml").write_text(recipe_text(tmp_path / "in", parts))
    assert mine(tmp_path / "w.yaml") == 0
    assert mine(tmp_path / "p.yaml", "--shard", "0/2") == 0
    assert mine(tmp_path / "p.yaml", "--shard", "1/2") == 0
    ids = lambda c: sorted(r.figure.id for r in read_corpus(c))
    rej = lambda c: sorted((r["id"], r["reason"]) for r in read_rejects(c))
    assert ids(whole) == ids(parts) and rej(whole) == rej(parts)
    assert sorted(p.name for p in parts.glob("manifest-*.json")) == ["manifest-000-of-002.json", "manifest-001-of-002.json"]


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
from panel2patch import manager
from panel2patch.cli import main
from test_mining import TestComponents
manager.plugin_manager().register(TestComponents(), name="test-components")
sys.exit(main(["mine", {recipe!r}, "--workers", "1"]))  # the test plugin lives in this process
"""


def corpus_digest(corpus: Path) -> tuple[list, list]:
    """Samples and rejects, without the recorded component args (the two runs differ in parser delay)."""
    samples = sorted((r.key, json.dumps({**r.figure.to_json(), "components": None}, sort_keys=True), r.image)
                     for r in read_corpus(corpus))
    return samples, sorted(json.dumps(r, sort_keys=True) for r in read_rejects(corpus))


def test_killed_run_resumes_to_the_same_corpus(tmp_path):
    write_inputs(tmp_path / "in", good=12)
    for name, delay in (("ref", 0.0), ("killed", 0.15)):
        (tmp_path / f"{name}.yaml").write_text(recipe_text(tmp_path / "in", tmp_path / name, chunk_size=3, delay=delay))
    driver = lambda name: [sys.executable, "-c", DRIVER.format(tests=str(Path(__file__).parent), recipe=str(tmp_path / f"{name}.yaml"))]
    subprocess.run(driver("ref"), check=True, capture_output=True)
    proc = subprocess.Popen(driver("killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shard_dir = tmp_path / "killed" / "shards"
    deadline = time.time() + 600  # start-up (torch, OCR) can be slow on a loaded machine
    while time.time() < deadline and len(list(shard_dir.glob("*.stats.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = len(list(shard_dir.glob("*.stats.json")))
    assert 2 <= committed < 10, "the run was not killed mid-way"
    assert not (tmp_path / "killed" / "manifest.json").exists()
    subprocess.run(driver("killed"), check=True, capture_output=True)
    assert corpus_digest(tmp_path / "killed") == corpus_digest(tmp_path / "ref")
    assert not list(shard_dir.glob("*.tmp"))
    ref = json.loads((tmp_path / "ref" / "manifest.json").read_text())
    resumed = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    for key in ("inputs", "figures", "counts", "rejects", "cleaners"):
        assert resumed[key] == ref[key], key


def test_lifecycle_hooks_observe_the_run(tmp_path, test_plugin, add_plugin):
    calls = []

    class Observer:
        @hookimpl
        def on_run_start(self, run, is_main):
            calls.append(("on_run_start", run.command, is_main))

        @hookimpl
        def on_stage_start(self, run, stage, is_main):
            calls.append(("on_stage_start", stage))

        @hookimpl
        def on_step_end(self, run, step, metrics, is_main):
            calls.append(("on_step_end", step, metrics["panels"]))

        @hookimpl
        def on_stage_end(self, run, stage, summary, is_main):
            calls.append(("on_stage_end", stage, summary["figures"]))

        @hookimpl
        def on_error(self, run, stage, error, is_main):
            calls.append(("on_error", stage, "cannot parse" in str(error)))

        @hookimpl
        def on_run_end(self, run, summary, is_main):
            calls.append(("on_run_end", summary["inputs"]))

    add_plugin(Observer(), "observer")
    root = tmp_path / "in"
    (root / "img").mkdir(parents=True)
    (root / "img/a.png").write_bytes(png())
    (root / "img/b.png").write_bytes(png(size=(FAIL_WIDTH, 40)))
    (root / "captions.jsonl").write_text(
        json.dumps({"id": "a", "image": "img/a.png", "caption": CAPTION}) + "\n"
        + json.dumps({"id": "b", "image": "img/b.png", "caption": CAPTION}) + "\n"
    )
    (tmp_path / "r.yaml").write_text(recipe_text(root, tmp_path / "corpus"))
    assert mine(tmp_path / "r.yaml") == 0
    assert calls == [
        ("on_run_start", "mine", True), ("on_stage_start", "mine"), ("on_step_end", 1, 2),
        ("on_error", "mine", True), ("on_stage_end", "mine", 1), ("on_run_end", 2),
    ]


def test_webdataset_source_streams_shards_and_reports_bad_samples(tmp_path, test_plugin):
    import webdataset as wds

    shard = tmp_path / "src" / "part-000.tar"
    shard.parent.mkdir()
    with wds.TarWriter(str(shard)) as sink:
        sink.write({"__key__": "fig1", "png": png(), "txt": CAPTION.encode()})
        sink.write({"__key__": "fig2", "png": png(), "txt": "caf\xe9".encode("latin-1")})
        sink.write({"__key__": "fig3", "txt": CAPTION.encode()})
        sink.write({"__key__": "fig4", "jpg": png(), "txt": CAPTION.encode(), "json": b'{"id": "PMC1_f4"}'})
    text = recipe_text(tmp_path, tmp_path / "corpus")
    text = re.sub(r"  source: .*\n", f"  source: {{name: webdataset_source, args: {{urls: '{tmp_path / 'src'}'}}}}\n", text)
    (tmp_path / "r.yaml").write_text(text)
    assert mine(tmp_path / "r.yaml") == 0
    assert sorted(r.figure.id for r in read_corpus(tmp_path / "corpus")) == ["PMC1_f4", "fig1"]
    reasons = {r["id"]: r["reason"] for r in read_rejects(tmp_path / "corpus")}
    assert reasons == {"fig2": "caption_not_utf8", "fig3": "missing_image"}


def test_export_pairs_and_report(tmp_path, test_plugin):
    import webdataset as wds

    write_inputs(tmp_path / "in", good=3)
    (tmp_path / "r.yaml").write_text(recipe_text(tmp_path / "in", tmp_path / "corpus"))
    assert mine(tmp_path / "r.yaml") == 0
    for level, n in (("figure", 5), ("panel", 10), ("region", 5)):
        out = tmp_path / f"pairs-{level}"
        assert main(["export-pairs", str(tmp_path / "corpus"), str(out), "--level", level]) == 0
        samples = list(wds.WebDataset(str(out / f"{level}-00000.tar"), shardshuffle=False, empty_check=False))
        assert len(samples) == n
        meta = json.loads(samples[0]["json"])
        image = Image.open(io.BytesIO(samples[0]["png"]))
        if level == "panel":
            assert image.size == (60, 80) and samples[0]["txt"].decode() == "Two views. Tissue, arrow marks a vessel."
        if level == "region":
            box = meta["box"]
            assert image.size == (round(box[2]) - round(box[0]), round(box[3]) - round(box[1]))
            assert samples[0]["txt"].decode() == "arrow marks a vessel."
    page = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "corpus"), str(page)]) == 0
    text = page.read_text()
    assert "<svg" in text and "data:image/jpeg;base64," in text
    assert "undecodable_image" in text and "Tissue, arrow marks a vessel." in text
    assert "http://" not in text.replace('http://www.w3.org', '') and "<script" not in text


def test_quickstart_recipe_names_registered_components():
    recipe = config.load("quickstart")
    assert {k for k, _, _ in config.validate(recipe)} >= {"mine.parser", "mine.markers", "mine.splitter", "mine.regions"}
    assert manager.registry("writers").get("webdataset_corpus")


def test_miner_gives_panels_the_segments_the_splitter_assigns():
    from panel2patch.data import Figure
    from panel2patch.mining import assign_subcaptions

    class ByOrder(ParenSplitter):
        def assign(self, split, figure):  # keys that are no labels: the splitter alone knows them
            return {p.id: key for p, key in zip(figure.panels, split.segments)}

    panels = [Panel(f"p{i}", box, label="A" if i == 0 else None)
              for i, box in enumerate([(0, 0, 50, 50), (50, 0, 100, 50), (0, 50, 100, 100)])]
    figure = Figure("f", 100, 100, "caption", panels=panels)
    split = CaptionSplit("caption", "Liver.", {"first": "HE.", "second": "IHC."}, shared="Bars, 1 mm.")
    assign_subcaptions(figure, split, ByOrder())
    assert [p.subcaption for p in figure.panels] == ["Liver. HE. Bars, 1 mm.", "Liver. IHC. Bars, 1 mm.", None]
    assert [p.preamble for p in figure.panels] == ["Liver."] * 3
    single = Figure("g", 10, 10, " Whole caption. ", panels=[Panel("p0", (0, 0, 10, 10))])
    assign_subcaptions(single, CaptionSplit("Whole caption."), ParenSplitter())
    assert single.panels[0].subcaption == "Whole caption."


def test_base_splitter_assigns_segments_by_printed_label():
    from panel2patch.data import Figure

    panels = [Panel("p0", (0, 0, 5, 5), label="B"), Panel("p1", (5, 0, 10, 5), label="C"), Panel("p2", (0, 5, 5, 10))]
    split = CaptionSplit("c", segments={"B": "b.", "A": "a."})
    assert ParenSplitter().assign(split, Figure("f", 10, 10, "c", panels=panels)) == {"p0": "B"}


def test_resuming_into_a_corpus_of_other_inputs_is_refused(tmp_path, test_plugin):
    write_inputs(tmp_path / "in", good=2)
    (tmp_path / "r.yaml").write_text(recipe_text(tmp_path / "in", tmp_path / "corpus", chunk_size=3))
    assert mine(tmp_path / "r.yaml") == 0
    assert mine(tmp_path / "r.yaml") == 0  # same inputs: everything committed, nothing redone
    index = tmp_path / "in" / "captions.jsonl"
    index.write_bytes(index.read_bytes().replace(b'"id": "ok0"', b'"id": "ok9"'))
    with pytest.raises(Exception, match="was mined from other inputs"):
        from panel2patch.mining import Miner

        Miner(config.load(str(tmp_path / "r.yaml"))).run_shard(progress=False)


def test_resuming_with_other_settings_or_components_is_refused(tmp_path, test_plugin):
    from panel2patch.mining import Miner

    write_inputs(tmp_path / "in", good=2)
    (tmp_path / "r.yaml").write_text(recipe_text(tmp_path / "in", tmp_path / "corpus", chunk_size=3))
    assert mine(tmp_path / "r.yaml") == 0
    for override in ("mine.cleaners.2.args.iou=0.3", "mine.max_pixels=3000000"):
        with pytest.raises(Exception, match="was mined from other inputs or settings"):
            Miner(config.load(str(tmp_path / "r.yaml"), [override])).run_shard(progress=False)
    assert mine(tmp_path / "r.yaml") == 0  # the same recipe still resumes
