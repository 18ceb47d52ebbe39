"""Validation during training: held-out in-batch retrieval (R@1/R@5 image<->text per level), cheap enough to run
every ``eval_every`` steps. Full-gallery evaluation is ``panel2patch eval`` (:mod:`panel2patch.plugins.evaluation`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
