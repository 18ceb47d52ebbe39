"""The faster rewrite of RapidOCR's recognition model: each fold on small graphs built here, and the
shipped PP-OCRv4 recogniser against its rewrite (logits and reads)."""

from __future__ import annotations

import collections

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageDraw, ImageFont

from panel2patch.parsers.ocr_model import fast_copy, fold_scalar_affines

RNG = np.random.default_rng(0)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def const(name: str, value: float | np.ndarray) -> onnx.NodeProto:
    array = np.asarray(value, np.float32)
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name + ".t"))


def lcnet_block(second_kernel: int, pad: int) -> onnx.ModelProto:
    """conv3x3 -> a*x+b -> hard-swish -> c*y+d -> second conv (PP-LCNetV3's block, scalars as Constant nodes)."""
    w1 = RNG.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32)
    b1 = RNG.normal(0, 0.5, 4).astype(np.float32)
    w2 = RNG.normal(0, 0.5, (5, 4, second_kernel, second_kernel)).astype(np.float32)
    b2 = RNG.normal(0, 0.5, 5).astype(np.float32)
    nodes = [
        const("a", 1.7), const("b", 0.4), const("three", 3.0), const("zero", 0.0), const("six", 6.0),
        const("six_div", 6.0), const("c", 0.3), const("d", -0.2),
        helper.make_node("Conv", ["x", "w1", "b1"], ["conv1"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["a", "conv1"], ["scaled"]),
        helper.make_node("Add", ["scaled", "b"], ["shifted"]),
        helper.make_node("Add", ["shifted", "three"], ["plus3"]),
        helper.make_node("Clip", ["plus3", "zero", "six"], ["clipped"]),
        helper.make_node("Mul", ["shifted", "clipped"], ["gated"]),
        helper.make_node("Div", ["gated", "six_div"], ["swished"]),
        helper.make_node("Mul", ["c", "swished"], ["post_scaled"]),
        helper.make_node("Add", ["post_scaled", "d"], ["post"]),
        helper.make_node("Conv", ["post", "w2", "b2"], ["y"], pads=[pad] * 4),
    ]
    graph = helper.make_graph(
        nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 11])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 9, 11])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
         numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])


def ops(model: onnx.ModelProto) -> collections.Counter[str]:
    return collections.Counter(n.op_type for n in model.graph.node)


def test_every_fold_of_a_block_followed_by_a_pointwise_convolution_keeps_its_output():
    x = RNG.normal(0, 2, (1, 3, 9, 11)).astype(np.float32)
    model = lcnet_block(1, 0)
    expected = run(model, x)
    counts = fold_scalar_affines(model)
    onnx.checker.check_model(model)
    assert counts == {"mul into the convolution before": 1, "add into the convolution before": 1,
                      "hard-swish": 1, "mul/add into the 1x1 convolution after": 2}
    assert ops(model) == {"Conv": 2, "HardSigmoid": 1, "Mul": 1}
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-5, atol=1e-5)


def test_an_affine_before_a_padded_convolution_stays_where_padding_would_make_a_fold_inexact():
    x = RNG.normal(0, 2, (1, 3, 9, 11)).astype(np.float32)
    model = lcnet_block(3, 1)
    expected = run(model, x)
    counts = fold_scalar_affines(model)
    assert "mul/add into the 1x1 convolution after" not in counts
    assert ops(model) == {"Conv": 2, "HardSigmoid": 1, "Mul": 2, "Add": 1, "Constant": 2}
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-5, atol=1e-5)


def test_a_convolution_output_read_twice_and_a_non_scalar_multiplier_are_left_alone():
    w = RNG.normal(0, 0.5, (2, 1, 1, 1)).astype(np.float32)
    nodes = [
        const("per_channel", np.array([2.0, 3.0]).reshape(1, 2, 1, 1)),
        helper.make_node("Conv", ["x", "w"], ["conv"]),
        helper.make_node("Mul", ["conv", "per_channel"], ["scaled"]),
        helper.make_node("Add", ["scaled", "conv"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    before = model.SerializeToString()
    assert not fold_scalar_affines(model)
    assert model.SerializeToString() == before


def test_a_model_without_the_patterns_has_no_fast_copy(tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)]), path)
    assert fast_copy(str(path)) is None


@pytest.fixture(scope="module")
def shipped() -> str:
    from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH, read_yaml, update_model_path

    return update_model_path(read_yaml(DEFAULT_CFG_PATH))["Rec"]["model_path"]


def test_the_shipped_recogniser_and_its_rewrite_give_the_same_logits(shipped):
    model = onnx.load(shipped)
    counts = fold_scalar_affines(model)
    # PP-LCNetV3: every hard-swish has its affines folded, most followed by a pointwise convolution
    assert counts["hard-swish"] >= 20 and counts["mul into the convolution before"] == counts["hard-swish"]
    assert counts["mul/add into the 1x1 convolution after"] >= 20
    assert ops(model)["Clip"] == 0
    original = onnx.load(shipped)
    name = original.graph.input[0].name
    for width in (48, 330, 1200):
        x = RNG.uniform(-1, 1, (1, 3, 48, width)).astype(np.float32)
        fast = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        slow = ort.InferenceSession(original.SerializeToString(), providers=["CPUExecutionProvider"])
        a, b = slow.run(None, {name: x})[0], fast.run(None, {name: x})[0]
        np.testing.assert_allclose(b, a, atol=1e-4)
        assert (a.argmax(-1) == b.argmax(-1)).all()


def test_the_engine_is_built_on_the_rewrite(monkeypatch):
    import rapidocr_onnxruntime

    from panel2patch.parsers.ocr import recognition_engine

    seen = {}

    def fake(**options):
        seen.update(options, ops=ops(onnx.load(options["rec_model_path"])))
        return "engine"

    monkeypatch.setattr(rapidocr_onnxruntime, "RapidOCR", fake)
    assert recognition_engine.__wrapped__(1) == "engine"
    assert seen["ops"]["HardSigmoid"] >= 20 and seen["ops"]["Clip"] == 0
    assert seen["intra_op_num_threads"] == 1


def test_the_engine_reads_as_the_shipped_model_does(shipped):
    from rapidocr_onnxruntime import RapidOCR

    from panel2patch.parsers.ocr import REC_HEIGHT, recognition_engine

    engine = recognition_engine(1)
    reference = RapidOCR(rec_model_path=shipped, rec_img_shape=[3, REC_HEIGHT, REC_HEIGHT],
                         intra_op_num_threads=1, inter_op_num_threads=1)
    img = Image.new("RGB", (420, 48), "white")
    ImageDraw.Draw(img).text((4, 4), "Panel B1 ii 250 kDa", fill="black", font=ImageFont.load_default(34))
    strip = np.asarray(img)[:, :, ::-1].copy()
    (text, conf, _), = engine.text_rec([strip], True)[0]
    (ref_text, ref_conf, _), = reference.text_rec([strip], True)[0]
    assert text == ref_text and "B1" in text
    assert abs(conf - ref_conf) < 1e-4
