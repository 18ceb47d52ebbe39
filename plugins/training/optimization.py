"""DeepSpeed's config (ZeRO, precision, LR schedule) and the AdamW optimizer, from the recipe's ``train`` settings."""

from __future__ import annotations

import json
from typing import Any

from panel2patch.errors import RecipeError

from .errors import TrainError
from .settings import OptimSettings, TrainSettings


def deepspeed_config(settings: TrainSettings, micro_batch: int, source: str) -> dict[str, Any]:
    """``train.deepspeed`` with panel2patch's defaults and the ``WarmupCosineLR`` schedule of ``train.optim``.

    ``scheduler.params.total_num_steps`` is a placeholder; the trainer sets it once the run is planned.
    ``micro_batch`` is the default ``train_micro_batch_size_per_gpu`` (the largest level batch).
    """
    import torch

    cfg = json.loads(json.dumps(settings.deepspeed))  # a deep copy of plain data
    cfg.setdefault("gradient_accumulation_steps", 1)
    cfg.setdefault("train_micro_batch_size_per_gpu", micro_batch)
    cfg.setdefault("steps_per_print", 10**9)
    cfg.setdefault("zero_optimization", {"stage": 0})
    cfg["zero_allow_untested_optimizer"] = True
    bf16 = cfg.setdefault("bf16", {"enabled": "auto"})
    if bf16.get("enabled") == "auto":
        bf16["enabled"] = torch.cuda.is_available()
    if int(cfg["zero_optimization"].get("stage", 0)) > 2:
        raise RecipeError(
            f"{source}: train.deepspeed.zero_optimization.stage 3 is not supported (the patch map "
            "reads vision weights outside module forwards); use stage 0, 1 or 2"
        )
    if cfg.get("fp16", {}).get("enabled"):
        raise RecipeError(f"{source}: train.deepspeed.fp16 is not supported; use bf16 (GPU) or fp32 (CPU)")
    optim = settings.optim
    cfg["scheduler"] = {
        "type": "WarmupCosineLR",
        "params": {
            "total_num_steps": 1,
            "warmup_num_steps": max(1, int(optim.warmup_steps)),
            "warmup_type": "linear",
            "warmup_min_ratio": 0.0,
            "cos_min_ratio": float(optim.min_lr_ratio),
        },
    }
    return cfg


def adamw(model: Any, optim: OptimSettings) -> Any:
    """torch AdamW; no weight decay on gains, biases, embeddings and the logit scale (open_clip's rule)."""
    import torch

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        exclude = param.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
        (no_decay if exclude else decay).append(param)
    groups = [g for g in ({"params": decay, "weight_decay": optim.weight_decay},
                          {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
    if not groups:
        raise TrainError("the model has no trainable parameter; check the loader's freezing settings")
    return torch.optim.AdamW(groups, lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps)
