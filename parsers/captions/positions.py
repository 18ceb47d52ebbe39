"""Position words (``Top:``, ``(left)``): segments of captions that name no label, and the panels they describe."""

from __future__ import annotations

import re
from collections.abc import Sequence

from panel2patch.data import CaptionSplit, Figure, Panel
from panel2patch.parsers.boxes import box_center

from .roles import set_context
from .text_scan import char_after, char_before
from .tokens import Mention

#: The words a position segment key is made of (``"upper left"``).
POSITION_WORDS = ("top", "bottom", "left", "right", "upper", "lower", "middle", "center", "centre")

_POS = r"(?:top|bottom|upper|lower|middle|center|centre|left|right)"
_POS_RE = re.compile(
    rf"(?<![A-Za-z])(?P<the>the\s+)?(?P<pos>{_POS}(?:[\s-]+(?:left|right|middle|center|centre))?)"
    rf"(?P<noun>\s+(?:panels?|rows?|columns?|images?|parts?|pictures?))?(?P<punct>\s*[:,]|\))?",
    re.IGNORECASE,
)


def position_mentions(text: str) -> list[Mention]:
    """Position phrases that open a segment (``Top: ...``, ``(left) ...``), keyed by the lower-case phrase."""
    out = []
    for m in _POS_RE.finditer(text):
        punct = m.group("punct")
        noun = m.group("noun")
        if not punct and not noun or (m.group("the") and not noun):
            continue
        mention = Mention(m.start(), m.end(), [], "position")
        key = re.sub(r"[\s-]+", " ", m.group("pos").lower())
        mention.labels = (key,)
        set_context(text, mention)
        paren_open = char_before(text, m.start()) == "("
        if punct and punct.strip() == ")" and not paren_open:
            continue
        if paren_open and punct and punct.strip() == ")":
            mention.start = text.rindex("(", 0, m.start())
            after = char_after(text, m.end())
            mention.after = "text" if after and after not in ".;,:)" else "punct"
            head_end = char_before(text, mention.start)
            mention.before = "strong" if not head_end or head_end in ".;:," else "none"
        if mention.before == "strong" and mention.after == "text":
            mention.role = "prefix"
            out.append(mention)
    return out


def position_words(key: str) -> list[str] | None:
    """The position words of a segment key made only of them (``"upper left"``), else None."""
    words = key.lower().split()
    if not words or not all(w in POSITION_WORDS for w in words):
        return None
    return words


def panel_at(panels: Sequence[Panel], words: list[str], width: int, height: int) -> Panel | None:
    """The panel that position words such as ``["upper", "left"]`` describe best (the first of equals)."""
    if not panels:
        return None

    def cost(panel: Panel) -> float:
        cx, cy = box_center(panel.box)
        x, y = cx / max(width, 1), cy / max(height, 1)
        terms = {"top": y, "upper": y, "bottom": -y, "lower": -y, "left": x, "right": -x}
        centre = abs(x - 0.5) + abs(y - 0.5)
        return sum(terms.get(w, centre) for w in words)

    return min(panels, key=cost)


def assign_positions(split: CaptionSplit, figure: Figure, assigned: dict[str, str]) -> None:
    """Add to ``assigned`` (``{panel id: segment key}``) a panel for each position segment, in segment order:
    the panel not yet assigned that the segment's words describe best."""
    free = [p for p in figure.panels if p.id not in assigned]
    for key in split.segments:
        words = position_words(key)
        if words is None:
            continue
        panel = panel_at(free, words, figure.width, figure.height)
        if panel is not None:
            assigned[panel.id] = key
            free.remove(panel)
