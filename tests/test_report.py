"""The corpus report escapes every value it shows: all corpus fields are untrusted."""

import io
import json

from PIL import Image

from panel2patch.data import Figure, Marker, Panel, Region
from panel2patch.plugins.report import write_report
from panel2patch.plugins.writers import WebDatasetWriter

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'


def test_every_field_is_escaped(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (90, 90, 90)).save(buf, format="PNG")
    figure = Figure(
        id=f"fig{HOSTILE}", width=40, height=30, caption=f"caption {HOSTILE}", source=HOSTILE,
        panels=[Panel(id=f"p{HOSTILE}", box=(0, 0, 20, 30), label=f"A{HOSTILE}", kind=f"photo{HOSTILE}",
                      subcaption=f"sub {HOSTILE}", description=HOSTILE)],
        markers=[Marker(id=f"m{HOSTILE}", kind=f"arrow{HOSTILE}", box=(1, 1, 5, 5), text=f"t{HOSTILE}")],
        regions=[Region(id=f"r{HOSTILE}", panel_id=f"p{HOSTILE}", box=(2, 2, 8, 8), texts=[f"clause {HOSTILE}"])],
    )
    writer = WebDatasetWriter(str(tmp_path / "corpus"))
    writer.begin("000-00000")
    writer.write(figure, buf.getvalue(), "png")
    writer.reject(f"bad{HOSTILE}", f"reason{HOSTILE}", f"detail {HOSTILE}")
    writer.commit({"inputs": 2})
    writer.finish({"shard": 0, "num_shards": 1, "cleaners": {f"0:{HOSTILE}": {"regions": 1}}})
    page = tmp_path / "report.html"
    write_report(str(tmp_path / "corpus"), str(page), progress=False)
    text = page.read_text()
    assert "<script" not in text and "<img" not in text and "onerror=alert(2)>" not in text
    for field in ("fig", "caption ", "sub ", "clause ", "bad", "reason", "detail ", "photo", "arrow", "0:"):
        assert f"{field}&lt;script&gt;alert(1)&lt;/script&gt;" in text, field


def test_hand_edited_manifest_and_rejects_do_not_stop_the_report(tmp_path):
    corpus = tmp_path / "corpus"
    writer = WebDatasetWriter(str(corpus))
    writer.begin("000-00000")
    writer.commit({"inputs": 0})
    writer.finish({"shard": 0, "num_shards": 1})
    (corpus / "manifest.json").write_text(json.dumps({"cleaners": {"0:x": [1, 2], "1:y": "many"}}))
    (corpus / "shards" / "corpus-000-00000.rejects.jsonl").write_text('[1, 2]\n{"id": 5}\n')
    page = tmp_path / "report.html"
    summary = write_report(str(corpus), str(page), progress=False)
    assert summary["rejects"] == 2 and "0:x" in page.read_text()


def test_export_pairs_clips_boxes_to_the_image_and_skips_unreadable_members(tmp_path, capsys):
    import webdataset as wds

    from panel2patch.plugins.export_pairs import crop_window, export_pairs

    assert crop_window((-5.4, 3.6, 50.2, 40.0), 40, 30) == (0, 4, 40, 30)
    assert crop_window((45, 0, 60, 10), 40, 30) is None and crop_window((10, 10, 10.2, 20), 40, 30) is None
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, format="PNG")
    writer = WebDatasetWriter(str(tmp_path / "corpus"))
    writer.begin("000-00000")
    inside = [Panel("p0", (-0.6, -0.4, 20, 30.5), subcaption="left")]  # within the 1 px slack: clipped
    writer.write(Figure(id="f", width=40, height=30, caption="c", panels=inside), buf.getvalue(), "png")
    outside = [Panel("p1", (50, 0, 90, 30), subcaption="outside")]
    writer.write(Figure(id="g", width=40, height=30, caption="c", panels=outside), buf.getvalue(), "png")
    wrong_size = [Panel("p2", (0, 0, 20, 20), subcaption="right")]
    writer.write(Figure(id="h", width=80, height=30, caption="c", panels=wrong_size), buf.getvalue(), "png")
    writer.commit({"inputs": 3})
    writer.finish({"shard": 0, "num_shards": 1})
    summary = export_pairs(str(tmp_path / "corpus"), str(tmp_path / "pairs"), "panel", progress=False)
    assert summary["pairs"] == 1 and summary["unreadable_members"] == 2
    assert "panels.0.box: [50.0, 0.0, 90.0, 30.0] is not a finite box inside the 40x30 image" in summary["skipped"][0]
    assert "image is 40x30 but its JSON says 80x30" in summary["skipped"][1]
    assert json.loads((tmp_path / "pairs" / "export.json").read_text())["skipped"] == summary["skipped"]
    assert "export-pairs: skipped" in capsys.readouterr().err
    (sample,) = wds.WebDataset(str(tmp_path / "pairs" / "panel-00000.tar"), shardshuffle=False, empty_check=False)
    crop = Image.open(io.BytesIO(sample["png"]))
    assert crop.size == (20, 30) and crop.getpixel((5, 5)) == (200, 30, 30)
