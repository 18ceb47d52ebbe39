"""The trained model in open_clip's own format: fp32 weights gathered from training, export, and loading back."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from panel2patch.errors import Panel2PatchError

EXPORT_WEIGHTS = "open_clip_model.safetensors"
EXPORT_CONFIG = "open_clip_config.json"


def trained_state_dict(clip: Any, frozen_fp32: Mapping[str, Any] | None, zero_stage: int,
                       ckpt_dir: Path) -> dict[str, Any]:
    """The open_clip state dict of the trained ``clip`` module in fp32.

    Frozen weights keep their loaded values (``frozen_fp32``: their fp32 copy when training ran in bf16).
    Trainable weights: with ZeRO stage >= 1, DeepSpeed's fp32 master copy read from the final checkpoint
    in ``ckpt_dir`` (``zero_to_fp32``); with stage 0, the module's weights (bf16-rounded when training ran
    in bf16).
    """
    import torch

    if frozen_fp32 is not None:
        state = {k: v.float() if v.is_floating_point() else v for k, v in frozen_fp32.items()}
    else:
        state = {k: v.detach().cpu() for k, v in clip.state_dict().items()}
    if zero_stage >= 1:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        from .checkpoints import verify_checkpoint

        latest = (ckpt_dir / "latest").read_text().strip()
        verify_checkpoint(ckpt_dir / latest, zero_stage)  # zero_to_fp32 unpickles every rank's files
        with contextlib.redirect_stdout(sys.stderr):
            fp32 = get_fp32_state_dict_from_zero_checkpoint(str(ckpt_dir), tag=latest,
                                                            exclude_frozen_parameters=True)
        for key, value in fp32.items():
            if key.startswith("clip."):
                state[key[len("clip."):]] = value.float().cpu()
    else:
        for name, param in clip.named_parameters():
            if param.requires_grad:
                state[name] = param.detach().float().cpu()
    return {k: v.contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}


def export_model(clip: Any, state: Mapping[str, Any], model_cfg: Mapping[str, Any] | None, out: Path) -> None:
    """Save ``state`` (an open_clip state dict) and its config so stock open_clip loads it.

    Load with ``open_clip.create_model('local-dir:OUT')`` (any architecture, custom ones included) or
    ``open_clip.create_model(NAME, pretrained='OUT/open_clip_model.safetensors')``.
    """
    import safetensors.torch
    from open_clip.push_to_hf_hub import save_config_for_hf

    out.mkdir(parents=True, exist_ok=True)
    state = dict(state)
    if model_cfg is not None and not model_cfg.get("nonscalar_logit_scale", False):
        for name in ("logit_scale", "logit_bias"):
            if name in state and state[name].numel() == 1:
                state[name] = state[name].reshape(())
    safetensors.torch.save_file(dict(state), str(out / EXPORT_WEIGHTS))
    if model_cfg is not None:
        save_config_for_hf(clip, out / EXPORT_CONFIG, model_config=dict(model_cfg))


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
