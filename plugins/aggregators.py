"""Aggregators ``mean_pool`` and ``attention_pool``: child embeddings pooled into one per parent.

Inter-level message passing uses them. Inputs: ``children`` ``[N, D]``, ``parent_index`` ``[N]`` (long,
values in ``[0, P)``), ``P``. Output: ``[P, D]``; rows of parents without children are zeros and must not be used.
"""

from __future__ import annotations

import functools
from typing import Any

from panel2patch.components import Aggregator
from panel2patch.hookspecs import hookimpl


class MeanAggregator(Aggregator):
    """The average of each parent's children (a scatter-sum divided by the child count)."""

    def __call__(self, children: Any, parent_index: Any, num_parents: int) -> Any:
        import torch

        sums = children.new_zeros((num_parents, children.shape[1])).index_add(0, parent_index, children)
        counts = torch.bincount(parent_index, minlength=num_parents).clamp(min=1).to(children.dtype)
        return sums / counts[:, None]


@functools.cache
def _attention_pool_class() -> type:
    import torch
    from torch import nn

    class AttentionPool(nn.Module):
        """One learned query attending over a parent's children (``nn.MultiheadAttention``)."""

        def __init__(self, dim: int, heads: int, dropout: float) -> None:
            super().__init__()
            self.query = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
            self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)

        def forward(self, children: torch.Tensor, parent_index: torch.Tensor, num_parents: int) -> torch.Tensor:
            out_dtype = children.dtype
            children = children.to(self.query.dtype)  # bf16 training casts the module, not the inputs
            counts = torch.bincount(parent_index, minlength=num_parents)
            present = torch.nonzero(counts > 0).flatten()
            order = torch.argsort(parent_index, stable=True)
            groups = torch.split(children[order], counts[present].tolist())
            keys = nn.utils.rnn.pad_sequence(list(groups), batch_first=True)  # [P', Cmax, D]
            padding = torch.arange(keys.shape[1], device=keys.device)[None, :] >= counts[present][:, None]
            query = self.query.to(keys.dtype).expand(keys.shape[0], 1, -1)
            pooled, _ = self.attn(query, keys, keys, key_padding_mask=padding, need_weights=False)
            out = children.new_zeros((num_parents, children.shape[1]))
            return out.index_copy(0, present, pooled[:, 0]).to(out_dtype)

    return AttentionPool


class AttentionAggregator(Aggregator):
    """Attention pooling with a learned query; its parameters train and checkpoint with the model."""

    def __init__(self, heads: int = 1, dropout: float = 0.0) -> None:
        self.heads = heads
        self.dropout = dropout
        self.module: Any = None

    def setup(self, dim: int) -> Any:
        if dim % self.heads:
            raise ValueError(f"attention_pool aggregator: embedding width {dim} is not divisible by heads={self.heads}")
        self.module = _attention_pool_class()(dim, self.heads, self.dropout)
        return self.module

    def __call__(self, children: Any, parent_index: Any, num_parents: int) -> Any:
        if self.module is None:
            raise RuntimeError("attention_pool aggregator used before setup(dim); the trainer calls setup first")
        return self.module(children, parent_index, num_parents)


@hookimpl
def register_aggregators(register):
    register("mean_pool", MeanAggregator)
    register("attention_pool", AttentionAggregator)
