"""Bar, line and scatter chart panels drawn with PIL."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .drawing import load_font
from .plans import PanelPlan, pick


def nice_step(span: float, ticks: int) -> float:
    raw = span / max(ticks, 1)
    base = 10 ** math.floor(math.log10(raw))
    return next(m * base for m in (1, 2, 2.5, 5, 10) if m * base >= raw)


def tick_text(v: float) -> str:
    return f"{round(v, 6):g}"


def render_chart(plan: PanelPlan, rng: np.random.Generator, dark: bool, reserve: tuple[int, int]) -> Image.Image:
    """A bar, line or scatter chart with axes, ticks, tick labels and axis titles, filling the content."""
    w, h = plan.content.w, plan.content.h
    bg, fg = ((0, 0, 0), (255, 255, 255)) if dark else ((255, 255, 255), (0, 0, 0))
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    fs = int(np.clip(min(w, h) / 17, 9, 16))
    font = load_font(fs)
    palette = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189))
    left, right = 3 * fs + fs + 6, 2 * fs  # room for half of the last x tick label
    top, bottom = max(fs // 2, reserve[0]) + 4, 2 * fs + 8 + fs + reserve[1]
    px0, py0, px1, py1 = left, top, w - right, h - bottom
    if px1 - px0 < 30 or py1 - py0 < 30:  # too small for axes: a bare sparkline-like plot
        px0, py0, px1, py1 = 4, 4 + reserve[0], w - 4, h - 4 - reserve[1]
    kind = plan.chart
    if kind == "bar":
        k = int(rng.integers(2, 6))
        groups = ("Ctrl", "WT", "KO", "Veh", "Drug", "Sham", "Day 1", "Day 7")
        names = [groups[i] for i in rng.choice(len(groups), k, replace=False)]
        values = rng.uniform(0.2, 1.0, size=k) * pick(rng, (1.0, 10.0, 50.0, 100.0))
        errors = values * rng.uniform(0.05, 0.2, size=k)
        ytop = float((values + errors).max())
    elif kind == "line":
        npts = int(rng.integers(5, 11))
        xs = np.arange(npts, dtype=float) * pick(rng, (1, 2, 6, 12))
        series = [np.cumsum(rng.uniform(0.0, 1.0, size=npts)) * pick(rng, (1.0, 5.0, 20.0))
                  for _ in range(int(rng.integers(1, 4)))]
        ytop = float(max(s.max() for s in series))
    else:
        npts = int(rng.integers(20, 61))
        xs = rng.uniform(0, 1, size=npts) * pick(rng, (1.0, 10.0, 100.0))
        ys = xs * rng.uniform(0.3, 1.5) + rng.normal(0, 0.15, size=npts) * xs.max()
        ys = ys - min(0.0, ys.min())
        ytop = float(ys.max())
    ystep = nice_step(max(ytop, 1e-6), 4)
    ymax = ystep * math.ceil(max(ytop, 1e-6) / ystep)

    def ypix(v: float) -> float:
        return py1 - (py1 - py0) * v / ymax

    d.line((px0, py0, px0, py1), fill=fg, width=1)
    d.line((px0, py1, px1, py1), fill=fg, width=1)
    v = 0.0
    while v <= ymax + 1e-9:
        y = ypix(v)
        d.line((px0 - 4, y, px0, y), fill=fg)
        d.text((px0 - 6, y), tick_text(v), fill=fg, font=font, anchor="rm")
        v += ystep
    if kind == "bar":
        slot = (px1 - px0) / k
        for i in range(k):
            cx = px0 + slot * (i + 0.5)
            bw = slot * 0.6
            d.rectangle((cx - bw / 2, ypix(values[i]), cx + bw / 2, py1), fill=palette[i % len(palette)])
            top_e, bot_e = ypix(values[i] + errors[i]), ypix(values[i] - errors[i])
            d.line((cx, top_e, cx, bot_e), fill=fg)
            d.line((cx - bw / 6, top_e, cx + bw / 6, top_e), fill=fg)
            d.text((cx, py1 + 4), names[i], fill=fg, font=font, anchor="mt")
        xtitle = "Group"
    else:
        xmax_raw = float(xs.max()) if xs.max() > 0 else 1.0
        xstep = nice_step(xmax_raw, 4)
        xmax = xstep * math.ceil(xmax_raw / xstep)

        def xpix(v: float) -> float:
            return px0 + (px1 - px0) * v / xmax

        v = 0.0
        while v <= xmax + 1e-9:
            x = xpix(v)
            d.line((x, py1, x, py1 + 4), fill=fg)
            d.text((x, py1 + 5), tick_text(v), fill=fg, font=font, anchor="mt")
            v += xstep
        r = max(2, fs // 5)
        if kind == "line":
            for i, s in enumerate(series):
                pts = [(xpix(a), ypix(b)) for a, b in zip(xs, s)]
                d.line(pts, fill=palette[i], width=2)
                for x, y in pts:
                    d.ellipse((x - r, y - r, x + r, y + r), fill=palette[i])
            xtitle = pick(rng, ("Time (h)", "Day", "Week"))
        else:
            for a, b in zip(xs, ys):
                x, y = xpix(a), ypix(b)
                d.ellipse((x - r, y - r, x + r, y + r), outline=palette[0], width=1)
            xtitle = pick(rng, ("Area (px)", "Intensity (a.u.)", "Diameter (um)"))
    d.text(((px0 + px1) / 2, h - 3 - reserve[1]), xtitle, fill=fg, font=font, anchor="md")
    ytitle = pick(rng, ("Count per field", "Relative intensity", "Vessel density (%)", "Area (mm2)"))
    tw = int(d.textlength(ytitle, font=font)) + 2
    tmp = Image.new("L", (tw, fs + 4), 0)
    ImageDraw.Draw(tmp).text((0, 0), ytitle, fill=255, font=font)
    tmp = tmp.rotate(90, expand=True)
    if tmp.height <= h:
        img.paste(fg, (1, int((py0 + py1 - tmp.height) / 2)), tmp)
    return img
