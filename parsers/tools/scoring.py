"""Score parsed figures against ground truth: ``panel2patch score PRED GT [--json FILE]``.

Metrics, per figure and overall (overall = micro-average: counts summed over figures, then divided):

* panels: precision / recall / F1 at IoU 0.5 and 0.75. Matching is one-to-one and maximises the number
  of pairs at or above the threshold (ties broken by total IoU), solved with
  :func:`scipy.optimize.linear_sum_assignment`.
* labels: accuracy over the GT panels matched at IoU 0.5 that have a label; a prediction is right when
  its label equals the GT label exactly (case-sensitive; a missing predicted label is wrong).
* markers: precision / recall / F1, kind-agnostic. A predicted marker may match a GT marker when their
  IoU is at least 0.3 or the predicted box contains the GT arrow tip (edges included); matching is
  one-to-one as for panels. Recall is also broken down by GT marker kind.

Figures are matched by their ``id``. A GT figure missing from PRED counts as entirely missed; PRED figures
absent from GT are listed as extra and not scored. Undefined ratios (0/0) are None (``-`` in the table).

PRED and GT may each be a Figure JSON file (one figure or a list), a JSON Lines file (the output of
``panel2patch parse``), a directory of ``<id>.json`` files, a directory with an ``annotations/`` folder
(``panel2patch demo-data``) or a corpus directory holding WebDataset ``.tar`` shards whose ``KEY.json``
members are Figure JSON.
"""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from panel2patch.corpus import CorpusError, find_shards, iter_shard
from panel2patch.data import Box, Figure, Point
from panel2patch.errors import Panel2PatchError
from panel2patch.parsers.boxes import box_iou

PANEL_IOUS = (0.5, 0.75)
MARKER_IOU = 0.3


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def load_figures(path: str | Path) -> dict[str, Figure]:
    """Figures found at ``path`` (any form listed in the module docstring), keyed by Figure id."""
    path = Path(path)
    if not path.exists():
        raise Panel2PatchError(f"{path}: no such file or directory")
    figures: dict[str, Figure] = {}
    origin: dict[str, str] = {}
    for where, record in _records(path):
        try:
            figure = Figure.from_json(record)
        except (TypeError, ValueError, KeyError) as exc:
            raise Panel2PatchError(f"{where}: not a panel2patch Figure record: {exc}") from None
        if figure.id in figures:
            raise Panel2PatchError(
                f"figure id {figure.id!r} appears twice: in {origin[figure.id]} and in {where}; ids must be unique"
            )
        figures[figure.id] = figure
        origin[figure.id] = where
    return figures


def _records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.is_file():
        if path.suffix == ".tar":
            yield from _tar_records(path)
        else:
            yield from _file_records(path)
        return
    if (path / "annotations").is_dir():
        yield from _dir_records(path / "annotations")
        return
    try:
        shards = find_shards(path)
    except CorpusError:  # no shards: a folder of Figure JSON files
        shards = []
    if shards:
        for shard in shards:
            yield from _tar_records(Path(shard))
        return
    yield from _dir_records(path)


def _dir_records(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise Panel2PatchError(
            f"{folder}: no Figure JSON found (looked for *.json files, an annotations/ folder and .tar shards)"
        )
    for file in files:
        yield from _file_records(file)


def _file_records(file: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Panel2PatchError(f"{file}: unreadable: {exc}") from None
    try:
        if file.suffix == ".jsonl":
            rows = [(f"{file}:{n}", json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        else:
            data = json.loads(text)
            rows = [(f"{file}[{i}]", d) for i, d in enumerate(data)] if isinstance(data, list) else [(str(file), data)]
    except (ValueError, RecursionError) as exc:
        raise Panel2PatchError(f"{file}: invalid JSON: {exc}") from None
    for where, record in rows:
        if not isinstance(record, dict):
            raise Panel2PatchError(f"{where}: expected a Figure JSON object, got {type(record).__name__}")
        yield where, record


def _tar_records(shard: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The ``KEY.json`` members of a WebDataset shard, read through :func:`panel2patch.corpus.iter_shard`."""
    for key, sample in iter_shard(shard, members=("json",)):
        if "json" not in sample:
            continue
        where = f"{shard}:{key}.json"
        try:
            record = json.loads(sample["json"])
        except (ValueError, RecursionError) as exc:
            raise Panel2PatchError(f"{where}: invalid JSON: {exc}") from None
        yield where, record


# --------------------------------------------------------------------------------------------------
# Matching and metrics
# --------------------------------------------------------------------------------------------------


def match(pred: Sequence[Any], gt: Sequence[Any], ok: Callable[[Any, Any], bool],
          quality: Callable[[Any, Any], float]) -> list[tuple[int, int]]:
    """One-to-one pairs ``(pred index, gt index)`` with ``ok(p, g)``: as many as possible, then best quality.

    ``quality`` must lie in [0, 1]; every allowed pair is worth more than any sum of qualities, so the
    assignment maximises the pair count first.
    """
    if not pred or not gt:
        return []
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    bonus = float(min(len(pred), len(gt)) + 1)
    weight = np.zeros((len(pred), len(gt)))
    allowed = np.zeros((len(pred), len(gt)), dtype=bool)
    for i, p in enumerate(pred):
        for j, g in enumerate(gt):
            if ok(p, g):
                allowed[i, j] = True
                weight[i, j] = bonus + quality(p, g)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    return [(int(i), int(j)) for i, j in zip(rows, cols) if allowed[i, j]]


def contains(box: Box, point: Point) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _prf(tp: int, n_pred: int, n_gt: int) -> dict[str, Any]:
    precision, recall = _ratio(tp, n_pred), _ratio(tp, n_gt)
    f1 = _ratio(2 * tp, n_pred + n_gt)
    return {"tp": tp, "fp": n_pred - tp, "fn": n_gt - tp, "precision": precision, "recall": recall, "f1": f1}


def _counts(pred: Figure | None, gt: Figure) -> dict[str, Any]:
    """Raw counts for one GT figure (``pred`` None when the figure was not predicted)."""
    pred_panels = pred.panels if pred else []
    pred_markers = pred.markers if pred else []
    out: dict[str, Any] = {"panels": {}, "n_pred_panels": len(pred_panels), "n_gt_panels": len(gt.panels)}
    labels_ok = labels_total = 0
    for t in PANEL_IOUS:
        pairs = match(pred_panels, gt.panels, lambda p, g, t=t: box_iou(p.box, g.box) >= t,
                      lambda p, g: box_iou(p.box, g.box))
        out["panels"][t] = len(pairs)
        if t == 0.5:
            for i, j in pairs:
                if gt.panels[j].label is not None:
                    labels_total += 1
                    labels_ok += pred_panels[i].label == gt.panels[j].label
    out["labels"] = (labels_ok, labels_total)
    pairs = match(pred_markers, gt.markers,
                  lambda p, g: box_iou(p.box, g.box) >= MARKER_IOU or (g.tip is not None and contains(p.box, g.tip)),
                  lambda p, g: box_iou(p.box, g.box))
    out["markers"] = len(pairs)
    out["n_pred_markers"], out["n_gt_markers"] = len(pred_markers), len(gt.markers)
    kinds: dict[str, list[int]] = {}
    for g in gt.markers:
        kinds.setdefault(g.kind, [0, 0])[1] += 1
    for _, j in pairs:
        kinds[gt.markers[j].kind][0] += 1
    out["marker_kinds"] = kinds
    return out


def _summary(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "panels": {str(t): _prf(c["panels"][t], c["n_pred_panels"], c["n_gt_panels"]) for t in PANEL_IOUS},
        "labels": {"correct": c["labels"][0], "total": c["labels"][1], "accuracy": _ratio(*c["labels"])},
        "markers": {
            **_prf(c["markers"], c["n_pred_markers"], c["n_gt_markers"]),
            "recall_by_kind": {k: {"tp": tp, "total": n, "recall": _ratio(tp, n)}
                               for k, (tp, n) in sorted(c["marker_kinds"].items())},
        },
    }


def score(pred: dict[str, Figure], gt: dict[str, Figure]) -> dict[str, Any]:
    """Score ``pred`` against ``gt`` (both keyed by figure id); see the module docstring for the metrics.

    Returns ``{"overall": ..., "figures": {id: ...}, "missing": [ids], "extra": [ids]}``; each summary
    holds ``panels`` (per IoU threshold, as a string key: tp/fp/fn/precision/recall/f1), ``labels``
    (correct/total/accuracy) and ``markers`` (tp/fp/fn/precision/recall/f1 and ``recall_by_kind``).
    """
    total: dict[str, Any] = {"panels": {t: 0 for t in PANEL_IOUS}, "labels": (0, 0), "markers": 0, "n_pred_panels": 0,
                             "n_gt_panels": 0, "n_pred_markers": 0, "n_gt_markers": 0, "marker_kinds": {}}
    figures: dict[str, Any] = {}
    for fid in sorted(gt):
        c = _counts(pred.get(fid), gt[fid])
        figures[fid] = {**_summary(c), "predicted": fid in pred}
        for t in PANEL_IOUS:
            total["panels"][t] += c["panels"][t]
        total["labels"] = (total["labels"][0] + c["labels"][0], total["labels"][1] + c["labels"][1])
        for key in ("markers", "n_pred_panels", "n_gt_panels", "n_pred_markers", "n_gt_markers"):
            total[key] += c[key]
        for kind, (tp, n) in c["marker_kinds"].items():
            acc = total["marker_kinds"].setdefault(kind, [0, 0])
            acc[0] += tp
            acc[1] += n
    return {
        "overall": {**_summary(total), "figures": len(gt), "predicted": sum(1 for f in gt if f in pred)},
        "figures": figures,
        "missing": sorted(f for f in gt if f not in pred),
        "extra": sorted(f for f in pred if f not in gt),
    }


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def format_table(result: dict[str, Any]) -> str:
    """The scores as a fixed-width table: one row per GT figure, then the overall row (percentages)."""
    header = ("figure", "panels", "P@.5", "R@.5", "F1@.5", "F1@.75", "label acc", "markers", "mk P", "mk R", "mk F1")
    rows = []

    def row(name: str, s: dict[str, Any]) -> tuple[str, ...]:
        p5, p75, m = s["panels"]["0.5"], s["panels"]["0.75"], s["markers"]
        return (name, f"{p5['tp'] + p5['fp']}/{p5['tp'] + p5['fn']}", _pct(p5["precision"]), _pct(p5["recall"]),
                _pct(p5["f1"]), _pct(p75["f1"]), _pct(s["labels"]["accuracy"]),
                f"{m['tp'] + m['fp']}/{m['tp'] + m['fn']}", _pct(m["precision"]), _pct(m["recall"]), _pct(m["f1"]))

    for fid, s in result["figures"].items():
        rows.append(row(fid + ("" if s["predicted"] else " (missing)"), s))
    rows.append(row("overall", result["overall"]))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows[:-1]]
    out += ["  ".join("-" * w for w in widths), line(rows[-1])]
    o = result["overall"]
    out.append("")
    out.append("panels and markers columns: predicted/ground truth; percentages; '-' = undefined (0/0)")
    by_kind = o["markers"]["recall_by_kind"].items()
    kinds = ", ".join(f"{k} {_pct(v['recall'])} ({v['tp']}/{v['total']})" for k, v in by_kind)
    if kinds:
        out.append(f"marker recall by kind: {kinds}")
    out.append(f"figures: {o['figures']} in ground truth, {o['predicted']} predicted, "
               f"{len(result['missing'])} missing, {len(result['extra'])} extra")
    if result["extra"]:
        out.append(f"extra figures (not scored): {', '.join(result['extra'])}")
    return "\n".join(out)


def main(args: Namespace) -> int:
    """``panel2patch score PRED GT [--json FILE]``."""
    pred = load_figures(args.pred)
    gt = load_figures(args.gt)
    if not gt:
        raise Panel2PatchError(f"{args.gt}: no ground-truth figures found")
    result = score(pred, gt)
    print(format_table(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"scores written to {args.json}", file=sys.stderr)
    return 0
