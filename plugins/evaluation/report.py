"""Evaluation outputs: ``eval.json`` (every metric with its interval, differences against the reference model),
``eval.md`` (the same as a markdown table) and ``eval.png`` (recall@K curves per level and model)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panel2patch.data import Score

from .stats import Interval

_RECALL = re.compile(r"^(?P<group>.+)/(?P<direction>i2t|t2i)_r(?P<k>\d+)$")


@dataclass
class ModelResult:
    label: str
    info: dict[str, Any]
    scores: dict[str, Score]
    intervals: dict[str, Interval] = field(default_factory=dict)
    differences: dict[str, Interval] = field(default_factory=dict)


def results_json(results: Sequence[ModelResult], reference: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **extra,
        "reference": reference,
        "models": {r.label: {"info": r.info,
                             "metrics": {k: v.to_json() for k, v in r.intervals.items()},
                             "differences": {k: v.to_json() for k, v in r.differences.items()}}
                   for r in results},
    }


def _fmt(value: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def cell(iv: Interval | None) -> str:
    if iv is None:
        return ""
    if iv.low == iv.high == iv.value:
        return _fmt(iv.value)
    return f"{_fmt(iv.value)} [{_fmt(iv.low)}, {_fmt(iv.high)}]"


def markdown(results: Sequence[ModelResult], reference: str, confidence: float) -> str:
    """One row per metric, one column per model (value [interval]) and per compared model (difference)."""
    metrics = list(dict.fromkeys(k for r in results for k in r.intervals))
    others = [r for r in results if r.label != reference]
    head = ["metric", *(r.label for r in results), *(f"{r.label} − {reference}" for r in others)]
    lines = [f"Intervals: {round(confidence * 100)} % bootstrap over queries (paired for differences).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in metrics:
        row = [key, *(cell(r.intervals.get(key)) for r in results), *(cell(r.differences.get(key)) for r in others)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def recall_curves(results: Sequence[ModelResult]) -> dict[str, dict[str, dict[str, list[tuple[int, Interval]]]]]:
    """group -> model -> direction -> [(K, interval)] for every ``.../{i2t,t2i}_rK`` metric."""
    curves: dict[str, dict[str, dict[str, list[tuple[int, Interval]]]]] = {}
    for r in results:
        for key, iv in r.intervals.items():
            m = _RECALL.match(key)
            if m and not math.isnan(iv.value):
                curves.setdefault(m["group"], {}).setdefault(r.label, {}).setdefault(m["direction"], []).append(
                    (int(m["k"]), iv))
    return curves


def plot(results: Sequence[ModelResult], path: Path) -> bool:
    """Recall@K curves, one panel per level or cross-level task; False when there is nothing to draw."""
    curves = recall_curves(results)
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(curves))
    rows = math.ceil(len(curves) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    colours = {r.label: f"C{i}" for i, r in enumerate(results)}
    for ax, (group, by_model) in zip(axes.flat, curves.items()):
        for label, by_direction in by_model.items():
            for direction, points in by_direction.items():
                points.sort(key=lambda p: p[0])
                ks = [k for k, _ in points]
                values = [iv.value for _, iv in points]
                errors = [[iv.value - iv.low for _, iv in points], [iv.high - iv.value for _, iv in points]]
                ax.errorbar(ks, values, yerr=errors, color=colours[label], capsize=3, marker="o", markersize=3,
                            linestyle="-" if direction == "i2t" else "--", label=f"{label} {direction}")
        ax.set_title(group, fontsize=9)
        ax.set_xlabel("K")
        ax.set_ylabel("recall@K")
        ax.set_ylim(0.0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(curves):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_outputs(out: Path, results: Sequence[ModelResult], reference: str, confidence: float,
                  extra: Mapping[str, Any], draw: bool = True) -> dict[str, str]:
    """Write ``eval.json``, ``eval.md`` and (``draw``) ``eval.png`` under ``out``; returns what was written."""
    out.mkdir(parents=True, exist_ok=True)
    written = {"json": str(out / "eval.json"), "markdown": str(out / "eval.md")}
    (out / "eval.json").write_text(json.dumps(results_json(results, reference, extra), indent=2, default=str),
                                   encoding="utf-8")
    (out / "eval.md").write_text(markdown(results, reference, confidence), encoding="utf-8")
    if draw and plot(results, out / "eval.png"):
        written["plot"] = str(out / "eval.png")
    return written
