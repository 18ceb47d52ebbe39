"""Roles of label tokens: which open a segment (prefix), close one (postfix) or only refer back (inline)."""

from __future__ import annotations

import bisect
import re

from .label_series import LabelSeries
from .sentences import sentence_starts
from .text_scan import char_after, char_before, last_nonspace
from .tokens import Mention

_JOINERS = {"and", "or", "while", "whereas", "but", "&", "with", "vs", "versus"}


def set_context(text: str, m: Mention) -> None:
    """Set ``before`` (what precedes the token) and ``after`` (what follows it)."""
    last = last_nonspace(text, m.start)
    head_end = text[last] if last >= 0 else ""
    if not head_end:
        m.before = "strong"
    elif head_end in ".;:!?":
        m.before = "strong"
    elif head_end == ",":
        m.before = "weak"
    elif head_end == "(" and m.style == "punct" and text[m.end - 1] == ":":
        m.before = "strong"  # "(A and C: 100x; B and D: 400x)"
    elif m.style == "paren" and head_end.isalpha() and m.start > 0 and not text[m.start - 1].isspace():
        m.before = "weak"  # "...tumorigenesis(a) H&E staining": a title glued to the first label
    else:
        m.before = "weak" if _word_ending_at(text, last + 1).lower() in _JOINERS else "none"
    following = char_after(text, m.end)
    if m.style in ("punct",):
        m.after = "text" if following else "end"
        return
    nxt = text[m.end : m.end + 1]
    if not following:
        m.after = "end"
    elif nxt and not nxt.isspace() and m.style in ("paren", "close") and nxt in "-\u2013'":
        m.after = "other"
    elif following in ".;,:":
        m.after = "punct"
    elif following == ")":
        m.after = "other"
    else:
        m.after = "text"


_LONGEST_JOINER = max(len(w) for w in _JOINERS)


def _word_ending_at(text: str, end: int) -> str:
    """The run of ``[A-Za-z&]`` ending at ``end`` when it is short enough to be a joiner, else ``""``."""
    i = end
    while i > 0 and end - i <= _LONGEST_JOINER and text[i - 1] in _WORD_CHARS:
        i -= 1
    if end - i > _LONGEST_JOINER:
        return ""
    return text[i:end]


_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz&")


_NEXT_WORD_RE = re.compile(r"\s{0,200}(\S{1,40})")  # bounded: linear time on text without spaces


def _next_word(text: str, pos: int) -> str:
    w = _NEXT_WORD_RE.match(text, pos)
    return w.group(1) if w else ""


def assign_labels(mentions: list[Mention], series: LabelSeries) -> list[Mention]:
    """Map each token onto the series; drop tokens that are not labels of it."""
    out = []
    for m in mentions:
        labels: list[str] = []
        ok = True
        for a, b in m.items:
            got = series.expand(a, b)
            if got is None:
                ok = False
                break
            labels.extend(got)
        if not ok or not labels:
            continue
        m.labels = tuple(dict.fromkeys(labels))
        out.append(m)
    return out


_OTHER_FIGURE_RE = re.compile(r"(?:\b(?:Fig(?:ure)?s?|Supplementary|Suppl)\.?\s*S?\d+\s*|\d)$", re.IGNORECASE)


def _other_figure_before(text: str, pos: int) -> bool:
    """Whether ``text[:pos]`` ends in ``Fig. 2``, ``Figure S3`` or a digit (searched near ``pos`` only)."""
    # A match is a word of at most 13 letters followed by dots, spaces, "S" and digits only.
    lo = pos
    while lo > 0 and (text[lo - 1].isspace() or text[lo - 1].isdigit() or text[lo - 1] in ".Ss"):
        lo -= 1
    return _OTHER_FIGURE_RE.search(text, max(0, lo - 16), pos) is not None


def plausible(text: str, m: Mention) -> bool:
    """Reject tokens that are ordinary words or abbreviations: the article "A"/"a" and the pronoun "I"
    (before a lowercase word or after a comma), ``S.D.``, bare letters and ``A.`` inside a sentence (``5 A``,
    ``in A.``). Tokens believable only as the next label of the series are marked weak."""
    if _other_figure_before(text, m.start):
        return False  # "Figure 2(A)", "Fig. 3 A": a panel of another figure
    if m.style == "bare" and m.before == "none":
        return False
    if m.style == "punct" and m.before == "none" and text[m.end - 1] != ":":
        return False
    if m.style == "punct" and char_before(text, m.start) == "(" and text[m.end - 1] != ":":
        return False
    if m.style == "bare":
        if m.before == "weak" and char_before(text, m.start) != ",":
            return False
        nxt = _next_word(text, m.end)
        first = m.items[0][0]
        if first in ("A", "a", "I") and len(m.items) == 1 and m.items[0][1] is None:
            if not nxt or nxt[0].islower() or m.before != "strong":  # ", a 4-mm metastasis": an article
                return False
        if nxt[:1] in ".,;:)" or not nxt:
            return False
    if m.style == "close" and m.before == "none":
        m.weak = True  # "... tissue B) Text": believable only as the next label of the series
    if m.style == "punct" and m.before == "none" and text[m.end - 1] == ":":
        if char_before(text, m.start) not in (")", "]"):
            return False
        m.before, m.weak = "strong", True  # "(neurons and microglia) B: Colon": a missing full stop
    if m.style in ("punct", "bare", "close") and m.start >= 2 and text[m.start - 1] == ".":
        if text[m.start - 2].isalpha() and (m.start < 3 or not text[m.start - 3].isalpha()):
            return False  # "S.D.", "U.S." -- an abbreviation, not a label after a sentence
    return True


def choose_roles(text: str, mentions: list[Mention], series: LabelSeries) -> list[Mention]:
    """Decide prefix / postfix / inline for each token; return the anchors (prefix and postfix)."""
    starts = sentence_starts(text)
    order = {lab: i for i, lab in enumerate(series.labels)}

    for m in mentions:
        if m.style in ("punct",):
            m.role = "prefix" if m.before == "strong" and m.after == "text" else "inline"
        elif m.style == "bare":
            m.role = "prefix" if m.before in ("strong", "weak") and m.after == "text" else "inline"
        elif m.style == "close":
            m.role = "prefix" if m.after == "text" else "inline"
        else:  # paren, panelword
            if m.before in ("strong", "weak") and (m.after == "text" or _punct_then_text(text, m)):
                m.role = "prefix"
                if m.after == "punct":
                    m.end = _skip_punct(text, m.end)
            elif m.before == "none" and (m.after in ("punct", "end") or _conjunction_follows(text, m)):
                m.role = "postfix"
            else:
                m.role = "inline"

    # Tokens that only continue a series in reading order (bare letters, "A,") must come next in it.
    anchors: list[Mention] = []
    top = -1
    for m in mentions:
        if m.role == "inline":
            continue
        first = order[m.labels[0]]
        if m.weak and first != top + 1:
            m.role = "inline"
            continue
        anchors.append(m)
        top = max(top, max(order[lab] for lab in m.labels))

    anchors = _drop_backrefs(anchors, starts)
    anchors = _drop_global(anchors, series)
    anchored = {lab for a in anchors for lab in a.labels}
    # A label named only inline ("... from the prostate (a) and ...", "The case in (E) and (F) has ...")
    # is anchored at its first mention: before any other anchor or after a postfix one it closes the
    # text before it; inside the first sentence of a segment it starts the rest of that sentence;
    # elsewhere it claims its whole sentence.
    promoted = False
    fixed = sorted(anchors, key=lambda a: a.start)
    fixed_starts = [a.start for a in fixed]
    last_promoted: Mention | None = None  # mentions come in caption order: each promoted one is the latest
    for m in mentions:
        if m.role != "inline" or m.weak or m.style not in ("paren", "close", "panelword", "tail"):
            continue
        if set(m.labels) & anchored:
            continue
        i = bisect.bisect_left(fixed_starts, m.start)
        prev = fixed[i - 1] if i else None
        if last_promoted is not None and last_promoted.start < m.start:
            if prev is None or last_promoted.start > prev.start:
                prev = last_promoted
        if prev is None or prev.role == "postfix":
            m.role = "postfix"
        elif sentence_of(starts, m.start) <= prev.start:
            m.role = "prefix"
        else:
            m.role = "postfix" if m.after in ("punct", "end") else "sentence"
        anchors.append(m)
        anchored |= set(m.labels)
        promoted = True
        last_promoted = m
    if promoted:
        anchors.sort(key=lambda a: a.start)
        anchors = _drop_backrefs(anchors, starts)
    return anchors


_CONJUNCTIONS = ("and", "or", "but", "whereas", "while", "respectively")


def _conjunction_follows(text: str, m: Mention) -> bool:
    """``the prostate (a) and the penile specimen (b)``: the token closes a clause."""
    return _next_word(text, m.end).lower().strip(",;") in _CONJUNCTIONS


_PUNCT_THEN_TEXT_RE = re.compile(r"\s*[,:]\s*[^\s.;,:)]")
_PUNCT_RE = re.compile(r"\s*[,:]")


def _punct_then_text(text: str, m: Mention) -> bool:
    """``(i), 100 um`` / ``(C): text`` -- a comma or colon after the token, then text."""
    return _PUNCT_THEN_TEXT_RE.match(text, m.end) is not None


def _skip_punct(text: str, pos: int) -> int:
    m = _PUNCT_RE.match(text, pos)
    return m.end() if m else pos


def sentence_of(starts: list[int], pos: int) -> int:
    """Start offset of the sentence holding ``pos`` (``starts`` ascending)."""
    i = bisect.bisect_right(starts, pos)
    return starts[i - 1] if i else 0


def _drop_backrefs(anchors: list[Mention], starts: list[int]) -> list[Mention]:
    """Postfix tokens that refer back do not cut the caption: those naming only labels of the open
    segment or labels that already opened a segment earlier, and those in the first sentence of the
    open segment."""
    out: list[Mention] = []
    active: Mention | None = None
    opened: set[str] = set()
    for a in anchors:
        if a.role in ("prefix", "sentence"):
            out.append(a)
            active = a
            opened |= set(a.labels)
            continue
        if set(a.labels) <= opened:
            a.role = "inline"
            continue
        if active is not None and sentence_of(starts, a.start) <= active.start:
            a.role = "inline"
            continue
        out.append(a)
        active = None
    return out


def _drop_global(anchors: list[Mention], series: LabelSeries) -> list[Mention]:
    """A group naming every label (``Right kidney (A-F)``) is no cut when each label has its own token."""
    if len(series.labels) < 2:
        return anchors
    own = {lab for a in anchors if len(a.labels) < len(series.labels) for lab in a.labels}
    out = []
    for a in anchors:
        if len(a.labels) >= 2 and set(a.labels) >= set(series.labels) and set(a.labels) <= own:
            a.role = "inline"
            continue
        out.append(a)
    return out
