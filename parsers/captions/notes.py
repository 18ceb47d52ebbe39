"""Trailing notes of a caption: which panels each one is about, and which belong to none.

The trailing shared sentences (scale bars, statistics, legends) are cut into notes: sentences, and the
``;``-clauses of a sentence outside parentheses (``Statistics: t-test (A, C); ANOVA (B).``). A note that
names panels (``Data are mean ± SD (A, B).``, ``Scale bars in b-e, 100 µm``) belongs to those panels; a
statistics note without names right after such a note keeps its panels (``Data are mean ± SD in (A, E).
P values from a t test.``); a statistics note without names is about the panels whose own text plots
numbers (quantification, ``n = 5``, graphs, curves), when some but not all of them do; boilerplate at the
end ("Source data are available online for this figure.", "See also Appendix Fig. S1.") belongs to no
panel and is dropped; every other note is shared by all.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from .sentences import is_boilerplate, semicolon_spans, sentence_starts
from .tokens import _LIST, _items

# A statistics note: it continues the panels of the statistics note before it.
_STATS_RE = re.compile(
    r"\bp[-\s]?values?\b|\bp\s*[<=>\u2264\u2265]|\bt[-\s]?tests?\b|anova|wilcoxon|mann[-\s]whitney|kruskal|"
    r"log[-\s]rank|tukey|bonferroni|statistic|significan|\bmeans?\s*(?:\u00b1|\+/?-)|\u00b1|\bs\.?e\.?m\b|\bs\.?d\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Ref:
    """A label reference in the caption: span and the labels it names."""

    start: int
    end: int
    labels: tuple[str, ...]


def note_units(text: str, start: int, end: int) -> list[tuple[int, int, int]]:
    """Sentences of ``text[start:end]``, cut after each ``;`` outside parentheses; stripped, non-empty, each
    as ``(start, end, sentence number)``."""
    starts = sentence_starts(text)
    lo = bisect.bisect_right(starts, start)
    hi = bisect.bisect_left(starts, end)
    bounds = [start] + starts[lo:hi] + [end]
    units = [(a, b, k) for k, (s, e) in enumerate(zip(bounds, bounds[1:])) for a, b in semicolon_spans(text, s, e)]
    out = []
    for s, e, k in units:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e, k))
    return out


def _named(refs: list[Ref], starts: list[int], s: int, e: int) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for k in range(bisect.bisect_left(starts, s), len(refs)):
        r = refs[k]
        if r.start >= e:
            break
        if r.end <= e:
            names.update(dict.fromkeys(r.labels))
    return tuple(names)


# What a panel shows, read from its own text: plotted numbers, or an image.
_QUANT_RE = re.compile(
    r"quantif|\bn\s*=\s*\d|\bgraphs?\b|\bplots?\b|\bhistograms?\b|percentages?\b|proportions?\b|\bratios?\b|"
    r"\bmeasured\b|\bcounts?\b|\bscores?\b|\bcurves?\b|\bfold\b|\bmeans?\b|survival|kaplan|heat\s*maps?\b|"
    r"\bqpcr\b|rt-qpcr|\bassays?\b|\bstatistic|\bp\s*[<=>\u2264]",
    re.IGNORECASE,
)
_IMAGE_RE = re.compile(
    r"\bimages?\b|\bimaging\b|micrograph|microscop|immuno(?:stain|fluoresc|histochem|cytochem)|\bstain(?:ed|ing|s)?\b|"
    r"h\s*&\s*e\b|\bsections?\b|confocal|tomogra|\bviews?\b|magnification|photograph|\bslices?\b|fluorescen|"
    r"\bbiops|\bhistolog|\btissues?\b|\bcells?\b",
    re.IGNORECASE,
)
_SCALE_RE = re.compile(
    r"scale\s*bars?|\bbars?\s*[,:=]|\bbars?\s+(?:represents?|indicates?|=|in\b)|magnification", re.IGNORECASE
)


# A note on the statistics of plotted data: error measures, tests, significance thresholds.
_STATS_NOTE_RE = re.compile(
    r"\bmeans?\s*(?:\u00b1|\+/?-|\(?\s*s\.?[ed]\.?)|\u00b1\s*s\.?[ed]|\bs\.?e\.?m\b|\bs\.?d\.?(?![a-z])|"
    r"standard\s+(?:deviation|error)|error\s+bars?|\bt[-\s]?tests?\b|anova|wilcoxon|mann[-\s]whitney|kruskal|"
    r"log[-\s]rank|tukey|bonferroni|dunnett|sidak|fisher\W?s\s+exact|chi[-\s]?squared?\s+test|"
    r"statistical(?:ly)?\s+(?:analys|significan|test|comparison)|\*+\s*p\s*[<\u2264]|"
    r"\bp[-\s]?values?\s+(?:were|was|are|is)\b|significan\w*\s+(?:was|were|is|are)\s+(?:determined|assessed|calculated)",
    re.IGNORECASE,
)


def _typed_targets(unit: str, shows: dict[str, str]) -> tuple[str, ...] | None:
    """The panels an unnamed statistics note is about: those whose own text plots numbers. None (every
    panel) unless that picks out some panels but not all, or the note is about something else too."""
    if not shows or not _STATS_NOTE_RE.search(unit) or _SCALE_RE.search(unit) or _IMAGE_RE.search(unit):
        return None
    picked = tuple(lab for lab, own in shows.items() if _QUANT_RE.search(own))
    return picked if picked and len(picked) < len(shows) else None


def classify_notes(
    text: str, start: int, end: int, refs: list[Ref], every: set[str], shows: dict[str, str] | None = None
) -> list[tuple[tuple[int, int], tuple[str, ...] | None]]:
    """The notes of ``text[start:end]`` with their panels: ``None`` for shared by all, ``()`` for none."""
    starts = [r.start for r in refs]
    units = note_units(text, start, end)
    sentences: dict[int, tuple[int, int]] = {}
    for s, e, k in units:
        sentences[k] = (sentences[k][0], e) if k in sentences else (s, e)
    typed_by_sentence: dict[int, tuple[str, ...] | None] = {}
    out: list[tuple[tuple[int, int], tuple[str, ...] | None]] = []
    scope: tuple[str, ...] | None = None
    for s, e, k in units:
        unit = text[s:e]
        names = _named(refs, starts, s, e)
        stats = _STATS_RE.search(unit) is not None
        if names and not set(names) >= every:
            out.append(((s, e), names))
            scope = names if stats else None
        elif scope is not None and stats and not names:
            out.append(((s, e), scope))
        else:
            if k not in typed_by_sentence:  # a statistics note is typed as a whole sentence
                ss, se = sentences[k]
                whole = text[ss:se]
                typed_by_sentence[k] = None if _named(refs, starts, ss, se) else _typed_targets(whole, shows or {})
            typed = typed_by_sentence[k]
            out.append(((s, e), typed))
            scope = typed if stats else None
    # boilerplate at the very end describes no panel
    k = len(out)
    while k > 0 and is_boilerplate(text[out[k - 1][0][0] : out[k - 1][0][1]]):
        k -= 1
    return out[:k] + [(span, ()) for span, _ in out[k:]]


def spread_notes(
    text: str, span: tuple[int, int], refs: list[Ref], every: list[str], shows: dict[str, str] | None = None
) -> tuple[list[tuple[int, int, tuple[str, ...]]], tuple[int, int] | None]:
    """Cut the trailing shared text ``span`` into notes: ``(pieces, shared)``, where ``pieces`` are
    ``(start, end, labels)`` of the notes about some panels (notes shared by all that are not next to the
    other shared ones included, with ``every`` as labels) and ``shared`` the longest run of consecutive notes
    shared by all (None when there is none). Dropped notes are in neither."""
    notes = classify_notes(text, span[0], span[1], refs, set(every), shows)
    runs: list[list[tuple[int, int]]] = []
    prev_shared = False
    for unit, names in notes:
        if names is None:
            if prev_shared:
                runs[-1].append(unit)
            else:
                runs.append([unit])
        prev_shared = names is None
    best = max(runs, key=lambda r: r[-1][1] - r[0][0]) if runs else None
    pieces: list[tuple[int, int, tuple[str, ...]]] = []
    for (s, e), names in notes:
        if names is None:
            if best is not None and best[0][0] <= s < best[-1][1]:
                continue
            names = tuple(every)
        if names:
            pieces.append((s, e, names))
    shared = (best[0][0], best[-1][1]) if best else None
    return pieces, shared


def relaxed_refs(text: str, start: int, end: int, expand) -> list[Ref]:
    """References in running text that label tokens leave out: ``in b-e``, ``for A and B``, ``panels C-E``
    (``expand(a, b)`` maps an item to labels, or None). A lone ``a``, ``A`` or ``I`` is an article or a pronoun."""
    out = []
    for m in re.finditer(
        rf"(?<![A-Za-z])(?:in|for|of|from|panels?)\s+(?P<list>{_LIST})(?![A-Za-z0-9])", text[start:end]
    ):
        items = _items(m.group("list"))
        if len(items) == 1 and items[0][1] is None and items[0][0] in ("a", "A", "I"):
            continue
        labels: list[str] = []
        for a, b in items:
            got = expand(a, b)
            if not got:
                labels = []
                break
            labels.extend(got)
        if labels:
            out.append(Ref(start + m.start("list"), start + m.end("list"), tuple(dict.fromkeys(labels))))
    return out
