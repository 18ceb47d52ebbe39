"""The scorer: panel/label/marker metrics on hand-made cases, the input forms it reads, and the CLI."""

from __future__ import annotations

import copy
import io
import json
import tarfile

import pytest

from panel2patch.cli import main
from panel2patch.data import Figure, Marker, Panel
from panel2patch.errors import Panel2PatchError
from panel2patch.parsers.tools.scoring import load_figures, score


def _gt(fid: str = "f1") -> Figure:
    return Figure(
        id=fid, width=640, height=480, caption="(A) x. (B) y.",
        panels=[
            Panel("p0", (0.0, 0.0, 100.0, 100.0), label="A"),
            Panel("p1", (200.0, 0.0, 300.0, 100.0), label="B"),
            Panel("p2", (0.0, 200.0, 100.0, 300.0)),  # no label: left out of label accuracy
        ],
        markers=[
            Marker("m0", "arrow", (50.0, 50.0, 70.0, 60.0), panel_id="p0", tip=(70.0, 55.0), direction=0.0),
            Marker("m1", "asterisk", (10.0, 10.0, 20.0, 20.0), panel_id="p0"),
        ],
    )


def _shift(box, dx):
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def test_perfect_prediction_scores_one_everywhere():
    result = score({"f1": _gt()}, {"f1": _gt()})
    o = result["overall"]
    for t in ("0.5", "0.75"):
        assert o["panels"][t] == {"tp": 3, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert o["labels"] == {"correct": 2, "total": 2, "accuracy": 1.0}
    assert (o["markers"]["tp"], o["markers"]["precision"], o["markers"]["recall"]) == (2, 1.0, 1.0)
    assert result["missing"] == [] and result["extra"] == []


def test_shifted_panels_match_by_threshold_and_labels_are_case_sensitive():
    pred = _gt()
    # IoU after a shift of d px on a 100 px square: (100 - d) / (100 + d).
    pred.panels[0].box = _shift(pred.panels[0].box, 10)  # 90/110 = 0.818: matched at 0.5 and 0.75
    pred.panels[1].box = _shift(pred.panels[1].box, 20)  # 80/120 = 0.667: matched at 0.5 only
    pred.panels[1].label = "b"
    pred.panels[2].box = _shift(pred.panels[2].box, 40)  # 60/140 = 0.429: not matched
    s = score({"f1": pred}, {"f1": _gt()})["overall"]
    assert s["panels"]["0.5"] == {"tp": 2, "fp": 1, "fn": 1, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3}
    assert (s["panels"]["0.75"]["tp"], s["panels"]["0.75"]["fp"], s["panels"]["0.75"]["fn"]) == (1, 2, 2)
    assert s["labels"] == {"correct": 1, "total": 2, "accuracy": 0.5}


def test_unlabelled_prediction_of_a_labelled_panel_is_a_label_error():
    pred = _gt()
    pred.panels[0].label = None
    assert score({"f1": pred}, {"f1": _gt()})["overall"]["labels"]["correct"] == 1


def test_marker_matches_by_iou_or_by_containing_the_arrow_tip():
    pred = _gt()
    pred.markers = [
        Marker("q0", "arrow", (0.0, 0.0, 100.0, 100.0)),  # IoU 0.02 with m0 but contains its tip
        Marker("q1", "asterisk", (18.0, 18.0, 28.0, 28.0)),  # IoU 4/196 with m1, and m1 has no tip
    ]
    m = score({"f1": pred}, {"f1": _gt()})["overall"]["markers"]
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 1)
    assert m["recall_by_kind"] == {"arrow": {"tp": 1, "total": 1, "recall": 1.0},
                                   "asterisk": {"tp": 0, "total": 1, "recall": 0.0}}
    pred.markers[0].box = (0.0, 0.0, 60.0, 100.0)  # no longer contains the tip (70, 55)
    assert score({"f1": pred}, {"f1": _gt()})["overall"]["markers"]["tp"] == 0


def test_marker_matching_is_one_to_one_and_maximises_the_number_of_matches():
    gt = _gt()
    gt.markers = [
        Marker("g0", "arrow", (100.0, 100.0, 120.0, 110.0), tip=(118.0, 105.0), direction=0.0),
        Marker("g1", "arrow", (140.0, 104.0, 150.0, 106.0), tip=(149.0, 105.0), direction=0.0),
    ]
    pred = _gt()
    pred.markers = [
        # IoU 0.4 with g0 and contains g1's tip (IoU 0.04 with g1).
        Marker("q1", "arrow", (100.0, 100.0, 150.0, 110.0)),
        # Only matches g0, through its tip (IoU 0.18). Pairing q1 with g0 (the best IoU) would leave q0
        # unmatched: the assignment must prefer two matches.
        Marker("q0", "arrow", (110.0, 90.0, 125.0, 120.0)),
    ]
    m = score({"f1": pred}, {"f1": gt})["overall"]["markers"]
    assert (m["tp"], m["fp"], m["fn"]) == (2, 0, 0)
    # Two exact copies of g0: one GT marker is matched once.
    pred.markers = [Marker(f"c{i}", "arrow", gt.markers[0].box) for i in range(2)]
    m = score({"f1": pred}, {"f1": gt})["overall"]["markers"]
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 1)


def test_missing_figures_count_as_missed_and_extra_figures_are_reported_not_scored():
    result = score({"f1": _gt("f1"), "f3": _gt("f3")}, {"f1": _gt("f1"), "f2": _gt("f2")})
    assert result["missing"] == ["f2"] and result["extra"] == ["f3"]
    o = result["overall"]
    assert o["panels"]["0.5"] == {"tp": 3, "fp": 0, "fn": 3, "precision": 1.0, "recall": 0.5, "f1": 2 / 3}
    assert (o["markers"]["tp"], o["markers"]["fn"]) == (2, 2)
    assert o["labels"] == {"correct": 2, "total": 2, "accuracy": 1.0}
    f2 = result["figures"]["f2"]
    assert f2["predicted"] is False
    assert f2["panels"]["0.5"]["recall"] == 0.0 and f2["panels"]["0.5"]["precision"] is None
    assert sorted(result["figures"]) == ["f1", "f2"]


def _write_dir(folder, figures):
    folder.mkdir(parents=True, exist_ok=True)
    for fig in figures:
        (folder / f"{fig.id}.json").write_text(json.dumps(fig.to_json()))


def _write_shard(path, figures):
    with tarfile.open(path, "w") as tar:
        for n, fig in enumerate(figures):
            for name, data in ((f"{n:06d}.json", json.dumps(fig.to_json()).encode()),
                               (f"{n:06d}.txt", fig.caption.encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_reads_every_input_form(tmp_path):
    figures = [_gt("f1"), _gt("f2")]
    _write_dir(tmp_path / "plain", figures)
    _write_dir(tmp_path / "demo" / "annotations", figures)
    (tmp_path / "demo" / "demo.json").write_text("{}")
    (tmp_path / "corpus" / "shards").mkdir(parents=True)
    _write_shard(tmp_path / "corpus" / "shards" / "shard-000000.tar", figures[:1])
    _write_shard(tmp_path / "corpus" / "shards" / "shard-000001.tar", figures[1:])
    (tmp_path / "corpus" / "manifest.json").write_text("{}")
    (tmp_path / "parsed.jsonl").write_text("".join(json.dumps(f.to_json()) + "\n" for f in figures))
    (tmp_path / "list.json").write_text(json.dumps([f.to_json() for f in figures]))
    for form in ("plain", "demo", "corpus", "parsed.jsonl", "list.json"):
        loaded = load_figures(tmp_path / form)
        assert sorted(loaded) == ["f1", "f2"], form
        assert loaded["f2"] == figures[1], form


def test_loading_errors_name_the_file(tmp_path):
    _write_dir(tmp_path / "dup", [_gt("f1")])
    (tmp_path / "dup" / "copy.json").write_text(json.dumps(_gt("f1").to_json()))
    with pytest.raises(Panel2PatchError, match="'f1' appears twice"):
        load_figures(tmp_path / "dup")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.json").write_text("{not json")
    with pytest.raises(Panel2PatchError, match=r"x\.json: invalid JSON"):
        load_figures(tmp_path / "bad")
    record = _gt().to_json()
    del record["schema_version"]
    (tmp_path / "old.json").write_text(json.dumps(record))
    with pytest.raises(Panel2PatchError, match=r"old\.json: not a panel2patch Figure record: .*schema version"):
        load_figures(tmp_path / "old.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Panel2PatchError, match="no Figure JSON found"):
        load_figures(tmp_path / "empty")


def test_cli_prints_a_table_and_writes_json(tmp_path, capsys):
    pred = copy.deepcopy(_gt())
    pred.panels[1].box = _shift(pred.panels[1].box, 20)
    _write_dir(tmp_path / "pred", [pred])
    _write_dir(tmp_path / "gt", [_gt("f1"), _gt("f2")])
    out = tmp_path / "scores" / "s.json"
    assert main(["score", str(tmp_path / "pred"), str(tmp_path / "gt"), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "f2 (missing)" in table and "overall" in table
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(score(load_figures(tmp_path / "pred"), load_figures(tmp_path / "gt"))))
    assert written["overall"]["panels"]["0.75"]["tp"] == 2
    assert main(["score", str(tmp_path / "pred"), str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such file or directory" in capsys.readouterr().err
