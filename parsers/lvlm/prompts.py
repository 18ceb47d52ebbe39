"""Prompts and JSON schemas of the LVLM components.

Every schema has an object at its root (OpenAI-style strict ``json_schema`` needs one; the list sits under one key) and
uses only keywords xgrammar accepts (no ``format``, ``pattern``, ``uniqueItems``). Boxes follow Qwen2.5-VL's grounding
convention, ``"bbox_2d": [x1, y1, x2, y2]`` in pixels of the image as sent, and every prompt shows a JSON example
(without one the model drops keys). The figure's own printed marks are the Set-of-Marks cues: panel letters name
panels, arrows and boxes name regions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

#: Panel kinds the LVLM chooses from; stored as :attr:`panel2patch.data.Panel.kind` ("other" as "unknown").
PANEL_KINDS = ("photo", "chart", "diagram", "other")
#: Marker kinds the LVLM chooses from: pointers, and the typed non-pointers that give no region.
MARKER_KINDS = ("arrow", "arrowhead", "asterisk", "box", "circle", "inset", "band_marker", "connector")

_BOX = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
_POINT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}


def _listing(key: str, item: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    entry = {"type": "object", "properties": item, "required": list(required), "additionalProperties": False}
    return {"type": "object", "properties": {key: {"type": "array", "items": entry}}, "required": [key],
            "additionalProperties": False}


PANEL_SCHEMA = _listing("panels", {"bbox_2d": _BOX, "label": {"type": ["string", "null"]},
                                   "kind": {"type": "string", "enum": list(PANEL_KINDS)}}, ("bbox_2d", "label", "kind"))
MARKER_SCHEMA = _listing("markers", {"bbox_2d": _BOX, "kind": {"type": "string", "enum": list(MARKER_KINDS)},
                                     "tip": {"anyOf": [_POINT, {"type": "null"}]}}, ("bbox_2d", "kind", "tip"))
SPLIT_SCHEMA = _listing("units", {"unit": {"type": "integer"}, "labels": {"type": "array", "items": {"type": "string"}}},
                        ("unit", "labels"))
GROUNDING_SCHEMA = _listing("regions", {"bbox_2d": _BOX, "phrase": {"type": "string"}}, ("bbox_2d", "phrase"))
PANEL_DESCRIPTION_SCHEMA = {"type": "object", "properties": {
    "description": {"type": "string"},
    "regions": {"type": "array", "items": {"type": "object", "properties": {
        "region": {"type": "integer"}, "description": {"type": "string"}}, "required": ["region", "description"],
        "additionalProperties": False}}}, "required": ["description", "regions"], "additionalProperties": False}
DESCRIPTION_SCHEMA = {"type": "object", "properties": {"description": {"type": "string"}}, "required": ["description"],
                      "additionalProperties": False}


def panels_prompt(caption_labels: Sequence[str]) -> str:
    known = (f" The caption names the panels {', '.join(caption_labels)}; use exactly these identifiers."
             if caption_labels else "")
    example = json.dumps({"panels": [{"bbox_2d": [12, 10, 410, 388], "label": "A", "kind": "photo"},
                                     {"bbox_2d": [430, 10, 820, 388], "label": "B", "kind": "chart"}]})
    return ("This is a multi-panel figure from a scientific paper. Box every panel: a visually coherent rectangle "
            "such as a micrograph, a scan, a blot, a chart or a diagram, including its axes but not the surrounding "
            "white space. Read the letter or number printed next to each panel (A, b, B1, ii) as its identifier; "
            "several sub-images under one printed letter are one panel." + known + " Use null as the label of a "
            "panel without a printed identifier. kind is one of " + ", ".join(PANEL_KINDS) + ". Boxes are "
            "[x1, y1, x2, y2] in pixels of this image. Answer with JSON only, like " + example)


def markers_prompt() -> str:
    example = json.dumps({"markers": [{"bbox_2d": [40, 52, 88, 90], "kind": "arrow", "tip": [42, 88]},
                                      {"bbox_2d": [120, 30, 200, 110], "kind": "box", "tip": None}]})
    return ("This is one panel of a scientific figure. Box every mark drawn on it to point at something: arrows "
            "and arrowheads (tip: the [x, y] point they point at), asterisks and other symbols, boxes and dashed "
            "rectangles, circles and ellipses around structures, and insets. Type triangles beside the bands of a "
            "blot as band_marker and arrows linking the boxes of a diagram as connector. Axis arrows, legend "
            "symbols and chart glyphs are not marks. Boxes are [x1, y1, x2, y2] in pixels of this image; tip is null "
            "for marks that are not arrows. Answer with JSON only, like " + example + ' or {"markers": []}')


def split_prompt(units: Sequence[str], labels: Sequence[str]) -> str:
    numbered = "\n".join(f"{i}: {u}" for i, u in enumerate(units))
    example = json.dumps({"units": [{"unit": 0, "labels": []}, {"unit": 1, "labels": ["A"]},
                                    {"unit": 2, "labels": ["B", "C"]}]})
    return ("Below is a scientific figure caption cut into numbered units, and the panel labels printed in the "
            f"figure: {', '.join(labels)}. For every unit, list the labels of the panels it describes. Give [] for a "
            "unit that describes no panel in particular: the figure title, notes on statistics, scale bars or "
            "replicates that hold for every panel, and 'Source data' or 'See also' notes. Use only the labels "
            "given. Answer with JSON only, like " + example + "\n\nUnits:\n" + numbered)


def grounding_prompt(label: str | None, text: str) -> str:
    example = json.dumps({"regions": [{"bbox_2d": [60, 44, 130, 120], "phrase": "the nucleus"}]})
    name = f"panel {label}" if label else "a panel"
    return (f"This is {name} of a scientific figure. Its caption says: \"{text}\" Box every area of the image that "
            "the caption points at with a phrase, such as the structure an arrow, asterisk or box marks or the "
            "area an inset enlarges; give the phrase that names it. Boxes are [x1, y1, x2, y2] in pixels of this "
            'image. Answer with JSON only, like ' + example + ' or {"regions": []}')


def description_prompt(what: str, text: str) -> str:
    context = f' The caption says: "{text}"' if text else ""
    return (f"This is {what} of a scientific figure.{context} Describe what the image shows in one short sentence "
            "of at most 30 words, in plain scientific language, without repeating the caption. Answer with JSON "
            'only, like {"description": "Confocal image of a kidney tubule with nuclei stained blue."}')


def panel_description_prompt(label: str | None, text: str, regions: Sequence[tuple[int, list[int], str]]) -> str:
    """The panel and its numbered region boxes ``(number, [x1, y1, x2, y2] in this image's pixels, caption text)``."""
    name = f"panel {label}" if label else "a panel"
    context = f' The caption says: "{text}"' if text else ""
    marks = "".join(f"\n{n}: {box}" + (f' ("{said}")' if said else "") for n, box, said in regions)
    listed = (" The numbered boxes below, [x1, y1, x2, y2] in pixels of this image, mark regions of it; describe "
              "each in one short sentence too, what it shows." + marks) if regions else ""
    example = json.dumps({"description": "Confocal image of a kidney tubule with nuclei stained blue.",
                          "regions": [{"region": 0, "description": "A dividing cell at the tubule wall."}]
                          if regions else []})
    return (f"This is {name} of a scientific figure.{context} Describe what the image shows in one short sentence "
            "of at most 30 words, in plain scientific language, without repeating the caption." + listed +
            " Answer with JSON only, like " + example)
