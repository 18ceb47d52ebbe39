"""Assembly: cut the caption at its anchor tokens into preamble, per-label segments and the shared tail."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from .roles import sentence_of
from .sentences import is_shared_sentence, sentence_starts
from .text_scan import first_nonspace
from .tokens import Mention

#: ``shared_by_length``: at least this many other segments are needed before sentences of the last
#: segment beyond the longest of them are taken as shared notes.
MIN_SEGMENTS_FOR_LENGTH_RULE = 2


@dataclass
class _Piece:
    start: int
    end: int
    labels: tuple[str, ...]


@dataclass
class Cut:
    preamble: tuple[int, int] = (0, 0)
    pieces: list[_Piece] = field(default_factory=list)
    shared: tuple[int, int] | None = None


def strip_span(text: str, start: int, end: int, lead_punct: bool) -> tuple[int, int]:
    while start < end and (text[start].isspace() or (lead_punct and text[start] in ",;:.")):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def assemble(text: str, anchors: list[Mention], n_labels: int, by_length: bool) -> Cut:
    """Cut the caption at the anchors into preamble, labelled pieces and the shared tail."""
    starts = sentence_starts(text)
    cut = Cut()
    cursor = 0  # end of the text already given out
    open_piece: _Piece | None = None  # the segment a prefix or sentence anchor opened
    prev: Mention | None = None
    for a in anchors:
        sent = sentence_of(starts, a.start)
        if a.role == "prefix":
            if prev is None:
                cut.preamble = (0, a.start)
            elif open_piece is not None:
                open_piece.end = a.start
            else:  # text after a postfix token, before this one: continues that panel
                cut.pieces.append(_Piece(cursor, a.start, prev.labels))
            open_piece = _Piece(a.end, len(text), a.labels)
            cut.pieces.append(open_piece)
            cursor = a.end
        elif a.role == "sentence":
            if prev is None:
                cut.preamble = (0, sent)
                begin = sent
            elif open_piece is not None:
                begin = max(cursor, sent)
                open_piece.end = begin
            else:
                begin = cursor
            open_piece = _Piece(begin, len(text), a.labels)
            cut.pieces.append(open_piece)
            cursor = begin
        else:  # postfix
            if prev is None:
                cut.preamble = (0, sent)
                cut.pieces.append(_Piece(sent, a.start, a.labels))
            elif open_piece is not None:
                split = max(cursor, sent)
                open_piece.end = split
                cut.pieces.append(_Piece(split, a.start, a.labels))
            else:
                cut.pieces.append(_Piece(cursor, a.start, a.labels))
            open_piece = None
            cursor = a.end
        prev = a
    if prev is None:
        return cut
    if open_piece is not None:
        if n_labels >= 2:
            others = [p for p in cut.pieces if p is not open_piece and p.end > p.start]
            typical = 0
            if by_length and len(others) >= MIN_SEGMENTS_FOR_LENGTH_RULE:
                typical = max(_count_sentences(text, p.start, p.end) for p in others)
            shared_from = shared_start(text, open_piece.start, open_piece.end, typical)
            if shared_from is not None:
                open_piece.end = shared_from
                cut.shared = (shared_from, len(text))
    else:
        # Postfix captions: the rest of the sentence continues the last panel; later sentences are shared.
        later = [st for st in starts if st > cursor]
        end_of_sentence = later[0] if later else len(text)
        cut.pieces.append(_Piece(cursor, end_of_sentence, prev.labels))
        if end_of_sentence < len(text):
            cut.shared = (end_of_sentence, len(text))
    return cut


def _head_end(text: str, start: int, end: int) -> int | None:
    """End of the common head of a group segment: its last sentence end or colon before ``end``."""
    starts = sentence_starts(text)
    i = bisect.bisect_left(starts, end)
    best = starts[i - 1] if i and starts[i - 1] > start else None
    for m in re.finditer(r":\s", text[start:end]):
        best = max(best or 0, start + m.end())
    return best


def _closes_sentence(text: str, pos: int, end: int) -> bool:
    """Whether the clause ends at ``pos``: nothing but ``.``, ``;`` or ``:`` before the next sentence or ``end``."""
    i = first_nonspace(text, pos)
    if i >= end or i >= len(text):
        return True
    if text[i] not in ".;:":
        return False
    starts = sentence_starts(text)
    k = bisect.bisect_right(starts, i)
    nxt = min(starts[k] if k < len(starts) else len(text), end)
    return not text[i + 1 : nxt].strip()


def partition_groups(text: str, cut: Cut, inline: list[Mention]) -> None:
    """Attach phrases to panels inside a group segment: ``(b-d) Staining at 1 month (b), at 3 months (c)
    and at 6 months (d). Note ...`` gives ``b`` "Staining at 1 month", ``c`` "at 3 months", ``d`` "and at
    6 months" and the rest of the segment to all three. Only when the inline tokens name disjoint parts
    of the group, in order, and together all of it, and the last of them closes its clause (``... (d).``);
    otherwise (``... (d) showing ...``, the sentence goes on about all of them) the group keeps one text."""
    out: list[_Piece] = []
    inline_starts = [m.start for m in inline]  # caption order
    for piece in cut.pieces:
        group = set(piece.labels)
        if len(group) < 2:
            out.append(piece)
            continue
        refs = []
        for k in range(bisect.bisect_left(inline_starts, piece.start), len(inline)):
            if inline[k].start > piece.end:
                break
            if inline[k].end <= piece.end:
                refs.append(inline[k])
        parts: list[Mention] = []
        covered: set[str] = set()
        for m in refs:
            names = set(m.labels)
            if names < group and not names & covered:
                parts.append(m)
                covered |= names
        if len(group) < 2 or len(parts) < 2 or covered != group or not _closes_sentence(text, parts[-1].end, piece.end):
            out.append(piece)
            continue
        begin = piece.start
        head = _head_end(text, piece.start, parts[0].start)
        if head is not None:  # "Sections were stained. Staining pattern: area (A), nuclei (B)"
            out.append(_Piece(piece.start, head, piece.labels))
            begin = head
        for m in parts:
            out.append(_Piece(begin, m.start, m.labels))
            begin = m.end
        if begin < piece.end:
            out.append(_Piece(begin, piece.end, piece.labels))
    cut.pieces = out


def _count_sentences(text: str, start: int, end: int) -> int:
    if not text[start:end].strip():
        return 0
    starts = sentence_starts(text)  # each start is a non-space character: the sentence from it has text
    return 1 + max(0, bisect.bisect_left(starts, end) - bisect.bisect_right(starts, start))


def shared_start(text: str, start: int, end: int, typical: int) -> int | None:
    """Offset where the trailing shared sentences of the last segment begin (None: there are none).

    Trailing sentences that read as shared notes (scale bars, statistics, stains, abbreviations) are
    shared; so are sentences beyond ``typical``, the most sentences any other segment has (0: unknown),
    when that leaves the last segment as long as the others. The first sentence always stays.
    """
    starts = [s for s in sentence_starts(text) if start < s < end]
    bounds = [start] + starts + [end]
    n = len(bounds) - 1  # sentences in the segment
    shared_from = None
    for i in range(n - 1, 0, -1):
        sentence = text[bounds[i] : bounds[i + 1]].strip()
        if is_shared_sentence(sentence) or (typical and i >= typical):
            shared_from = bounds[i]
        else:
            break
    return shared_from


def segment_texts(text: str, cut: Cut, order: list[str]) -> tuple[str, dict[str, str], str]:
    pre = text[cut.preamble[0] : cut.preamble[1]].strip()
    parts: dict[str, list[str]] = {}
    for p in cut.pieces:
        s, e = strip_span(text, p.start, p.end, lead_punct=True)
        chunk = text[s:e]
        for lab in p.labels:
            parts.setdefault(lab, [])
            if chunk:
                parts[lab].append(chunk)
    shared = text[cut.shared[0] : cut.shared[1]].strip() if cut.shared else ""
    first_seen: dict[str, int] = {}
    for i, p in enumerate(cut.pieces):
        for lab in p.labels:
            first_seen.setdefault(lab, i)
    rank: dict[str, int] = {}
    for i, lab in enumerate(order):
        rank.setdefault(lab, i)
    ordered = sorted(parts, key=lambda lab: (first_seen[lab], rank.get(lab, 0)))
    return pre, {lab: " ".join(parts[lab]) for lab in ordered}, shared
