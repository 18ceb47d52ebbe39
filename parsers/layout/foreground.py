"""Foreground of a figure: its background (gutter) colour, the pixels that differ from it, pooled onto a grid."""

from __future__ import annotations

import numpy as np


def background_colour(rgb: np.ndarray, tolerance: int = 16) -> np.ndarray:
    """The figure's background (gutter) colour of an ``H x W x 3`` uint8 array, as uint8 RGB.

    Rows and columns of one colour across the whole figure are gutters or margins: the most common
    colour among them wins. Figures without any (panels touching every edge and each other only
    through partial gutters) fall back to the most common colour of the one-pixel border.
    """
    lines = []
    for axis in (1, 0):
        spread = (rgb.max(axis=axis).astype(np.int16) - rgb.min(axis=axis)).max(axis=1)
        uniform = np.flatnonzero(spread <= tolerance)
        if uniform.size:
            lines.append(rgb[uniform, 0] if axis == 1 else rgb[0, uniform])
    if lines:
        colours = np.concatenate(lines)
    else:
        colours = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    # quantise so that JPEG noise does not split one background colour into many
    q = (colours.astype(np.uint32) // 8)
    packed = (q[:, 0] << 10) | (q[:, 1] << 5) | q[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    mode = values[np.argmax(counts)]
    return np.median(colours[packed == mode], axis=0).astype(np.uint8)


def foreground_mask(rgb: np.ndarray, background: np.ndarray, tolerance: int) -> np.ndarray:
    """Boolean ``H x W`` mask: some channel differs from ``background`` by more than ``tolerance``."""
    fg = np.zeros(rgb.shape[:2], dtype=bool)
    for c in range(3):
        channel = rgb[..., c]
        b = int(background[c])
        # uint8 arithmetic without widening: |x - b| > t  <=>  x > b + t  or  x < b - t
        if b + tolerance < 255:
            fg |= channel > b + tolerance
        if b - tolerance > 0:
            fg |= channel < b - tolerance
    return fg


def reduce_mask(mask: np.ndarray, scale: int) -> np.ndarray:
    """Any-pooling of ``mask`` over ``scale x scale`` blocks (edges padded with background)."""
    if scale <= 1:
        return mask
    h, w = mask.shape
    hp, wp = -(-h // scale) * scale, -(-w // scale) * scale
    padded = np.zeros((hp, wp), dtype=bool)
    padded[:h, :w] = mask
    return padded.reshape(hp // scale, scale, wp // scale, scale).any(axis=(1, 3))
