"""The default CPU figure parser ``cpu_layout``: panel boxes from gutters, panel labels, panel kinds.

Pipeline (all boxes returned in original-image pixels, ``(x0, y0, x1, y1)``, origin top-left):

1. **Foreground.** The background (gutter) colour is the most common colour of the rows and columns
   that are of one colour across the whole figure (white, black or any other), else of the image
   border; a pixel is foreground when a channel differs from it by more than
   ``background_tolerance``. Figures above ``analysis_pixels`` are analysed on a grid of
   ``scale x scale`` cells, a cell being foreground when any of its pixels is, so a gutter
   ``2 * scale - 1`` pixels wide survives.
2. **Recursive XY-cut.** A block is trimmed to its ink and split at its widest gutter, recursively,
   into a binary tree. A gutter is a run of at least ``min_gutter`` background lines, a thinner run
   between two densely inked lines (hairline gutters of edge-to-edge mosaics) or, where there is
   none, a hairline of another uniform colour standing out from both sides. Leaves large enough
   (``min_panel_frac`` of the figure area, ``min_panel_side_frac`` of its shorter side) are panel
   candidates; a large leaf holding several disjoint large connected components (layouts without
   straight gutters) is split into them. Everything else is a fragment: tick labels, axis titles,
   legends, panel letters.
3. **Merging.** Bottom-up, each fragment joins the nearest candidate of the lowest tree node that has
   one, so a chart's axis labels and legend stay with their chart and do not cross into a
   neighbouring panel. Fragments larger than a glyph prefer a chart to a photo (text outside a photo
   belongs to a neighbouring chart far more often than to the photo) and may wait for a higher node
   to find it. A node made of fragments only becomes a panel when it is large and holds some
   non-text ink, and is absorbed by a larger neighbouring panel when it is much smaller (a row of
   rotated tick labels). Running text along the figure's top or bottom edge spanning most of its
   width (caption or body text carried over from a PDF page) is dropped.
4. **Labels** (:mod:`panel2patch.parsers.labels`): glyphs near panel corners are read with RapidOCR
   and assigned to the panels they head; a letter joins its panel's box and leaves any other. The
   printed labels are the skeleton: one panel per label (:class:`~.merging.Series`). A letter that
   breaks the reading order of the others on its own is text inside a panel and is dropped. When at
   least two panels carry labels, an unlabelled candidate is a sub-panel, an inset strip or a legend
   of a labelled one and is merged into the nearest labelled candidate of its tree node, unless it
   shows an unreadable glyph at the label corner, or lines up with the labelled panels as a grid cell
   of comparable size where the series skips a member (its label was missed, it is a panel). Where
   exactly as many such panels lie between two labels as members are missing, they take them.
5. **Kind** (:mod:`panel2patch.parsers.panel_kind`): ``photo`` or ``chart`` from image statistics.

``Panel.score`` is a heuristic confidence in ``[0, 1]``: the share of the panel box covered by its
gutter-free core, averaged with the label's score when a label was read.
"""

from __future__ import annotations

import functools
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from panel2patch.components import FigureParser
from panel2patch.data import FigureParse, Panel
from panel2patch.images import to_rgb
from panel2patch.parsers.boxes import box_contains, box_inside_share, box_iou, box_union

from ..labels.scan import SURE
from .foreground import background_colour, foreground_mask, reduce_mask
from .merging import Series, merge_unlabelled
from .partition import ONE_LINE, partition
from .segmenter import Block, IBox, Segmenter, area

if TYPE_CHECKING:
    from PIL import Image

    from ..labels.reader import LabelReader
    from ..labels.sequence import LabelReading


class LayoutParser(FigureParser):
    """Panel layout by recursive XY-cut and connected components, panel letters by OCR, panel kinds.

    Arguments (recipe ``args``):

    ``min_panel_frac``
        Smallest panel area as a fraction of the figure area (default 0.01).
    ``min_panel_side_frac``
        Smallest panel side as a fraction of the figure's shorter side (default 0.06).
    ``min_gutter``
        Narrowest gutter in original pixels (default 2). Thinner background gaps do not split panels.
    ``background_tolerance``
        Largest per-channel difference from the background colour still counted as background
        (0-255, default 16; raise it for noisy JPEGs).
    ``analysis_pixels``
        Figures larger than this many pixels are analysed on a coarser grid (default 2,000,000).
    ``text_height_frac``
        Tallest text line, as a fraction of the figure's shorter side (default 0.04); a fragment lower
        than this is treated as text.
    ``ocr``
        Read panel letters with RapidOCR (default True). When False, ``Panel.label`` stays None and no
        OCR model is loaded.
    ``min_label_confidence``
        Smallest OCR confidence (0-1, default 0.6) for a letter to count without support from the
        rest of the series (:func:`panel2patch.parsers.labels.sequence.apply_sequence_prior`).
    ``ocr_threads``
        onnxruntime intra-op threads for the recogniser (default 0: ``OMP_NUM_THREADS`` if set, else onnxruntime's
        choice).
    ``kinds``
        Tag each panel ``photo`` or ``chart`` (default True); otherwise ``kind`` is ``unknown``.
    """

    def __init__(
        self,
        min_panel_frac: float = 0.01,
        min_panel_side_frac: float = 0.06,
        min_gutter: int = 2,
        background_tolerance: int = 16,
        analysis_pixels: int = 2_000_000,
        text_height_frac: float = 0.04,
        ocr: bool = True,
        min_label_confidence: float = 0.6,
        ocr_threads: int = 0,
        kinds: bool = True,
    ) -> None:
        if not 0.0 < min_panel_frac < 1.0:
            raise ValueError(f"cpu_layout: min_panel_frac must be in (0, 1), got {min_panel_frac}")
        if not 0.0 < min_panel_side_frac < 1.0:
            raise ValueError(f"cpu_layout: min_panel_side_frac must be in (0, 1), got {min_panel_side_frac}")
        if min_gutter < 1:
            raise ValueError(f"cpu_layout: min_gutter must be at least 1 pixel, got {min_gutter}")
        if not 0 <= background_tolerance < 255:
            raise ValueError(f"cpu_layout: background_tolerance must be in [0, 255), got {background_tolerance}")
        self.min_panel_frac = min_panel_frac
        self.min_panel_side_frac = min_panel_side_frac
        self.min_gutter = min_gutter
        self.background_tolerance = background_tolerance
        self.analysis_pixels = max(10_000, analysis_pixels)
        self.text_height_frac = text_height_frac
        if not 0.0 <= min_label_confidence <= 1.0:
            raise ValueError(f"cpu_layout: min_label_confidence must be in [0, 1], got {min_label_confidence}")
        if ocr_threads < 0:
            raise ValueError(f"cpu_layout: ocr_threads must be >= 0, got {ocr_threads}")
        self.ocr = ocr
        self.min_label_confidence = min_label_confidence
        self.ocr_threads = ocr_threads
        self.kinds = kinds
        self._reader: LabelReader | None = None
        #: Seconds spent per stage (``layout``, ``labels``, ``kinds``) by the last :meth:`parse` call.
        self.last_timings: dict[str, float] = {}

    @property
    def reader(self) -> LabelReader:
        """The label reader; its OCR engine is created on first use and kept for this parser."""
        if self._reader is None:
            from ..labels.reader import LabelReader

            self._reader = LabelReader(min_confidence=self.min_label_confidence, threads=self.ocr_threads)
        return self._reader

    def parse(self, image: Image.Image, caption: str | None = None) -> FigureParse:
        """Panels of an image (any PIL mode is converted to RGB).

        Panels come in reading order (rows top to bottom, left to right), ids ``p0``, ``p1`` ...;
        boxes, label boxes in original-image pixels. The letters the caption names, when given, bound
        the letters looked for across the figure. An image with no separable panels (blank, tiny
        or a single picture) gives one panel covering its ink, or the whole image.
        """
        timings = self.last_timings = {}
        start = time.perf_counter()
        rgb = np.asarray(to_rgb(image))
        height, width = rgb.shape[:2]
        whole = Panel(id="p0", box=(0.0, 0.0, float(width), float(height)), score=0.0, provenance="layout")
        if width < 8 or height < 8:
            return FigureParse(width=width, height=height, panels=[whole])
        blocks, scale, parents, mask = self.segment(rgb)
        timings["layout"] = time.perf_counter() - start
        if not blocks:
            return FigureParse(width=width, height=height, panels=[whole])
        if self.ocr:
            start = time.perf_counter()
            reading = self._read_labels(rgb, blocks, scale)
            series = Series(blocks, reading.style, scale)
            series.drop_out_of_order()
            blocks = merge_unlabelled(blocks, parents, max(2, round(0.01 * max(height, width) / scale)), series)
            Series(blocks, reading.style, scale).name_missing()
            blocks = self._panels_from_letters(rgb, blocks, mask, scale, reading, caption_letters(caption))
            timings["labels"] = time.perf_counter() - start
        from ..labels.sequence import reading_order

        blocks = [blocks[i] for i in reading_order([b.box for b in blocks])]
        panels = [self._to_panel(i, b, scale, width, height) for i, b in enumerate(blocks)]
        if self.kinds:
            from ..panel_kind import classify

            start = time.perf_counter()
            for p in panels:
                x0, y0, x1, y1 = (int(round(v)) for v in p.box)
                p.kind = classify(rgb[y0:y1, x0:x1]).kind
            timings["kinds"] = time.perf_counter() - start
        return FigureParse(width=width, height=height, panels=panels)

    def segment(self, rgb: np.ndarray) -> tuple[list[Block], int, list[int], np.ndarray]:
        """Panel candidates of an ``H x W x 3`` uint8 array in analysis cells of ``scale`` pixels.

        Returns the candidates, ``scale``, the XY-cut tree as a parent list (node -> parent node) and
        the foreground mask on the analysis grid.
        """
        height, width = rgb.shape[:2]
        bg = background_colour(rgb, self.background_tolerance)
        fg = foreground_mask(rgb, bg, self.background_tolerance)
        scale = max(1, int(np.ceil(np.sqrt(height * width / self.analysis_pixels))))
        mask = reduce_mask(fg, scale)
        mh, mw = mask.shape
        short = min(mh, mw)
        seg = Segmenter(
            mask,
            min_gutter=max(1, round(self.min_gutter / scale)),
            min_area=int(self.min_panel_frac * mh * mw),
            min_side=max(2, int(self.min_panel_side_frac * short)),
            text_height=max(2, int(self.text_height_frac * short)),
            rgb=rgb[::scale, ::scale][:mh, :mw],
            tolerance=self.background_tolerance,
        )
        blocks, frags = seg.run()
        if not blocks and frags:
            # Nothing panel-sized: the figure is one panel made of small parts (or text).
            union = functools.reduce(box_union, frags)
            blocks = [Block(union, union, 0, members=frags, soft=True)]
        return blocks, scale, seg.parent, mask

    def _read_labels(self, rgb: np.ndarray, blocks: list[Block], scale: int) -> LabelReading:
        """Read each candidate's letter; a letter joins its panel's box and leaves any other box."""
        h, w = rgb.shape[:2]
        boxes = [_to_pixels(b.box, scale, w, h) for b in blocks]
        reading = self.reader.read_panels(rgb, boxes)
        for block, label, unread in zip(blocks, reading.labels, reading.unread):
            block.unread = unread
            if label is None:
                continue
            block.label = label.text
            block.label_box = label.box
            block.label_score = label.score
            lb = (int(label.box[0] // scale), int(label.box[1] // scale),
                  -(-int(np.ceil(label.box[2])) // scale), -(-int(np.ceil(label.box[3])) // scale))
            for other in blocks:
                if other is block:
                    continue
                kept = [m for m in other.members if not box_contains(lb, m, pad=2)]
                if kept and len(kept) < len(other.members):
                    other.members = kept
                    other.box = functools.reduce(box_union, kept, other.core)
            content = block.core
            for m in block.members:
                if not box_contains(lb, m, pad=2):
                    content = box_union(content, m)
            block.content = content
            block.box = box_union(block.box, lb)
        return reading

    def _panels_from_letters(self, rgb: np.ndarray, blocks: list[Block], mask: np.ndarray, scale: int,
                             reading: LabelReading, allowed: set[str] | None) -> list[Block]:
        """Panels cut around the letters found anywhere in the figure (:func:`~..labels.scan.scan_labels`,
        :func:`~.partition.partition`) where the corner reading falls short.

        The candidates stay as they are when their own letters already are a complete series
        ``a, b, c ...`` of three or more that no further letter continues (the scan then reads only glyphs
        of their height that they do not cover, and a further letter must line up with another; where one
        does, the candidates merged panels, and the whole figure is scanned as when no series is known), or when
        the scan finds fewer than three letters, fewer than three quarters as many as the corner reading,
        or no more than it when those sit at another corner than the top-left. Letters read at candidates' corners that the scan
        missed join it (:func:`_corner_letters`); a letter whose cell holds no panel-sized ink is
        dropped and the figure cut again. ``allowed``: the letters the caption names (lower case), when
        it names some; others found are text inside panels.
        """
        from ..labels.scan import FoundLabel, scan_labels

        read = sum(b.label is not None for b in blocks)
        complete = read == len(blocks) and sorted(b.label.lower() for b in blocks) == [chr(97 + k) for k in range(read)]
        if complete and read >= 3:
            # a complete series a, b, c ... proves the gutters right, unless the series goes on inside
            # a panel (the last candidate holds several panels that touch): only more of its letters are
            # looked for
            known = [FoundLabel(b.label, b.label_box, b.label_score) for b in blocks if b.label_box is not None]
            found = scan_labels(rgb, self.reader, known=known, seen=reading.seen)
            if not _continues(found, known):
                return blocks
            # the series goes on: the candidates merged panels, whose letters may sit anywhere
            found = scan_labels(rgb, self.reader, seen=reading.seen)
        else:
            found = scan_labels(rgb, self.reader, seen=reading.seen)
        if allowed:
            found = [f for f in found if f.text[0].lower() in allowed]
        # label words (A1, Aii) show panels that the corner reading took for one
        worded = any(len(f.text) > 1 for f in found)
        if len(found) < 3 or len(found) < 0.75 * read or (
                len(found) <= read and reading.corner not in (None, "tl") and not worded):
            blocks = _rescanned(_worded(blocks, found), found)
            Series(blocks, reading.style, scale).name_missing()
            return blocks
        if complete and read >= 0.75 * len(found) and not worded:
            return blocks
        found = _corner_letters(blocks, found, allowed)
        # the corner reading sees each letter beside its panel's other text and settles its case better
        cases = [b.label.isupper() for b in blocks for f in found if b.label is not None and b.label_box is not None
                 and b.label.lower() == f.text.lower() and box_inside_share(f.box, b.label_box) >= 0.5]
        # so does a label word, read with its numeral beside its letter
        cases += [f.text[0].isupper() for f in found if len(f.text) > 1]
        if cases:
            upper = 2 * sum(cases) >= len(cases)
            for f in found:
                f.text = (f.text[0].upper() if upper else f.text[0].lower()) + f.text[1:]
        letters = [(int(f.box[0] // scale), int(f.box[1] // scale), max(int(f.box[0] // scale) + 1, -(-int(f.box[2]) // scale)),
                    max(int(f.box[1] // scale) + 1, -(-int(f.box[3]) // scale))) for f in found]
        # the cut runs from the panels' top-left corners: a letter printed inside a picture's lower or
        # right corner stands for the picture's top-left corner
        kept, anchors = _anchored(letters, [f.score for f in found], mask, [b.box for b in blocks])
        found = [found[k] for k in kept]
        letters = [letters[k] for k in kept]
        # a letter whose cell holds nothing but the letter heads no panel (a stray glyph read as a
        # letter): it is dropped and the figure cut again without it
        min_area = self.min_panel_frac * mask.size
        for _ in range(3):
            cells = partition(mask, anchors)
            if cells is None and anchors != letters:  # the corners moved wrongly: cut at the letters
                anchors = letters
                cells = partition(mask, anchors)
            if cells is None or len(found) < 3:
                return blocks
            empty = {k for k, (c, a) in enumerate(zip(cells, anchors)) if area(box_union(c, a)) < min_area}
            if not empty:
                break
            found = [f for k, f in enumerate(found) if k not in empty]
            anchors = [a for k, a in enumerate(anchors) if k not in empty]
            letters = [a for k, a in enumerate(letters) if k not in empty]
        else:
            return blocks
        out = []
        for f, cell, a in zip(found, cells, letters):
            box = box_union(cell, a)
            out.append(Block(box, box, 0, label=f.text, label_box=f.box, label_score=f.score, content=cell))
        return out

    def _to_panel(self, i: int, block: Block, scale: int, width: int, height: int) -> Panel:
        box = _to_pixels(block.box, scale, width, height)
        core = area(block.core) / max(1, area(block.box))
        score = core if block.label is None else 0.5 * (core + min(1.0, block.label_score))
        return Panel(
            id=f"p{i}",
            box=box,
            label=block.label,
            label_box=block.label_box,
            score=round(float(score), 3),
            provenance="layout",
        )


def _worded(blocks: list[Block], found: list) -> list[Block]:
    """``blocks`` with each corner label whose glyphs the scan read as a label word of its series (``A``
    or ``B`` read on ``Aii``) labelled by the word."""
    out = []
    for b in blocks:
        word = next((f for f in found if len(f.text) > 1 and b.label_box is not None
                     and box_inside_share(b.label_box, f.box) >= 0.5), None)
        out.append(b if word is None else replace(b, label=word.text, label_box=word.box))
    return out


def _rescanned(blocks: list[Block], found: list) -> list[Block]:
    """``blocks`` with the corner letters that the scan read as other letters on the same glyphs
    (``i``, ``j``, ``l`` in circles) relabelled by the scan, where together those reads break the reading
    order of the labels less and name no letter twice."""
    from ..labels.sequence import reading_order

    reread = {}
    for k, b in enumerate(blocks):
        if b.label is None or b.label_box is None or len(b.label) != 1:
            continue
        # (the corner box holds a circle or brackets drawn round the letter, the scan's its ink alone)
        f = next((f for f in found if len(f.text) == 1 and box_inside_share(f.box, b.label_box) >= 0.8), None)
        if f is not None and f.text.lower() != b.label.lower():
            reread[k] = f
    if not reread:
        return blocks
    order = reading_order([b.box for b in blocks])
    before = [b.label for b in blocks]
    after = [(reread[k].text.upper() if t.isupper() else reread[k].text.lower()) if k in reread else t
             for k, t in enumerate(before)]

    def broken(labels: list[str | None]) -> int:
        ranks = [ord(labels[k].lower()) for k in order if labels[k] is not None and len(labels[k]) == 1]
        return sum(x > y for i, x in enumerate(ranks) for y in ranks[i + 1:])

    named = [t.lower() for t in after if t is not None]
    if len(set(named)) < len(named) or broken(after) >= broken(before):
        return blocks
    return [replace(b, label=after[k]) if k in reread else b for k, b in enumerate(blocks)]


def _corner_letters(blocks: list[Block], found: list, allowed: set[str] | None) -> list:
    """The scan's letters with those read at candidates' corners: a corner letter the scan missed that
    continues its series (ranks up to one past its last) joins it (a glyph on a picture or beside a tick
    label is not lone, but at a panel corner it is still that panel's letter), and a sure corner read
    (:data:`SURE`) replaces an unsure scan read of the same letter elsewhere (a glyph of a picture)
    where it keeps the series in reading order as well."""
    from ..labels.scan import FoundLabel, label_rank, order_conflicts, stray_stem

    by_text = {f.text.lower(): f for f in found}
    last = max((label_rank(t)[0] for t in by_text), default=-1)
    # a letter the scan found printed with numerals (A1, A2) has no bare member
    worded = {t[0] for t in by_text if len(t) > 1}
    out = list(found)
    for b in blocks:
        text = (b.label or "").lower()
        if (b.label_box is None or len(text) != 1 or not "a" <= text <= "z" or text in worded
                or ord(text) - 97 > last + 1 or (allowed and text not in allowed)):
            continue
        letter = FoundLabel(b.label, tuple(float(v) for v in b.label_box), float(b.label_score))
        scanned = by_text.get(text)
        if scanned is not None:
            rank = label_rank(text)
            pick = {label_rank(t): f for t, f in by_text.items()}
            # (not on the glyph of another member, which the scan read as that member)
            if (scanned.score < SURE <= letter.score and box_iou(scanned.box, letter.box) == 0
                    and not any(box_inside_share(f.box, letter.box) >= 0.5 for f in found if f is not scanned)
                    and order_conflicts(rank, letter, pick) <= order_conflicts(rank, scanned, pick)):
                out[out.index(scanned)] = by_text[text] = letter
            continue
        if stray_stem(letter, found):
            continue  # a rule or a bar, not an I
        if any(box_inside_share(letter.box, f.box) >= 0.5 for f in out):
            continue  # another read of a glyph the scan has read
        by_text[text] = letter
        out.append(letter)
    return out


def _anchored(letters: list[IBox], scores: list[float], mask: np.ndarray,
              boxes: list[IBox]) -> tuple[list[int], list[IBox]]:
    """The letters kept (indices) and, for each, the top-left corner its panel's cut runs from
    (:func:`_top_left`; ``boxes``: the panel candidates).

    Two panel letters never sit closer than the partition can cut between: of a sure and an unsure
    letter that close (:func:`_crowded`), the unsure one is a stray glyph read as a letter, unless
    the two stand for corners apart (one at a picture's foot, the next at the top of the picture
    below it)."""
    crowded = _crowded(letters, scores)
    sure = [a for k, a in enumerate(letters) if k not in crowded]
    anchors = [_top_left(a, mask, boxes, sure) for a in letters]
    crowded &= _crowded(anchors, scores)
    kept = [k for k in range(len(letters)) if k not in crowded]
    return kept, [anchors[k] for k in kept]


def _top_left(letter: IBox, mask: np.ndarray, boxes: list[IBox], others: list[IBox]) -> IBox:
    """Where the panel of a letter starts: the letter itself, unless it is printed inside a picture near
    its bottom (right) edge, the picture reaching three letter heights or more above (left of) it; then
    the letter moved to the picture's top (left) edge. The picture is the ink around the letter up to
    the first gutter, else the smallest panel candidate holding the letter. ``others``: the figure's
    letters."""
    x0, y0, x1, y1 = letter
    h = max(1, y1 - y0)

    def moved(bx0: int, by0: int, bx1: int, by1: int) -> IBox:
        dy = y0 - by0 if by1 - y1 <= h and y0 - by0 >= 3 * h else 0
        dx = x0 - bx0 if bx1 - x1 <= h and x0 - bx0 >= 3 * h else 0
        # a letter at a picture's right edge stands for its top-left corner only where the picture's
        # left edge is found; a picture holds one letter, so a move over another, or up past one
        # anywhere across the picture, is mistaken (pictures touching unseen)
        if (bx1 - x1 <= h and not dx) or any(
                box_inside_share(o, (x0 - dx, y0 - dy, x1, y1)) > 0
                or box_inside_share(o, (bx0, y0 - dy, bx1, y0)) >= 0.5 for o in others if o != letter):
            return letter
        return (x0 - dx, y0 - dy, x1 - dx, y1 - dy)

    # on paper, not on a picture: the letter and the ring around it are mostly blank (the letter's own
    # strokes count as ink: a white letter on a dark picture is none)
    r = max(1, h // 4)
    around = mask[max(0, y0 - r):y1 + r, max(0, x0 - r):x1 + r]
    if around.sum() - mask[y0:y1, x0:x1].sum() + (y1 - y0) * (x1 - x0) < 0.8 * around.size:
        return letter

    def run(fractions: np.ndarray, gap: int) -> int:  # inked lines from the letter up to a gutter
        off = np.concatenate((fractions < 0.5, np.ones(gap, bool)))
        return int(np.flatnonzero(np.convolve(off, np.ones(gap, int), "valid") == gap)[0])

    # the picture's width at the letter's height, then its lines across that width (an arrow or a white
    # patch above the letter is no gutter)
    left, right = run(mask[y0:y1, :x0].mean(axis=0)[::-1], 1), run(mask[y0:y1, x1:].mean(axis=0), 1)
    if right <= h and y0 >= h:
        # a bracket or full stop after a white letter (``B)``) is no gutter: where the picture goes
        # on just above the letter, the letter is not at its right edge
        right = max(right, run(mask[y0 - h:y0, x1:].mean(axis=0), 1))
    cols = slice(x0 - left, x1 + right)
    up, down = run(mask[:y0, cols].mean(axis=1)[::-1], 2), run(mask[y1:, cols].mean(axis=1), 2)
    found = moved(x0 - left, y0 - up, x1 + right, y1 + down)
    # white inside the picture (bone on CT) stops the ink short of its edges: its panel candidate may
    # still show them
    inside = [b for b in boxes if box_contains(b, letter)]
    further = moved(*min(inside, key=area)) if inside else letter
    return further if further[0] <= found[0] and further[1] <= found[1] and further != letter else found


def _crowded(anchors: list[IBox], scores: list[float]) -> set[int]:
    """The unsure letter of each pair of a sure and an unsure one (:data:`SURE`) that no cut of
    :func:`~.partition.partition` can separate (closer than :data:`~.partition.ONE_LINE` letter heights
    both across and down)."""
    size = int(np.median([a[3] - a[1] for a in anchors])) if anchors else 1
    near = ONE_LINE * size
    out: set[int] = set()
    for i, a in enumerate(anchors):
        for j in range(i + 1, len(anchors)):
            b = anchors[j]
            weak, strong = (i, j) if scores[i] < scores[j] else (j, i)
            if (weak not in out and strong not in out and scores[weak] < SURE <= scores[strong]
                    and max(a[1], b[1]) - min(a[3], b[3]) < near and max(a[0], b[0]) - min(a[2], b[2]) < near):
                out.add(weak)
    return out


def _continues(found: list, known: list) -> bool:
    """Whether the scan's series goes on past the known letters, each further letter lined up with
    another (its left edge or top within a third of a letter's height): panel letters run along rows
    and columns, a letter of text inside a panel seldom does."""
    from ..labels.scan import label_rank, lines_up

    if any(len(f.text) > 1 for f in found):
        return True  # the scan read a known letter as a label word (A1, Aii): it heads several panels
    more = [f for f in found if label_rank(f.text)[0] >= len(known)]
    return bool(more) and all(lines_up(f, found) for f in more)


def caption_letters(caption: str | None) -> set[str] | None:
    """The panel letters a caption names (lower case; ``A1``/``Aii`` name ``a``), or None when it names
    fewer than two."""
    if not caption:
        return None
    from ..captions.label_series import infer_series
    from ..captions.tokens import scan_tokens

    letters = {lab[0].lower() for lab in infer_series(scan_tokens(caption)).labels if lab and lab[0].isalpha()}
    return letters if len(letters) >= 2 else None


def _to_pixels(box: IBox, scale: int, width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return (float(x0 * scale), float(y0 * scale), float(min(width, x1 * scale)), float(min(height, y1 * scale)))
