"""Roles of label tokens: which open a segment (prefix), close one (postfix) or only refer back (inline)."""

from __future__ import annotations

import re

from .label_series import LabelSeries
from .sentences import sentence_starts
from .tokens import Mention

_JOINERS = {"and", "or", "while", "whereas", "but", "&", "with", "vs", "versus"}


def set_context(text: str, m: Mention) -> None:
    """Set ``before`` (what precedes the token) and ``after`` (what follows it)."""
    head = text[: m.start].rstrip()
    if not head:
        m.before = "strong"
    elif head[-1] in ".;:!?":
        m.before = "strong"
    elif head[-1] == ",":
        m.before = "weak"
    elif head[-1] == "(" and m.style == "punct" and text[m.end - 1] == ":":
        m.before = "strong"  # "(A and C: 100x; B and D: 400x)"
    elif m.style == "paren" and head[-1].isalpha() and m.start > 0 and not text[m.start - 1].isspace():
        m.before = "weak"  # "...tumorigenesis(a) H&E staining": a title glued to the first label
    else:
        word = re.search(r"([A-Za-z&]+)$", head)
        m.before = "weak" if word and word.group(1).lower() in _JOINERS else "none"
    rest = text[m.end :]
    if m.style in ("punct",):
        m.after = "text" if rest.strip() else "end"
        return
    stripped = rest.lstrip()
    if not stripped:
        m.after = "end"
    elif rest[:1] and not rest[:1].isspace() and m.style in ("paren", "close") and rest[0] in "-\u2013'":
        m.after = "other"
    elif stripped[0] in ".;,:":
        m.after = "punct"
    elif stripped[0] == ")":
        m.after = "other"
    else:
        m.after = "text"


def _next_word(text: str, pos: int) -> str:
    w = re.match(r"\s*([^\s]+)", text[pos:])
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


def plausible(text: str, m: Mention) -> bool:
    """Reject tokens that are ordinary words or abbreviations: the article "A"/"a" and the pronoun "I"
    (before a lowercase word or after a comma), ``S.D.``, bare letters and ``A.`` inside a sentence (``5 A``,
    ``in A.``). Tokens believable only as the next label of the series are marked weak."""
    if _OTHER_FIGURE_RE.search(text[: m.start]):
        return False  # "Figure 2(A)", "Fig. 3 A": a panel of another figure
    if m.style == "bare" and m.before == "none":
        return False
    if m.style == "punct" and m.before == "none" and text[m.end - 1] != ":":
        return False
    if m.style == "punct" and text[: m.start].rstrip()[-1:] == "(" and text[m.end - 1] != ":":
        return False
    if m.style == "bare":
        if m.before == "weak" and text[: m.start].rstrip()[-1:] != ",":
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
        if text[: m.start].rstrip()[-1:] not in (")", "]"):
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
    for m in mentions:
        if m.role != "inline" or m.weak or m.style not in ("paren", "close", "panelword", "tail"):
            continue
        if set(m.labels) & anchored:
            continue
        before = [a for a in anchors if a.start < m.start]
        prev = max(before, key=lambda a: a.start) if before else None
        if prev is None or prev.role == "postfix":
            m.role = "postfix"
        elif sentence_of(starts, m.start) <= prev.start:
            m.role = "prefix"
        else:
            m.role = "postfix" if m.after in ("punct", "end") else "sentence"
        anchors.append(m)
        anchored |= set(m.labels)
        promoted = True
    if promoted:
        anchors.sort(key=lambda a: a.start)
        anchors = _drop_backrefs(anchors, starts)
    return anchors


_CONJUNCTIONS = ("and", "or", "but", "whereas", "while", "respectively")


def _conjunction_follows(text: str, m: Mention) -> bool:
    """``the prostate (a) and the penile specimen (b)``: the token closes a clause."""
    return _next_word(text, m.end).lower().strip(",;") in _CONJUNCTIONS


def _punct_then_text(text: str, m: Mention) -> bool:
    """``(i), 100 um`` / ``(C): text`` -- a comma or colon after the token, then text."""
    rest = text[m.end :]
    return bool(re.match(r"\s*[,:]\s*[^\s.;,:)]", rest))


def _skip_punct(text: str, pos: int) -> int:
    m = re.match(r"\s*[,:]", text[pos:])
    return pos + m.end() if m else pos


def sentence_of(starts: list[int], pos: int) -> int:
    """Start offset of the sentence holding ``pos``."""
    s = 0
    for st in starts:
        if st <= pos:
            s = st
        else:
            break
    return s


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
