"""Hostile inputs, generated: image files, index rows, tar shards, corpus members and recipes that a careless or
hostile user hands panel2patch, each with the outcome it must get.

Every generator writes below a given folder and returns what it wrote as :class:`Case` records: the figure id the
input must produce and the reject reason it must end with (None: it must become a corpus figure).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from corpus_factory import mine_recipe  # noqa: F401  (re-exported for the hostile tests)
from PIL import Image

CAPTION = "(A) Stained cells, arrows mark nuclei. (B) Western blot of the same cells."
BOMB_SIDE = 10_000  # a 100-megapixel image, above the default mine.max_pixels, in a few kB of PNG


def run_cli(*argv: str) -> tuple[int, str]:
    """``panel2patch ARGV`` in a process of its own, as a user runs it: ``(exit code, stderr)``, never a traceback."""
    done = subprocess.run([sys.executable, "-m", "panel2patch", *argv], capture_output=True, text=True, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr


@dataclass(frozen=True)
class Case:
    id: str
    reason: str | None
    what: str


def encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def figure_image(size: tuple[int, int] = (240, 120)) -> Image.Image:
    """Two framed panels side by side: something a parser can find panels in."""
    from PIL import ImageDraw

    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    w, h = size
    for x0 in (4, w // 2 + 2):
        draw.rectangle((x0, 4, x0 + w // 2 - 8, h - 5), fill=(60, 90, 160), outline=(0, 0, 0))
    return image


def image_files() -> dict[str, tuple[bytes, str | None, str]]:
    """``name -> (bytes, expected reject reason, what)`` of image files in every form figures come in."""
    good = figure_image()
    png = encoded(good, "PNG")
    rotated = encoded(figure_image((120, 240)), "JPEG", exif=_orientation(6))  # shows as 240x120 once rotated
    deep = Image.fromarray(__import__("numpy").linspace(0, 65535, 240 * 120, dtype="uint16").reshape(120, 240))
    return {
        "good.png": (png, None, "an ordinary PNG"),
        "rotated.jpg": (rotated, None, "a JPEG with EXIF orientation 6"),
        "deep.png": (encoded(deep, "PNG"), None, "a 16-bit greyscale PNG"),
        "alpha.png": (encoded(good.convert("RGBA"), "PNG"), None, "a PNG with alpha"),
        "cmyk.jpg": (encoded(good.convert("CMYK"), "JPEG"), None, "a CMYK JPEG"),
        "palette.gif": (encoded(good.convert("P"), "GIF"), None, "a palette GIF"),
        "tiny.png": (encoded(Image.new("RGB", (1, 1)), "PNG"), None, "a 1x1 image"),
        "empty.png": (b"", "undecodable_image", "an empty file"),
        "truncated.png": (png[: len(png) // 2], "undecodable_image", "a PNG cut in half"),
        "text.png": (b"<html>not an image</html>\n", "undecodable_image", "text named .png"),
        "bomb.png": (encoded(Image.new("1", (BOMB_SIDE, BOMB_SIDE)), "PNG"), "image_too_large", "a decompression bomb"),
        "garbage.jpg": (b"\xff\xd8\xff\xe0" + os.urandom(3000), "undecodable_image", "a JPEG header and noise"),
    }


def _orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def folder_source(root: Path) -> list[Case]:
    """A folder of images with a ``captions.jsonl`` index: every hostile row and file kind, one case each."""
    root.mkdir(parents=True)
    (root / "subdir").mkdir()
    (root.parent / "outside.png").write_bytes(encoded(figure_image(), "PNG"))
    os.symlink(root.parent / "outside.png", root / "link.png")
    (root / "large.png").write_bytes(encoded(figure_image(), "PNG") + b"\0" * 3_000_000)
    rows: list[bytes] = []
    cases: list[Case] = []

    def row(fields: dict | bytes, figure_id: str | None, reason: str | None, what: str) -> None:
        rows.append(fields if isinstance(fields, bytes) else json.dumps(fields).encode())
        cases.append(Case(figure_id if figure_id is not None else f"captions.jsonl:{len(rows)}", reason, what))

    for name, (data, reason, what) in image_files().items():
        (root / name).write_bytes(data)
        row({"id": name.replace(".", "_"), "image": name, "caption": CAPTION}, name.replace(".", "_"), reason, what)
    row({"id": "missing", "image": "nowhere.png", "caption": CAPTION}, "missing", "missing_image", "a missing file")
    row({"id": "dir", "image": "subdir", "caption": CAPTION}, "dir", "missing_image", "a directory as image")
    row({"id": "escape", "image": "../outside.png", "caption": CAPTION}, "escape", "unsafe_path", "a path out of root")
    row({"id": "absolute", "image": str(root.parent / "outside.png"), "caption": CAPTION}, "absolute", "unsafe_path",
        "an absolute path")
    row({"id": "link", "image": "link.png", "caption": CAPTION}, "link", "unsafe_path", "a symlink out of root")
    row({"id": "nul", "image": "good.png\0.txt", "caption": CAPTION}, "nul", "unsafe_path", "a NUL in the path")
    row({"id": "large", "image": "large.png", "caption": CAPTION}, "large", "file_too_large", "a file over max_bytes")
    row({"id": "a/b", "image": "good.png", "caption": CAPTION}, "a/b", "unsafe_id", "an id with a slash")
    row({"id": "..", "image": "good.png", "caption": CAPTION}, "..", "unsafe_id", "an id '..'")
    row({"id": "ctl\x01", "image": "good.png", "caption": CAPTION}, "ctl\x01", "unsafe_id", "a control character in the id")
    row({"id": "  ", "image": "good.png", "caption": CAPTION}, None, "missing_id", "a blank id")
    row({"id": "good_png", "image": "good.png", "caption": CAPTION}, "good_png", "duplicate_id", "a repeated id")
    row({"id": "nocap", "image": "good.png"}, "nocap", "missing_caption", "no caption field")
    row({"id": "blankcap", "image": "good.png", "caption": " \n "}, "blankcap", "missing_caption", "a blank caption")
    row({"id": "numcap", "image": "good.png", "caption": 42}, "numcap", "missing_caption", "a number as caption")
    row(b'{"id": "surrogate", "image": "good.png", "caption": "cells \\ud800 here"}', "surrogate", "unencodable_text",
        "a lone surrogate in the caption")
    row(b'{"id": "sur\\udfffid", "image": "good.png", "caption": "x"}', "sur\\udfffid", "unencodable_text",
        "a lone surrogate in the id (the reject names it escaped)")
    row({"id": "longcap", "image": "good.png", "caption": "A, " * 70_000}, "longcap", None, "a 210 kB caption")
    row({"id": "html", "image": "good.png", "caption": "<script>alert(1)</script> (A) <b>x</b>"}, "html", None,
        "HTML in the caption")
    row({"id": ["list"], "image": "good.png", "caption": CAPTION}, None, "bad_index_row", "a list as id")
    row({"id": "noimage", "caption": CAPTION}, "noimage", "missing_image", "no image field")
    row(b'{"id": "cut", "image": "good.png", "caption": "(A', None, "bad_index_row", "a cut-off JSON line")
    row(b'[1, 2, 3]', None, "bad_index_row", "a JSON array line")
    row(b'{"id": "latin", "image": "good.png", "caption": "caf\xe9"}', None, "bad_index_row", "a non-UTF-8 line")
    row(b"[" * 100_000 + b"]" * 100_000, None, "bad_index_row", "deeply nested JSON")
    row(b"\xef\xbb\xbfnot json at all", None, "bad_index_row", "a BOM and text")
    rows.append(b"   ")  # blank lines are no inputs
    (root / "captions.jsonl").write_bytes(b"\n".join(rows) + b"\n")
    return cases


def csv_source(root: Path) -> list[Case]:
    """A ``captions.csv`` index beside the images of :func:`folder_source`: quoting, encoding and column faults."""
    lines = [
        b"id,image,caption",
        b'csv_good,good.png,"(A) Cells, stained. (B) Blot."',
        b'csv_quote,good.png,"an unterminated quote',
        b"csv_after,good.png,the row after it survives",
        b"csv_latin,good.png,caf\xe9",
        b"csv_short,good.png",
        b'csv_multi,good.png,"a caption\nover two lines"',
    ]
    (root / "captions.csv").write_bytes(b"\n".join(lines) + b"\n")
    return [
        Case("csv_good", None, "an ordinary row"),
        Case("captions.csv:3", "bad_index_row", "an unterminated quote"),
        Case("csv_after", None, "the row after an unterminated quote"),
        Case("captions.csv:5", "bad_index_row", "a non-UTF-8 row"),
        Case("csv_short", "missing_caption", "a row without its caption column"),
        Case("csv_multi", None, "a quoted caption over two lines"),
    ]


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def webdataset_source(root: Path) -> list[Case]:
    """WebDataset shards with bad samples, a damaged header, a truncated member and a file that is no tar."""
    root.mkdir(parents=True)
    png, caption = encoded(figure_image(), "PNG"), CAPTION.encode()
    (root / "a-000.tar").write_bytes(tar_bytes([
        ("w1.png", png), ("w1.txt", caption),
        ("w2.png", png), ("w2.txt", "caf\xe9".encode("latin-1")),
        ("w3.txt", caption),
        ("w4.jpg", png), ("w4.txt", caption), ("w4.json", b'{"id": "PMC9_f4"}'),
        ("w5.png", png), ("w5.txt", caption), ("w5.json", b"{not json"),
        ("w6.png", b"\x89PNG\r\n\x1a\n broken"), ("w6.txt", caption),
    ]))
    good = tar_bytes([("d1.png", png), ("d1.txt", caption), ("d2.png", png), ("d2.txt", caption)])
    damaged = bytearray(good)
    second = good.index(b"d1.txt") + 512 + 512  # the header after the first member's data block
    damaged[second + 148 : second + 156] = b"garbage!"  # its checksum field
    (root / "b-000.tar").write_bytes(bytes(damaged))
    (root / "c-000.tar").write_bytes(good[: good.index(b"d2.png") + 700])  # cut inside a member's data
    (root / "d-000.tar").write_bytes(b"this is not a tar archive" * 40)
    return [
        Case("w1", None, "an ordinary sample"),
        Case("w2", "caption_not_utf8", "a Latin-1 caption"),
        Case("w3", "missing_image", "a sample without image"),
        Case("PMC9_f4", None, "a sample naming its id in json"),
        Case("w5", None, "a sample with unreadable json metadata (kept, keyed by its name)"),
        Case("w6", "undecodable_image", "a broken PNG"),
        Case("d1", None, "the sample before a damaged header"),
        Case("b-000.tar#shard", "bad_shard", "a damaged member header"),
        Case("d1", "duplicate_id", "the sample before a truncated member (same id as in b-000)"),
        Case("d2", "bad_shard", "a member cut off"),
        Case("d-000.tar#shard", "bad_shard", "a file that is no tar archive"),
    ]


def figure_json(figure_id: str, **changes) -> dict:
    """A valid corpus figure (240x120, panels A and B, a marker and a region) with top-level ``changes``."""
    data = {
        "id": figure_id, "width": 240, "height": 120, "caption": CAPTION, "source": "hostile", "schema_version": 1,
        "panels": [{"id": "p0", "box": [4, 4, 116, 115], "label": "A", "subcaption": "Stained cells."},
                   {"id": "p1", "box": [122, 4, 234, 115], "label": "B", "subcaption": "Western blot."}],
        "markers": [{"id": "m0", "kind": "arrow", "box": [30, 30, 50, 40], "panel_id": "p0", "tip": [50, 35]}],
        "regions": [{"id": "r0", "panel_id": "p0", "box": [40, 20, 80, 60], "marker_ids": ["m0"], "texts": ["nuclei"]}],
    }
    data.update(changes)
    return data


def _edited(figure_id: str, path: str, value) -> dict:
    """:func:`figure_json` with the value at ``path`` (``"panels.0.box"``) replaced."""
    data = figure_json(figure_id)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return data


def corpus_members() -> list[tuple[str, dict[str, bytes], str | None, str]]:
    """Hand-edited corpus samples: ``(key, members, problem every reader must report (None: readable), what)``."""
    png = encoded(figure_image(), "PNG")

    def sample(data, image: bytes | None = png) -> dict[str, bytes]:
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        return {"json": raw, **({"png": image} if image is not None else {})}

    html = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'
    hostile_html = figure_json(html, caption=html, source=html)
    hostile_html["panels"][0].update(label=html, kind=html, subcaption=html)
    hostile_html["markers"][0].update(kind=html, text=html)
    hostile_html["regions"][0].update(id=html, texts=[html, html])
    return [
        ("h01", sample(figure_json("h01")), None, "an ordinary member"),
        ("h02", sample(hostile_html), None, "HTML in every text field"),
        ("h03", sample(figure_json("h03", extra_field=1)), None, "an unknown extra field"),
        ("h04", sample(figure_json("h04"), b"\x89PNG\r\n\x1a\nbroken"), "image", "an image that does not decode"),
        ("h05", sample(figure_json("h05", width=480)), "image", "an image of another size than its JSON"),
        ("h06", sample(b"{not json"), "unreadable figure JSON", "JSON that does not parse"),
        ("h07", sample(b"[" * 100_000 + b"]" * 100_000), "unreadable figure JSON", "deeply nested JSON"),
        ("h08", sample(b"[1, 2]"), "unreadable figure JSON", "a JSON list"),
        ("h09", sample(figure_json("h09", schema_version=0)), "corpus schema version 0", "an old schema version"),
        ("h10", sample(_edited("h10", "regions.0.texts", "nuclei")), "regions.0.texts", "texts as a plain string"),
        ("h11", sample(_edited("h11", "panels.0.box", [0, 0, float("nan"), 50])), "panels.0.box", "a NaN box"),
        ("h12", sample(_edited("h12", "panels.1.box", [122, 4, 400, 115])), "panels.1.box", "a box outside the image"),
        ("h13", sample(_edited("h13", "panels.0.label_box", [20, 20, 10, 30])), "panels.0.label_box", "an inverted box"),
        ("h14", sample(_edited("h14", "regions.0.panel_id", "p9")), "regions.0.panel_id", "a region of no panel"),
        ("h15", sample(_edited("h15", "regions.0.marker_ids", ["m7"])), "regions.0.marker_ids.0", "a dangling marker id"),
        ("h16", sample(_edited("h16", "panels.1.id", "p0")), "panels.1.id", "a duplicate panel id"),
        ("h17", sample(_edited("h17", "markers.0.tip", [float("inf"), 3])), "markers.0.tip", "an infinite tip"),
        ("h18", sample(figure_json("h18", width=-5)), "width", "a negative width"),
        ("h19", sample(figure_json("h19", panels="p0")), "panels", "panels as a string"),
        ("h20", sample(figure_json("h20"), image=None), "no image member", "no image member"),
        ("h21", {"png": png, "txt": b"caption"}, "no .json member", "no JSON member"),
    ]


def hostile_corpus(root: Path) -> list[tuple[str, str | None, str]]:
    """A corpus folder of :func:`corpus_members` plus a shard with a damaged header after one good member.

    Returns ``(key, problem, what)`` for every member, in the order readers meet them."""
    shards = root / "shards"
    shards.mkdir(parents=True)
    members = corpus_members()
    (shards / "corpus-000-00000.tar").write_bytes(tar_bytes(
        [(f"{key}.{ext}", data) for key, parts, _, _ in members for ext, data in parts.items()]))
    png = encoded(figure_image(), "PNG")
    good = tar_bytes([("z1.json", json.dumps(figure_json("z1")).encode()), ("z1.png", png),
                      ("z2.json", json.dumps(figure_json("z2")).encode()), ("z2.png", png)])
    damaged = bytearray(good)
    second = good.index(b"z1.png") + 512 + 512 * ((len(png) + 511) // 512)
    damaged[second + 148 : second + 156] = b"garbage!"
    (shards / "corpus-000-00001.tar").write_bytes(bytes(damaged))
    (root / "manifest.json").write_text('{"kind": "panel2patch-corpus", "inputs": "many", "cleaners": [1]}')
    (shards / "corpus-000-00000.rejects.jsonl").write_text('{"id": "<b>x</b>", "reason": "<i>y</i>"}\n[1]\n')
    return [(k, problem, what) for k, _, problem, what in members] + [
        ("z1", None, "the member before a damaged header"),
        ("corpus-000-00001.tar", "damaged or truncated", "a damaged member header")]
