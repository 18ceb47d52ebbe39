"""Ablation grids: named variants of one training recipe, trained over seeds with equal steps, evaluated alike.

A grid (YAML; shipped grids live in the package's ``recipes/grids``) holds::

    reference: full                    # the variant every other one is compared with
    common: {train.optim.max_steps: 300}   # dotted keys set in every variant
    metrics: [retrieval/panel/i2t_r10, ...] # the table's columns (default: R@10 of every level and task)
    variants:
      full: {}
      panel_only: {train.schedule: {name: single_level, args: {level: P}}}

Each value replaces the recipe's value at that key (a list or a component node is replaced whole). Run ``VARIANT``
with seed ``S`` trains in ``OUT/runs/VARIANT/seed-S`` (its full recipe written there as ``recipe.yaml``) in a process
of its own; a run whose export and summary exist is not trained again, a stopped one resumes from its last
checkpoint. All runs are then evaluated on the same held-out split (the base recipe's ``eval`` section, or
retrieval, cross-level and box-text retrieval), and ``OUT/ablation.{json,md,png}`` give, per variant, the mean
± sd over seeds, the paired difference against the reference pooled over seeds (bootstrap over queries) and the
images seen in training.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from panel2patch.config import Recipe, load
from panel2patch.data import Score
from panel2patch.errors import Panel2PatchError, RecipeError

from .report import ModelResult
from .stats import paired_difference

GRID_KEYS = ("reference", "common", "metrics", "variants", "out")
DEFAULT_METRICS = (
    "retrieval/figure/i2t_r10", "retrieval/panel/i2t_r10", "retrieval/region/i2t_r10",
    "cross/region_text_to_panel/t2i_r10", "cross/panel_to_caption/i2t_r10", "cross/region_to_subcaption/i2t_r10",
    "box_text/roi/i2t_r10", "box_text/crop/i2t_r10",
)


class AblationError(Panel2PatchError):
    """A grid that cannot be read, or runs that failed."""


def shipped_grids() -> dict[str, Path]:
    root = resources.files("panel2patch.recipes") / "grids"
    return {p.name[:-5]: Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def load_grid(name_or_path: str) -> tuple[str, dict[str, Any]]:
    """``(source, grid)`` for a shipped grid name or a YAML file, its keys checked."""
    import yaml

    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        grids = shipped_grids()
        if name_or_path not in grids:
            raise AblationError(f"no grid named {name_or_path!r}; shipped grids: {', '.join(sorted(grids))}")
        path = grids[name_or_path]
    try:
        grid = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AblationError(f"grid {str(path)!r}: cannot read it: {exc}") from None
    source = str(path)
    if not isinstance(grid, dict) or not isinstance(grid.get("variants"), dict) or not grid["variants"]:
        raise AblationError(f"grid {source}: expected a mapping with a non-empty 'variants' mapping")
    extra = sorted(set(grid) - set(GRID_KEYS))
    if extra:
        raise AblationError(f"grid {source}: unknown keys {extra}; a grid has {', '.join(GRID_KEYS)}")
    for name, body in [("common", grid.get("common")), *grid["variants"].items()]:
        if body is not None and not isinstance(body, dict):
            raise AblationError(f"grid {source}: {name!r} must map dotted recipe keys to values")
        if not str(name).replace("_", "").replace("-", "").isalnum():
            raise AblationError(f"grid {source}: variant name {name!r} must be letters, digits, '_' or '-'")
    reference = grid.get("reference") or next(iter(grid["variants"]))
    if reference not in grid["variants"]:
        raise AblationError(f"grid {source}: reference {reference!r} is not a variant")
    grid["reference"] = reference
    return source, grid


def set_key(config: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    node = config
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise AblationError(f"{where}: key {dotted!r}: {part!r} is not a mapping in the recipe")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def variant_config(base: Mapping[str, Any], grid: Mapping[str, Any], variant: str, seed: int,
                   run_dir: Path, source: str) -> dict[str, Any]:
    config = copy.deepcopy(dict(base))
    for dotted, value in (grid.get("common") or {}).items():
        set_key(config, dotted, value, f"grid {source} common")
    for dotted, value in (grid["variants"][variant] or {}).items():
        set_key(config, dotted, value, f"grid {source} variant {variant!r}")
    set_key(config, "train.seed", seed, source)
    set_key(config, "train.output_dir", str(run_dir), source)
    return config


def _finished(run_dir: Path) -> dict[str, Any] | None:
    summary = run_dir / "summary.json"
    if not summary.is_file() or not (run_dir / "export").is_dir():
        return None
    try:
        return json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


#: Rendezvous and rank variables a run must not inherit: each run is a world of its own (an inherited MASTER_PORT
#: would name a port the parent process may still hold).
LAUNCHER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                      "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS")


def train_run(recipe_path: Path, run_dir: Path) -> int:
    """Train one run in its own process (its output in ``train.log``), resuming a stopped one."""
    command = [sys.executable, "-m", "panel2patch", "train", str(recipe_path)]
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    if (run_dir / "checkpoints" / "latest").is_file():
        command += ["--resume", "latest"]
    with open(run_dir / "train.log", "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode


def pooled(scores: Sequence[tuple[int, Score]]) -> Score:
    """One score over the queries of every seed (ids prefixed with the seed), for paired tests across seeds."""
    first = scores[0][1]
    rows = np.concatenate([np.asarray(s.rows) for _, s in scores])
    ids = tuple(f"seed-{seed}:{q}" for seed, s in scores for q in s.ids)
    value = float(np.mean(rows, axis=0)) if first.statistic is None else float(first.statistic(rows))
    return Score(value, rows, ids, first.statistic)


def summarise(runs: Mapping[str, Mapping[int, ModelResult]], reference: str, metrics: Sequence[str],
              resamples: int, confidence: float, seed: int) -> dict[str, Any]:
    """Per variant and metric: values per seed, mean, sd, and the pooled paired difference against ``reference``."""
    out: dict[str, Any] = {}
    ref = runs.get(reference, {})
    for variant, by_seed in runs.items():
        entry: dict[str, Any] = {}
        for metric in metrics:
            have = [(s, r.scores[metric]) for s, r in sorted(by_seed.items()) if metric in r.scores]
            if not have:
                continue
            values = [score.value for _, score in have]
            row: dict[str, Any] = {"seeds": {str(s): v for (s, _), v in zip(have, values)},
                                   "mean": float(np.mean(values)),
                                   "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}
            ref_have = [(s, ref[s].scores[metric]) for s, _ in have if s in ref and metric in ref[s].scores]
            if variant != reference and ref_have and have[0][1].rows is not None:
                diff = paired_difference(pooled(have), pooled(ref_have), resamples, confidence, seed)
                if diff is not None:
                    row["difference"] = diff.to_json()
            entry[metric] = row
        out[variant] = entry
    return out


def _cell(row: Mapping[str, Any] | None) -> str:
    if not row:
        return "–"
    text = f"{row['mean']:.3f} ± {row['sd']:.3f}"
    diff = row.get("difference")
    if diff:
        text += f" (Δ {diff['value']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}])"
    return text


def markdown_table(summary: Mapping[str, Any], metrics: Sequence[str], images: Mapping[str, float],
                   reference: str, seeds: int, confidence: float) -> str:
    head = ["variant", "images seen", *metrics]
    lines = [f"Mean ± sd over {seeds} seed(s); Δ: paired difference against {reference!r} pooled over seeds, "
             f"{round(confidence * 100)} % bootstrap interval over queries.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, entry in summary.items():
        seen = images.get(variant)
        row = [variant, f"{seen:,.0f}" if seen is not None else "–", *(_cell(entry.get(m)) for m in metrics)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def plot_summary(summary: Mapping[str, Any], metrics: Sequence[str], path: Path) -> bool:
    shown = [m for m in metrics if any(m in entry for entry in summary.values())]
    if not shown:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(summary)
    width = 0.8 / max(1, len(variants))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(shown) * max(1, len(variants)) ** 0.5), 4.2))
    for i, variant in enumerate(variants):
        means = [summary[variant].get(m, {}).get("mean", math.nan) for m in shown]
        sds = [summary[variant].get(m, {}).get("sd", 0.0) for m in shown]
        ax.bar(np.arange(len(shown)) + i * width, means, width, yerr=sds, capsize=2, label=variant)
    ax.set_xticks(np.arange(len(shown)) + width * (len(variants) - 1) / 2)
    ax.set_xticklabels([m.replace("/", "\n", 1) for m in shown], fontsize=7)
    ax.set_ylabel("mean over seeds (± sd)")
    ax.set_ylim(0.0, 1.02)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _say(message: str) -> None:
    print(f"[panel2patch ablate] {message}", file=sys.stderr, flush=True)


def ablate(recipe_name: str, grid_name: str, seeds: int, overrides: Sequence[str] = (), out: str | None = None,
           train: bool = True) -> dict[str, Any]:
    """Train (unless ``train`` is False) and evaluate every variant x seed of the grid; write the table."""
    import torch
    import yaml

    from panel2patch.config import validate

    from .gallery import load_gallery
    from .runner import plan, score_models

    base = load(recipe_name, list(overrides))
    if "train" not in base.config:
        raise RecipeError(f"{base.source}: an ablation varies a training recipe; it has no 'train' section")
    source, grid = load_grid(grid_name)
    root = Path(out or grid.get("out") or Path("out") / "ablate" / Path(source).stem)
    root.mkdir(parents=True, exist_ok=True)
    (root / "grid.yaml").write_text(yaml.safe_dump(grid, sort_keys=False), encoding="utf-8")
    variants = list(grid["variants"])
    runs = [(v, s) for s in range(seeds) for v in variants]
    configs = {}
    for variant, seed in runs:  # every variant's recipe is checked before anything trains
        run_dir = root / "runs" / variant / f"seed-{seed}"
        config = variant_config(base.config, grid, variant, seed, run_dir, source)
        try:
            validate(Recipe(f"{source} variant {variant!r}", config))
        except RecipeError as exc:
            raise AblationError(str(exc)) from None
        configs[(variant, seed)] = (run_dir, config)

    failed: list[str] = []
    for i, (variant, seed) in enumerate(runs, 1):
        run_dir, config = configs[(variant, seed)]
        if _finished(run_dir) is not None or not train:
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        recipe_path = run_dir / "recipe.yaml"
        recipe_path.write_text(f"# ablation {Path(source).stem}: variant {variant}, seed {seed}\n"
                               + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        _say(f"run {i}/{len(runs)}: {variant} seed {seed} -> {run_dir} (log: train.log)")
        started = time.perf_counter()
        code = train_run(recipe_path, run_dir)
        if code != 0 or _finished(run_dir) is None:
            failed.append(f"{variant} seed {seed} (exit {code}; see {run_dir / 'train.log'})")
            _say(f"run {variant} seed {seed} FAILED with exit code {code}")
        else:
            _say(f"run {variant} seed {seed} done in {time.perf_counter() - started:.0f} s")

    done = {key: _finished(run_dir) for key, (run_dir, _) in configs.items()}
    models = {f"{v}/seed-{s}": {"checkpoint": str(configs[(v, s)][0] / "export")}
              for (v, s), summary in done.items() if summary is not None}
    if not models:
        raise AblationError(f"no finished run to evaluate under {root}" + (f"; failed: {'; '.join(failed)}" if failed else ""))
    eval_config = variant_config(base.config, grid, grid["reference"], 0, root / "eval", source)
    eval_section = eval_config.setdefault("eval", {})
    eval_section.update({"models": models, "reference": next(iter(models)), "bootstrap": 0, "out": str(root / "eval")})
    p = plan(Recipe(f"{source} evaluation", eval_config))
    gallery = load_gallery(p.corpus, p.levels, p.held_out, p.settings.split)
    _say(f"evaluating {len(models)} run(s) on {len(gallery.figures)} {p.settings.split} figures")
    results = score_models(p, gallery, torch.device("cuda" if torch.cuda.is_available() else "cpu"), progress=False)
    by_variant: dict[str, dict[int, ModelResult]] = {}
    for result in results:
        variant, seed = result.label.rsplit("/seed-", 1)
        by_variant.setdefault(variant, {})[int(seed)] = result
    metrics = list(grid.get("metrics") or DEFAULT_METRICS)
    base_eval = base.config.get("eval") if isinstance(base.config.get("eval"), dict) else {}
    resamples, confidence = int(base_eval.get("bootstrap", 1000)), float(base_eval.get("confidence", 0.95))
    summary = summarise(by_variant, grid["reference"], metrics, resamples, confidence, 0)
    images = {v: float(np.mean([done[(v, s)]["images_seen"] for s in by_seed if done[(v, s)].get("images_seen")]))
              for v, by_seed in by_variant.items() if any(done[(v, s)].get("images_seen") for s in by_seed)}
    steps = {v: sorted({done[(v, s)]["steps"] for s in by_seed}) for v, by_seed in by_variant.items()}
    table = markdown_table(summary, metrics, images, grid["reference"], seeds, confidence)
    record = {"recipe": base.source, "grid": source, "seeds": seeds, "reference": grid["reference"],
              "steps": steps, "images_seen": images, "metrics": metrics, "summary": summary, "failed": failed,
              "all_metrics": summarise(by_variant, grid["reference"], sorted({k for r in results for k in r.scores
                                                                             if r.scores[k].rows is not None}),
                                       0, confidence, 0)}
    written = {"json": str(root / "ablation.json"), "markdown": str(root / "ablation.md")}
    (root / "ablation.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    (root / "ablation.md").write_text(table, encoding="utf-8")
    if plot_summary(summary, metrics, root / "ablation.png"):
        written["plot"] = str(root / "ablation.png")
    if failed:
        raise AblationError(f"{len(failed)} run(s) failed: {'; '.join(failed)}; the table in {root} covers the rest")
    return {"written": written, "markdown": table, "summary": summary}
