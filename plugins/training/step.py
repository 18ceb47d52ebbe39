"""One level's training step: a single vision pass over samples and related crops, then the loss terms.

A step of level M encodes figures and their panels, of level P panels and their regions, of level R
region crops and their parent panels. With the text tower frozen, text embeddings come from a
:class:`~panel2patch.plugins.training.text_cache.TextEmbeddingCache`. Loss terms read a
:class:`~panel2patch.data.LevelOutputs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from panel2patch.data import LevelOutputs

from .loaders import LevelBatch
from .text_cache import TextEmbeddingCache


class TextSource:
    """Text embeddings for a batch: looked up in a cache when the tower is frozen, else encoded in the graph.

    ``frozen`` with ``cache`` None encodes without gradient at every use (no caching).
    """

    def __init__(self, clip: Any, tokenizer: Any, device: Any, frozen: bool, cache: TextEmbeddingCache | None):
        self.clip, self.tokenizer, self.device = clip, tokenizer, device
        self.frozen = frozen
        self.cache = cache

    def encode(self, texts: list[str]) -> Any:
        """Normalised embeddings without gradient (the cache's encoder)."""
        import torch

        with torch.no_grad():
            tokens = self.tokenizer(texts).to(self.device)
            return self.clip.encode_text(tokens, normalize=True)

    def embeddings(self, texts: list[str]) -> Any:
        if self.cache is not None:
            return self.cache(texts).to(self.device, non_blocking=True)
        return self.encode(texts).float()

    def forward(self, model: Callable[..., dict[str, Any]], images: Any, texts: list[str]) -> tuple[dict[str, Any], Any]:
        """``model``'s outputs for ``images`` and the texts' embeddings: from the cache (or encoded without
        gradient) when the tower is frozen, else from the same forward."""
        if self.frozen:
            return model(images), self.embeddings(texts)
        out = model(images, self.tokenizer(texts).to(self.device))
        return out, out["text"]


def level_step(
    model: Callable[..., dict[str, Any]],
    batch: LevelBatch,
    texts: TextSource,
    terms: Sequence[tuple[str, Any]],
    aggregator: Any,
    device: Any,
    dtype: Any,
    patch: tuple[int, int],
    rank: int = 0,
    world_size: int = 1,
) -> tuple[Any, dict[str, Any]]:
    """Forward one level batch and sum the weighted loss terms.

    Returns ``(loss, parts)``: ``loss`` a scalar tensor (None when no term applies), ``parts`` the
    unweighted value of each applied term (detached tensors) keyed ``LEVEL/TERM``.
    """
    images = batch.images.to(device=device, dtype=dtype, non_blocking=True)
    out, text = texts.forward(model, images, batch.texts)
    dense = out["dense"]
    outputs = LevelOutputs(
        level=batch.level,
        num_samples=batch.num_samples,
        image=out["image"].float(),
        text=text.float(),
        logit_scale=out["logit_scale"].float(),
        edge_child=batch.edge_child.to(device),
        edge_parent=batch.edge_parent.to(device),
        roi_boxes=batch.roi_boxes.to(device),
        roi_valid=batch.roi_valid.to(device),
        dense=dense.float() if dense is not None else None,
        patch_size=patch,
        aggregator=aggregator,
        rank=rank,
        world_size=world_size,
    )
    total = None
    parts: dict[str, Any] = {}
    for name, term in terms:
        value = term(outputs)
        if value is None:
            continue
        parts[f"{batch.level}/{name}"] = value.detach()
        weighted = value * float(term.weight)
        total = weighted if total is None else total + weighted
    if total is not None:
        parts[f"{batch.level}/loss"] = total.detach()
    return total, parts
