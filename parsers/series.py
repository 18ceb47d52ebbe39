"""Panel-label series: the one table of roman numerals used by label OCR, caption splitting and the demo."""

from __future__ import annotations

import re

_ROMAN_RE = re.compile(r"^(?=[ivxIVX])(x{0,3}|X{0,3})(ix|iv|v?i{0,3}|IX|IV|V?I{0,3})$")
_VALUES = {"i": 1, "v": 5, "x": 10}


def roman_numeral(n: int, upper: bool = False) -> str:
    """``n`` (1-39) as a roman numeral, lower case unless ``upper``."""
    out = ""
    for value, sym in ((10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        while n >= value:
            out += sym
            n -= value
    return out.upper() if upper else out


def roman_value(s: str) -> int | None:
    """The value of a well-formed, single-case roman numeral (``"iv"`` -> 4), else None."""
    if not s or not _ROMAN_RE.fullmatch(s) or not (s.islower() or s.isupper()):
        return None
    total, prev = 0, 0
    for ch in reversed(s.lower()):
        v = _VALUES[ch]
        total += -v if v < prev else v
        prev = max(prev, v)
    return total


#: Roman panel labels as printed in figures, in series order (i ... xii).
ROMAN: tuple[str, ...] = tuple(roman_numeral(n) for n in range(1, 13))
