"""Roles of label tokens: which open a segment (prefix), close one (postfix) or only refer back (inline)."""

from __future__ import annotations

import bisect
import re

from .label_series import LabelSeries
from .sentences import sentence_starts
from .text_scan import char_after, char_before, last_nonspace
from .tokens import Mention

_JOINERS = {"and", "or", "while", "whereas", "but", "&", "with", "vs", "versus"}


def set_context_before(text: str, m: Mention) -> str:
    """What precedes the token: ``strong`` (nothing, or ``. ; : ! ?``), ``weak`` (a comma or a joiner such as
    "and"), else ``none``."""
    last = last_nonspace(text, m.start)
    head_end = text[last] if last >= 0 else ""
    if not head_end:
        return "strong"
    if head_end in ".;:!?":
        return "strong"
    if head_end == ",":
        return "weak"
    if head_end == "(" and m.style == "punct" and text[m.end - 1] == ":":
        return "strong"  # "(A and C: 100x; B and D: 400x)"
    if m.style == "paren" and head_end.isalpha() and m.start > 0 and not text[m.start - 1].isspace():
        return "weak"  # "...tumorigenesis(a) H&E staining": a title glued to the first label
    return "weak" if _word_ending_at(text, last + 1).lower() in _JOINERS else "none"


def set_context(text: str, m: Mention) -> None:
    """Set ``before`` (what precedes the token) and ``after`` (what follows it)."""
    m.before = set_context_before(text, m)
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
        if not _run_on_letter(text, m):
            return False
        m.before, m.weak, m.run_on = "strong", True, True  # a missing full stop before the letter
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


def _run_on_letter(text: str, m: Mention) -> bool:
    """``A Liver section stained for collagen B Kidney section``: a lone letter between a lower-case word
    and a capitalised one, in captions whose labels are bare letters without punctuation. Believable only
    as the next label of the series (weak), and only where a bare label also opens the caption or a
    sentence (checked by the splitter)."""
    if len(m.items) != 1 or m.items[0][1] is not None or len(m.items[0][0]) != 1:
        return False
    nxt = _next_word(text, m.end)
    if len(nxt) < 2 or not nxt[0].isupper() or not nxt[1].islower():
        return False
    end = last_nonspace(text, m.start) + 1
    begin = end
    while begin > 0 and end - begin < 40 and text[begin - 1].isalpha():
        begin -= 1
    word = text[begin:end]
    return len(word) > 1 and word.islower() and word not in _REFERRING | _PREPOSITIONS | {"the", "an", "and", "or"}


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
            elif m.style == "paren" and m.before == "none" and _missing_full_stop(text, m):
                # "... n = 5 in HFD (F) TET1 levels": the next label after a missing full stop
                m.role, m.weak, m.before = "prefix", True, "strong"
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
            if m.style == "paren" and m.before == "strong" and m.after == "text":
                # not the missing full stop it looked like (a parenthesised token is otherwise never weak)
                m.before, m.weak = set_context_before(text, m), False
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
    return merge_enumerations(text, mentions, anchors, starts)


# Words after which a label token refers back ("as in (A)", "cells in (B) were used") rather than opens text.
_REFERRING = {"in", "as", "see", "from", "to", "than", "like", "with", "by", "on", "at", "vs", "versus", "cf"}
# A segment opened mid-sentence that starts with one of these continues the text before it:
# "(F) cell counts at day 4 and (G) at day 7".
_PREPOSITIONS = {
    "for",
    "at",
    "in",
    "on",
    "with",
    "without",
    "after",
    "before",
    "from",
    "of",
    "by",
    "to",
    "under",
    "during",
    "over",
    "upon",
    "within",
    "versus",
    "vs",
}
_AUX_RE = re.compile(r"\b(?:are|is|were|was|have\s+been|has\s+been|had\s+been|can\s+be|could\s+be|will\s+be)\b")
_WORD_RE = re.compile(r"[A-Za-z]+")


def _word_before(text: str, pos: int) -> str:
    return _word_ending_at(text, last_nonspace(text, pos) + 1).lower()


def _missing_full_stop(text: str, m: Mention) -> bool:
    """``n = 5 in HFD (F) TET1 levels ...``: a label token between a word and a capitalised word, not after a
    referring word ("cells in (B) Were"); believable only as the next label of the series."""
    nxt = _next_word(text, m.end)
    if not nxt or not (nxt[0].isupper() or nxt[0].isdigit()) or len(m.labels) != 1:
        return False
    return _word_before(text, m.start) not in _REFERRING | _PREPOSITIONS | {"and", "or", "the", "a", "an"}


def merge_enumerations(text: str, mentions: list[Mention], anchors: list[Mention], starts: list[int]) -> list[Mention]:
    """Sentences that enumerate panels around one statement are not cut between them; the whole sentence
    (and the text after it, up to the next anchor) belongs to every panel it names:

    * an ellipsis: ``(F) Cell counts at day 4 and (G) at day 7.``;
    * a shared predicate: ``(A, B) Primary cells, (C) cell lines and (D) organoids were infected ...``;
    * a shared head: ``... . Data are mean ± SD of technical (G, H) duplicates and (I, K) triplicates.``;
    * a group and its own members: ``(A, B) Plots for the identification of (A) B cells and (B) plasma cells``
      stays one group segment (whose back-references may still partition it, see ``partition_groups``).

    Sentences with a top-level ``;`` between the tokens are lists of separate panels and stay cut.
    """
    anchor_ids = {id(a) for a in anchors}
    # runs of tokens in one sentence, each run opened by a token after ". ; :" or at the sentence start
    by_sentence: dict[int, list[Mention]] = {}
    run_start = -1
    for m in mentions:
        if not m.labels or m.style == "position":
            continue
        sent = sentence_of(starts, m.start)
        if m.before == "strong":
            run_start = m.start
        elif sent > run_start:
            run_start = sent
        by_sentence.setdefault(run_start, []).append(m)
    first_anchor = anchors[0].start if anchors else None
    dropped: set[int] = set()
    replaced: dict[int, Mention] = {}
    runs = sorted(by_sentence)
    for r, sent in enumerate(runs):
        group = by_sentence[sent]
        cuts = [m for m in group[1:] if id(m) in anchor_ids and m.role == "prefix"]
        if not cuts or any(m.before != "weak" for m in cuts):
            continue  # no cut inside the sentence, or one that a promoted back-reference made
        toks = [group[0]] + [
            m
            for m in group[1:]
            if id(m) in anchor_ids
            or (m.role == "inline" and m.after == "text" and _word_before(text, m.start) not in _REFERRING)
        ]
        if any(t.role == "postfix" for t in toks):
            continue
        i = bisect.bisect_right(starts, toks[0].start)
        sent_end = starts[i] if i < len(starts) else len(text)
        if r + 1 < len(runs):
            sent_end = min(sent_end, by_sentence[runs[r + 1]][0].start)
        if ";" in _top_level(text, toks[0].end, toks[-1].start):
            continue
        first = toks[0]
        head = text[sent : first.start]
        has_head = bool(_WORD_RE.search(head))
        if has_head and (first_anchor is None or first_anchor >= sent):
            continue  # the head is the preamble
        bounds = [t.end for t in toks]
        ends = [t.start for t in toks[1:]] + [sent_end]
        texts = [text[b:e] for b, e in zip(bounds, ends)]
        if not has_head and id(first) in anchor_ids and first.role == "prefix":
            group_labels = set(first.labels)
            if len(group_labels) >= 2 and all(set(t.labels) <= group_labels for t in toks[1:]):
                for t in cuts:
                    dropped.add(id(t))  # members of the group opened at the sentence start
                continue
        ellipsis = any(
            id(t) in anchor_ids and (_WORD_RE.match(texts[j].lstrip()) or [""])[0].lower() in _PREPOSITIONS
            for j, t in enumerate(toks)
            if j
        )
        predicate = False
        for j in range(1, len(toks)):
            if _AUX_RE.search(texts[j]):
                predicate = not any(_AUX_RE.search(x) for x in texts[:j])
                break
        if not (ellipsis or predicate or has_head):
            continue
        names = tuple(dict.fromkeys(lab for t in toks for lab in t.labels))
        for t in toks:
            if id(t) in anchor_ids:
                dropped.add(id(t))
        merged = Mention(
            first.start,
            first.end,
            first.items,
            first.style,
            names,
            first.before,
            first.after,
            "sentence" if has_head or first.role != "prefix" else "prefix",
            first.weak,
        )
        replaced[id(first)] = merged
        first.role = "inline"
    if not dropped and not replaced:
        return anchors
    out = []
    for a in sorted(anchors + [replaced[k] for k in replaced if k not in anchor_ids], key=lambda x: x.start):
        if id(a) in replaced:
            out.append(replaced[id(a)])
        elif id(a) in dropped:
            a.role = "inline"
            a.merged = True
        else:
            out.append(a)
    for m in mentions:
        if id(m) in replaced:
            m.merged = True
    return out


def _top_level(text: str, start: int, end: int) -> str:
    """``text[start:end]`` without what is inside parentheses (bounded by the span)."""
    depth, out = 0, []
    for ch in text[start:end]:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


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
