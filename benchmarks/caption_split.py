"""Score a caption splitter against human-made sub-captions.

The reference set is a JSON object ``{figure id: entry}``; each entry has ``caption`` and
``gt_subfigures``, a list of ``{"label": {"text": "A"}, "caption": "<reference sub-caption>"}``.

Measures, per labelled reference panel: token F1 between the predicted sub-caption
(:meth:`~panel2patch.data.CaptionSplit.subcaption`) and the reference sub-caption, where tokens
are the lower-cased runs of ``[a-z0-9]`` compared as multisets; a label missing from the prediction's
segments scores 0. Mean token F1 is averaged over all labelled reference panels; label recall is the
share of reference labels present in the prediction. Both are computed twice: with ``labels=None``
(caption only) and with the reference labels given to the splitter. Captions per second is the
caption-only pass over the whole set, timed on this machine.

``--scaling`` instead times one caption-only split of adversarial captions (long runs of ``A, ``, of
``(A)``, of labelled clauses, of text without a sentence end, of semicolons, and ordinary prose) at 5, 20,
50 and 200 kB, and prints per shape the ratio of the 200 kB time per byte to the 5 kB time per byte
(about 1 for a splitter linear in caption length).

Usage::

    python benchmarks/caption_split.py [--data PATH] [--splitter label_splitter] [--args JSON] [--worst N]
    python benchmarks/caption_split.py --scaling [--splitter label_splitter] [--args JSON]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from panel2patch import manager

DEFAULT_DATA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dev" / "caption_splits" / "prostate_captions.json"
)
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


def load(path: Path) -> list[dict[str, Any]]:
    """Entries ``{"id", "caption", "panels": [(label, reference sub-caption)]}``, labelled panels only."""
    if not path.is_file():
        raise SystemExit(f"{path}: not found; pass --data with the path of prostate_captions.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for fig_id, entry in doc.items():
        panels = []
        for sub in entry.get("gt_subfigures", []):
            label = ((sub.get("label") or {}).get("text") or "").strip()
            if label:
                panels.append((label, sub.get("caption") or ""))
        out.append({"id": fig_id, "caption": entry.get("caption") or "", "panels": panels})
    return out


def score(splitter: Any, entries: list[dict[str, Any]], with_labels: bool) -> dict[str, Any]:
    f1s: list[float] = []
    found = 0
    per_figure = []
    for e in entries:
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
        if fig_f1:
            per_figure.append((sum(fig_f1) / len(fig_f1), e["id"], split))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="prostate_captions.json")
    parser.add_argument("--splitter", default="label_splitter", help="registered caption splitter")
    parser.add_argument("--args", default="{}", help='splitter arguments as JSON, e.g. \'{"shared_by_length": true}\'')
    parser.add_argument("--worst", type=int, default=0, help="also list the N worst figures (caption only)")
    parser.add_argument("--repeat", type=int, default=5, help="timing passes over the set")
    parser.add_argument("--scaling", action="store_true", help="time adversarial captions of 5 to 200 kB instead")
    args = parser.parse_args(argv)

    splitter = manager.build("caption_splitters", args.splitter, json.loads(args.args))
    if args.scaling:
        scaling(splitter)
        return 0
    entries = load(args.data)
    blind = score(splitter, entries, with_labels=False)
    given = score(splitter, entries, with_labels=True)

    t0 = time.perf_counter()
    for _ in range(args.repeat):
        for e in entries:
            splitter.split(e["caption"], None)
    rate = args.repeat * len(entries) / (time.perf_counter() - t0)

    print(f"data: {args.data}  ({len(entries)} captions, {blind['panels']} labelled panels)")
    print(f"splitter: {args.splitter} {args.args}")
    print(f"{'labels given':<14} {'token F1':>9} {'label recall':>13}")
    print(f"{'no':<14} {blind['token_f1']:>9.4f} {blind['label_recall']:>13.4f}")
    print(f"{'yes':<14} {given['token_f1']:>9.4f} {given['label_recall']:>13.4f}")
    print(f"captions/s (labels=None, {args.repeat} passes): {rate:.0f}")
    if args.worst:
        print(f"\nworst {args.worst} figures (caption only):")
        for f1, fig_id, split in blind["per_figure"][: args.worst]:
            print(f"{f1:6.3f}  {fig_id}  labels={list(split.segments)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
