"""``panel2patch corpus verify|stats|merge``: check a corpus is complete, count what it holds, join shard folders.

``verify`` checks every chunk is committed and matches the digests its stats record, that inputs = figures +
rejects per chunk and per mining shard, that every mining shard of the run has its manifest, that no figure id or
sample key appears twice, and that every member passes the corpus-member check. ``merge`` joins the folders that
the ranks of one mining run wrote to (node-local disks) into one corpus, refusing name clashes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from panel2patch.components import Command
from panel2patch.corpus import (
    SHARD_DIR,
    CorpusError,
    decode_sample,
    iter_shard,
    read_corpus,
    read_manifest,
    read_rejects,
)
from panel2patch.errors import Panel2PatchError
from panel2patch.hookspecs import hookimpl
from panel2patch.plugins.writers import file_sha1

CHUNK = re.compile(r"corpus-(\d{3})-(\d{5})\.stats\.json$")


def chunks(corpus: Path) -> dict[str, Path]:
    """Committed chunk name (``RRR-CCCCC``) -> its stats file, for every chunk below ``corpus``."""
    found = {}
    for stats in sorted(corpus.glob(f"**/{SHARD_DIR}/corpus-*.stats.json")):
        m = CHUNK.search(stats.name)
        if m:
            found[f"{m[1]}-{m[2]}"] = stats
    return found


def manifests(corpus: Path) -> dict[int, tuple[int, dict[str, Any]]]:
    """Mining shard -> (shard count, manifest), from the manifests :func:`panel2patch.corpus.read_manifest` finds."""
    found = read_manifest(corpus)
    out = {}
    for data in found["shards"] if "shards" in found else [found]:
        shard, count = (data.get("shard", 0), data.get("num_shards", 1)) if isinstance(data, dict) else (None, None)
        if isinstance(shard, int) and isinstance(count, int):
            out[shard] = (count, data)
    return out


def _read_stats(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(stats, dict):
            return stats
    except (OSError, ValueError, RecursionError) as exc:
        problems.append(f"{path}: unreadable stats ({exc})")
        return None
    problems.append(f"{path}: stats are not a JSON object")
    return None


def verify(corpus: Path, progress: bool = True) -> tuple[list[str], dict[str, int]]:
    """``(problems, totals)``: every problem found (empty when the corpus is complete) and its counts."""
    from tqdm import tqdm

    if not corpus.is_dir():
        raise Panel2PatchError(f"corpus directory {str(corpus)!r} does not exist")
    problems: list[str] = []
    found = chunks(corpus)
    if not found:
        raise Panel2PatchError(f"{corpus}: no committed chunks (shards/corpus-RRR-CCCCC.stats.json)")
    problems += [f"{p}: an uncommitted chunk (an interrupted run); re-run the same mine command to finish it"
                 for p in sorted(corpus.glob(f"**/{SHARD_DIR}/*.tmp"))]
    committed = {p.with_name(p.name[: -len(".stats.json")] + ".tar") for p in found.values()}
    problems += [f"{p}: a shard with no stats file (not committed, or its stats were removed)"
                 for p in sorted(corpus.glob(f"**/{SHARD_DIR}/*.tar")) if p not in committed]
    per_shard: Counter = Counter()
    totals = Counter()
    ids: dict[str, str] = {}
    for name, stats_path in tqdm(found.items(), desc="verify", unit="chunk", disable=not progress, file=sys.stderr):
        stats = _read_stats(stats_path, problems)
        base = stats_path.name[: -len(".stats.json")]
        tar, rejects = stats_path.with_name(base + ".tar"), stats_path.with_name(base + ".rejects.jsonl")
        if stats is None:
            continue
        missing = [p.name for p in (tar, rejects) if not p.is_file()]
        if missing:
            problems.append(f"chunk {name}: {', '.join(missing)} missing")
            continue
        digests = stats.get("sha1") if isinstance(stats.get("sha1"), dict) else {}
        for kind, path in (("tar", tar), ("rejects", rejects)):
            if kind in digests and file_sha1(path) != digests[kind]:
                problems.append(f"chunk {name}: {path.name} does not match the digest its stats record (changed after "
                                "mining)")
        figures = 0
        try:
            for key, sample in iter_shard(tar, ("json",)):
                figures += 1
                try:  # the one member check every reader applies
                    figure_id = decode_sample(sample, str(tar), key, need_image=False)[0].id
                except CorpusError as exc:
                    problems.append(str(exc))
                    continue
                if figure_id in ids:
                    problems.append(f"figure {figure_id!r} appears twice: in chunk {ids[figure_id]} and in {name}")
                ids.setdefault(figure_id, name)
        except CorpusError as exc:
            problems.append(f"chunk {name}: {exc}")
        reject_lines = sum(1 for line in rejects.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip())
        inputs, want_figures = stats.get("inputs"), stats.get("figures")
        counted = stats.get("rejects") if isinstance(stats.get("rejects"), dict) else {}
        want_rejects = sum(v for v in counted.values() if isinstance(v, int))
        if (figures, reject_lines) != (want_figures, want_rejects) or inputs != figures + reject_lines:
            problems.append(f"chunk {name}: {figures} figures and {reject_lines} rejects on disk, its stats say "
                            f"{want_figures} figures, {want_rejects} rejects, {inputs} inputs")
        per_shard[int(name[:3])] += inputs if isinstance(inputs, int) else 0
        totals.update(chunks=1, inputs=inputs if isinstance(inputs, int) else 0, figures=figures, rejects=reject_lines)
    problems += _check_manifests(corpus, per_shard)
    return problems, dict(totals)


def _check_manifests(corpus: Path, per_shard: Counter) -> list[str]:
    problems = []
    try:
        found = manifests(corpus)
    except CorpusError as exc:  # none, or unreadable
        return [f"{exc} (a run writes its manifests when it finishes)"]
    counts = {count for count, _ in found.values()}
    if not counts:
        return [f"{corpus}: no manifest names its mining shard and shard count (\"shard\", \"num_shards\")"]
    if len(counts) > 1:
        return [f"{corpus}: manifests of runs with different shard counts ({sorted(counts)})"]
    (count,) = counts
    problems += [f"mining shard {s} of {count} has no manifest: it has not finished" for s in range(count) if s not in found]
    for shard, (_, data) in sorted(found.items()):
        if data.get("inputs") != per_shard.get(shard, 0):
            problems.append(f"mining shard {shard}: its manifest counts {data.get('inputs')} inputs, its chunks "
                            f"{per_shard.get(shard, 0)}")
    problems += [f"chunks of mining shard {s} but no such shard in a {count}-shard run" for s in per_shard if s >= count]
    return problems


def corpus_stats(corpus: Path, progress: bool = True) -> dict[str, Any]:
    """Figures, panels, regions, markers, texts and rejects by reason, in all and per mining shard."""
    from tqdm import tqdm

    def empty() -> Counter:
        return Counter(figures=0, panels=0, regions=0, markers=0, texts=0)

    shards: dict[str, Counter] = {}
    for record in tqdm(read_corpus(corpus, members=("json",)), desc="stats", unit="fig", disable=not progress,
                       file=sys.stderr):
        m = re.search(r"corpus-(\d{3})-\d{5}\.tar", record.where)
        f = record.figure
        texts = 1 + sum(1 for p in f.panels if p.subcaption) + sum(len(r.texts) for r in f.regions)
        shards.setdefault(m[1] if m else "?", empty()).update(
            figures=1, panels=len(f.panels), regions=len(f.regions), markers=len(f.markers), texts=texts)
    total = sum(shards.values(), empty())
    reasons = Counter(str(r.get("reason", "?")) if isinstance(r, dict) else "?" for r in read_rejects(corpus))
    return {**dict(total), "rejects": dict(reasons), "shards": {k: dict(v) for k, v in sorted(shards.items())}}


def merge(out: Path, sources: list[Path]) -> dict[str, int]:
    """Join corpus folders into ``out`` (hard links where the file system allows, else copies); refuses two different
    files of one name. Returns the number of files placed and of identical files already there."""
    placed = same = 0
    for source in sources:
        if not chunks(source):
            raise Panel2PatchError(f"{source}: no committed chunks; is it a corpus folder?")
        leftovers = sorted(source.glob(f"**/{SHARD_DIR}/*.tmp"))
        if leftovers:
            raise Panel2PatchError(f"{leftovers[0]}: {source} holds an uncommitted chunk; finish its run first")
    (out / SHARD_DIR).mkdir(parents=True, exist_ok=True)
    for source in sources:
        files = [p for p in source.glob(f"**/{SHARD_DIR}/corpus-*") if p.is_file()]
        files += [p for p in source.glob("manifest*.json") if p.is_file()]
        for path in sorted(files):
            target = out / SHARD_DIR / path.name if path.name.startswith("corpus-") else out / path.name
            if target.exists():
                if file_sha1(target) != file_sha1(path):
                    raise Panel2PatchError(f"{path.name} is in {out} already with other content; these are not shards "
                                           "of one mining run (mine them into separate corpora)")
                same += 1
                continue
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
            placed += 1
    return {"placed": placed, "identical": same}


class CorpusCommand(Command):
    help = "verify a corpus is complete, print its counts, or merge shard folders"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        p = sub.add_parser("verify", help="check every chunk, digest, count, manifest and member")
        p.add_argument("corpus")
        p = sub.add_parser("stats", help="figures, panels, regions, markers, texts, rejects by reason, per shard")
        p.add_argument("corpus")
        p.add_argument("--json", help="also write the counts as JSON here")
        p = sub.add_parser("merge", help="join the output folders of one mining run's shards")
        p.add_argument("out")
        p.add_argument("sources", nargs="+")

    def run(self, args: argparse.Namespace) -> int:
        if args.action == "verify":
            problems, totals = verify(Path(args.corpus))
            for problem in problems:
                print(f"corpus verify: {problem}", file=sys.stderr)
            summary = ", ".join(f"{v} {k}" for k, v in totals.items())
            print(f"{args.corpus}: {'complete' if not problems else f'{len(problems)} problems'} ({summary})")
            return 1 if problems else 0
        if args.action == "stats":
            stats = corpus_stats(Path(args.corpus))
            if args.json:
                Path(args.json).write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
            print(_table(stats))
            return 0
        result = merge(Path(args.out), [Path(s) for s in args.sources])
        print(f"merged {len(args.sources)} folders into {args.out}: {result['placed']} files placed, "
              f"{result['identical']} identical ones already there; check it with: panel2patch corpus verify {args.out}")
        return 0


def _table(stats: dict[str, Any]) -> str:
    columns = ("figures", "panels", "regions", "markers", "texts")
    rows = [("shard", *columns)] + [(k, *(str(v[c]) for c in columns)) for k, v in stats["shards"].items()]
    rows.append(("all", *(str(stats[c]) for c in columns)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns) + 1)]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
    rejects = ", ".join(f"{k} {v}" for k, v in sorted(stats["rejects"].items(), key=lambda kv: -kv[1])) or "none"
    return "\n".join([*lines, f"rejects: {sum(stats['rejects'].values())} ({rejects})"])


@hookimpl
def register_commands(register):
    register("corpus", CorpusCommand)
