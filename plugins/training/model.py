"""The module DeepSpeed trains: an open_clip model plus the aggregator's parameters, pooled and dense outputs."""

from __future__ import annotations

import functools
import math
from typing import Any


@functools.cache
def _wrapper_class() -> type:
    import torch
    import torch.nn.functional as F
    from open_clip.transformer import VisionTransformer
    from torch import nn

    class HierarchicalCLIP(nn.Module):
        """An open_clip model plus the aggregator's parameters, as DeepSpeed trains them.

        ``forward(images, text_tokens=None)`` returns ``image`` (normalised ``[N, D]``), ``dense``
        (``[N, D, gh, gw]`` or None), ``logit_scale`` (exp, clamped at 100 as open_clip does) and, when
        tokens are given (trainable text tower), ``text``.
        """

        def __init__(self, clip: nn.Module, aggregator: nn.Module | None = None) -> None:
            super().__init__()
            # DeepSpeed broadcasts parameters as byte views, which 0-d tensors do not allow
            for name in ("logit_scale", "logit_bias"):
                param = getattr(clip, name, None)
                if isinstance(param, nn.Parameter) and param.ndim == 0:
                    setattr(clip, name, nn.Parameter(param.detach().reshape(1), requires_grad=param.requires_grad))
            self.clip = clip
            self.aggregator = aggregator

        def forward(self, images: torch.Tensor, text_tokens: torch.Tensor | None = None) -> dict[str, Any]:
            visual = self.clip.visual
            if isinstance(visual, VisionTransformer) and visual.proj is not None and visual.attn_pool is None:
                out = visual.forward_intermediates(
                    images, indices=1, normalize_intermediates=True, output_fmt="NCHW"
                )
                pooled = out["image_features"]
                dense = torch.einsum("nchw,cd->ndhw", out["image_intermediates"][-1], visual.proj)
            else:
                pooled, dense = visual(images), None
            result = {
                "image": F.normalize(pooled, dim=-1),
                "dense": dense,
                "logit_scale": self.clip.logit_scale.clamp(max=math.log(100.0)).exp().reshape(()),
            }
            if text_tokens is not None:
                result["text"] = F.normalize(self.clip.encode_text(text_tokens), dim=-1)
            return result

    return HierarchicalCLIP


def wrap_model(clip: Any, aggregator_module: Any = None) -> Any:
    """The ``nn.Module`` DeepSpeed trains: ``clip`` plus the aggregator's parameters (if any)."""
    return _wrapper_class()(clip, aggregator_module)


def patch_size(clip: Any) -> tuple[int, int]:
    size = getattr(clip.visual, "patch_size", (1, 1))
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def parameter_counts(model: Any) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
