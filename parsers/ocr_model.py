"""A faster copy of RapidOCR's recognition model, equal to it up to float rounding.

PP-OCRv4's recogniser (a PP-LCNetV3 backbone) wraps every hard-swish in two learnable scalar affines
(``a * x + b`` before, ``c * y + d`` after) and spells hard-swish itself as four element-wise nodes
(``x * clip(x + 3, 0, 6) / 6``). onnxruntime fuses none of them, and on one core those element-wise passes
take about half of each run. The copy folds each scalar affine into the convolution beside it (the one
before, or a following 1 x 1 convolution, where no padding makes the fold inexact) and writes hard-swish as
``x * HardSigmoid(x)``. Logits differ from the shipped model's by about 1e-6.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np


def fold_scalar_affines(model: Any) -> collections.Counter[str]:
    """Rewrite an ``onnx.ModelProto`` in place as described above; counts of each rewrite made.

    Only exact patterns change: a Mul/Add by a one-element constant whose other input is a Conv's only
    use (folded into that Conv), a Mul/Add chain whose only use is an unpadded 1 x 1 Conv (folded into it),
    and ``Add(x, 3) -> Clip(0, 6) -> Mul(x, .) -> Div(6)`` with single uses (hard-swish).
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and len(node.output) == 1 and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    outputs = {o.name for o in graph.output}
    nodes = list(graph.node)
    counts: collections.Counter[str] = collections.Counter()

    def users() -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = collections.defaultdict(list)
        for n in nodes:
            for name in n.input:
                found[name].append(n)
        return found

    def value(name: str) -> float | None:
        v = consts.get(name)
        return float(v.reshape(())) if v is not None and v.size == 1 else None

    def scalar_op(node: Any) -> tuple[str, float, str] | None:
        """(op, constant, other input) of a Mul/Add by a one-element constant."""
        if node.op_type not in ("Mul", "Add") or len(node.input) != 2:
            return None
        for k in (0, 1):
            v, other = value(node.input[k]), node.input[1 - k]
            if v is not None and other not in consts:
                return node.op_type, v, other
        return None

    def conv_weights(conv: Any) -> tuple[np.ndarray, np.ndarray] | None:
        if conv.op_type != "Conv" or conv.input[1] not in consts:
            return None
        w = consts[conv.input[1]].astype(np.float64)
        has_bias = len(conv.input) > 2 and conv.input[2]
        if has_bias and conv.input[2] not in consts:
            return None
        b = consts[conv.input[2]].astype(np.float64) if has_bias else np.zeros(w.shape[0])
        return w, b

    def set_weights(conv: Any, w: np.ndarray, b: np.ndarray) -> None:
        wn, bn = conv.output[0] + ".folded_w", conv.output[0] + ".folded_b"
        graph.initializer.extend([numpy_helper.from_array(w.astype(np.float32), wn),
                                  numpy_helper.from_array(b.astype(np.float32), bn)])
        consts[wn], consts[bn] = w.astype(np.float32), b.astype(np.float32)
        conv.input[1] = wn
        if len(conv.input) > 2:
            conv.input[2] = bn
        else:
            conv.input.append(bn)

    # a * conv(x) + b -> conv'(x)
    use = users()
    dropped: set[int] = set()
    for conv in nodes:
        weights = conv_weights(conv)
        if weights is None:
            continue
        w, b = weights
        out, folded = conv.output[0], False
        while len(use[out]) == 1 and out not in outputs and (op := scalar_op(use[out][0])) and op[2] == out:
            kind, v, _ = op
            w, b = (w * v, b * v) if kind == "Mul" else (w, b + v)
            dropped.add(id(use[out][0]))
            out, folded = use[out][0].output[0], True
            counts[f"{kind.lower()} into the convolution before"] += 1
        if folded:
            set_weights(conv, w, b)
            conv.output[0] = out
    nodes = [n for n in nodes if id(n) not in dropped]

    # conv1x1(c * y + d) -> conv1x1'(y)
    use, made = users(), {o: n for n in nodes for o in n.output}
    dropped = set()
    for conv in nodes:
        weights = conv_weights(conv)
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        if weights is None or weights[0].shape[2:] != (1, 1) or any(attrs.get("pads", [])) or \
                attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            continue
        chain, src = [], conv.input[0]
        while src in made and len(use[src]) == 1 and src not in outputs and (op := scalar_op(made[src])):
            chain.append(op[:2])
            dropped.add(id(made[src]))
            src = op[2]
        if not chain:
            continue
        scale, shift = 1.0, 0.0  # the chain as scale * y + shift, the farthest node applied first
        for kind, v in reversed(chain):
            scale, shift = (scale * v, shift * v) if kind == "Mul" else (scale, shift + v)
        w, b = weights
        set_weights(conv, w * scale, b + shift * w.sum(axis=(1, 2, 3)))
        conv.input[0] = src
        counts["mul/add into the 1x1 convolution after"] += len(chain)
    nodes = [n for n in nodes if id(n) not in dropped]

    # x * clip(x + 3, 0, 6) / 6 -> x * HardSigmoid(x)
    use = users()
    replaced: dict[int, list[Any]] = {}
    dropped = set()
    for add in nodes:
        op = scalar_op(add)
        if op is None or op[:2] != ("Add", 3.0):
            continue
        x = op[2]
        step = [add]
        for kind in ("Clip", "Mul", "Div"):
            nxt = use[step[-1].output[0]]
            if len(nxt) != 1 or nxt[0].op_type != kind or step[-1].output[0] in outputs:
                break
            step.append(nxt[0])
        else:
            clip, mul, div = step[1:]
            if ([value(i) for i in clip.input[1:]] == [0.0, 6.0] and set(mul.input) == {x, clip.output[0]}
                    and div.input[0] == mul.output[0] and value(div.input[1]) == 6.0):
                gate = add.output[0] + ".hard_sigmoid"
                replaced[id(add)] = [helper.make_node("HardSigmoid", [x], [gate], alpha=1 / 6, beta=0.5),
                                     helper.make_node("Mul", [x, gate], [div.output[0]])]
                dropped |= {id(clip), id(mul), id(div)}
                counts["hard-swish"] += 1
    nodes = [m for n in nodes if id(n) not in dropped for m in replaced.get(id(n), [n])]

    # constants nothing reads any more
    read = {name for n in nodes for name in n.input} | outputs
    nodes = [n for n in nodes if n.op_type != "Constant" or any(o in read for o in n.output)]
    kept = [i for i in graph.initializer if i.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.node[:]
    graph.node.extend(nodes)
    return counts


def fast_copy(path: str) -> bytes | None:
    """The serialised rewrite of the ONNX model at ``path``, or None when no pattern was found
    (another model than PP-OCRv4's recogniser)."""
    import onnx

    model = onnx.load(path)
    if not fold_scalar_affines(model):
        return None
    onnx.checker.check_model(model)
    return model.SerializeToString()
