"""``panel2patch split-caption INPUT [--splitter NAME]``: cut captions into per-panel sub-captions.

INPUT is ``-`` (stdin) or a file in one of two forms, decided by its first non-blank line:

* JSONL, when that line starts with ``{``: one object per line with ``caption`` (a string), optionally
  ``id`` and ``labels`` (the panel labels read from the image, a list of strings); blank lines are
  skipped and a missing ``id`` becomes the line number;
* plain text otherwise: one caption per line, its id the line number (from 1); a blank line is an
  empty caption and gives an empty split.

For each caption one JSON object is printed to stdout, in input order: ``id``, ``labels`` (the labels
the split found, in caption order) and :meth:`~panel2patch.data.CaptionSplit.to_json` (preamble,
segments, shared, subcaptions, clauses). A line that cannot be read (not UTF-8, invalid JSON, a field of
the wrong type) is reported on stderr with its file and line number and skipped; the command goes on
and exits with status 1. Exit status 0 means every line was split.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from panel2patch.components import CaptionSplitter
from panel2patch.errors import Panel2PatchError

PROG = "panel2patch split-caption"


@dataclass
class CaptionLine:
    """One caption read from the input: ``labels`` is None when the input gives none."""

    id: str
    caption: str
    labels: list[str] | None
    line: int


class LineError(ValueError):
    """One input line cannot be used; the message says why and what to do."""


def read_captions(stream: BinaryIO, name: str, on_error: Callable[[str], None]) -> Iterator[CaptionLine]:
    """Captions of ``stream`` (bytes) in order. An unusable line is reported through ``on_error`` (a
    message naming ``name`` and the line number) when reached, and skipped."""
    raw_lines = stream.read().split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the newline that ends the last line
    raw_lines = [r.removesuffix(b"\r") for r in raw_lines]
    if raw_lines:
        raw_lines[0] = raw_lines[0].removeprefix(b"\xef\xbb\xbf")  # UTF-8 byte-order mark
    first = next((r for r in raw_lines if r.strip()), b"")
    jsonl = first.lstrip().startswith(b"{")
    for number, raw in enumerate(raw_lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 1].hex()
            on_error(
                f"{name}:{number}: not valid UTF-8 (byte 0x{bad} at column {exc.start + 1}); line skipped - "
                "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
            )
            continue
        if not jsonl:
            yield CaptionLine(id=str(number), caption=text, labels=None, line=number)
            continue
        if not text.strip():
            continue
        try:
            yield _from_json(text, number)
        except LineError as exc:
            on_error(f"{name}:{number}: {exc}; line skipped")


def _from_json(text: str, number: int) -> CaptionLine:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError(f"invalid JSON ({exc.msg} at column {exc.colno}); write one JSON object per line") from None
    except (ValueError, RecursionError) as exc:  # digits beyond Python's limit, nesting too deep
        raise LineError(f"unusable JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise LineError(f"expected a JSON object with 'caption', got {type(obj).__name__}")
    caption = obj.get("caption", "")
    if caption is None:
        caption = ""
    if not isinstance(caption, str):
        raise LineError(f"'caption' must be a string, got {type(caption).__name__}")
    labels = obj.get("labels")
    if labels is not None and (not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)):
        raise LineError("'labels' must be a list of strings (panel labels such as \"A\", \"b\", \"ii\") or null")
    fig_id = obj.get("id", number)
    if isinstance(fig_id, (dict, list)):
        raise LineError(f"'id' must be a string or a number, got {type(fig_id).__name__}")
    return CaptionLine(id=str(fig_id), caption=caption, labels=labels or None, line=number)


def split_record(splitter: CaptionSplitter, item: CaptionLine) -> dict[str, Any]:
    """The output object of one caption: ``id``, ``labels`` found, then the split's JSON."""
    split = splitter.split(item.caption, item.labels)
    return {"id": item.id, "labels": list(split.segments), **split.to_json()}


def main(args: argparse.Namespace) -> int:
    """Run the command; ``args.input`` is a path or ``-``, ``args.splitter`` a registered splitter name."""
    from panel2patch import manager

    splitter = manager.build("caption_splitters", args.splitter, {})
    if args.input == "-":
        stream, name = sys.stdin.buffer, "<stdin>"
    else:
        path = Path(args.input)
        if not path.is_file():
            raise Panel2PatchError(
                f"{path}: no such file; give a text file (one caption per line), a JSONL file "
                "(id, caption, labels) or '-' to read stdin"
            )
        stream, name = path.open("rb"), str(path)
    errors: list[str] = []

    def report(message: str) -> None:
        errors.append(message)
        print(f"{PROG}: {message}", file=sys.stderr)

    ascii_only = (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "") != "utf8"
    try:
        for item in read_captions(stream, name, report):
            record = split_record(splitter, item)
            sys.stdout.write(json.dumps(record, ensure_ascii=ascii_only) + "\n")
            sys.stdout.flush()
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if errors:
        print(f"{PROG}: {len(errors)} line(s) skipped", file=sys.stderr)
    return 1 if errors else 0
