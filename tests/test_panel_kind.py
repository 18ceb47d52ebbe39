"""Photo vs chart from image statistics, on crops drawn here."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from panel2patch.parsers.panel_kind import MIN_CHART_BACKGROUND, MIN_CHART_MARKS, classify, features


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def micrograph(w: int = 300, h: int = 240, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(30, 220, size=(h // 20, w // 20, 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    return np.clip(smooth + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)


def smooth_gray(w: int = 300, h: int = 240) -> np.ndarray:
    """Low-contrast shading (a phase image): few distinct tones, no flat paper, no marks."""
    yy, xx = np.mgrid[0:h, 0:w]
    v = 110 + 25 * np.sin(xx / 37.0) * np.cos(yy / 29.0)
    return np.repeat(v[..., None], 3, axis=2).astype(np.uint8)


def axes(d: ImageDraw.ImageDraw, w: int, h: int, ink) -> None:
    f = font(13)
    d.line([(50, 15), (50, h - 40), (w - 10, h - 40)], fill=ink, width=2)
    for k in range(6):
        y = h - 40 - k * (h - 60) // 5
        d.text((44, y), str(5 * k), font=f, fill=ink, anchor="rm")
        x = 50 + k * (w - 70) // 5
        d.text((x, h - 34), str(k), font=f, fill=ink, anchor="mt")
    d.text((w // 2, h - 8), "Day", font=f, fill=ink, anchor="mm")


def line_chart(w: int = 300, h: int = 240, paper=(255, 255, 255), ink=(0, 0, 0)) -> np.ndarray:
    img = Image.new("RGB", (w, h), paper)
    d = ImageDraw.Draw(img)
    axes(d, w, h, ink)
    pts = [(50 + k * (w - 70) // 7, h - 60 - int(20 * k + 10 * np.sin(k))) for k in range(8)]
    d.line(pts, fill=(31, 119, 180), width=2)
    for x, y in pts:
        d.ellipse((x - 3, y - 3, x + 3, y + 3), fill=(31, 119, 180))
    return np.asarray(img)


def bar_chart(w: int = 300, h: int = 240) -> np.ndarray:
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    axes(d, w, h, (0, 0, 0))
    for k, (height, colour) in enumerate(((120, (31, 119, 180)), (80, (255, 127, 14)), (150, (44, 160, 44)))):
        x = 70 + k * 70
        d.rectangle((x, h - 40 - height, x + 45, h - 41), fill=colour)
    return np.asarray(img)


@pytest.mark.parametrize("make", [micrograph, smooth_gray, lambda: micrograph(seed=3)[:, :, ::-1].copy()])
def test_photos(make):
    result = classify(make())
    assert result.kind == "photo", result.features
    assert result.score >= 0.75  # clear examples stand well away from both thresholds


@pytest.mark.parametrize("make", [line_chart, bar_chart, lambda: line_chart(paper=(0, 0, 0), ink=(255, 255, 255))])
def test_charts(make):
    result = classify(make())
    assert result.kind == "chart", result.features
    assert result.score >= 0.75


def test_features_separate_paper_and_marks():
    chart = features(line_chart())
    photo = features(micrograph())
    assert chart.background >= MIN_CHART_BACKGROUND > photo.background
    assert chart.marks >= MIN_CHART_MARKS
    # thin lines are all edge; filled bars are mostly inside
    assert chart.stroke > 0.9 > 0.3 > features(bar_chart()).stroke


def test_a_blank_crop_is_not_a_chart_and_an_empty_one_is_unknown():
    assert classify(np.full((50, 60, 3), 255, np.uint8)).kind == "photo"  # paper but no marks
    assert classify(np.zeros((0, 10, 3), np.uint8)).kind == "unknown"
    assert classify(np.zeros((1, 1, 3), np.uint8)).kind == "photo"


def test_large_crops_are_reduced_before_counting():
    big = np.asarray(Image.fromarray(line_chart()).resize((1800, 1440), Image.Resampling.NEAREST))
    assert classify(big).kind == "chart"
