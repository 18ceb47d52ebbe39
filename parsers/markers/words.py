"""Blobs that are text: letters inside a word, and symbols with letters beside them."""

from __future__ import annotations

import numpy as np


def in_words(stats: np.ndarray, candidates: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Which ``candidates`` (component indices) are letters inside a word or number.

    A letter inside a word has flat glyphs of about its height close by on both sides along the
    line (rows, or columns for rotated text), not all of its own size; a marker with its label has
    text on one side at most, and a row of identical marks (``***``) is not a word.
    """
    if len(candidates) > 64:  # bounded memory: the pairwise tests below are candidates x glyphs
        return np.concatenate([in_words(stats, candidates[k : k + 64], flat) for k in range(0, len(candidates), 64)])
    out = np.zeros(len(candidates), dtype=bool)
    glyphs = np.flatnonzero(flat)
    glyphs = glyphs[glyphs > 0]
    if len(candidates) == 0 or len(glyphs) < 2:
        return out
    # A neighbour counts only when at least half a candidate's size across the line: smaller specks
    # never do, whichever way the line runs.
    smallest = 0.5 * float(stats[candidates][:, 2:4].min())
    glyphs = glyphs[stats[glyphs][:, 2:4].max(axis=1) >= smallest]
    if len(glyphs) < 2:
        return out
    # Neighbours lie within 8 px plus a fifth of a candidate's size of it (see below): compare with
    # those glyphs only.
    box = stats[candidates][:, :4].astype(np.int64)
    reach_max = 8.0 + 0.2 * float(box[:, 2:4].max())
    x0, y0 = box[:, 0].min() - reach_max, box[:, 1].min() - reach_max
    x1, y1 = (box[:, 0] + box[:, 2]).max() + reach_max, (box[:, 1] + box[:, 3]).max() + reach_max
    gs = stats[glyphs]
    glyphs = glyphs[(gs[:, 0] <= x1) & (gs[:, 0] + gs[:, 2] >= x0) & (gs[:, 1] <= y1) & (gs[:, 1] + gs[:, 3] >= y0)]
    c, g = stats[candidates][:, None, :4].astype(np.int64), stats[glyphs][None, :, :4].astype(np.int64)
    other = candidates[:, None] != glyphs[None, :]
    for along, across in ((0, 1), (1, 0)):  # words along rows, then along columns
        c0, c_len, c_a0, c_size = c[..., along], c[..., along + 2], c[..., across], c[..., across + 2]
        g0, g_len, g_a0, g_size = g[..., along], g[..., along + 2], g[..., across], g[..., across + 2]
        similar = other & (g_size >= 0.5 * c_size) & (g_size <= 2 * c_size)
        overlap = np.minimum(c_a0 + c_size, g_a0 + g_size) - np.maximum(c_a0, g_a0)
        near = similar & (overlap >= 0.5 * np.minimum(c_size, g_size))
        after = g0 - (c0 + c_len)
        before = c0 - (g0 + g_len)
        reach = np.minimum(0.5 * c_size, 8.0)  # letter spacing, not the gap between two shapes
        right = near & (after >= -0.2 * c_size) & (after <= reach)
        left = near & (before >= -0.2 * c_size) & (before <= reach)
        other_shape = (np.abs(g_size - c_size) > 0.15 * c_size) | (np.abs(g_len - c_len) > 0.15 * c_len)
        out |= right.any(axis=1) & left.any(axis=1) & ((right | left) & other_shape).any(axis=1)
    return out


def isolated(stats: np.ndarray, i: int) -> bool:
    """No glyph-sized neighbour on the same text line within 0.6 of the component's height."""
    x, y, w, h = (int(v) for v in stats[i, :4])
    others = np.delete(np.arange(len(stats)), [0, i])
    if len(others) == 0:
        return True
    o = stats[others]
    tall = o[:, 3] >= 0.4 * h
    overlap = np.minimum(o[:, 1] + o[:, 3], y + h) - np.maximum(o[:, 1], y) >= 0.3 * h
    gap = np.maximum(o[:, 0] - (x + w), x - (o[:, 0] + o[:, 2]))
    return not np.any(tall & overlap & (gap <= 0.6 * h))
