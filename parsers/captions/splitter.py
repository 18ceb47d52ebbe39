"""Caption splitter ``label_splitter``: cut a figure caption by its panel labels.

The caption is scanned for label tokens: ``(A)``, ``A)``, ``A.``, ``A:``, ``A,``, Nature-style bare
``a`` / ``a, b`` / ``c–e``, groups ``(A and B)`` / ``(B, C)`` / ``((a), (b))``, ranges ``A–C`` / ``c-e`` /
``(i)–(iii)``, sub-panels ``B1`` / ``A1/A2`` and roman numerals. Which tokens are labels is decided by the
label series: the labels read from the image when given, else the longest run of consecutive letters
(or roman numerals) that the caption's unambiguous tokens name; easily confused tokens (bare letters,
``A,``, the article "A", the pronoun "I") count only where they continue that series in reading order,
and ``Fig. 2A``, ``S.D.``, ``H&E``, units and ``(n = 5)`` never do. Each token then plays one role:

* **prefix** opens a segment (``(B) Text``): the text after it, up to the next label token, belongs to
  the labels it names;
* **postfix** closes one (``Text (b); more text (c).``): the text since the previous token belongs to it;
* **inline** is a back-reference inside a segment (``same case as (A) with``) and cuts nothing. Inside a
  group segment, back-references that name disjoint parts of the group, in order and covering all of it,
  attach their phrases to those panels: ``c–e SEM images of BM (c), PM (d) and CM (e)`` gives ``c``
  "SEM images of BM", ``d`` "PM", ``e`` "and CM".

Contract (exact for prefix-style captions): ``preamble`` is the text before the first label token;
``segments[L]`` is the text after each token naming ``L`` up to the next label token, with the token
removed and whitespace stripped (texts of several tokens naming ``L`` are joined with single spaces; a
group or range gives the same text to each label it names); ``shared`` holds the trailing sentences of
the last segment that are notes for every panel (scale bars, magnification, statistics, stains,
abbreviation legends). Segments are keyed by the label as printed (or as given), in caption order. When
the caption names no panel label, position words (``Top:``, ``(left)``, ``Lower panels ...``) cut it
instead, keyed by the lower-case phrase (``"top"``, ``"upper left"``); a caption with neither is all
``preamble`` apart from its trailing shared notes. :meth:`LabelCaptionSplitter.assign` pairs panels with
segments: by printed label, and position segments with the panels their words describe.

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

from .assembly import Cut, assemble, partition_groups, segment_texts, shared_start
from .clauses import marker_clauses
from .label_series import LabelSeries, infer_series
from .positions import assign_positions, position_mentions
from .roles import assign_labels, choose_roles, plausible, set_context
from .tokens import scan_tokens


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
        mentions = scan_tokens(text)
        for m in mentions:
            set_context(text, m)
        mentions = [m for m in mentions if plausible(text, m)]
        if labels:
            series = LabelSeries([str(lab) for lab in labels if str(lab).strip()])
        else:
            series = infer_series(mentions)
        mentions = assign_labels(mentions, series) if series.labels else []
        anchors = choose_roles(text, mentions, series) if mentions else []
        if not anchors:
            anchors = position_mentions(text)
            mentions = list(anchors)
        if not anchors:
            return self._unlabelled(text, list(series.labels) if labels else [])
        cut = assemble(text, anchors, len({lab for a in anchors for lab in a.labels}), self.shared_by_length)
        partition_groups(text, cut, [m for m in mentions if m.role == "inline" and m.style in ("paren", "tail")])
        preamble, segments, shared = segment_texts(text, cut, list(series.labels))
        clauses = marker_clauses(text, cut, mentions, list(segments))
        return CaptionSplit(caption=text, preamble=preamble, segments=segments, shared=shared, clauses=clauses)

    @staticmethod
    def _unlabelled(text: str, labels: list[str]) -> CaptionSplit:
        """No label token: the caption is the preamble, minus trailing shared notes ("Scale bar, 1 mm.")."""
        end = len(text.rstrip())
        shared_from = shared_start(text, 0, end, 0)
        cut = Cut(preamble=(0, shared_from if shared_from is not None else end))
        if shared_from is not None:
            cut.shared = (shared_from, end)
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
