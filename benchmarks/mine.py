"""Mining throughput per core, with the parse-only figure beside it (same process, same figures), and the
throughput of ``panel2patch mine --workers N`` for each N given (same figures, same session).

    python benchmarks/mine.py [--n 40] [--seed 3] [--style default|real] [--recipe quickstart] [--workers 1 2]

Generates a demo set (or uses --images DIR with a captions.jsonl), then times on one thread:

* parse only: decode + figure parser + marker detector, the recipe's own components;
* mine: the full ``panel2patch mine`` path (decode, parse, markers, caption split, regions, cleaners,
  WebDataset writing).

Both run after a warm-up figure (imports, OCR engine start-up, torch ops). Prints a table and the overhead of
mining on top of parsing. Then, for ``--workers``: the whole command (``python -m panel2patch mine``, start-up
included) into a fresh folder per N, as figures/s and as a ratio against N = 1.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core; must precede numpy/onnxruntime imports
os.environ.setdefault("OPENCV_FOR_THREADS_NUM", "1")

import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40, help="demo figures to generate")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--style", default="default", help="demo style: default, or real (journal-like 2-6 MP figures)")
    ap.add_argument("--images", help="a folder with captions.jsonl instead of generated demo figures")
    ap.add_argument("--recipe", default="quickstart")
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="worker counts to time the command with")
    args = ap.parse_args()

    import torch
    from tqdm import tqdm

    from panel2patch import config
    from panel2patch.data import SourceItem
    from panel2patch.images import open_image
    from panel2patch.mining import ChunkStats, Miner
    from panel2patch.plugins.demo.write import write_demo

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="p2p-bench-"))
    root = Path(args.images) if args.images else work / "demo"
    if not args.images:
        write_demo(root, args.n, args.seed, style=args.style)
    rows = [json.loads(line) for line in (root / "captions.jsonl").read_text().splitlines() if line.strip()]
    recipe = config.load(args.recipe, [f"mine.source.args.root={root}", f"mine.writer.args.out={work / 'corpus'}"])
    miner = Miner(recipe)

    # Warm-up of both paths on one figure, not timed: OCR engines start, torch ops are imported.
    warm = SourceItem(rows[0]["id"], b"", rows[0]["caption"], path=str(root / rows[0]["image"]))
    miner.mine_one(warm, ChunkStats())

    parse_times, megapixels = [], []
    for row in tqdm(rows, desc="parse only", unit="fig", file=sys.stderr):
        t0 = time.perf_counter()
        image = open_image(root / row["image"])
        panels = miner.parser.parse(image, row["caption"]).panels
        if miner.detector is not None:
            miner.detector.detect(image, panels)
        parse_times.append(time.perf_counter() - t0)
        megapixels.append(image.width * image.height / 1e6)

    t0 = time.perf_counter()
    stats = miner.run_shard(progress=True)
    mine_total = time.perf_counter() - t0
    parse_total = sum(parse_times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    per_mp = statistics.median(t / mp for t, mp in zip(parse_times, megapixels))
    print()
    print(f"figures: {len(rows)} ({stats.figures} mined, {sum(stats.rejects.values())} rejected), "
          f"median {statistics.median(megapixels):.2f} MP, 1 thread, torch {torch.__version__}")
    print(f"{'path':<12}{'total s':>10}{'fig/s':>10}{'s/fig':>10}")
    for name, total in (("parse only", parse_total), ("mine", mine_total)):
        print(f"{name:<12}{total:>10.2f}{len(rows) / total:>10.2f}{total / len(rows):>10.3f}")
    print(f"median parse seconds per megapixel: {per_mp:.3f}")
    print(f"mining overhead on top of parsing: {100 * (mine_total / parse_total - 1):+.1f}%")
    print(f"mine stage seconds: {dict((k, round(v, 2)) for k, v in stats.seconds.items())}")
    print(f"peak RSS: {peak_mb:.0f} MiB")
    if args.workers:
        time_workers(args, root, work, len(rows))
    return 0


def time_workers(args: argparse.Namespace, root: Path, work: Path, n: int) -> None:
    """Wall time of the whole mine command for each worker count, and its steady rate (start-up, measured by the
    same command mining one figure per worker, taken off). The first row pins the one worker to one thread: the
    per-core baseline; the others leave threads to the command (a single worker uses spare cores inside
    onnxruntime, torch and OpenCV; N workers get cores / N threads each)."""
    import subprocess

    from panel2patch.plugins.mine_workers import THREAD_VARIABLES

    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    runs = [(1, "1 thread", {**env, **dict.fromkeys(THREAD_VARIABLES, "1")})] + [(w, "default", env) for w in args.workers]

    def wall(workers: int, environ: dict[str, str], out: Path, *extra: str) -> float:
        command = [sys.executable, "-m", "panel2patch", "mine", args.recipe, f"mine.source.args.root={root}",
                   f"mine.writer.args.out={out}", "--workers", str(workers), *extra]
        t0 = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=environ)
        return time.perf_counter() - t0

    rows = []
    for k, (workers, threads, environ) in enumerate(runs):
        total = wall(workers, environ, work / f"corpus-{k}")
        startup = wall(workers, environ, work / f"start-{k}", "--limit", str(workers))
        rows.append((workers, threads, total, (n - workers) / max(total - startup, 1e-9)))
    print(f"\n{'workers':<9}{'threads':<10}{'total s':>9}{'fig/s':>8}{'steady fig/s':>14}{'vs 1 thread':>13}"
          f"{'vs 1 worker':>13}   (panel2patch mine, {os.cpu_count()} cores, {n} figures)")
    one_thread = rows[0][3]
    one_worker = next((r[3] for r in rows[1:] if r[0] == 1), one_thread)
    for workers, threads, total, steady in rows:
        print(f"{workers:<9}{threads:<10}{total:>9.2f}{n / total:>8.2f}{steady:>14.2f}{steady / one_thread:>12.2f}x"
              f"{steady / one_worker:>12.2f}x")


if __name__ == "__main__":
    sys.exit(main())
