"""Inter-level message passing: children aggregated into their parent, contrasted with the parent.

In a figure (M) step the children are the figures' panels, in a panel (P) step the panels' regions, in
a region (R) step the regions of each parent panel present in the batch. Only parents with at least one
child in the batch take part; the others are left out, never given a zero embedding.
"""

from __future__ import annotations

from typing import Any

from panel2patch.components import LossTerm

PAIRS = ("image", "text", "cross")


class InterLevel(LossTerm):
    """Contrast aggregated children with their parents, within the rank's batch.

    ``pairs``: ``image`` (pooled child images vs parent image), ``text`` (pooled child texts vs parent
    text; with a frozen text tower it trains only a parametric aggregator), ``cross`` (pooled child
    images vs parent text and parent image vs pooled child texts). The terms are averaged. Parent counts
    differ between ranks, so the contrast uses the local batch only. It needs the recipe's aggregator
    (``outputs.aggregator``).
    """

    needs_aggregator = True

    def __init__(self, weight: float = 1.0, levels: list[str] | None = None, pairs: list[str] | None = None,
                 min_parents: int = 2) -> None:
        self.weight = weight
        self.levels = tuple(levels) if levels is not None else None
        self.pairs = tuple(pairs) if pairs is not None else ("image", "cross")
        unknown = [p for p in self.pairs if p not in PAIRS]
        if unknown or not self.pairs:
            raise ValueError(f"interlevel_contrastive: unknown pairs {unknown}; choose from {', '.join(PAIRS)}")
        self.min_parents = max(2, min_parents)
        self._clip: Any = None

    def __call__(self, outputs: Any) -> Any:
        import torch
        import torch.nn.functional as F

        if not self.applies(outputs.level) or outputs.edge_child.numel() == 0:
            return None
        parents, local = torch.unique(outputs.edge_parent, return_inverse=True)
        if parents.numel() < self.min_parents:
            return None
        if outputs.aggregator is None:
            raise ValueError("interlevel_contrastive pools children into their parents: set train.aggregator")
        if self._clip is None:
            from open_clip.loss import ClipLoss

            self._clip = ClipLoss()
        clip, scale = self._clip, outputs.logit_scale
        children = outputs.edge_child
        n = parents.numel()
        parent_image, parent_text = outputs.image[parents], outputs.text[parents]
        terms = []
        if "image" in self.pairs or "cross" in self.pairs:
            pooled_image = F.normalize(outputs.aggregator(outputs.image[children], local, n), dim=-1)
        if "text" in self.pairs or "cross" in self.pairs:
            pooled_text = F.normalize(outputs.aggregator(outputs.text[children], local, n), dim=-1)
        if "image" in self.pairs:
            terms.append(clip(pooled_image, parent_image, scale))
        if "text" in self.pairs:
            terms.append(clip(pooled_text, parent_text, scale))
        if "cross" in self.pairs:
            terms.append(0.5 * (clip(pooled_image, parent_text, scale) + clip(parent_image, pooled_text, scale)))
        return torch.stack(terms).mean()
