"""Sentences of a caption, and the sentences that are notes for every panel (scale bars, statistics, stains)."""

from __future__ import annotations

import functools
import re

from .text_scan import char_before

_ABBREV = {"fig", "figs", "e.g", "i.e", "vs", "al", "approx", "ca", "no", "nos", "dr", "st", "ref", "refs", "cf",
           "resp", "sp", "spp", "mag", "orig", "magn"}
_SENT_RE = re.compile(
    r"[.!?](?:[\"')\]]*)(?=\s+[\"'(\[]*[A-Z0-9*#\u00b1])|(?<=[a-z]{3})\.(?=[A-Z][a-z])|"
    # "... n = 7 in HFD Data are presented as ...": a missing full stop before a statistics note
    r"(?<=[\w)\]])(?=\s+(?:Data|Values|Error\s+bars?|Scale\s+bars?)\s+(?:are|were|is|was|represents?|show)\b)"
)


def sentence_starts(text: str) -> list[int]:
    """Offsets where sentences start (0 included); ``Fig.``, ``e.g.``, a label token such as ``A.`` and
    decimals do not end one."""
    return list(_sentence_starts_cached(text))


@functools.lru_cache(maxsize=64)
def _sentence_starts_cached(text: str) -> tuple[int, ...]:
    starts = [0]
    for m in _SENT_RE.finditer(text):
        word = re.search(r"([A-Za-z.]+)\.?$", text[max(0, m.start() - 12) : m.start() + 1])
        w = word.group(1).rstrip(".").lower() if word else ""
        if w in _ABBREV:
            continue
        if len(w) == 1 and text[m.start() - 1].isalpha():
            head_end = char_before(text, m.start() - 1)
            if not head_end or head_end in ".;:":  # "A. Text": the dot belongs to a label token
                continue
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos < len(text):
            starts.append(pos)
    return tuple(starts)


# Searched for a hit only; "\d[^.\d]*?magnification" hits exactly where "\d[^.]*?magnification" does
# (from the last digit before the word) and keeps the search linear.
_SHARED_RE = re.compile(
    r"scale\s*bars?|\bbars?\s*[,:=]|\bbars?\s+(?:represents?|indicates?|=|in\b)|"
    r"magnifications?\b[^.]*?\d|\d[^.\d]*?magnifications?\b|\bmag\.|\d\s*[x\u00d7*]?\s*objectives?|"
    r"\boriginal\s+\w*\s*[x\u00d7*]|^[x\u00d7*]\s*\d|"
    r"\bdata\s+(?:are|is|were|represent|show)|\bmeans?\s*(?:\u00b1|\+/?-|\+)|\u00b1|\+/-|\bs\.?e\.?m\b|\bs\.d\b|"
    r"error\s+bars?|\bp\s*[<=>\u2264]|\bp[-\s]values?|statistic|significan|\bt[-\s]test|anova|"
    r"abbreviations?|\b(?:are|is|were)\s+representative\s+of\b|"
    r"\b(?:reproduced|adapted|reprinted|modified)\s+(?:with\s+permission\s+)?from\b|with\s+permission\b|"
    r"\ball\s+(?:images|panels|pictures|photos|micrographs|photographs|sections|graphs|figures)|"
    r"\beach\s+(?:panel|graph|image)|^\(?see\s+(?:also\s+)?(?:fig|text|supp)",
    re.IGNORECASE,
)
# Short notes that apply to every panel: "Hematoxylin-eosin staining.", "Representative of 3 mice."
_NOTE_RE = re.compile(
    r"\bstain(?:ing|ed)?\b|counterstain|h\s*&\s*e\b|hematoxylin|haematoxylin|\beosin|representative",
    re.IGNORECASE,
)
# "AR, androgen receptor; BPH, benign ..." -- abbreviation legends
_LEGEND_RE = re.compile(r"^(?:[A-Za-z][\w+\-/]{0,12}\s*[,:=]\s*[^;]+;\s*){1,}")


# "A.U. arbitrary units, EB embryoid body, FC fold change": a legend without separators after the abbreviations.
_BARE_LEGEND_ITEM_RE = re.compile(r"([A-Z][\w.+\-/\u03b1-\u03c9]{0,10})\s+[a-z][^,;]{0,60}(?:[,;]\s*|\.?\s*$)")
# Notes that belong to no panel: where the source data are, pointers to other figures of the article.
_BOILERPLATE_RE = re.compile(
    r"^\W*(?:source\s+data\b[^.]{0,80}\bavailable|(?:see|cf\.?)\s+(?:also\s+)?(?:the\s+)?(?:appendix|expanded\s+view|"
    r"extended\s+data|supplementa|supporting|online|movies?\b|videos?\b|datasets?\b|tables?\b|figs?\b|figures?\b)|"
    r"related\s+to\s+(?:figs?\b|figures?\b|tables?\b))",
    re.IGNORECASE,
)
# "P = 0.0257." alone: the result of the panel just described, not a note for every panel.
_LONE_P_RE = re.compile(r"\(?\s*p\s*[<=>\u2264\u2265]\s*[\d.\s\u00d7x\u2212\-^]{1,20}\)?[.;,]?", re.IGNORECASE)


def is_boilerplate(sentence: str) -> bool:
    """Notes that describe no panel: "Source data are available online for this figure.", "See also Fig. S2"."""
    return _BOILERPLATE_RE.match(sentence) is not None


def is_legend(sentence: str) -> bool:
    """Abbreviation legends: "AR, androgen receptor; BPH, benign ..." or "EB embryoid body, FC fold change"."""
    if _LEGEND_RE.match(sentence):
        return True
    pos, items, abbreviations = 0, 0, 0
    while pos < len(sentence):
        m = _BARE_LEGEND_ITEM_RE.match(sentence, pos)
        if m is None or m.end() == pos:
            return False
        items += 1
        abbreviations += sum(ch.isupper() for ch in m.group(1)) >= 2 or m.group(1).endswith(".")
        pos = m.end()
    return items >= 3 and abbreviations * 3 >= items * 2


def is_shared_sentence(sentence: str) -> bool:
    if _LONE_P_RE.fullmatch(sentence):
        return False
    if _SHARED_RE.search(sentence) or is_legend(sentence) or is_boilerplate(sentence):
        return True
    return len(sentence.split()) <= 12 and bool(_NOTE_RE.search(sentence))


def semicolon_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``text[start:end]`` cut after each ``;`` outside parentheses, as ``(start, end)`` spans (unstripped)."""
    spans, depth, cur = [], 0, start
    for j in range(start, end):
        ch = text[j]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0:
            spans.append((cur, j + 1))
            cur = j + 1
    spans.append((cur, end))
    return spans
