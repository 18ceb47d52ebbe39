"""``panel2patch parse IMAGE... [--parser NAME] [--markers NAME|none] [--out DIR] [--overlay DIR]``.

Runs a registered figure parser and marker detector on figure images, without a caption, and reports a
:class:`~panel2patch.data.Figure` per image (id = the file stem, empty caption, ``regions`` = the
parser's region proposals, if any). Without ``--out`` the figures are printed to stdout as JSON Lines,
one figure per line, in argument order; with ``--out DIR`` each is written to ``DIR/<stem>.json``.
``--overlay DIR`` writes ``DIR/<stem>.png``: the image with the parse drawn on it (:func:`draw_overlay`).

An image that cannot be read is reported on stderr and skipped; the exit code is then 1.
"""

from __future__ import annotations

import json
import math
import sys
from argparse import Namespace
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from panel2patch.data import Figure, FigureParse, Marker
from panel2patch.errors import ImageError, Panel2PatchError

#: Overlay colours: one per panel (cycled), and one each for markers and regions.
PANEL_COLORS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
                (240, 50, 230), (210, 245, 60))
MARKER_COLOR = (255, 225, 25)
REGION_COLOR = (0, 255, 255)


def parse_image(image: Image.Image, figure_id: str, parser: Any, detector: Any | None, source: str = "",
                components: dict[str, Any] | None = None) -> Figure:
    """Parse one RGB image into a caption-less :class:`Figure` (boxes in the image's pixels).

    Markers are the parser's own followed by the detector's; marker ids are renumbered ``m0``, ``m1``
    ... only when the two lists would otherwise share an id.
    """
    parsed: FigureParse = parser.parse(image, None)
    if not isinstance(parsed, FigureParse):
        raise Panel2PatchError(
            f"{figure_id}: figure parser {type(parser).__name__} returned {type(parsed).__name__}, "
            "not a FigureParse"
        )
    markers: list[Marker] = list(parsed.markers)
    if detector is not None:
        markers += list(detector.detect(image, parsed.panels))
    if len({m.id for m in markers}) != len(markers):
        for i, m in enumerate(markers):
            m.id = f"m{i}"
    return Figure(
        id=figure_id,
        width=image.width,
        height=image.height,
        caption="",
        source=source,
        panels=list(parsed.panels),
        markers=markers,
        regions=list(parsed.proposals),
        components=dict(components or {}),
    )


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _tag(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, color: tuple[int, int, int], font) -> None:
    """Text on a filled patch of ``color`` so that it reads on any background."""
    l, t, r, b = draw.textbbox(xy, text, font=font, anchor="lt")
    draw.rectangle((l - 2, t - 2, r + 2, b + 2), fill=color)
    ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    draw.text(xy, text, fill=ink, font=font, anchor="lt")


def draw_overlay(image: Image.Image, figure: Figure) -> Image.Image:
    """A copy of ``image`` with ``figure``'s parse drawn on it.

    Panels: box outline in a per-panel colour with a tag "<id> <label> <kind>" at its top-left corner and
    the label box dotted in the same colour. Markers: box outline, kind tag, a dot on the tip and a line
    showing the pointing direction. Regions: thin outlines.
    """
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    scale = max(out.size) / 800.0
    width = max(1, round(2 * scale))
    font = _font(max(10, round(12 * scale)))
    for region in figure.regions:
        draw.rectangle(_px(region.box), outline=REGION_COLOR, width=max(1, width // 2))
    for i, panel in enumerate(figure.panels):
        color = PANEL_COLORS[i % len(PANEL_COLORS)]
        draw.rectangle(_px(panel.box), outline=color, width=width)
        if panel.label_box is not None:
            _dotted(draw, _px(panel.label_box), color)
        tag = " ".join(t for t in (panel.id, panel.label or "-", panel.kind) if t)
        _tag(draw, (panel.box[0] + width + 2, panel.box[1] + width + 2), tag, color, font)
    for marker in figure.markers:
        draw.rectangle(_px(marker.box), outline=MARKER_COLOR, width=width)
        _tag(draw, (marker.box[0], marker.box[3] + 2), marker.kind + (f" {marker.text}" if marker.text else ""),
             MARKER_COLOR, font)
        start = marker.tip or ((marker.box[0] + marker.box[2]) / 2, (marker.box[1] + marker.box[3]) / 2)
        if marker.direction is not None:
            length = max(12.0, 0.6 * math.hypot(marker.box[2] - marker.box[0], marker.box[3] - marker.box[1]))
            rad = math.radians(marker.direction)
            # y grows downwards in the image while direction counts with y up.
            end = (start[0] + length * math.cos(rad), start[1] - length * math.sin(rad))
            draw.line((start, end), fill=MARKER_COLOR, width=width)
        if marker.tip is not None:
            r = 2 + width
            draw.ellipse((start[0] - r, start[1] - r, start[0] + r, start[1] + r), fill=(255, 0, 0),
                         outline=(0, 0, 0))
    return out


def _px(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A box with exclusive far edges as the inclusive pixel rectangle PIL draws."""
    return (box[0], box[1], max(box[0], box[2] - 1), max(box[1], box[3] - 1))


def _dotted(draw: ImageDraw.ImageDraw, rect: tuple[float, float, float, float], color: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = (int(round(v)) for v in rect)
    for x in range(x0, x1 + 1, 3):
        draw.point([(x, y0), (x, y1)], fill=color)
    for y in range(y0, y1 + 1, 3):
        draw.point([(x0, y), (x1, y)], fill=color)


def main(args: Namespace) -> int:
    """``panel2patch parse``; returns 1 when any image could not be read or parsed, else 0."""
    from panel2patch import manager
    from panel2patch.images import open_image

    paths = [Path(p) for p in args.images]
    if args.out or args.overlay:
        stems = Counter(p.stem for p in paths)
        clashes = sorted(s for s, n in stems.items() if n > 1)
        if clashes:
            raise Panel2PatchError(
                f"several images share the file stem {', '.join(map(repr, clashes))}; output files are named by "
                "stem, so parse them in separate runs or rename them"
            )
    parser = manager.build("figure_parsers", args.parser, {})
    detector = None if args.markers == "none" else manager.build("marker_detectors", args.markers, {})
    components = {"figure_parser": {"name": args.parser, "args": {}}}
    if detector is not None:
        components["marker_detector"] = {"name": args.markers, "args": {}}
    out_dir = Path(args.out) if args.out else None
    overlay_dir = Path(args.overlay) if args.overlay else None
    for folder in (out_dir, overlay_dir):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    failed = 0
    for path in paths:
        try:
            image = open_image(path)
        except (ImageError, OSError) as exc:
            failed += 1
            reason = exc.detail if isinstance(exc, ImageError) else exc.strerror or str(exc)
            print(f"panel2patch parse: {path}: cannot read image: {reason}", file=sys.stderr)
            continue
        try:
            figure = parse_image(image, path.stem, parser, detector, source=str(path), components=components)
        except Panel2PatchError as exc:
            failed += 1
            print(f"panel2patch parse: {path}: {exc}", file=sys.stderr)
            continue
        record = figure.to_json()
        if out_dir is not None:
            (out_dir / f"{figure.id}.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n",
                                                      encoding="utf-8")
        else:
            print(json.dumps(record, ensure_ascii=False), flush=True)
        if overlay_dir is not None:
            draw_overlay(image, figure).save(overlay_dir / f"{figure.id}.png")
    if failed:
        print(f"panel2patch parse: {failed} of {len(paths)} images failed", file=sys.stderr)
    return 1 if failed else 0
