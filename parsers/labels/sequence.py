"""Step 3 of label reading, the sequence prior: one label per panel, by the conventions a figure's labels share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from panel2patch.data import Box

from ..series import ROMAN
from .reads import (
    case_from_heights,
    case_vote,
    interpretations,
    is_label_text,
    series_rank,
    series_style,
    series_upper,
    style_votes,
)

if TYPE_CHECKING:
    from .candidates import Candidate


@dataclass
class PanelLabel:
    """The label read for one panel: text as printed (decoration removed), its box in figure pixels,
    a score in ``[0, 1]`` (OCR confidence x position prior) and the corner it sits at."""

    text: str
    box: Box
    score: float
    corner: str = ""
    glyph: int = 0  # id() of the Glyph it was read from


@dataclass
class LabelReading:
    """Result of :meth:`~panel2patch.parsers.labels.reader.LabelReader.read_panels`, one entry per panel box.

    ``labels[i]`` is panel ``i``'s label or None; ``unread[i]`` is True when panel ``i`` has no label
    but a glyph sits right at the figure's label corner (a label the recogniser could not read).
    ``seen``: every glyph read on the way (box, text, confidence), for later reads of the figure to reuse.
    """

    labels: list[PanelLabel | None]
    unread: list[bool] = field(default_factory=list)
    corner: str | None = None
    style: str = "letter"
    seen: list[tuple[Box, str, float]] = field(default_factory=list)


def reading_rows(boxes: Sequence[Box]) -> list[list[int]]:
    """Indices of ``boxes`` by rows, top to bottom (a box joins a row when it starts above the middle
    of the row's first box), each row left to right."""
    rest = sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))
    rows: list[list[int]] = []
    while rest:
        top = boxes[rest[0]]
        mid = (top[1] + top[3]) / 2
        rows.append(sorted((i for i in rest if boxes[i][1] < mid), key=lambda i: boxes[i][0]))
        rest = [i for i in rest if boxes[i][1] >= mid]
    return rows


def read_before(a: Sequence[float], b: Sequence[float]) -> bool:
    """Box ``a`` is read before box ``b``: it lies wholly above, or beside and left of it on one line."""
    if a[3] <= b[1]:
        return True
    return min(a[3], b[3]) > max(a[1], b[1]) and a[2] <= b[0]


def reading_order(boxes: Sequence[Box]) -> list[int]:
    """Indices of ``boxes`` in reading order (:func:`reading_rows`, row after row)."""
    return [i for row in reading_rows(boxes) for i in row]


def apply_sequence_prior(per_panel: Sequence[Sequence[Candidate]], min_confidence: float = 0.6,
                         rows: Sequence[Sequence[int]] | None = None) -> LabelReading:
    """Choose one label per panel from its read candidates, using the figure's label conventions.

    ``per_panel[i]`` lists panel ``i``'s candidates with their glyphs read; ``rows`` groups the panel
    indices by rows in reading order (default: one row in index order). Steps:

    1. The style (letters, roman numerals, letter-digit) is voted by the reads near panel corners,
       weighted by confidence and position, and the case by the reads' confidence; another style
       with votes wins when its selection (below) explains more than 1.2 times as much.
    2. For each corner convention (labels at the top-left, top-right, bottom-left or bottom-right of
       their panels) a selection is made, candidates at other corners counting for 0.6 of their score;
       the convention whose selection explains the most (sum of scores, plus 0.1 when two labels or
       more include the first member) wins. A selection:
    3. gives each panel its best confident read that is exactly a label of the style (score = OCR
       confidence x position prior; a letter read in the other case counts 0.8 times); a glyph
       wanted by two panels stays with the higher score;
    4. drops a label whose glyph is far smaller or larger than the others' (with three labels or
       more), a label far from every other label of the series (more places away than there are
       other panels, at least 2) or beyond the series of ``n`` panels (with three panels or more):
       text inside a panel; and of a label read on two panels, the weaker read, whose glyph is then
       free for a member the series misses. Without any confident read, weak and confusable reads
       at the corner that spell distinct members of one short run are taken;
    5. lets the series run from its first member to the last one plus one place per unlabelled panel;
       unlabelled panels take weak or confusable reads at the label corner (``1`` for ``l``, ``0`` for
       ``o``, ``8`` for ``B``, ``m`` for ``iii`` ...) that are members the series misses, strongest
       first.
    6. When as many panels lack a label as the first ``n`` members of the series lack (``n`` panels),
       and each of those panels has an unreadable glyph at the label corner, they take the missing
       members in reading order (provided the labelled panels follow reading order). Letter-digit
       labels are row letter plus column number: an unread cell of a row whose labels agree takes
       its own.
    7. The case is decided again from the glyphs the series took (their heights, see
       :func:`~panel2patch.parsers.labels.reads.case_from_heights`, else their reads) and, if it
       changed, the selection is redone in that case. When the heights of the confidently read
       labels show their case, all are put into that case; numerals with a dotted ``i`` are lower
       case.
    """
    glyphs = list({id(c.glyph): c.glyph for cands in per_panel for c in cands}.values())
    # weak reads vote too (multi-letter numerals are often read with low confidence), weighted by
    # how close to a panel corner they sit: data markers and tick labels inside plots do not vote
    near = {}
    for cands in per_panel:
        for c in cands:
            near[id(c.glyph)] = max(near.get(id(c.glyph), 0.0), c.prior)
    reads = [(g.text, g.confidence * near[id(g)]) for g in glyphs if g.confidence >= 0.25 and near[id(g)] >= 0.5]
    voters = [g for g in glyphs if g.confidence >= 0.25 and is_label_text(g.text) and near[id(g)] >= 0.5]
    rows = [list(r) for r in rows] if rows is not None else [list(range(len(per_panel)))]
    style = series_style(reads)
    upper = series_upper(voters, style)
    best, total = _best_corner(per_panel, style, upper, min_confidence, rows)
    # letters of text near the corners (axis names, units) may outvote a series of another style:
    # a style whose series explains clearly more wins
    for other, vote in style_votes(reads).items():
        if other == style or vote <= 0:
            continue
        other_upper = series_upper(voters, other)
        reading, other_total = _best_corner(per_panel, other, other_upper, min_confidence, rows)
        if other_total > 1.2 * total:
            best, total, style, upper = reading, other_total, other, other_upper
    by_id = {id(g): g for g in glyphs}
    # a patch read through its letter-shaped hole, or a letter in brackets, does not show the
    # letter's height
    heights = {id(c.glyph): c.glyph.height for cands in per_panel for c in cands
               if not c.glyph.framed and c.glyph.confidence >= min_confidence}

    def series_case(reading: LabelReading) -> bool | None:
        # the glyphs the series took tell its case, free of other text near the corners: by their
        # heights, else by their reads
        by_height = None
        if style != "numbered":
            by_height = case_from_heights([(p.text, heights[p.glyph]) for p in reading.labels
                                           if p is not None and p.glyph in heights], style == "roman")
        if by_height is not None:
            return by_height
        vote = case_vote([by_id[p.glyph] for p in reading.labels if p is not None], style)
        return None if not vote else vote > 0

    case = series_case(best)
    if case is not None and case != upper:
        upper = case
        best = _best_corner(per_panel, style, upper, min_confidence, rows)[0]
    if style == "roman" and any(p is not None and by_id[p.glyph].numeral for p in best.labels):
        for p in best.labels:  # a dotted i is lower case
            if p is not None:
                p.text = p.text.lower()
    if style != "numbered":
        by_height = case_from_heights([(p.text, heights[p.glyph]) for p in best.labels
                                       if p is not None and p.glyph in heights], style == "roman")
        if by_height is not None and by_height != upper:
            for p in best.labels:
                if p is not None:
                    p.text = p.text.upper() if by_height else p.text.lower()
    return best


def _best_corner(per_panel: Sequence[Sequence[Candidate]], style: str, upper: bool, min_confidence: float,
                 rows: list[list[int]]) -> tuple[LabelReading, float]:
    best: LabelReading | None = None
    best_total = -1.0
    for corner in ("tl", "tr", "bl", "br"):
        if not any(c.corner == corner for cands in per_panel for c in cands):
            continue
        reading, total = _select(per_panel, corner, style, upper, min_confidence, rows)
        if total > best_total + 1e-9:
            best, best_total = reading, total
    if best is None:
        return LabelReading([None] * len(per_panel), [False] * len(per_panel), None, style), 0.0
    return best, best_total


def _select(per_panel: Sequence[Sequence[Candidate]], corner: str, style: str, upper: bool,
            min_confidence: float, rows: list[list[int]]) -> tuple[LabelReading, float]:
    """Steps 3-6 of :func:`apply_sequence_prior` for one corner convention; returns the total score."""
    n = len(per_panel)
    order = [i for row in rows for i in row]

    def weight(c: Candidate) -> float:
        return (0.5 + 0.5 * c.prior) * (1.0 if c.corner == corner else 0.6)

    options: list[list[tuple[float, str, Candidate]]] = []
    for cands in per_panel:
        ok = []
        for c in cands:
            if c.glyph.confidence < min_confidence:
                continue
            for label, plaus in interpretations(c.glyph.text, style, upper):
                if plaus >= 1.0 or (style == "letter" and c.glyph.text in ("l", "I") and label in ("l", "I")):
                    ok.append((c.glyph.confidence * weight(c), label, c))
                elif plaus >= 0.8:  # a letter read in the other case: a misread of size only
                    ok.append((c.glyph.confidence * weight(c) * plaus, label, c))
        options.append(sorted(ok, key=lambda t: -t[0]))

    chosen: list[PanelLabel | None] = [None] * n
    taken: dict[int, int] = {}  # glyph id -> panel index
    pending = list(range(n))
    while pending:
        i = pending.pop(0)
        while options[i]:
            score, label, c = options[i].pop(0)
            owner = taken.get(id(c.glyph))
            if owner is not None and owner != i:
                held = chosen[owner]
                if held is not None and held.score >= score:
                    continue
                chosen[owner] = None
                pending.append(owner)
            taken[id(c.glyph)] = i
            chosen[i] = PanelLabel(label, c.glyph.box, score, c.corner, id(c.glyph))
            break

    # labels of one figure share a font size: a read far smaller or larger than the others is other text
    sizes = {id(c.glyph): c.glyph.height for cands in per_panel for c in cands}
    picked = [sizes[p.glyph] for p in chosen if p is not None]
    if len(picked) >= 3:
        typical = float(np.median(picked))
        for i, p in enumerate(chosen):
            if p is not None and not 0.55 * typical <= sizes[p.glyph] <= 1.8 * typical:
                chosen[i] = None
    # weakest first, so that of two distant labels the stronger stays
    for i in sorted((k for k in range(n) if chosen[k] is not None), key=lambda k: chosen[k].score):
        others = [series_rank(p.text, style) for j, p in enumerate(chosen) if p is not None and j != i]
        r = series_rank(chosen[i].text, style)
        if (others and min(abs(r - o) for o in others) > max(2, n - 1)) or (n >= 3 and r > n):
            chosen[i] = None
    seen: set[str] = set()
    for i in sorted(range(n), key=lambda k: -(chosen[k].score if chosen[k] else 0.0)):
        p = chosen[i]
        if p is None:
            continue
        if p.text in seen:
            # a second read of one label is a misread: its glyph is free for the letter it misses
            taken.pop(p.glyph, None)
            chosen[i] = None
        else:
            seen.add(p.text)

    if all(p is None for p in chosen):
        # no confident read at all: a run of weaker reads at this corner may still spell the series
        # (three panels reading D, E, F at 0.5 each)
        weak_first = {}
        for i, cands in enumerate(per_panel):
            for c in cands:
                if c.corner != corner or c.prior < 0.5 or c.glyph.confidence < 0.3 or id(c.glyph) in taken:
                    continue
                for label, plaus in interpretations(c.glyph.text, style, upper):
                    # reads through a confusable shape count when they spell the series together
                    # (a small "ii" read as "11"), single-letter look-alikes ("1" for "l") do not
                    score = c.glyph.confidence * weight(c) * plaus
                    if plaus >= 0.6 and (i not in weak_first or weak_first[i][0] < score):
                        weak_first[i] = (score, label, c)
        ranks = sorted({series_rank(label, style) for _, label, _ in weak_first.values()})
        if len(ranks) >= 2 and len(ranks) == len(weak_first) and ranks[-1] - ranks[0] < n:
            for i, (score, label, c) in weak_first.items():
                chosen[i] = PanelLabel(label, c.glyph.box, score, c.corner, id(c.glyph))
                taken[id(c.glyph)] = i

    members = {series_rank(p.text, style) for p in chosen if p is not None}
    # weak reads must look like the chosen ones
    typical = float(np.median([sizes[p.glyph] for p in chosen if p is not None])) if members else 0.0

    def label_sized(c: Candidate) -> bool:
        return 0.6 * typical <= c.glyph.height <= 1.6 * typical

    if members and style != "numbered":
        unlabelled = sum(p is None for p in chosen)
        limit = len(ROMAN) if style == "roman" else 26
        missing = set(range(min(limit, max(members) + 1 + unlabelled))) - members
        weak = []
        for i in range(n):
            if chosen[i] is not None:
                continue
            for c in per_panel[i]:
                # a weak or confusable read is evidence only where this figure prints its labels
                if id(c.glyph) in taken or c.corner != corner or c.prior < 0.5 or not label_sized(c):
                    continue
                for label, plaus in interpretations(c.glyph.text, style, upper):
                    if series_rank(label, style) in missing:
                        weak.append((max(c.glyph.confidence, 0.05) * weight(c) * plaus * 0.5, i, label, c))
        for score, i, label, c in sorted(weak, key=lambda t: -t[0]):
            r = series_rank(label, style)
            if chosen[i] is not None or id(c.glyph) in taken or r not in missing:
                continue
            chosen[i] = PanelLabel(label, c.glyph.box, score, c.corner, id(c.glyph))
            taken[id(c.glyph)] = i
            missing.discard(r)

    def unreadable(c: Candidate) -> bool:
        # a glyph right at the label corner whose read is weak or label-sized (not a confident word)
        g = c.glyph
        return (id(g) not in taken and c.corner == corner and c.prior >= 0.75 and (not typical or label_sized(c))
                and (g.confidence < min_confidence or (len(g.text) <= 2 and not g.text.isdigit())))

    unread = [chosen[i] is None and any(unreadable(c) for c in per_panel[i]) for i in range(n)]
    members = {series_rank(p.text, style) for p in chosen if p is not None}
    limit = len(ROMAN) if style == "roman" else 26
    if members and style != "numbered" and max(members) < n <= limit:
        gaps = sorted(set(range(n)) - members)
        open_panels = [i for i in order if unread[i]]
        ranked = [series_rank(chosen[i].text, style) for i in order if chosen[i] is not None]
        if gaps and len(gaps) == len(open_panels) and (len(gaps) == 1 or ranked == sorted(ranked)):
            for i, r in zip(open_panels, gaps):
                c = max((c for c in per_panel[i] if unreadable(c)), key=lambda c: c.prior, default=None)
                if c is None:  # its glyph went to a panel before it
                    continue
                label = ROMAN[r] if style == "roman" else chr(ord("a") + r)
                label = label.upper() if upper else label
                chosen[i] = PanelLabel(label, c.glyph.box, 0.25 * weight(c), c.corner, id(c.glyph))
                taken[id(c.glyph)] = i
                unread[i] = False
    if style == "numbered":
        # row letter + column number: a row whose read labels agree gives its unread cells theirs
        for row in rows:
            read = [(k, chosen[i].text) for k, i in enumerate(row) if chosen[i] is not None]
            heads = {t[0] for _, t in read}
            if len(heads) != 1 or any(t[1:] != str(k + 1) for k, t in read):
                continue
            head = heads.pop()
            for k, i in enumerate(row):
                c = max((c for c in per_panel[i] if unread[i] and unreadable(c)), key=lambda c: c.prior, default=None)
                if c is None:
                    continue
                chosen[i] = PanelLabel(f"{head}{k + 1}", c.glyph.box, 0.25 * weight(c), c.corner, id(c.glyph))
                taken[id(c.glyph)] = i
                unread[i] = False
    total = sum(p.score for p in chosen if p is not None)
    if sum(p is not None for p in chosen) >= 2 and any(
            p is not None and series_rank(p.text, style) == 0 for p in chosen):
        total += 0.1  # of two conventions that explain as much, the one whose series starts at its start
    return LabelReading(chosen, unread, corner, style), total
