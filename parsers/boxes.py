"""Box geometry shared by components: area, centre, clipping, dilation, union, containment, IoU, and
the one non-maximum suppression (torchvision's). Boxes are :data:`panel2patch.data.Box`."""

from __future__ import annotations

from panel2patch.data import Box, Point


def box_area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def box_center(box: Box) -> Point:
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


def box_clip(box: Box, to: Box) -> Box:
    """``box`` cut to the inside of ``to``."""
    return (max(box[0], to[0]), max(box[1], to[1]), min(box[2], to[2]), min(box[3], to[3]))


def box_dilate(box: Box, factor: float) -> Box:
    """``box`` scaled by ``factor`` about its centre."""
    cx, cy = box_center(box)
    hw, hh = (box[2] - box[0]) * factor / 2.0, (box[3] - box[1]) * factor / 2.0
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def box_union(a: Box, b: Box) -> Box:
    """The smallest box holding ``a`` and ``b``."""
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def box_contains(outer: Box, inner: Box, pad: float = 0.0) -> bool:
    """Whether ``inner`` lies within ``outer`` grown by ``pad`` on every side."""
    return (inner[0] >= outer[0] - pad and inner[1] >= outer[1] - pad and inner[2] <= outer[2] + pad
            and inner[3] <= outer[3] + pad)


def box_inside_share(a: Box, b: Box) -> float:
    """Share of ``a``'s area inside ``b`` (0 for an empty ``a``)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = box_area(a)
    return ix * iy / area if area > 0 else 0.0


def box_iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def box_nms(boxes: list[Box], scores: list[float], iou: float, groups: list[int] | None = None) -> list[int]:
    """Indices of the boxes kept by non-maximum suppression at ``iou``, best score first.

    ``groups`` (one int per box) suppresses only within a group. A box or score that is not finite is never kept.
    Uses :func:`torchvision.ops.nms` / :func:`~torchvision.ops.batched_nms` in float64.
    """
    import math

    finite = [i for i, (b, sc) in enumerate(zip(boxes, scores)) if all(map(math.isfinite, (*b, sc)))]
    if not finite:
        return []
    import torch
    from torchvision.ops import batched_nms, nms

    b = torch.tensor([list(boxes[i]) for i in finite], dtype=torch.float64)
    b -= b.min()  # batched_nms separates groups by offsets that assume coordinates >= 0
    s = torch.tensor([float(scores[i]) for i in finite], dtype=torch.float64)
    if groups is None:
        keep = nms(b, s, iou)
    else:
        keep = batched_nms(b, s, torch.tensor([groups[i] for i in finite], dtype=torch.int64), iou)
    return [finite[int(k)] for k in keep.tolist()]
