"""Held-out in-batch retrieval (R@1/R@5 image<->text per level) and the ``eval`` command's body.

The recipe's optional ``eval`` section (:class:`~panel2patch.plugins.training.settings.EvalSettings`) takes ``checkpoint`` (an export folder or
a checkpoint file; default ``OUTPUT_DIR/export`` when present), ``out`` (JSON file, default
``OUTPUT_DIR/eval.json``), ``batch_size``, ``max_batches`` and ``workers``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .loaders import held_out_batches
from .step import TextSource


def retrieval_recall(image: Any, text: Any, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """In-batch retrieval hit counts for paired rows: ``i2t_r{k}``, ``t2i_r{k}`` (sums, not means)."""
    sim = image @ text.T
    diag = sim.diagonal()
    i2t_rank = (sim > diag[:, None]).sum(dim=1)
    t2i_rank = (sim.T > diag[:, None]).sum(dim=1)
    out = {}
    for k in ks:
        out[f"i2t_r{k}"] = float((i2t_rank < k).sum())
        out[f"t2i_r{k}"] = float((t2i_rank < k).sum())
    return out


def evaluate_levels(
    model: Callable[..., dict[str, Any]],
    texts: TextSource,
    levels: Sequence[Any],
    shards: list[str],
    held_out: float,
    transform: Any,
    preprocess_cfg: Mapping[str, Any],
    device: Any,
    dtype: Any,
    batch_size: int,
    max_batches: int | None,
    workers: int = 0,
) -> dict[str, float]:
    """Mean in-batch R@1/R@5 (image->text and text->image) per level on the held-out split.

    Keys ``eval/LEVEL/i2t_r1`` ...; ``eval/LEVEL/samples`` counts the evaluated pairs. Batches smaller
    than 2 are skipped (retrieval among one pair is meaningless).
    """
    import torch

    metrics: dict[str, float] = {}
    for level in levels:
        sums: dict[str, float] = {}
        count = 0
        for batch in held_out_batches(level, shards, held_out, batch_size, transform, preprocess_cfg,
                                      workers=workers, max_batches=max_batches):
            if batch.num_samples < 2:
                continue
            with torch.no_grad():
                images = batch.images.to(device=device, dtype=dtype)
                out, text = texts.forward(model, images, batch.texts)
            for key, value in retrieval_recall(out["image"].float(), text.float()).items():
                sums[key] = sums.get(key, 0.0) + value
            count += batch.num_samples
        metrics[f"eval/{level.name}/samples"] = float(count)
        for key, value in sums.items():
            metrics[f"eval/{level.name}/{key}"] = value / count
    return metrics


def evaluate(args: argparse.Namespace) -> int:
    """In-batch retrieval R@1/R@5 per level on the held-out split of the recipe's corpus; prints a table."""
    import torch

    from panel2patch.config import build, component_keys, load, parse_settings, validate
    from panel2patch.corpus import find_shards

    from .export import EXPORT_WEIGHTS, load_weights
    from .model import wrap_model
    from .settings import EvalSettings, parse_train_settings

    recipe = load(args.recipe, list(args.overrides or []))
    validate(recipe)
    cfg = parse_train_settings(recipe.section("train"), recipe.source, component_keys("train"))
    section = parse_settings(EvalSettings, recipe.config.get("eval") or {}, "eval", recipe.source)
    loader = build(recipe, "train.model")
    clip, transform, tokenizer = loader.load()
    checkpoint = section.checkpoint
    default_export = Path(cfg.output_dir) / "export"
    if checkpoint is None and (default_export / EXPORT_WEIGHTS).is_file():
        checkpoint = str(default_export)
    if checkpoint:
        load_weights(clip, checkpoint)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = wrap_model(clip).to(device).eval()
    texts = TextSource(clip, tokenizer, device, frozen=True, cache=None)
    levels = build(recipe, "train.levels")
    metrics = evaluate_levels(
        model, texts, levels, find_shards(cfg.data.corpus), cfg.data.held_out, transform,
        dict(clip.visual.preprocess_cfg), device, torch.float32, section.batch_size, section.max_batches,
        section.workers,
    )
    print(f"{'level':<8} {'pairs':>7} {'i2t R@1':>8} {'i2t R@5':>8} {'t2i R@1':>8} {'t2i R@5':>8}")
    for level in levels:
        m = {k.split("/")[-1]: v for k, v in metrics.items() if k.startswith(f"eval/{level.name}/")}
        if not m.get("samples"):
            print(f"{level.name:<8} {0:>7}  (no held-out pairs)")
            continue
        print(f"{level.name:<8} {int(m['samples']):>7} {m['i2t_r1']:>8.3f} {m['i2t_r5']:>8.3f} "
              f"{m['t2i_r1']:>8.3f} {m['t2i_r5']:>8.3f}")
    out = Path(section.out) if section.out else Path(cfg.output_dir) / "eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"checkpoint": checkpoint, "metrics": metrics}, indent=2), encoding="utf-8")
    print(f"wrote {out}")
    return 0
