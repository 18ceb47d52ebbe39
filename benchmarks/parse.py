"""Speed, memory and quality of the default figure parser (``cpu_layout``) and the marker detector.

Runs on one CPU core (``OMP_NUM_THREADS=1``, onnxruntime with one intra-op thread) over a demo set (``panel2patch demo-data``) and the real development sets found under ``--data`` (``embo_2025``, ``exsclaim_ncomms``), and prints
per set: figures per second, median seconds per megapixel by stage (layout, labels, kinds, markers),
median seconds per figure, peak memory, and panel F1@IoU0.5 / label accuracy / kind accuracy against
the ground truth (scored by :func:`panel2patch.parsers.tools.scoring.score`), and, on sets that annotate
them, recall and precision of pointer arrows and arrowheads (:func:`pointer_scores`). The marker detector
``shape_markers`` is called through the registry; when it is not registered, its column reads ``absent``.

Usage::

    python benchmarks/parse.py [--demo DEMO_DIR] [--data ../shared/data/dev] [--set embo_2025] [--n 200]
                               [--markers shape_markers] [--megapixels 1] [--out DIR]

``--megapixels M`` adds, for every set, a second run on the same figures resampled (Lanczos) to about
``M`` megapixels each, with the ground truth scaled alike: parse cost per figure does not scale with
pixels alone (label and marker OCR cost per glyph line), so ``s/MP`` on small figures overstates the cost
of a ~1-MP figure; this run measures it directly and checks that quality holds across resolutions.

``DEMO_DIR`` is the output of ``panel2patch demo-data DEMO_DIR --n 200 --seed 1 [--style real]``; pass
``--make-demo [--style real]`` to generate it there first. ``--captions`` adds, for every set, a run with
each figure's caption given to the parser, as mining gives it. ``--memory`` adds a tracemalloc pass (slower) that reports
the peak Python-tracked allocation per figure.
"""

from __future__ import annotations

import os

# one core for every library, set before numpy or onnxruntime are imported
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

from tqdm import tqdm  # noqa: E402

from panel2patch import manager  # noqa: E402
from panel2patch.data import Figure  # noqa: E402
from panel2patch.images import open_image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev_sets import DEFAULT_DATA, load_real  # noqa: E402

STAGES = ("layout", "labels", "kinds", "markers")


@dataclass
class Item:
    id: str
    image: Path
    truth: Figure
    megapixels: float | None = None  # resample to about this size before parsing


def _scale_box(box, f: float):
    return None if box is None else tuple(v * f for v in box)


def scaled_truth(fig: Figure, width: int, height: int) -> Figure:
    """``fig`` with every box and point mapped to an image resampled to ``width`` x ``height``."""
    f = width / fig.width
    panels = [dataclasses.replace(p, box=_scale_box(p.box, f), label_box=_scale_box(p.label_box, f))
              for p in fig.panels]
    markers = [dataclasses.replace(m, box=_scale_box(m.box, f), tip=_scale_box(m.tip, f)) for m in fig.markers]
    regions = [dataclasses.replace(r, box=_scale_box(r.box, f)) for r in fig.regions]
    return dataclasses.replace(fig, width=width, height=height, panels=panels, markers=markers, regions=regions)


def load(item: Item):
    """The item's image (resampled when asked) and its ground truth in that image's pixels."""
    image = open_image(item.image)
    if item.megapixels is None:
        return image, item.truth
    from PIL import Image

    f = (item.megapixels * 1e6 / (image.width * image.height)) ** 0.5
    size = (max(1, round(image.width * f)), max(1, round(image.height * f)))
    image = image.resize(size, Image.Resampling.LANCZOS)
    return image, scaled_truth(item.truth, *size)


@dataclass
class Run:
    name: str
    figures: int = 0
    wall: float = 0.0
    megapixels: list[float] = field(default_factory=list)
    stage_seconds: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    total_seconds: list[float] = field(default_factory=list)
    figure_seconds: list[float] = field(default_factory=list)
    peak_rss_mib: float = 0.0
    peak_traced_mib: float | None = None
    quality: dict[str, float | None] = field(default_factory=dict)


def demo_items(root: Path, n: int) -> list[Item]:
    """The first ``n`` figures of a ``panel2patch demo-data`` folder."""
    files = sorted((root / "annotations").glob("*.json"))[:n]
    if not files:
        raise SystemExit(f"{root}: no annotations/*.json; create it with "
                         f"`panel2patch demo-data {root} --n 200 --seed 1` or pass --make-demo")
    items = []
    for f in files:
        fig = Figure.from_json(json.loads(f.read_text(encoding="utf-8")))
        items.append(Item(fig.id, root / "images" / f"{fig.id}.png", fig))
    return items


def real_sets(data: Path, names: list[str] | None) -> list[tuple[str, list[Item]]]:
    """Every real development set under ``data`` (only ``names`` when given)."""
    found = load_real(data)
    if names:
        missing = sorted(set(names) - set(found))
        if missing:
            raise SystemExit(f"{data}: no development set {', '.join(missing)} (found: {', '.join(found) or 'none'})")
    return [(name, [Item(d.truth.id, d.image, d.truth) for d in figs])
            for name, figs in found.items() if not names or name in names]


#: Marker kinds that point at a feature (what the pointer-arrow columns score).
POINTER_KINDS = ("arrow", "arrowhead")


def pointer_scores(pred: dict[str, Figure], truth: dict[str, Figure]) -> tuple[float | None, float | None]:
    """Recall and precision of predicted arrows/arrowheads against the ground truth's markers.

    Only sets whose ground truth lists pointer arrows are scored (None otherwise): a predicted arrow is
    right when its box overlaps a pointer arrow's box at IoU >= 0.3 or contains its tip, one to one, so
    arrows found on timelines, axes, flow charts and diagrams count against precision.
    """
    from panel2patch.parsers.boxes import box_iou
    from panel2patch.parsers.tools.scoring import contains, match

    tp = n_pred = n_gt = 0
    for fid, gt in truth.items():
        gts = [m for m in gt.markers if m.kind in POINTER_KINDS]
        preds = [m for m in pred[fid].markers if m.kind in POINTER_KINDS] if fid in pred else []
        n_gt += len(gts)
        n_pred += len(preds)
        tp += len(match(preds, gts, lambda a, b: box_iou(a.box, b.box) >= 0.3 or (b.tip is not None and contains(a.box, b.tip)),
                        lambda a, b: box_iou(a.box, b.box)))
    if not n_gt:
        return None, None
    return tp / n_gt, (tp / n_pred if n_pred else None)


def kind_accuracy(pred: dict[str, Figure], truth: dict[str, Figure]) -> float | None:
    """Share of matched panels (IoU >= 0.5) whose kind equals the ground truth's (when it has one)."""
    from panel2patch.parsers.boxes import box_iou
    from panel2patch.parsers.tools.scoring import match

    ok = total = 0
    for fid, gt in truth.items():
        p = pred.get(fid)
        if p is None:
            continue
        pairs = match(p.panels, gt.panels, lambda a, b: box_iou(a.box, b.box) >= 0.5,
                      lambda a, b: box_iou(a.box, b.box))
        for i, j in pairs:
            if gt.panels[j].kind in ("photo", "chart"):
                total += 1
                ok += p.panels[i].kind == gt.panels[j].kind
    return ok / total if total else None


def run(name: str, items: list[Item], parser, detector, memory: bool, out: Path | None = None,
        captions: bool = False) -> Run:
    from panel2patch.parsers.tools.scoring import score

    result = Run(name)
    preds: dict[str, Figure] = {}
    truths: dict[str, Figure] = {}
    start = time.perf_counter()
    for item in tqdm(items, desc=name, unit="fig"):
        image, truths[item.id] = load(item)
        t0 = time.perf_counter()
        parsed = parser.parse(image, item.truth.caption if captions else None)
        t1 = time.perf_counter()
        markers = detector.detect(image, parsed.panels) if detector is not None else []
        t2 = time.perf_counter()
        mp = image.width * image.height / 1e6
        result.megapixels.append(mp)
        for stage in ("layout", "labels", "kinds"):
            result.stage_seconds[stage].append(parser.last_timings.get(stage, 0.0) / mp)
        result.stage_seconds["markers"].append((t2 - t1) / mp)
        result.total_seconds.append((t2 - t0) / mp)
        result.figure_seconds.append(t2 - t0)
        preds[item.id] = Figure(id=item.id, width=parsed.width, height=parsed.height, caption="",
                                panels=parsed.panels, markers=markers)
        if out is not None:
            folder = out / name.replace(" ", "_")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{item.id}.json").write_text(json.dumps(preds[item.id].to_json(), indent=1), encoding="utf-8")
    result.wall = time.perf_counter() - start
    result.figures = len(items)
    result.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    scores = score(preds, truths)["overall"]
    result.quality = {
        "panel F1@.5": scores["panels"]["0.5"]["f1"],
        "label acc": scores["labels"]["accuracy"],
        "kind acc": kind_accuracy(preds, truths),
    }
    result.quality["arrow R"], result.quality["arrow P"] = pointer_scores(preds, truths)
    if memory:
        peaks = []
        for item in tqdm(items[:20], desc=f"{name} memory", unit="fig"):
            image, _ = load(item)
            tracemalloc.start()
            parsed = parser.parse(image, None)
            if detector is not None:
                detector.detect(image, parsed.panels)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
        result.peak_traced_mib = max(peaks)
    return result


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}" if values else "-"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def table(runs: list[Run], markers_name: str | None) -> str:
    header = ["set", "figs", "fig/s", "MP med", *[f"{s} s/MP" for s in STAGES], "total s/MP", "s/fig", "RSS MiB",
              "traced MiB", "panel F1", "label acc", "kind acc", "arrow R", "arrow P"]
    rows = []
    for r in runs:
        stage_cells = [_median(r.stage_seconds[s]) if (s != "markers" or markers_name) else "absent" for s in STAGES]
        rows.append([r.name, str(r.figures), f"{r.figures / r.wall:.2f}", _median(r.megapixels), *stage_cells,
                     _median(r.total_seconds), _median(r.figure_seconds), f"{r.peak_rss_mib:.0f}",
                     "-" if r.peak_traced_mib is None else f"{r.peak_traced_mib:.0f}",
                     _pct(r.quality["panel F1@.5"]), _pct(r.quality["label acc"]), _pct(r.quality["kind acc"]),
                     _pct(r.quality["arrow R"]), _pct(r.quality["arrow P"])])
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    lines.append("")
    lines.append("s/MP: median seconds per megapixel on one core; s/fig: median seconds per figure; RSS: process peak resident memory so far; "
                 "traced: peak tracemalloc allocation of one figure (--memory); arrow R/P: pointer arrows and arrowheads "
                 "(sets that annotate them), diagram arrows excluded from the truth; quality in %")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, help="demo-data folder (images/ and annotations/)")
    ap.add_argument("--make-demo", action="store_true", help="generate --demo first (--n figures, --seed)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--style", default="default", help="demo style for --make-demo: default, or real (journal-like)")
    ap.add_argument("--n", type=int, default=200, help="demo figures to parse")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the real development sets")
    ap.add_argument("--set", action="append", dest="sets", metavar="NAME",
                    help="real development set to run (repeatable; default: every set found under --data)")
    ap.add_argument("--no-real", action="store_true", help="skip the real development sets")
    ap.add_argument("--out", type=Path, help="write every parsed figure as OUT/<set>/<figure id>.json")
    ap.add_argument("--captions", action="store_true",
                    help="also run every set with each figure's caption given to the parser, as mining does")
    ap.add_argument("--markers", default="shape_markers", help="marker detector name, or 'none'")
    ap.add_argument("--memory", action="store_true", help="add a tracemalloc pass over 20 figures per set")
    ap.add_argument("--megapixels", type=float, default=None,
                    help="also run every set on its figures resampled to about this many megapixels")
    args = ap.parse_args(argv)

    parser = manager.build("figure_parsers", "cpu_layout", {"ocr_threads": 1})
    detector = None
    markers_name = None if args.markers == "none" else args.markers
    if markers_name is not None:
        if markers_name in manager.registry("marker_detectors").names():
            detector = manager.build("marker_detectors", markers_name, {})
        else:
            print(f"marker detector {markers_name!r} is not registered: reported as absent", file=sys.stderr)
            markers_name = None
    # load the OCR models, and torchvision (non-maximum suppression), outside the timings
    warmup = _warmup_image()
    parser.parse(warmup, None)
    if detector is not None and getattr(detector, "_reader", None) is not None:
        _ = detector._reader.engine
    from panel2patch.parsers.boxes import box_nms

    box_nms([(0.0, 0.0, 1.0, 1.0)], [1.0], 0.5)

    sets = []
    if args.demo is not None:
        if args.make_demo:
            from panel2patch.plugins.demo.write import write_demo

            write_demo(args.demo, args.n, args.seed, style=args.style)
        sets.append((f"demo ({args.demo.name})", demo_items(args.demo, args.n)))
    if not args.no_real:
        sets.extend(real_sets(args.data, args.sets))
    if not sets:
        ap.error("nothing to run: pass --demo DIR and/or leave the real set on")
    runs = [run(name, items, parser, detector, args.memory, args.out) for name, items in sets]
    if args.captions:
        runs += [run(f"{name} +caption", items, parser, detector, args.memory, args.out, captions=True)
                 for name, items in sets]
    if args.megapixels is not None:
        for name, items in sets:
            resampled = [dataclasses.replace(i, megapixels=args.megapixels) for i in items]
            runs.append(run(f"{name} @{args.megapixels:g} MP", resampled, parser, detector, args.memory))
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}  parser=cpu_layout (ocr_threads=1)  markers={markers_name or 'absent'}  "
          f"python {sys.version.split()[0]}")
    print(table(runs, markers_name))
    return 0


def _warmup_image():
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 200), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((20, 30, 150, 180), fill=(90, 90, 90))
    draw.rectangle((170, 30, 300, 180), fill=(60, 60, 60))
    draw.text((22, 10), "A", fill="black")
    draw.text((172, 10), "B", fill="black")
    return img


if __name__ == "__main__":
    sys.exit(main())
