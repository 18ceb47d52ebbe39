"""Entry points of zoom-in pretraining.

* ``panel2patch train RECIPE [overrides] [--resume latest|CHECKPOINT]`` -> :func:`main`
* ``panel2patch eval RECIPE [overrides]`` -> :func:`evaluate`
* ``deepspeed [--num_gpus N] [--hostfile H] --module panel2patch.train --recipe RECIPE [overrides]
  [--resume latest]``: the same training on every rank the launcher starts (it appends
  ``--local_rank=N``, which is stripped before the overrides are read).

The recipe's ``train`` section is described in ``docs/training.md``; ``eval`` (optional) takes
``checkpoint`` (an export folder or a checkpoint file; default ``OUTPUT_DIR/export`` when present),
``out`` (JSON file, default ``OUTPUT_DIR/eval.json``), ``batch_size``, ``max_batches`` and ``workers``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import build, load, strip_launcher_flags, validate
from .engine import (
    EXPORT_WEIGHTS,
    TextSource,
    Trainer,
    parse_section,
    evaluate_levels,
    parse_train_config,
    wrap_model,
)
from .errors import Panel2PatchError
from .hierarchy import find_shards


def main(args: argparse.Namespace) -> int:
    """Train as the recipe says; ``args`` has ``recipe``, ``overrides`` and ``resume``."""
    recipe = load(args.recipe, list(args.overrides or []))
    trainer = Trainer(recipe, resume=getattr(args, "resume", None))
    summary = trainer.fit()
    if trainer.is_main:
        where = f"; model exported to {summary['export']}" if summary.get("export") else ""
        print(f"panel2patch train: done after {summary['steps']} steps{where}", file=sys.stderr)
    return 0


@dataclass
class EvalSection:
    """The optional ``eval`` section of a recipe."""

    checkpoint: str | None = None
    out: str | None = None
    batch_size: int = 32
    max_batches: int | None = None
    workers: int = 0


def load_weights(clip: Any, checkpoint: str) -> None:
    """Load an export folder (``open_clip_model.safetensors``) or any checkpoint file open_clip reads."""
    path = Path(checkpoint)
    if path.is_dir():
        weights = path / EXPORT_WEIGHTS
        if not weights.is_file():
            raise Panel2PatchError(f"eval.checkpoint {checkpoint!r}: no {EXPORT_WEIGHTS} in this folder")
        import safetensors.torch

        clip.load_state_dict(safetensors.torch.load_file(str(weights)), strict=True)
        return
    if not path.is_file():
        raise Panel2PatchError(f"eval.checkpoint {checkpoint!r} does not exist")
    import open_clip

    open_clip.load_checkpoint(clip, str(path))


def evaluate(args: argparse.Namespace) -> int:
    """In-batch retrieval R@1/R@5 per level on the held-out split of the recipe's corpus; prints a table."""
    import torch

    recipe = load(args.recipe, list(args.overrides or []))
    validate(recipe)
    cfg = parse_train_config(recipe.section("train"), recipe.source)
    section = parse_section(EvalSection, recipe.config.get("eval"), "eval", recipe.source)
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


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m panel2patch.train",
        description="Zoom-in pretraining (the entry the deepspeed launcher runs on every rank).",
    )
    parser.add_argument("--recipe", required=True, help="shipped recipe name or path to a .yaml file")
    parser.add_argument("--resume", help="checkpoint directory or 'latest'")
    parser.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. train.optim.lr=1e-4")
    return parser.parse_args(strip_launcher_flags(list(argv)))


if __name__ == "__main__":
    namespace = parse_args(sys.argv[1:])
    try:
        sys.exit(main(namespace))
    except Panel2PatchError as exc:
        print(f"panel2patch train: error: {exc}", file=sys.stderr)
        sys.exit(2)
