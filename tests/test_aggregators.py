"""The ``mean_pool`` and ``attention_pool`` aggregators: exact pooled values, settings, dtypes and misuse."""

from __future__ import annotations

import pytest
import torch

from panel2patch.manager import build
from panel2patch.plugins.aggregators import AttentionAggregator, MeanAggregator


def test_mean_pool_gives_exact_means_and_zero_rows_for_childless_parents():
    children = torch.tensor([[1.0, 2.0], [3.0, 6.0], [10.0, -4.0], [5.0, 5.0]])
    index = torch.tensor([1, 1, 3, 1])
    out = MeanAggregator()(children, index, 4)
    assert torch.equal(out, torch.tensor([[0.0, 0.0], [3.0, 13.0 / 3.0], [0.0, 0.0], [10.0, -4.0]]))


def test_mean_pool_keeps_the_input_dtype():
    children = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    out = MeanAggregator()(children, torch.tensor([0, 0]), 1)
    assert out.dtype == torch.float64 and out.tolist() == [[1.5]]


def _reference_pool(module, children: torch.Tensor, index: torch.Tensor, num_parents: int) -> torch.Tensor:
    """The module's query attending over each parent's children alone, one parent at a time."""
    rows = []
    for parent in range(num_parents):
        mine = children[index == parent]
        if len(mine) == 0:
            rows.append(torch.zeros(children.shape[1]))
            continue
        pooled, _ = module.attn(module.query, mine[None], mine[None], need_weights=False)
        rows.append(pooled[0, 0])
    return torch.stack(rows)


def test_attention_pool_equals_attention_over_each_parents_own_children():
    # uneven child counts (3, 0, 1, 2), interleaved: padding and grouping both matter
    torch.manual_seed(0)
    agg = AttentionAggregator(heads=2)
    module = agg.setup(8)
    children = torch.randn(6, 8)
    index = torch.tensor([0, 3, 0, 2, 3, 0])
    with torch.no_grad():
        out = agg(children, index, 4)
        expected = _reference_pool(module, children, index, 4)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.equal(out[1], torch.zeros(8))


def test_attention_pool_of_a_single_child_is_its_value_projection():
    torch.manual_seed(1)
    agg = AttentionAggregator()
    module = agg.setup(4)
    child = torch.randn(1, 4)
    attn = module.attn
    with torch.no_grad():
        value = child @ attn.in_proj_weight[8:].T + attn.in_proj_bias[8:]
        expected = value @ attn.out_proj.weight.T + attn.out_proj.bias
        out = agg(child, torch.tensor([0]), 1)
    assert torch.allclose(out, expected, atol=1e-6)


def test_attention_pool_settings_reach_the_module():
    agg = build("aggregators", "attention_pool", {"heads": 2, "dropout": 0.25})
    module = agg.setup(8)
    assert module is agg.module
    assert module.attn.num_heads == 2 and module.attn.dropout == 0.25
    default = build("aggregators", "attention_pool", {})
    assert (default.heads, default.dropout) == (1, 0.0)
    assert default.setup(8).attn.num_heads == 1


def test_attention_pool_query_starts_as_a_scaled_normal_draw():
    torch.manual_seed(3)
    module = AttentionAggregator().setup(16)
    torch.manual_seed(3)
    assert torch.equal(module.query.detach(), torch.randn(1, 1, 16) * 16**-0.5)


def test_attention_pool_returns_the_input_dtype_and_runs_a_cast_module():
    torch.manual_seed(0)
    agg = AttentionAggregator()
    module = agg.setup(4)
    children = torch.randn(3, 4, dtype=torch.float64)
    index = torch.tensor([0, 1, 1])
    with torch.no_grad():
        out = agg(children, index, 2)
        assert out.dtype == torch.float64
        assert torch.equal(out, agg(children.float(), index, 2).double())
        module.to(torch.bfloat16)  # bf16 training casts the module, not its inputs
        out16 = agg(children.float(), index, 2)
        assert out16.dtype == torch.float32
        assert torch.equal(out16, agg(children.bfloat16(), index, 2).float())


def test_attention_pool_refuses_a_width_not_divisible_by_heads_and_use_before_setup():
    with pytest.raises(ValueError, match="embedding width 10 is not divisible by heads=4"):
        AttentionAggregator(heads=4).setup(10)
    with pytest.raises(RuntimeError, match="used before setup"):
        AttentionAggregator()(torch.zeros(1, 4), torch.tensor([0]), 1)
