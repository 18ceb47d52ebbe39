"""Looking around an offset of a caption without copying the text before or after it."""

from __future__ import annotations


def last_nonspace(text: str, pos: int) -> int:
    """Index of the last non-whitespace character before ``pos`` (-1 when there is none)."""
    i = pos - 1
    while i >= 0 and text[i].isspace():
        i -= 1
    return i


def char_before(text: str, pos: int) -> str:
    """``text[:pos].rstrip()[-1:]``: the last non-whitespace character before ``pos``, or ``""``."""
    i = last_nonspace(text, pos)
    return text[i] if i >= 0 else ""


def first_nonspace(text: str, pos: int) -> int:
    """Index of the first non-whitespace character at or after ``pos`` (``len(text)`` when there is none)."""
    n = len(text)
    while pos < n and text[pos].isspace():
        pos += 1
    return pos


def char_after(text: str, pos: int) -> str:
    """``text[pos:].lstrip()[:1]``: the first non-whitespace character at or after ``pos``, or ``""``."""
    i = first_nonspace(text, pos)
    return text[i] if i < len(text) else ""
