"""ROI-align consistency: a child crop's embedding vs the same box pooled from its parent's patch map.

The parent's ViT patch tokens, projected into the joint space, form a map ``[D, gh, gw]``; the child's
box, mapped from figure pixels into the parent's preprocessed input, is pooled from it with
``torchvision.ops.roi_align`` and compared with the embedding of the separately encoded child crop.
"""

from __future__ import annotations

from typing import Any, Literal

from panel2patch.components import LossTerm


class RoiConsistency(LossTerm):
    """Mean cosine distance between crop embeddings and ROI-pooled parent features.

    ``levels`` defaults to the panel and region levels (panel -> region edges); add ``figure`` to also
    tie panel crops to the figure's map. ``stop_gradient`` detaches one side (``crop`` or ``roi``).
    """

    def __init__(self, weight: float = 1.0, levels: list[str] | None = None, output_size: int = 2,
                 sampling_ratio: int = 2, stop_gradient: Literal["none", "crop", "roi"] = "none") -> None:
        self.weight = weight
        self.levels = tuple(levels) if levels is not None else ("panel", "region")
        self.output_size = output_size
        self.sampling_ratio = sampling_ratio
        self.stop_gradient = stop_gradient

    def __call__(self, outputs: Any) -> Any:
        import torch
        import torch.nn.functional as F
        from torchvision.ops import roi_align

        if not self.applies(outputs.level) or outputs.dense is None or not bool(outputs.roi_valid.any()):
            return None
        valid = outputs.roi_valid
        child, parent = outputs.edge_child[valid], outputs.edge_parent[valid]
        ph, pw = outputs.patch_size
        scale = torch.tensor([1.0 / pw, 1.0 / ph, 1.0 / pw, 1.0 / ph], device=outputs.dense.device)
        boxes = outputs.roi_boxes[valid].to(outputs.dense.device) * scale  # model-input pixels -> patch grid
        rois = torch.cat([parent[:, None].to(boxes), boxes], dim=1)
        pooled = roi_align(
            outputs.dense, rois, self.output_size, spatial_scale=1.0, sampling_ratio=self.sampling_ratio, aligned=True
        ).mean(dim=(2, 3))
        pooled = F.normalize(pooled, dim=-1)
        crop = outputs.image[child]
        if self.stop_gradient == "crop":
            crop = crop.detach()
        elif self.stop_gradient == "roi":
            pooled = pooled.detach()
        return (1.0 - (pooled * crop).sum(dim=-1)).mean()
