"""Panel labels: find glyphs near panel corners, read them with RapidOCR, assign them to panels.

Whole-image OCR misses most isolated single characters (and takes seconds per figure), so labels are
read in three steps:

1. **Candidates** (:func:`~panel2patch.parsers.labels.candidates.find_candidates`). In a zone at each
   corner of each panel box, reaching a little outside it, dark glyphs on a light surround and light
   glyphs on a dark surround are found as connected components of text-like size (thresholds near the
   zone's darkest and lightest tones). Components on one line, and the dot above an ``i``, are grouped;
   a group wider than a short label (a word, a long number) is not a candidate. A circle, frame or patch
   drawn around a group is decoration; the counter of a letter (the hole of an ``A``) is not a glyph.
   Every glyph found in any zone becomes a candidate of each panel whose zone holds it, with a prior
   that grows toward that panel's corner. Glyphs are split from their surround at two thresholds: a wide
   one that keeps thin strokes whole, and a tight one that frees letters printed on mid-tone texture.
2. **Recognition** (:meth:`LabelReader.recognise`). Candidates are cut out as dark glyphs on white
   (clutter blanked), scaled to the recogniser's line height, stretched 1.6x horizontally (CTC
   decoding otherwise merges repeated narrow letters such as ``iii``) and laid side by side on
   strips that RapidOCR's recognition model reads in one pass each; the CTC column of each decoded
   character tells which candidate it belongs to. The best-placed candidates of each panel are read
   first (:data:`FIRST_LOOK`); the others only when those do not spell a complete series. Unless the
   series is then complete, unsure glyphs of the panels without a sure label get a second look at
   another scale.
3. **Sequence prior** (:func:`~panel2patch.parsers.labels.sequence.apply_sequence_prior`). Panel labels
   of a figure share one style (letters ``a, b, c``/``A, B, C``, roman numerals ``i, ii, iii``, or
   letter-digit ``A1, A2, B1``), one corner and one case, and usually form one consecutive series in
   reading order. The series settles what OCR alone cannot: the case of letters whose shapes do not show
   it (c, o, s, v, w, x, z ...; also decided from glyph heights), confusable reads
   (``l``/``I``/``1``/``|``, ``O``/``0``, ``S``/``5``, ``B``/``8``, ``g``/``9``, ``Z``/``2``;
   ``ll``/``u`` for ``ii``, ``m`` for ``iii``), letters that cannot belong to the series (text inside a
   panel), duplicates, and letters of panels whose glyph could not be read at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from panel2patch.data import Box

from ..ocr import REC_HEIGHT, recognition_engine
from .candidates import Candidate, Glyph, find_candidates
from .reads import as_roman, is_label_text, normalise_read, series_rank
from .sequence import LabelReading, apply_sequence_prior, reading_rows

#: Height of a glyph on the recognition strip.
GLYPH_HEIGHT = 44
#: Horizontal stretch of glyphs on the strip, so that CTC keeps repeated narrow letters apart.
STRETCH = 1.6
#: White gap between two candidates on the strip, in pixels (three CTC columns of 8 pixels).
STRIP_GAP = 24
#: Candidates per panel read first; the rest only when these do not spell a complete series.
FIRST_LOOK = 2
#: Longest strip read in one pass; longer strips are split (the recogniser's cost per pixel grows with width).
MAX_STRIP = 1200


class LabelReader:
    """Reads panel labels with RapidOCR's recognition model; the engine is built on first use.

    ``min_confidence``: smallest OCR confidence for a read to count on its own (weaker reads are used
    only where the series needs them). ``threads``: onnxruntime intra-op threads (0: its default).
    ``per_panel``: candidates read per panel.
    """

    def __init__(self, min_confidence: float = 0.6, threads: int = 0, per_panel: int = 6) -> None:
        self.min_confidence = min_confidence
        self.threads = threads
        self.per_panel = per_panel
        self._engine: Any = None

    @property
    def engine(self) -> Any:
        """The shared RapidOCR engine (:func:`panel2patch.parsers.ocr.recognition_engine`)."""
        if self._engine is None:
            self._engine = recognition_engine(self.threads)
        return self._engine

    def recognise(self, crops: Sequence[np.ndarray], height: int = GLYPH_HEIGHT, stretch: float = STRETCH
                  ) -> list[tuple[str, float]]:
        """Text and confidence (``[0, 1]``) for each dark-on-white uint8 crop, read on shared strips.

        Each crop is scaled to ``height`` pixels (of the recogniser's :data:`REC_HEIGHT`) and
        stretched ``stretch`` times horizontally.
        """
        import cv2

        height = int(min(max(8, height), REC_HEIGHT))
        reads: list[tuple[str, float]] = []
        cells, spans, x = [], [], 0
        for crop in crops:
            h, w = crop.shape
            nw = max(4, int(round(w * height / max(1, h) * stretch)))
            glyph = cv2.resize(crop, (nw, height), interpolation=cv2.INTER_CUBIC if h < height else cv2.INTER_AREA)
            if cells and x + nw + STRIP_GAP > MAX_STRIP:
                reads += self._read_strip(cells, spans)
                cells, spans, x = [], [], 0
            top = (REC_HEIGHT - height) // 2
            cell = np.full((REC_HEIGHT, nw + STRIP_GAP), 255, np.uint8)
            cell[top:top + height, STRIP_GAP // 2:STRIP_GAP // 2 + nw] = glyph
            cells.append(cell)
            spans.append((x + STRIP_GAP // 2, x + STRIP_GAP // 2 + nw))
            x += nw + STRIP_GAP
        if cells:
            reads += self._read_strip(cells, spans)
        return reads

    def _read_strip(self, cells: list[np.ndarray], spans: list[tuple[int, int]]) -> list[tuple[str, float]]:
        import cv2

        strip = cv2.cvtColor(np.concatenate(cells, axis=1), cv2.COLOR_GRAY2BGR)
        # RapidOCR's recognition-only call (engine(img, use_det=False, use_cls=False, use_rec=True))
        # returns text without character positions; its recogniser returns each character's CTC column
        # when asked for word boxes, which is what maps characters back to candidates.
        (text, _, info), = self.engine.text_rec([strip], True)[0]
        total_cols, words, word_cols, confs = info[0], info[1], info[2], info[4]
        chars = [ch for word in words for ch in word]
        cols = [c for col in word_cols for c in col]
        width = strip.shape[1]
        per: list[list[tuple[str, float]]] = [[] for _ in spans]
        for k, (ch, col) in enumerate(zip(chars, cols)):
            if not ch.strip():
                continue
            cx = (col + 0.5) * width / max(1e-6, total_cols)
            best = min(range(len(spans)), key=lambda i: _span_distance(spans[i], cx))
            if _span_distance(spans[best], cx) <= STRIP_GAP / 2:
                per[best].append((ch, float(confs[k]) if k < len(confs) else 0.0))
        return [("".join(c for c, _ in p), min(q for _, q in p)) if p else ("", 0.0) for p in per]

    def read_panels(self, rgb: np.ndarray, boxes: Sequence[Box]) -> LabelReading:
        """Labels of the panel boxes (figure pixels), one entry per box."""
        candidates = find_candidates(rgb, boxes, per_panel=self.per_panel)
        reading = self._choose(candidates, boxes)
        glyphs = {id(c.glyph): c.glyph for c in candidates}.values()
        reading.seen = [(g.box, g.text, g.confidence) for g in glyphs if g.read]
        return reading

    def _choose(self, candidates: list[Candidate], boxes: Sequence[Box]) -> LabelReading:
        per_panel: list[list[Candidate]] = [[] for _ in boxes]
        for cand in candidates:
            per_panel[cand.panel].append(cand)
        rows = reading_rows(boxes)
        # the best-placed candidates of each panel first: when they already spell a complete series,
        # the others (tick labels, text inside the panel) need not be read
        first = [cands[:FIRST_LOOK] for cands in per_panel]
        self._read_glyphs([c.glyph for cands in first for c in cands])
        reading = apply_sequence_prior(first, self.min_confidence, rows)
        if _complete(reading):
            return reading
        self._read_glyphs([c.glyph for c in candidates])
        reading = apply_sequence_prior(per_panel, self.min_confidence, rows)
        if _complete(reading):
            return reading
        # a second look, smaller and less stretched, at the unsure glyphs of panels without a sure
        # label: the recogniser's errors on lone letters depend on scale, so the two looks rarely
        # fail together
        unsettled = [i for i, p in enumerate(reading.labels)
                     if p is None or next(c.glyph.confidence for c in per_panel[i] if id(c.glyph) == p.glyph) < 0.9]
        unsure = list({id(c.glyph): c.glyph for i in unsettled for c in per_panel[i]
                       if c.glyph.confidence < 0.9 and len(c.glyph.text) <= 3}.values())
        if not unsure:
            return reading
        for glyph, (text, conf) in zip(unsure, self.recognise([g.crop for g in unsure], height=32, stretch=1.2)):
            text = normalise_read(text)
            if is_label_text(text) and (not is_label_text(glyph.text) or conf > glyph.confidence):
                glyph.text, glyph.confidence = text, conf
        _count_numerals(unsure)
        return apply_sequence_prior(per_panel, self.min_confidence, rows)

    def _read_glyphs(self, glyphs: Sequence[Glyph]) -> None:
        """Read the glyphs not read yet (one glyph may be a candidate of several panels)."""
        todo = list({id(g): g for g in glyphs if not g.read}.values())
        for glyph, (text, conf) in zip(todo, self.recognise([g.crop for g in todo])):
            glyph.text, glyph.confidence, glyph.read = normalise_read(text), conf, True
            glyph.framed = glyph.framed or bool(re.search(r"[()\[\]{}]", text))
        _count_numerals(todo)


def _complete(reading: LabelReading) -> bool:
    """True when every panel has a label and together they are the first members of their series
    (``a`` to ``d`` on four panels; letter-digit labels: every row starts at 1 and counts up)."""
    labels = [p.text for p in reading.labels if p is not None]
    if not labels or len(labels) < len(reading.labels):
        return False
    if reading.style == "numbered":
        rows: dict[str, list[int]] = {}
        for text in labels:
            rows.setdefault(text[0], []).append(int(text[1:]))
        return all(sorted(v) == list(range(1, len(v) + 1)) for v in rows.values())
    return sorted(series_rank(t, reading.style) for t in labels) == list(range(len(labels)))


def _count_numerals(glyphs: Sequence[Glyph]) -> None:
    """Read glyphs whose shapes spell a roman numeral as that numeral: dotted stems counted one by one
    beat a reading that merged or split them. A sure read of something else (``B1`` or ``d``, shapes
    that only looked like stems), or of another ``v``/``x``, stands."""
    for glyph in glyphs:
        if glyph.numeral is None or glyph.text.lower() == glyph.numeral:
            continue
        read = as_roman(glyph.text) if glyph.text else None
        if glyph.text and read is None and glyph.confidence >= 0.5:
            continue
        if read is not None and read.replace("i", "") != glyph.numeral.replace("i", "") and glyph.confidence >= 0.8:
            continue
        glyph.text, glyph.confidence = glyph.numeral, max(glyph.confidence, 0.7)


def _span_distance(span: tuple[int, int], x: float) -> float:
    return 0.0 if span[0] <= x <= span[1] else min(abs(x - span[0]), abs(x - span[1]))
