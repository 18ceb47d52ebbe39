"""Caption splitter ``label_splitter``: cut a figure caption by its panel labels.

The caption is scanned for label tokens: ``(A)``, ``(a.)``, ``A)``, ``A.``, ``A:``, ``A,``, Nature-style
bare ``a`` / ``a, b`` / ``c–e`` (also run on from the text before: ``... collagen B Kidney ...``), groups
``(A and B)`` / ``(B, C)`` / ``((a), (b))``, ranges ``A–C`` / ``c-e`` / ``(i)–(iii)``, sub-panels ``B1`` /
``A1/A2`` / ``Aii`` / ``(Ai–iii)`` and roman numerals. Which tokens are labels is decided by the label
series: the labels read from the image when given, else the longest run of consecutive letters (or roman
numerals) that the caption's unambiguous tokens name; easily confused tokens (bare letters,
``A,``, the article "A", the pronoun "I") count only where they continue that series in reading order,
and ``Fig. 2A``, ``S.D.``, ``H&E``, units and ``(n = 5)`` never do. Each token then plays one role:

* **prefix** opens a segment (``(B) Text``): the text after it, up to the next label token, belongs to
  the labels it names;
* **postfix** closes one (``Text (b); more text (c).``): the text since the previous token belongs to it;
* **inline** is a back-reference inside a segment (``same case as (A) with``) and cuts nothing. Inside a
  group segment, back-references that name disjoint parts of the group, in order and covering all of it,
  attach their phrases to those panels when the last of them closes the sentence: ``c–e SEM images of BM
  (c), PM (d) and CM (e).`` gives ``c`` "SEM images of BM", ``d`` "PM", ``e`` "and CM".

Sentences that enumerate panels around one statement are not cut between them; the whole sentence goes to
every panel it names (see :func:`~panel2patch.parsers.captions.roles.merge_enumerations`): an ellipsis
(``(F) counts at day 4 and (G) at day 7``), a predicate after the last subject (``(A, B) Primary cells and
(C) cell lines were infected``), a head before the first label inside the caption, and a group with its
own members (``(A, B) Plots gating (A) T cells and (B) NK cells``). Text after the last back-reference of a
group (``... CM (e) showing pores``) is about the whole group, which then keeps one text.

Contract (exact for prefix-style captions): ``preamble`` is the text before the first label token;
``segments[L]`` is the text after each token naming ``L`` up to the next label token, with the token
removed and whitespace stripped (texts of several tokens naming ``L`` are joined with single spaces; a
group or range gives the same text to each label it names); ``shared`` holds the trailing sentences of
the last segment that are notes for every panel (scale bars, magnification, statistics, stains,
abbreviation legends). Trailing notes that name panels (``Data are mean ± SD (A, B).``, ``Statistics:
t-test (A); ANOVA (B).``, ``Scale bars in a and b ...``) go to the segments of those panels instead,
statistics notes without names to the panels whose own text plots numbers (when some but not all do),
and boilerplate at the end ("Source data are available online for this figure.", "See also Fig. S2.")
to no panel. Segments are keyed by the label as printed (or as given), in caption order. When the
caption names no panel label, position words (``Top:``, ``(left)``, ``Lower panels ...``) cut it
instead, keyed by the lower-case phrase (``"top"``, ``"upper left"``), or by the given position label
that says the same (``"top left"`` for ``Upper left:``); a caption with neither is all ``preamble`` apart
from its trailing shared notes. :meth:`LabelCaptionSplitter.assign` pairs panels with segments: by
printed label, and position segments with the panels their words describe.

Given labels constrain the split: a caption label the figure does not print still ends the segment
before it but gets no segment; sub-panel tokens (``A1``, ``Aii``) name their printed letter and a letter
names its printed sub-panels; numbers (``1.``, ``(2)``) are labels only when the given labels are
numbers; given roman numerals beside letters (``A, i, ii`` or ``Ai, Aii``) cut each letter's segment
again (``(A) Gut: (i) crypts, (ii) villi`` gives ``Ai`` "Gut: crypts,").

Marker clauses ("arrows indicate ...", "(arrowheads)", "* denotes ...", "boxed area is enlarged in C",
"dashed box shows ...", "inset shows ...", "circles mark ...") become
:class:`~panel2patch.data.MarkerClause` records: ``kind`` one of arrow/arrowhead/asterisk/box/
inset/circle/symbol, ``text`` the sentence or ``;``-clause (label tokens cut out), ``labels`` the panels
it belongs to: labels written next to the marker (``(arrows, c)``, ``(arrows) (d)``, ``arrows in (d)``),
else the segment holding the marker, else every panel when it sits in the preamble or the shared text.

Work grows linearly with caption length. One bound keeps it so: a label token lists at most
:data:`~panel2patch.parsers.captions.tokens.MAX_LIST_ITEMS` items (``A, B, C-E`` is three). A longer run
such as ``A, A, A, ...`` is read as a token of the first ``MAX_LIST_ITEMS`` items followed by ordinary
text, so nothing is lost: the rest of the run stays in the text of the segment (or preamble) it falls in.
"""

from __future__ import annotations

from collections.abc import Sequence

from panel2patch.components import CaptionSplitter
from panel2patch.data import CaptionSplit, Figure

from ..series import roman_value
from .assembly import Cut, _Piece, assemble, partition_groups, segment_texts, shared_start
from .clauses import marker_clauses
from .label_series import LabelSeries, _order_key, _split_label, infer_series
from .notes import Ref, relaxed_refs, spread_notes
from .positions import assign_positions, position_mentions, position_words
from .roles import assign_labels, choose_roles, plausible, set_context
from .tokens import Mention, scan_numbers, scan_tokens, sub_panel


class LabelCaptionSplitter(CaptionSplitter):
    """Label-anchored caption splitter (registered as ``label_splitter``, the default).

    ``split(caption, labels)``: ``labels`` are the panel labels read from the image (``["A", "B"]``),
    matched to caption tokens exactly or, when unambiguous, ignoring case; segments are keyed by those
    spellings. Labels the caption never names get no segment. With ``labels=None`` the label series is
    inferred from the caption. Never raises on text input; an empty caption gives an empty split.

    ``shared_by_length``: also treat the sentences of the last segment beyond the longest other segment
    (counted in sentences, with at least
    :data:`~panel2patch.parsers.captions.assembly.MIN_SEGMENTS_FOR_LENGTH_RULE` other segments) as shared,
    as in ``(A) Liver. (B) Lung. (C) Spleen. Arrows mark vessels.``. Off by default: it also moves a
    last panel's own extra sentences ("(C) Spleen. Arrows mark the capsule.") out of its segment.
    """

    def __init__(self, *, shared_by_length: bool = False) -> None:
        self.shared_by_length = shared_by_length

    def split(self, caption: str, labels: Sequence[str] | None) -> CaptionSplit:
        text = caption or ""
        if not text.strip():
            return CaptionSplit(caption=caption or "")
        given = [str(lab) for lab in labels if str(lab).strip()] if labels else []
        top, numerals = _nesting(given)
        result = self._split(text, top if numerals else given, labels)
        if numerals:
            _split_nested(self, result, given, numerals)
        return result

    def _split(self, text: str, given: list[str], labels: Sequence[str] | None) -> CaptionSplit:
        mentions = scan_tokens(text)
        if any(lab.isdigit() for lab in given):
            mentions = _with_numbers(mentions, scan_numbers(text))
        for m in mentions:
            set_context(text, m)
        mentions = [m for m in mentions if plausible(text, m)]
        if any(m.run_on for m in mentions) and not any(
            m.style == "bare" and m.before == "strong" and not m.run_on for m in mentions
        ):
            mentions = [m for m in mentions if not m.run_on]  # run-on letters need a bare label style
        ghosts: set[str] = set()
        if given:
            series, ghosts = _given_series(given, mentions)
        elif labels:
            series = LabelSeries([])  # labels were given, none of them readable: no caption label is one
        else:
            series = infer_series(mentions)
        mentions = assign_labels(mentions, series) if series.labels else []
        if ghosts and not any(set(m.labels) - ghosts for m in mentions):
            series, ghosts = LabelSeries(given), set()  # no given label is named: the caption's are not cut by
            mentions = assign_labels(mentions, series)
        anchors = choose_roles(text, mentions, series) if mentions else []
        if not anchors:
            anchors = position_mentions(text)
            mentions = list(anchors)
        if not anchors:
            return self._unlabelled(text, list(series.labels) if labels else [])
        cut = assemble(text, anchors, len({lab for a in anchors for lab in a.labels}), self.shared_by_length)
        backrefs = [m for m in mentions if m.role == "inline" and m.style in ("paren", "tail") and not m.merged]
        partition_groups(text, cut, backrefs)
        if cut.shared is not None:
            self._spread_shared(text, cut, mentions, series)
        preamble, segments, shared = segment_texts(text, cut, list(series.labels))
        if ghosts:  # labels of the caption the figure does not print: they cut, but get no segment
            segments = {lab: seg for lab, seg in segments.items() if lab not in ghosts}
        elif given and anchors[0].style == "position":
            segments = _position_keys(segments, given)
        clauses = marker_clauses(text, cut, mentions, list(segments))
        for c in clauses:
            c.labels = [lab for lab in c.labels if lab not in ghosts]
        return CaptionSplit(caption=text, preamble=preamble, segments=segments, shared=shared, clauses=clauses)

    @staticmethod
    def _spread_shared(text: str, cut: Cut, mentions: list, series: LabelSeries) -> None:
        """Give the trailing notes that name panels to those panels and drop the boilerplate at the end."""
        assert cut.shared is not None
        refs = [Ref(m.start, m.end, m.labels) for m in mentions if m.labels and m.style != "position"]
        if series.labels:
            refs += relaxed_refs(text, cut.shared[0], cut.shared[1], series.expand)
        refs.sort(key=lambda r: (r.start, r.end))
        every = list(dict.fromkeys(lab for p in cut.pieces for lab in p.labels))
        shows: dict[str, str] = {lab: "" for lab in every}
        for p in cut.pieces:
            for lab in p.labels:
                shows[lab] += " " + text[p.start : p.end]
        pieces, cut.shared = spread_notes(text, cut.shared, refs, every, shows)
        cut.pieces.extend(_Piece(s, e, labels) for s, e, labels in pieces)

    @staticmethod
    def _unlabelled(text: str, labels: list[str]) -> CaptionSplit:
        """No label token: the caption is the preamble, minus trailing shared notes ("Scale bar, 1 mm.")."""
        end = len(text.rstrip())
        shared_from = shared_start(text, 0, end, 0)
        cut = Cut(preamble=(0, shared_from if shared_from is not None else end))
        if shared_from is not None:
            _, cut.shared = spread_notes(text, (shared_from, end), [], [])
        preamble, _, shared = segment_texts(text, cut, [])
        return CaptionSplit(caption=text, preamble=preamble, shared=shared,
                            clauses=marker_clauses(text, None, [], labels))

    def assign(self, split: CaptionSplit, figure: Figure) -> dict[str, str]:
        """Which segment describes each panel: ``{panel id: segment key}``.

        Panels whose printed label keys a segment get it (as in the base class). Then each segment keyed
        by position words only (``"upper left"``), in segment order, goes to the panel not assigned yet
        that its words describe best. A figure of one panel gets no position segment: its whole caption
        describes it.
        """
        assigned = super().assign(split, figure)
        if len(figure.panels) > 1:
            assign_positions(split, figure, assigned)
        return assigned


def _given_series(given: list[str], mentions: list) -> tuple[LabelSeries, set[str]]:
    """The series of the given labels, with the labels of the caption's own series that none of them
    stands for ("ghosts"): a caption token naming a ghost still ends the segment before it."""
    series = LabelSeries(given)
    inferred = infer_series(mentions).labels
    ghosts = [lab for lab in inferred if not series.expand(lab, None)]
    if not ghosts:
        return series, set()
    ordered = given + ghosts
    keys = [_order_key(lab) for lab in ordered]
    if all(k[0] == 0 and _split_label(lab)[0] is not None for k, lab in zip(keys, ordered)):
        ordered = [lab for _, lab in sorted(zip(keys, ordered), key=lambda t: t[0])]
    return LabelSeries(ordered), set(ghosts) - set(given)


_POSITION_SYNONYMS = {"upper": "top", "lower": "bottom", "centre": "center", "middle": "center"}


def _position_words(key: str) -> frozenset[str] | None:
    words = position_words(key.replace("-", " "))
    return frozenset(_POSITION_SYNONYMS.get(w, w) for w in words) if words else None


def _position_keys(segments: dict[str, str], given: list[str]) -> dict[str, str]:
    """Key position segments by the given label that says the same (``"upper left"`` -> ``"top left"``)."""
    by_words = {}
    for lab in given:
        words = _position_words(lab.lower())
        if words is not None:
            by_words.setdefault(words, lab)
    out: dict[str, str] = {}
    for key, seg in segments.items():
        words = _position_words(key)
        new = by_words.get(words, key) if words is not None else key
        out[new] = f"{out[new]} {seg}" if new in out else seg
    return out


def _with_numbers(mentions: list[Mention], numbers: list[Mention]) -> list[Mention]:
    """Letter tokens and number tokens in caption order; where they overlap the letter token stays."""
    out: list[Mention] = []
    for m in sorted(mentions + numbers, key=lambda x: (x.start, x.items[0][0].isdigit())):
        if out and m.start < out[-1].end:
            continue
        out.append(m)
    return out


def _nesting(given: list[str]) -> tuple[list[str], list[str]]:
    """Given labels that mix panel letters with roman numerals of sub-panels (``A, B, i, ii`` or ``Ai, Aii,
    B``): ``(the labels that cut the caption, the numerals read inside a letter's segment)``; no numerals
    when the labels do not nest."""
    multi = any(len(lab) > 1 and roman_value(lab) for lab in given)
    romans = [lab for lab in given if roman_value(lab) and (len(lab) > 1 or multi)]
    letters = [lab for lab in given if lab not in romans]
    subs = [sub_panel(lab)[1] for lab in letters if sub_panel(lab) and not sub_panel(lab)[1].isdigit()]
    if not letters or not (romans or subs):
        return given, []
    return letters, list(dict.fromkeys(romans + subs))


def _split_nested(splitter: LabelCaptionSplitter, result: CaptionSplit, given: list[str], numerals: list[str]) -> None:
    """Split the segment of each letter again by the sub-panel numerals it names (``(A) Gut: (i) crypts,
    (ii) villi``): ``Ai`` (or a given ``i``) gets the letter's head, its own text and the letter's notes; the
    letter keeps its whole text. Letters whose sub-panels the caption names itself (``(Ai-ii) ...``) are
    cut at the top level already."""
    wanted = set(given)
    spelled = {sub[0] for m in scan_tokens(result.caption) for item in m.items for atom in item
               if atom and (sub := sub_panel(atom)) and not sub[1].isdigit()}
    done: set[str] = set()
    extra: dict[str, list[str]] = {}
    origin: dict[str, str] = {}  # sub-panel key -> the segment key after which it is listed
    for key, text in list(result.segments.items()):
        sub = sub_panel(key)
        letter = sub[0] if sub and not sub[1].isdigit() else key
        if letter in done or letter in spelled or not text or not (letter.isalpha() and len(letter) == 1):
            continue
        done.add(letter)
        names = {r: letter + r if letter + r in wanted else r for r in numerals}
        names = {r: k for r, k in names.items() if k in wanted}
        if not names:
            continue
        inner = splitter._split(text, list(names), list(names))
        for r in inner.segments:
            if r in names:
                extra.setdefault(names[r], []).append(inner.subcaption(r))
                origin.setdefault(names[r], key)
    if not extra:
        return
    segments: dict[str, str] = {}
    for key, text in result.segments.items():
        if key not in extra:
            segments[key] = text
        for name in extra:
            if origin[name] == key:
                segments[name] = " ".join(t for t in extra[name] if t)
    result.segments = segments
