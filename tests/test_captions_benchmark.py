"""The caption-splitting benchmark reads every reference format and skips what it cannot score."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "caption_split.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("caption_split_benchmark", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_references_from_subcaptions_or_from_caption_segments(bench):
    with_subs = {"caption": "(A) Liver. (B) Lung.", "subcaptions": {"A": "Liver.", "B": "Lung."}}
    assert bench._figure_references(with_subs) == [("A", "Liver."), ("B", "Lung.")]
    with_segments = {
        "caption": "Organs. a Liver. b, c Lung and kidney.",
        "caption_segments": [
            {"labels": "ALL", "text": "Organs."},
            {"labels": ["a"], "text": "a Liver."},
            {"labels": ["b", "c"], "text": "b, c Lung and kidney."},
        ],
    }
    assert bench._figure_references(with_segments) == [
        ("a", "Organs. a Liver."),
        ("b", "Organs. b, c Lung and kidney."),
        ("c", "Organs. b, c Lung and kidney."),
    ]
    assert bench._figure_references({"caption": "No labels."}) == []


def test_every_set_is_scored_and_missing_or_unlabelled_ones_are_named(bench, tmp_path, capsys):
    _write(
        tmp_path / "caption_splits" / "prostate_captions.json",
        {
            "f1": {
                "caption": "(A) Liver. (B) Lung.",
                "gt_subfigures": [
                    {"label": {"text": "A"}, "caption": "Liver."},
                    {"label": {"text": "B"}, "caption": "Lung."},
                ],
            },
        },
    )
    _write(
        tmp_path / "embo_2025" / "annotations.json",
        {
            "figures": [
                {
                    "image": "figures/x.png",
                    "caption": "(A) Liver. (B) Lung.",
                    "subcaptions": {"A": "Liver.", "B": "Lung."},
                },
            ]
        },
    )
    _write(tmp_path / "boxes_only" / "annotations.json", {"figures": [{"image": "y.png", "caption": "(A) x."}]})
    sets, skipped = bench.find_sets(tmp_path)
    assert [s.name for s in sets] == ["prostate", "embo_2025"]
    assert any(line.startswith("exsclaim_ncomms: skipped") and "not found" in line for line in skipped)
    assert any(line.startswith("boxes_only: skipped") and "no per-label caption text" in line for line in skipped)
    assert bench.main(["--data-dir", str(tmp_path), "--worst", "1", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "prostate:" in out and "embo_2025:" in out and "exsclaim_ncomms: skipped" in out
    assert out.count("1.0000") >= 8  # F1 and label recall, with and without labels, for both sets
