"""Intra-level contrastive loss: each level's crops against their texts, with open_clip's ``ClipLoss``."""

from __future__ import annotations

from typing import Any

from panel2patch.components import LossTerm


class ClipContrastive(LossTerm):
    """Symmetric InfoNCE between the level's sample embeddings and their text embeddings.

    Uses ``open_clip.loss.ClipLoss``; with several ranks its all-gather gives every rank the negatives of
    the global batch (``gather_with_grad`` keeps gradients through the gather, ``local_loss`` computes
    only the local rows). For the region level this is the region crop <-> clause alignment.
    """

    def __init__(self, weight: float = 1.0, levels: list[str] | None = None, gather_with_grad: bool = True,
                 local_loss: bool = False) -> None:
        self.weight = weight
        self.levels = tuple(levels) if levels is not None else None
        self.gather_with_grad = gather_with_grad
        self.local_loss = local_loss
        self._losses: dict[tuple[int, int], Any] = {}

    def _loss(self, rank: int, world_size: int) -> Any:
        if (rank, world_size) not in self._losses:
            from open_clip.loss import ClipLoss

            self._losses[rank, world_size] = ClipLoss(
                local_loss=self.local_loss, gather_with_grad=self.gather_with_grad, rank=rank, world_size=world_size
            )
        return self._losses[rank, world_size]

    def __call__(self, outputs: Any) -> Any:
        n = outputs.num_samples
        if not self.applies(outputs.level) or n * outputs.world_size < 2:
            return None
        loss = self._loss(outputs.rank, outputs.world_size)
        return loss(outputs.image[:n], outputs.text[:n], outputs.logit_scale)
