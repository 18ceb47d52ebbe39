"""Sentences of a caption, and the sentences that are notes for every panel (scale bars, statistics, stains)."""

from __future__ import annotations

import functools
import re

from .text_scan import char_before

_ABBREV = {"fig", "figs", "e.g", "i.e", "vs", "al", "approx", "ca", "no", "nos", "dr", "st", "ref", "refs", "cf",
           "resp", "sp", "spp", "mag", "orig", "magn"}
_SENT_RE = re.compile(r"[.!?](?:[\"')\]]*)(?=\s+[\"'(\[]*[A-Z0-9*#\u00b1])|(?<=[a-z]{3})\.(?=[A-Z][a-z])")


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


def is_shared_sentence(sentence: str) -> bool:
    if _SHARED_RE.search(sentence) or _LEGEND_RE.match(sentence):
        return True
    return len(sentence.split()) <= 12 and bool(_NOTE_RE.search(sentence))
