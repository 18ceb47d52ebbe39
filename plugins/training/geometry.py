"""Preprocessing geometry: figure pixels -> integer crop rectangle -> open_clip model-input pixels."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from panel2patch.corpus import CorpusError
from panel2patch.data import Box


def crop_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """The integer pixel rectangle cut for ``box``: outward-rounded, clipped to the image, at least 1 px."""
    x0 = min(max(int(math.floor(box[0])), 0), width - 1)
    y0 = min(max(int(math.floor(box[1])), 0), height - 1)
    x1 = max(min(int(math.ceil(box[2])), width), x0 + 1)
    y1 = max(min(int(math.ceil(box[3])), height), y0 + 1)
    return x0, y0, x1, y1


@dataclass(frozen=True)
class Geometry:
    """How preprocessing maps crop pixels to model-input pixels: ``x' = x * sx + ox``, ``y' = y * sy + oy``.

    ``width``/``height`` are the model input size; points mapped outside it were cropped away.
    """

    sx: float
    sy: float
    ox: float
    oy: float
    width: int
    height: int

    def map_box(self, box: Box) -> Box | None:
        """Map a box given in crop pixels; clipped to the input, None when nothing of it remains."""
        x0 = min(max(box[0] * self.sx + self.ox, 0.0), float(self.width))
        y0 = min(max(box[1] * self.sy + self.oy, 0.0), float(self.height))
        x1 = min(max(box[2] * self.sx + self.ox, 0.0), float(self.width))
        y1 = min(max(box[3] * self.sy + self.oy, 0.0), float(self.height))
        if x1 - x0 <= 0.0 or y1 - y0 <= 0.0:
            return None
        return (x0, y0, x1, y1)


def preprocess_geometry(width: int, height: int, cfg: Mapping[str, Any]) -> Geometry:
    """The geometry of open_clip's evaluation transform for a ``width x height`` crop.

    ``cfg`` is the model's ``visual.preprocess_cfg`` (``size``, ``resize_mode``); the formulas follow
    ``open_clip.transform.image_transform`` (``shortest``: resize the short side then center-crop;
    ``longest``: resize the long side then center-pad; ``squash``: resize both sides).
    """
    size = cfg.get("size", 224)
    th, tw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    mode = cfg.get("resize_mode", "shortest") or "shortest"
    if mode == "squash":
        return Geometry(tw / width, th / height, 0.0, 0.0, tw, th)
    if mode == "shortest" and th == tw:
        # torchvision Resize(int): short side -> size, long side truncated
        if width <= height:
            new_w, new_h = tw, int(tw * height / width)
        else:
            new_w, new_h = int(th * width / height), th
    elif mode in ("shortest", "longest"):
        # open_clip ResizeKeepRatio
        longest = 1.0 if mode == "longest" else 0.0
        rh, rw = height / th, width / tw
        ratio = max(rh, rw) * longest + min(rh, rw) * (1.0 - longest)
        new_h, new_w = round(height / ratio), round(width / ratio)
    else:
        raise CorpusError(f"unsupported preprocess resize_mode {mode!r}; expected shortest, longest or squash")
    sx, sy = new_w / width, new_h / height
    if mode == "longest":  # CenterCropOrPad pads smaller sides (left/top gets the floor half)
        ox = (tw - new_w) // 2 if tw > new_w else -int(round((new_w - tw) / 2.0))
        oy = (th - new_h) // 2 if th > new_h else -int(round((new_h - th) / 2.0))
    else:  # CenterCrop
        ox = -int(round((new_w - tw) / 2.0))
        oy = -int(round((new_h - th) / 2.0))
    return Geometry(sx, sy, float(ox), float(oy), tw, th)


def relative_box(box: Box, origin: tuple[int, int, int, int]) -> Box:
    """``box`` (figure pixels) in the frame of the crop rectangle ``origin``."""
    return (box[0] - origin[0], box[1] - origin[1], box[2] - origin[0], box[3] - origin[1])
