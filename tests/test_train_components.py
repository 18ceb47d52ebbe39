"""Training components in isolation: levels, aggregators, schedules, loss terms, preprocessing geometry."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from panel2patch.components import Aggregator, GranularityLevel, LossTerm, Schedule
from panel2patch.data import Figure, LevelOutputs, Panel, Region
from panel2patch.errors import RecipeError
from panel2patch.manager import build, registry
from panel2patch.plugins.training.geometry import preprocess_geometry

KINDS = {"levels": GranularityLevel, "aggregators": Aggregator, "loss_terms": LossTerm, "schedules": Schedule}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_registered_training_component_builds_with_defaults(kind):
    names = registry(kind).names()
    assert names
    for name in names:
        assert isinstance(build(kind, name, {}), KINDS[kind])


def test_builtin_training_component_names():
    assert {"figure", "panel", "region"} <= set(registry("levels").names())
    assert {"mean_pool", "attention_pool"} <= set(registry("aggregators").names())
    assert {"clip_contrastive", "interlevel_contrastive", "roi_consistency"} <= set(registry("loss_terms").names())
    assert {"alternating", "joint", "single_level", "sequence"} <= set(registry("schedules").names())


# -- levels --------------------------------------------------------------------------------------


def _figure() -> Figure:
    return Figure(
        id="f1", width=200, height=100, caption="Two panels.",
        panels=[
            Panel(id="a", box=(0, 0, 100, 100), label="A", subcaption="red stripes.", description="a red panel"),
            Panel(id="b", box=(100, 0, 200, 100), label="B", subcaption=None),
        ],
        regions=[
            Region(id="r1", panel_id="a", box=(10, 10, 30, 30), texts=["black circle", "the circle"]),
            Region(id="r2", panel_id="a", box=(90, 90, 99, 99), texts=[""]),
            Region(id="r3", panel_id="b", box=(150, 10, 170, 30), texts=["white square"]),
        ],
    )


def test_levels_make_samples_with_children_and_parents():
    fig = _figure()
    (m,) = build("levels", "figure", {}).samples(fig)
    assert m.box == (0.0, 0.0, 200.0, 100.0) and m.texts == ("Two panels.",)
    assert [c.id for c in m.children] == ["a"]  # panel b has no text
    assert m.children[0].texts == ("red stripes. a red panel",)

    panels = build("levels", "panel", {"use_description": False}).samples(fig)
    assert [p.id for p in panels] == ["a"]
    assert panels[0].texts == ("red stripes.",)
    assert [c.id for c in panels[0].children] == ["r1"]  # r2 has no text

    regions = build("levels", "region", {"pad": 0.5}).samples(fig)
    assert [r.id for r in regions] == ["r1", "r3"]
    assert regions[0].parent.id == "a" and regions[0].texts == ("black circle", "the circle")
    assert regions[0].box == (0.0, 0.0, 40.0, 40.0)  # grown by half its size, clipped to the panel
    assert regions[1].parent.texts == ("white square",)  # a parent without text borrows the region's


# -- schedules -----------------------------------------------------------------------------------


def test_alternating_schedule_cycles_with_phase_length():
    s = build("schedules", "alternating", {"order": ["M", "P", "R"], "steps_per_phase": 2})
    assert [s.levels(i)[0] for i in range(8)] == ["M", "M", "P", "P", "R", "R", "M", "M"]
    from panel2patch.plugins.training.trainer import level_shares

    assert level_shares(s, horizon=600) == {"M": pytest.approx(1 / 3), "P": pytest.approx(1 / 3), "R": pytest.approx(1 / 3)}


def test_joint_and_single_level_schedules():
    joint = build("schedules", "joint", {})
    joint.bind(["figure", "panel"])
    assert joint.levels(7) == ["figure", "panel"]
    assert build("schedules", "joint", {"levels": ["R"]}).levels(0) == ["R"]
    assert build("schedules", "single_level", {"level": "region"}).levels(123) == ["region"]


def test_schedule_state_round_trips_and_refuses_a_different_schedule():
    a = build("schedules", "alternating", {"order": ["P", "R"]})
    state = a.state_dict()
    build("schedules", "alternating", {"order": ["P", "R"]}).load_state_dict(state)
    with pytest.raises(ValueError, match="resume with the checkpoint's schedule"):
        build("schedules", "alternating", {"order": ["M", "P", "R"]}).load_state_dict(state)
    with pytest.raises(ValueError):
        build("schedules", "single_level", {"level": "P"}).load_state_dict(state)


# -- aggregators ---------------------------------------------------------------------------------


def test_mean_pool_aggregator_averages_each_parents_children():
    torch.manual_seed(0)
    children = torch.randn(7, 5)
    index = torch.tensor([2, 0, 2, 2, 0, 3, 3])
    out = build("aggregators", "mean_pool", {})(children, index, 5)
    for parent in range(5):
        rows = [children[i] for i in range(7) if index[i] == parent]
        expected = torch.stack(rows).mean(0) if rows else torch.zeros(5)
        assert torch.allclose(out[parent], expected, atol=1e-6)


def test_attention_pool_aggregator_pools_within_parents_and_trains():
    torch.manual_seed(0)
    agg = build("aggregators", "attention_pool", {"heads": 2})
    module = agg.setup(8)
    children = torch.randn(6, 8, requires_grad=True)
    index = torch.tensor([0, 0, 2, 2, 2, 0])
    out = agg(children, index, 4)
    assert out.shape == (4, 8)
    assert torch.all(out[1] == 0) and torch.all(out[3] == 0)  # parents without children
    # permuting children of a parent leaves its pooled vector unchanged; other parents' children do not leak
    perm = torch.tensor([5, 1, 4, 3, 2, 0])
    out_perm = agg(children[perm], index[perm], 4)
    assert torch.allclose(out[0], out_perm[0], atol=1e-5) and torch.allclose(out[2], out_perm[2], atol=1e-5)
    changed = children.detach().clone()
    changed[2:5] += 5.0  # only parent 2's children
    assert torch.allclose(agg(changed, index, 4)[0], out[0], atol=1e-5)
    out[[0, 2]].sum().backward()
    assert module.query.grad is not None and module.query.grad.abs().sum() > 0


# -- loss terms ----------------------------------------------------------------------------------


def _outputs(image, text, *, level="panel", num_samples=None, child=(), parent=(), boxes=None, valid=None,
             dense=None, patch=(8, 8), scale=10.0) -> LevelOutputs:
    n_edges = len(child)
    return LevelOutputs(
        level=level, num_samples=num_samples if num_samples is not None else image.shape[0],
        image=F.normalize(image, dim=-1), text=F.normalize(text, dim=-1), logit_scale=torch.tensor(scale),
        edge_child=torch.tensor(child, dtype=torch.long), edge_parent=torch.tensor(parent, dtype=torch.long),
        roi_boxes=boxes if boxes is not None else torch.zeros(n_edges, 4),
        roi_valid=valid if valid is not None else torch.ones(n_edges, dtype=torch.bool),
        dense=dense, patch_size=patch, aggregator=build("aggregators", "mean_pool", {}),
    )


def _symmetric_ce(a, b, scale):
    logits = scale * a @ b.T
    labels = torch.arange(a.shape[0])
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def test_clip_contrastive_term_is_symmetric_infonce_over_the_level_samples_only():
    torch.manual_seed(0)
    image, text = torch.randn(6, 4), torch.randn(6, 4)
    out = _outputs(image, text, num_samples=4)
    term = build("loss_terms", "clip_contrastive", {"weight": 2.0})
    expected = _symmetric_ce(out.image[:4], out.text[:4], 10.0)
    assert torch.allclose(term(out), expected, atol=1e-5)
    assert term.weight == 2.0
    assert build("loss_terms", "clip_contrastive", {"levels": ["figure"]})(out) is None


def test_interlevel_term_leaves_out_parents_without_children():
    torch.manual_seed(0)
    image, text = torch.randn(8, 4), torch.randn(8, 4)
    # samples 0..3 are parents; children 4..7 belong to parents 0, 0, 1, 3; parent 2 has none
    out = _outputs(image, text, num_samples=4, child=[4, 5, 6, 7], parent=[0, 0, 1, 3])
    value = build("loss_terms", "interlevel_contrastive", {"pairs": ["image"]})(out)
    img = out.image
    pooled = F.normalize(torch.stack([(img[4] + img[5]) / 2, img[6], img[7]]), dim=-1)
    expected = _symmetric_ce(pooled, img[[0, 1, 3]], 10.0)
    assert torch.allclose(value, expected, atol=1e-5)

    cross = build("loss_terms", "interlevel_contrastive", {"pairs": ["cross"]})(out)
    txt = out.text
    pooled_text = F.normalize(torch.stack([(txt[4] + txt[5]) / 2, txt[6], txt[7]]), dim=-1)
    expected_cross = 0.5 * (_symmetric_ce(pooled, txt[[0, 1, 3]], 10.0) + _symmetric_ce(img[[0, 1, 3]], pooled_text, 10.0))
    assert torch.allclose(cross, expected_cross, atol=1e-5)


def test_interlevel_term_needs_two_parents():
    image, text = torch.randn(3, 4), torch.randn(3, 4)
    out = _outputs(image, text, num_samples=1, child=[1, 2], parent=[0, 0])
    assert build("loss_terms", "interlevel_contrastive", {})(out) is None
    assert build("loss_terms", "interlevel_contrastive", {})(_outputs(image, text)) is None
    with pytest.raises(RecipeError, match="loss_terms .interlevel_contrastive.: .*unknown pairs"):
        build("loss_terms", "interlevel_contrastive", {"pairs": ["pixels"]})


def test_interlevel_term_without_an_aggregator_says_so():
    image, text = torch.randn(8, 4), torch.randn(8, 4)
    out = _outputs(image, text, num_samples=4, child=[4, 5, 6, 7], parent=[0, 0, 1, 3])
    out.aggregator = None
    with pytest.raises(ValueError, match="set train.aggregator"):
        build("loss_terms", "interlevel_contrastive", {})(out)


def test_roi_term_compares_crops_with_the_pooled_box_of_the_parent_map():
    target = F.normalize(torch.tensor([1.0, 2.0, 0.0, -1.0]), dim=0)
    other = F.normalize(torch.tensor([0.0, -1.0, 3.0, 1.0]), dim=0)
    dense = other[:, None, None].repeat(1, 4, 4)[None].repeat(2, 1, 1, 1).clone()  # [N=2, D, 4, 4]
    dense[0, :, 0:2, 2:4] = target[:, None, None]  # top-right 2x2 patches of image 0
    image = torch.stack([other, target])
    # child 1's box in parent 0's 32x32 input spans the centres of the top-right patches (8 px each), so
    # bilinear sampling reads those patches only
    boxes = torch.tensor([[20.0, 4.0, 28.0, 12.0]])
    out = _outputs(image, image.clone(), child=[1], parent=[0], boxes=boxes, dense=dense)
    term = build("loss_terms", "roi_consistency", {"output_size": 2, "sampling_ratio": 2})
    assert term(out).item() == pytest.approx(0.0, abs=1e-5)
    shifted = _outputs(image, image.clone(), child=[1], parent=[0], boxes=torch.tensor([[4.0, 20.0, 12.0, 28.0]]),
                       dense=dense)
    expected = 1.0 - float(other @ target)
    assert term(shifted).item() == pytest.approx(expected, abs=1e-4)
    invalid = _outputs(image, image.clone(), child=[1], parent=[0], boxes=boxes, dense=dense,
                       valid=torch.tensor([False]))
    assert term(invalid) is None
    assert build("loss_terms", "roi_consistency", {})(_outputs(image, image, level="figure", child=[1], parent=[0],
                                                               boxes=boxes, dense=dense)) is None


# -- geometry ------------------------------------------------------------------------------------


@pytest.mark.parametrize("resize_mode", ["shortest", "longest", "squash"])
@pytest.mark.parametrize("size", [(90, 50), (40, 120), (64, 64)])
def test_box_geometry_matches_open_clip_preprocessing(resize_mode, size):
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from PIL import Image, ImageDraw

    width, height = size
    box = (0.3 * width, 0.4 * height, 0.7 * width, 0.8 * height)
    img = Image.new("RGB", size, (255, 255, 255))
    ImageDraw.Draw(img).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(255, 0, 0))
    cfg = PreprocessCfg(size=32, resize_mode=resize_mode, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                        interpolation="bilinear", fill_color=255)
    tensor = image_transform_v2(cfg, is_train=False)(img)
    red = (tensor[0] > 0.6) & (tensor[1] < 0.4) & (tensor[2] < 0.4)
    ys, xs = torch.nonzero(red, as_tuple=True)
    mapped = preprocess_geometry(width, height, {"size": 32, "resize_mode": resize_mode}).map_box(box)
    assert mapped is not None
    observed = (xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1)
    for got, want in zip(observed, mapped):
        assert math.isclose(got, want, abs_tol=1.5), (observed, mapped)
