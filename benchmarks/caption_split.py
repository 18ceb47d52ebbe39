"""Score a caption splitter against human-made sub-captions, on every real caption set found.

The sets live under ``shared/data/dev`` beside the repository (``--data-dir`` to point elsewhere):

* ``prostate``: ``caption_splits/prostate_captions.json``, a JSON object ``{figure id: entry}``; each entry
  has ``caption`` and ``gt_subfigures``, a list of ``{"label": {"text": "A"}, "caption": "<reference>"}``.
* ``embo_2025``, ``exsclaim_ncomms`` and any other ``<set>/annotations.json`` whose ``figures`` carry a
  ``caption``: the reference sub-caption of a label is the figure's ``subcaptions[label]`` where given
  (what a person pairs with the panel; boilerplate such as "Source data are available online" is in
  none), else it is built from ``caption_segments`` (exact substrings keyed by the labels they describe,
  ``"ALL"`` for text shared by every panel): the ``"ALL"`` segments and the segments naming the label, in
  caption order. A set whose figures have neither gives no per-label text and is skipped with a line
  saying so, as is a known set that is missing.

Measures, per labelled reference panel: token F1 between the predicted sub-caption
(:meth:`~panel2patch.data.CaptionSplit.subcaption`) and the reference sub-caption, where tokens
are the lower-cased runs of ``[a-z0-9]`` compared as multisets; a label missing from the prediction's
segments scores 0. Mean token F1 is averaged over all labelled reference panels of a set; label recall is
the share of reference labels present in the prediction. Both are computed twice per set: with
``labels=None`` (caption only) and with the reference labels given to the splitter. Captions per second is
the caption-only pass over every set, timed on this machine.

``--scaling`` instead times one caption-only split of adversarial captions (long runs of ``A, ``, of
``(A)``, of labelled clauses, of text without a sentence end, of semicolons, and ordinary prose) at 5, 20,
50 and 200 kB, and prints per shape the ratio of the 200 kB time per byte to the 5 kB time per byte
(about 1 for a splitter linear in caption length).

Usage::

    python benchmarks/caption_split.py [--data-dir DIR] [--data FILE] [--splitter label_splitter] [--args JSON]
                                       [--worst N] [--show]
    python benchmarks/caption_split.py --scaling [--splitter label_splitter] [--args JSON]

``--data FILE`` scores one reference file (either format) instead of the sets under ``--data-dir``;
``--worst N`` lists the N worst figures of each set (caption only), ``--show`` with it prints their
predicted and reference sub-captions.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panel2patch import manager

#: ``shared/data/dev`` beside the repository.
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dev"
#: The known sets, by name: their reference file under the data folder.
KNOWN_SETS = {
    "prostate": Path("caption_splits") / "prostate_captions.json",
    "embo_2025": Path("embo_2025") / "annotations.json",
    "exsclaim_ncomms": Path("exsclaim_ncomms") / "annotations.json",
}
DEFAULT_DATA = DEFAULT_DATA_DIR / KNOWN_SETS["prostate"]
_TOKEN_RE = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> Counter[str]:
    """Lower-cased ``[a-z0-9]`` runs as a multiset."""
    return Counter(_TOKEN_RE.findall(text.lower()))


def token_f1(pred: str, ref: str) -> float:
    """F1 of the token multisets of ``pred`` and ``ref`` (1.0 when both are empty)."""
    p, r = tokens(pred), tokens(ref)
    if not p and not r:
        return 1.0
    common = sum((p & r).values())
    if common == 0:
        return 0.0
    precision = common / sum(p.values())
    recall = common / sum(r.values())
    return 2 * precision * recall / (precision + recall)


def _prostate_entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for fig_id, entry in doc.items():
        if not isinstance(entry, dict):
            continue
        panels = []
        for sub in entry.get("gt_subfigures", []):
            label = ((sub.get("label") or {}).get("text") or "").strip()
            if label:
                panels.append((label, sub.get("caption") or ""))
        out.append({"id": fig_id, "caption": entry.get("caption") or "", "panels": panels})
    return out


def _figure_references(fig: dict[str, Any]) -> list[tuple[str, str]]:
    """``[(label, reference sub-caption)]`` of one ``annotations.json`` figure (empty: no per-label text)."""
    subs = fig.get("subcaptions")
    if isinstance(subs, dict) and subs:
        return [(str(label), text or "") for label, text in subs.items() if str(label).strip()]
    refs: dict[str, list[str]] = {}
    shared: list[str] = []
    order: list[tuple[str, list[str]]] = []  # caption order of the segments, each with the labels it names
    for seg in fig.get("caption_segments") or []:
        labels, text = seg.get("labels"), seg.get("text") or ""
        if labels == "ALL":
            order.append((text, []))
            shared.append(text)
        elif isinstance(labels, list):
            names = [str(lab) for lab in labels if str(lab).strip()]
            order.append((text, names))
            for lab in names:
                refs.setdefault(lab, [])
    out = []
    for label in refs:
        parts = [text for text, names in order if not names or label in names]
        out.append((label, " ".join(p for p in parts if p)))
    return out


def _annotation_entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, fig in enumerate(doc.get("figures") or []):
        if not isinstance(fig, dict) or not isinstance(fig.get("caption"), str):
            continue
        fig_id = Path(str(fig.get("image") or f"figure-{i}")).stem
        out.append({"id": fig_id, "caption": fig["caption"], "panels": _figure_references(fig)})
    return out


def load(path: Path) -> list[dict[str, Any]]:
    """Entries ``{"id", "caption", "panels": [(label, reference sub-caption)]}`` of a reference file (either
    format), labelled panels only; figures without per-label text keep an empty ``panels``."""
    if not path.is_file():
        raise SystemExit(f"{path}: not found; pass --data with the path of a reference file")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(doc, dict) and isinstance(doc.get("figures"), list):
        return _annotation_entries(doc)
    return _prostate_entries(doc) if isinstance(doc, dict) else []


@dataclass
class RefSet:
    name: str
    path: Path
    entries: list[dict[str, Any]]


def find_sets(data_dir: Path) -> tuple[list[RefSet], list[str]]:
    """The reference sets under ``data_dir`` (known ones first, then any other ``*/annotations.json`` with
    captions) and one line per set skipped: missing, or without per-label caption text."""
    found: list[RefSet] = []
    skipped: list[str] = []
    paths = dict((name, data_dir / rel) for name, rel in KNOWN_SETS.items())
    if data_dir.is_dir():
        for extra in sorted(data_dir.glob("*/annotations.json")):
            if extra not in paths.values():
                paths[extra.parent.name] = extra
    for name, path in paths.items():
        if not path.is_file():
            skipped.append(f"{name}: skipped, {path} not found")
            continue
        try:
            entries = load(path)
        except (OSError, ValueError) as exc:
            skipped.append(f"{name}: skipped, {path} unreadable ({exc})")
            continue
        if not any(e["panels"] for e in entries):
            skipped.append(f"{name}: skipped, {path} has no per-label caption text")
            continue
        found.append(RefSet(name, path, entries))
    return found, skipped


def score(splitter: Any, entries: list[dict[str, Any]], with_labels: bool) -> dict[str, Any]:
    f1s: list[float] = []
    found = 0
    per_figure = []
    for e in entries:
        if not e["panels"]:
            continue
        labels = [lab for lab, _ in e["panels"]] if with_labels else None
        split = splitter.split(e["caption"], labels)
        fig_f1 = []
        for label, ref in e["panels"]:
            if label in split.segments:
                found += 1
                f1 = token_f1(split.subcaption(label), ref)
            else:
                f1 = 0.0
            f1s.append(f1)
            fig_f1.append(f1)
        per_figure.append((sum(fig_f1) / len(fig_f1), e["id"], split, e))
    n = len(f1s)
    return {
        "panels": n,
        "token_f1": sum(f1s) / n if n else 0.0,
        "label_recall": found / n if n else 0.0,
        "per_figure": sorted(per_figure, key=lambda t: t[0]),
    }


_PROSE = (
    "Immunohistochemical staining of prostate tissue shows strong nuclear expression in the basal cells, "
    "whereas luminal cells are negative; the stroma is weakly positive. "
)
#: Adversarial caption shapes: name -> the unit repeated up to the wanted length.
SCALING_SHAPES = {
    "comma": "A, ",
    "paren": "(A) ",
    "labels": "(A) text (B) more, ",
    "no-end": "word and more ",
    "semicolons": "x; ",
    "prose": _PROSE,
}
SCALING_SIZES = (5_000, 20_000, 50_000, 200_000)


def scaling_caption(shape: str, size: int) -> str:
    """A caption of ``size`` characters made of the unit of ``shape`` repeated."""
    unit = SCALING_SHAPES[shape]
    return (unit * (size // len(unit) + 1))[:size]


def scaling(splitter: Any) -> None:
    """Print seconds per shape and size, and the 200 kB / 5 kB time-per-byte ratio."""
    sizes = "".join(f"{f'{n // 1000} kB':>9}" for n in SCALING_SIZES)
    print(f"{'shape':<11}{sizes}  {'ratio':>6}")
    for shape in SCALING_SHAPES:
        times = []
        for size in SCALING_SIZES:
            caption = scaling_caption(shape, size)
            t0 = time.perf_counter()
            splitter.split(caption, None)
            times.append(time.perf_counter() - t0)
        per_byte = [t / n for t, n in zip(times, SCALING_SIZES)]
        ratio = per_byte[-1] / per_byte[0] if per_byte[0] > 0 else float("nan")
        print(f"{shape:<11}" + "".join(f"{t:8.3f}s" for t in times) + f"  {ratio:6.2f}", flush=True)


def _report(splitter: Any, ref: RefSet, worst: int, show: bool) -> None:
    blind = score(splitter, ref.entries, with_labels=False)
    given = score(splitter, ref.entries, with_labels=True)
    captions = sum(1 for e in ref.entries if e["panels"])
    print(f"\n{ref.name}: {ref.path}  ({captions} captions, {blind['panels']} labelled panels)")
    print(f"  {'labels given':<14} {'token F1':>9} {'label recall':>13}")
    print(f"  {'no':<14} {blind['token_f1']:>9.4f} {blind['label_recall']:>13.4f}")
    print(f"  {'yes':<14} {given['token_f1']:>9.4f} {given['label_recall']:>13.4f}")
    if worst:
        print(f"  worst {worst} figures (caption only):")
        for f1, fig_id, split, entry in blind["per_figure"][:worst]:
            print(f"  {f1:6.3f}  {fig_id}  labels={list(split.segments)}")
            if show:
                for label, reference in entry["panels"]:
                    pred = split.subcaption(label) if label in split.segments else None
                    print(f"      [{label}] {token_f1(pred or '', reference):.2f}\n        pred: {pred}\n"
                          f"        ref:  {reference}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder holding the dev sets")
    parser.add_argument("--data", type=Path, default=None, help="score this one reference file instead")
    parser.add_argument("--splitter", default="label_splitter", help="registered caption splitter")
    parser.add_argument("--args", default="{}", help='splitter arguments as JSON, e.g. \'{"shared_by_length": true}\'')
    parser.add_argument("--worst", type=int, default=0, help="also list the N worst figures per set (caption only)")
    parser.add_argument("--show", action="store_true", help="with --worst: print their sub-captions")
    parser.add_argument("--repeat", type=int, default=5, help="timing passes over the sets")
    parser.add_argument("--scaling", action="store_true", help="time adversarial captions of 5 to 200 kB instead")
    args = parser.parse_args(argv)

    splitter = manager.build("caption_splitters", args.splitter, json.loads(args.args))
    if args.scaling:
        scaling(splitter)
        return 0
    if args.data is not None:
        sets, skipped = [RefSet(args.data.stem, args.data, load(args.data))], []
    else:
        sets, skipped = find_sets(args.data_dir)
    print(f"splitter: {args.splitter} {args.args}")
    for line in skipped:
        print(line)
    if not sets:
        print(f"no reference set with per-label caption text under {args.data_dir}")
        return 1
    for ref in sets:
        _report(splitter, ref, args.worst, args.show)

    captions = [e["caption"] for ref in sets for e in ref.entries if e["panels"]]
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        for caption in captions:
            splitter.split(caption, None)
    rate = args.repeat * len(captions) / max(time.perf_counter() - t0, 1e-9)
    print(f"\ncaptions/s (labels=None, {args.repeat} passes over {len(captions)} captions): {rate:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
