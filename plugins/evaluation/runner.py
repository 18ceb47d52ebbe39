"""The ``eval`` run: every model of ``eval.models`` scored by every evaluator, intervals, differences, outputs.

Models are built and scored one at a time (one in memory); the gallery is read once. Everything a run did goes into
its output folder: ``eval.json``/``eval.md``/``eval.png`` (:mod:`.report`), ``split.json`` (the groups evaluated) and
``run.json`` (the recipe, versions and counts).
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from panel2patch.config import Recipe, build, component_keys, parse_settings, validate
from panel2patch.errors import RecipeError
from panel2patch.run import versions

from .gallery import Gallery, load_gallery
from .models import ModelSpec, load_model, model_specs
from .report import ModelResult, markdown, write_outputs
from .settings import EvalSettings
from .stats import interval, paired_difference

#: Evaluators of a recipe whose ``eval`` section names none.
DEFAULT_EVALUATORS = ("retrieval", "cross_level_retrieval", "box_text_retrieval")
DEFAULT_LEVELS = ("figure", "panel", "region")


def _say(message: str) -> None:
    print(f"[panel2patch eval] {message}", file=sys.stderr, flush=True)


@dataclass
class EvalPlan:
    """What an ``eval`` run does, resolved from its recipe."""

    settings: EvalSettings
    specs: list[ModelSpec]
    evaluators: list[tuple[str, Any]]
    levels: list[Any]
    corpus: str | None
    held_out: float
    out: Path
    reference: str


def plan(recipe: Recipe) -> EvalPlan:
    """Resolve ``recipe``'s ``eval`` section (and what it borrows from ``train``) without loading any model."""
    from panel2patch.manager import build as build_component

    validate(recipe)
    body = recipe.config.get("eval") or {}
    if not isinstance(body, dict):
        raise RecipeError(f"{recipe.source}: key 'eval' must be a mapping")
    settings = parse_settings(EvalSettings, {k: v for k, v in body.items() if k not in component_keys("eval")},
                              "eval", recipe.source)
    train = recipe.config.get("train") or {}
    data = train.get("data") or {}
    output_dir = Path(train["output_dir"]) if train.get("output_dir") else None
    models = settings.models
    if models is None:
        export = output_dir / "export" if output_dir else None
        models = {"trained": {"checkpoint": str(export)}, "init": {}} if export and export.is_dir() else {"init": {}}
    specs = model_specs(models, train.get("model"), recipe.source)
    if not specs:
        raise RecipeError(f"{recipe.source}: key eval.models is empty")
    for spec in specs:  # before any model is scored, not after
        if spec.checkpoint and not Path(spec.checkpoint).exists():
            raise RecipeError(f"{recipe.source}: key eval.models.{spec.label}.checkpoint: {spec.checkpoint!r} does not "
                              "exist")
    labels = [s.label for s in specs]
    reference = settings.reference or labels[0]
    if reference not in labels:
        raise RecipeError(f"{recipe.source}: key eval.reference names {reference!r}; models are {', '.join(labels)}")
    if body.get("evaluators") == []:
        raise RecipeError(f"{recipe.source}: key eval.evaluators is empty; name evaluators or leave the key out")
    if body.get("evaluators"):
        names = [n["name"] if isinstance(n, dict) else n for n in body["evaluators"]]
        evaluators = list(zip(names, build(recipe, "eval.evaluators")))
    else:
        evaluators = [(name, build_component("evaluators", name, {})) for name in DEFAULT_EVALUATORS]
    level_nodes = settings.levels if settings.levels is not None else train.get("levels") or list(DEFAULT_LEVELS)
    levels = []
    for i, node in enumerate(level_nodes):
        node = {"name": node} if isinstance(node, str) else dict(node)
        try:
            levels.append(build_component("levels", node["name"], node.get("args") or {}))
        except (KeyError, RecipeError) as exc:
            raise RecipeError(f"{recipe.source}: key eval.levels[{i}]: {exc}") from None
    corpus = settings.corpus or data.get("corpus")
    if corpus is None and any(ev.needs_corpus for _, ev in evaluators):
        raise RecipeError(f"{recipe.source}: the evaluators need a corpus: set eval.corpus (or train.data.corpus)")
    held_out = settings.held_out if settings.held_out is not None else float(data.get("held_out", 0.02))
    out = Path(settings.out) if settings.out else (output_dir / "eval" if output_dir else Path("out/eval"))
    return EvalPlan(settings, specs, evaluators, levels, corpus, held_out, out, reference)


def score_models(p: EvalPlan, gallery: Gallery | None, device: Any, progress: bool = True) -> list[ModelResult]:
    """Score every model with every evaluator, then add intervals and differences against the reference."""
    results = []
    for spec in p.specs:
        _say(f"model {spec.label!r}: loading")
        model = load_model(spec, device, p.settings.batch_size, progress, p.settings.seed)
        scores: dict[str, Any] = {}
        for name, evaluator in p.evaluators:
            started = time.perf_counter()
            scores.update(evaluator.evaluate(model, gallery if evaluator.needs_corpus else None))
            _say(f"model {spec.label!r}: {name} in {time.perf_counter() - started:.1f} s")
        results.append(ModelResult(spec.label, model.info, scores))
        del model
        gc.collect()
    add_intervals(results, p.reference, p.settings.bootstrap, p.settings.confidence, p.settings.seed)
    return results


def add_intervals(results: Sequence[ModelResult], reference: str, resamples: int, confidence: float,
                  seed: int) -> None:
    ref = next(r for r in results if r.label == reference)
    for r in results:
        r.intervals = {k: interval(s, resamples, confidence, seed) for k, s in r.scores.items()}
        if r is ref:
            continue
        for key, score in r.scores.items():
            if key in ref.scores and score.rows is not None:
                diff = paired_difference(score, ref.scores[key], resamples, confidence, seed)
                if diff is not None:
                    r.differences[key] = diff


def evaluate(recipe: Recipe) -> dict[str, Any]:
    """Run the recipe's evaluation and write its outputs; returns the file paths and the results."""
    import torch

    p = plan(recipe)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gallery = None
    if any(ev.needs_corpus for _, ev in p.evaluators):
        gallery = load_gallery(p.corpus, p.levels, p.held_out, p.settings.split)
        counts = ", ".join(f"{len(v)} {k}" for k, v in gallery.items.items())
        _say(f"corpus {p.corpus}: {len(gallery.figures)} {p.settings.split} figures ({counts})")
        if not gallery.figures:
            raise RecipeError(f"{recipe.source}: corpus {p.corpus!r} has no {p.settings.split} figures to evaluate "
                              f"(held_out {p.held_out}); raise eval.held_out or use eval.split=all")
    results = score_models(p, gallery, device)
    p.out.mkdir(parents=True, exist_ok=True)
    if gallery is not None:
        (p.out / "split.json").write_text(json.dumps(gallery.split_record(), indent=1), encoding="utf-8")
    run = {"recipe": recipe.source, "config": recipe.recorded or recipe.config, "device": str(device),
           "versions": versions("torch", "open_clip_torch", "scipy", "scikit-learn"),
           "settings": asdict(p.settings), "evaluators": [n for n, _ in p.evaluators]}
    (p.out / "run.json").write_text(json.dumps(run, indent=2, default=str), encoding="utf-8")
    written = write_outputs(p.out, results, p.reference, p.settings.confidence,
                            {"recipe": recipe.source, "corpus": p.corpus, "split": p.settings.split},
                            draw=p.settings.plot)
    return {"written": written, "results": results, "reference": p.reference,
            "markdown": markdown(results, p.reference, p.settings.confidence)}
