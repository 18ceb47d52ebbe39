"""The built-in sources lose nothing and crash on nothing: every row or sample ends in exactly one item."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from panel2patch import components, config
from panel2patch.corpus import read_corpus, read_rejects
from panel2patch.data import CaptionSplit, FigureParse, Panel
from panel2patch.hookspecs import hookimpl
from panel2patch.mining import Miner
from panel2patch.plugins.sources import MAX_RECORD_LINES, FolderSource, WebDatasetSource, index_rows, read_shard
from panel2patch.plugins.writers import WebDatasetWriter

HEADER = b"id,image,caption\n"


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 40)).save(buf, format="PNG")
    return buf.getvalue()


def folder(root: Path, index: str, data: bytes, images: tuple[str, ...] = ("a.png", "b.png", "c.png")) -> FolderSource:
    root.mkdir(parents=True, exist_ok=True)
    for name in images:
        (root / name).write_bytes(png())
    (root / index).write_bytes(data)
    return FolderSource(str(root), index)


def outcome(source) -> list[tuple[str, str | None]]:
    """``(id, reject reason or None)`` per item, checking every text can be written as UTF-8."""
    result = []
    for item in source:
        for text in (item.id, item.origin, item.caption if isinstance(item.caption, str) else "",
                     item.error.detail if item.error else "", json.dumps(item.metadata, ensure_ascii=False)):
            text.encode("utf-8")
        result.append((item.id, item.error.reason if item.error else None))
    return result


def details(source) -> dict[str, str]:
    return {item.id: item.error.detail for item in source if item.error}


# --- CSV and JSONL index ------------------------------------------------------------------------------------------


def test_csv_unterminated_quote_rejects_its_row_only(tmp_path):
    source = folder(tmp_path, "i.csv", HEADER + b'a,a.png,"broken caption\nb,b.png,fine\nc,c.png,also fine\n')
    assert outcome(source) == [("i.csv:2", "bad_index_row"), ("b", None), ("c", None)]
    assert [i.caption for i in source][1:] == ["fine", "also fine"]
    assert details(source)["i.csv:2"] == "a quoted field opened on line 2 is never closed"


def test_csv_open_quote_closed_by_a_later_row_does_not_swallow_it(tmp_path):
    source = folder(tmp_path, "i.csv", HEADER + b'a,a.png,"broken\nb,b.png,a 5" screen\nc,c.png,size 5"\n')
    assert outcome(source) == [("i.csv:2", "bad_index_row"), ("b", None), ("c", None)]
    assert [i.caption for i in source][1:] == ['a 5" screen', 'size 5"']


def test_csv_quoted_captions_may_span_lines(tmp_path):
    data = HEADER + b'a,a.png,"Line one.\r\n\r\nPanel A, left; B, right, ""quoted""."\r\nb,b.png,fine\r\n'
    source = folder(tmp_path, "i.csv", data)
    assert outcome(source) == [("a", None), ("b", None)]
    assert [i.caption for i in source] == ['Line one.\r\n\r\nPanel A, left; B, right, "quoted".', "fine"]
    assert [i.origin for i in source] == ["i.csv:2", "i.csv:5"]


def test_csv_quote_open_for_too_many_lines_is_rejected(tmp_path):
    lines = [b'a,a.png,"open'] + [b"plain text line"] * MAX_RECORD_LINES + [b'b,b.png,end"']
    source = folder(tmp_path, "i.csv", HEADER + b"\n".join(lines) + b"\n")
    found = outcome(source)
    assert found[0] == ("i.csv:2", "bad_index_row") and len(found) == len(lines)
    assert "still open after" in details(source)["i.csv:2"]


def test_csv_non_utf8_byte_rejects_that_row_only(tmp_path):
    source = folder(tmp_path, "i.csv", b"\xef\xbb\xbf" + HEADER + b"a,a.png,caf\xe9\nb,b.png,fine\nc,c.png,\xff\xfe\n")
    assert outcome(source) == [("i.csv:2", "bad_index_row"), ("b", None), ("i.csv:4", "bad_index_row")]
    assert details(source) == {"i.csv:2": "line 2 is not UTF-8 (invalid byte at column 12)",
                               "i.csv:4": "line 4 is not UTF-8 (invalid byte at column 9)"}


def test_csv_malformed_rows(tmp_path):
    data = HEADER + b'a,a.png,Panel A, B\nb,b.png,"x" y\nc,c.png\n' + b"d,a.png," + b"x" * 200_000 + b"\n"
    source = folder(tmp_path, "i.csv", data)
    assert outcome(source) == [("i.csv:2", "bad_index_row"), ("i.csv:3", "bad_index_row"), ("c", None),
                               ("i.csv:5", "bad_index_row")]
    assert details(source)["i.csv:2"] == "has 4 fields, the header has 3"
    assert next(i for i in source if i.id == "c").caption is None  # missing trailing fields are None


def test_csv_unreadable_header_rejects_every_row(tmp_path):
    source = folder(tmp_path, "i.csv", b'id,"image\n\na,a.png,x\n')
    assert outcome(source) == [("i.csv:1", "bad_index_row"), ("i.csv:3", "bad_index_row")]
    assert "the header (line 1) cannot be read" in details(source)["i.csv:3"]


def test_jsonl_bad_lines_are_one_reject_each(tmp_path):
    rows = [b'{"id": "a", "image": "a.png", "caption": "x"}', b'{"id": "caf\xe9"}', b"not json", b"[" * 100_000,
            b"[1, 2]", b'{"id": ["x"], "image": "b.png"}', b"   ", b'{"id": "n", "image": "b.png", "v": ' + b"9" * 5000 + b"}",
            b'{"id": "c", "image": "c.png", "caption": "y"}']
    source = folder(tmp_path, "i.jsonl", b"\xef\xbb\xbf" + b"\n".join(rows))
    assert outcome(source) == [("a", None)] + [(f"i.jsonl:{n}", "bad_index_row") for n in (2, 3, 4, 5, 6, 8)] + [("c", None)]
    assert details(source)["i.jsonl:2"] == "line 2 is not UTF-8 (invalid byte at column 12)"
    assert details(source)["i.jsonl:4"] == "line 4 is JSON nested too deeply"
    assert details(source)["i.jsonl:6"] == "field 'id' is a list, not text"


TOKENS = [b'"', b",", b'""', b"a", b"a.png", b" ", b"\xff", b"\xe9", b"\x00", b"{", b"}", b":", b'"id"', b'"\\ud800"']
LINE = st.one_of(st.binary(max_size=40), st.lists(st.sampled_from(TOKENS), max_size=12).map(b"".join))


@given(st.lists(LINE.map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")), max_size=12), st.booleans())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_index_reader_accounts_for_every_line_of_random_bytes(lines, is_csv):
    raw = (HEADER if is_csv else b"") + b"".join(line + b"\n" for line in lines)
    rows = list(index_rows(raw, is_csv))
    covered = [n for row in rows for n in range(row.first, row.last + 1)]
    assert covered == sorted(set(covered)), "rows overlap or are out of order"
    first_data_line = 2 if is_csv else 1
    for n, line in enumerate(lines, start=first_data_line):
        blank = not (line.removeprefix(b"\xef\xbb\xbf") if n == 1 else line).strip()  # a leading BOM is not data
        assert n in covered or blank, f"line {n} yields no item"
    assert all(row.first in covered and (row.fields is None) == (row.problem is not None) for row in rows)
    with tempfile.TemporaryDirectory() as tmp:
        index = "i.csv" if is_csv else "i.jsonl"
        items = outcome(folder(Path(tmp), index, raw))
    assert len(items) == len(rows)


def test_folder_accounting_every_row_is_one_item(tmp_path):
    csv_rows = [b"a,a.png,good", b'b,b.png,"open quote', b"c,c.png,caf\xe9", b"d,d.png,too,many", b"e,missing.png,x",
                b"f,../escape.png,x", b'g,g.png,"two\nlines"', b",a.png,no id", b"h,/etc/passwd,x", b"i,c.png,good"]
    source = folder(tmp_path / "csv", "i.csv", HEADER + b"\n".join(csv_rows) + b"\n", images=("a.png", "c.png", "g.png"))
    found = outcome(source)
    assert len(found) == len(csv_rows)
    assert found == [("a", None), ("i.csv:3", "bad_index_row"), ("i.csv:4", "bad_index_row"), ("i.csv:5", "bad_index_row"),
                     ("e", "missing_image"), ("f", "unsafe_path"), ("g", None), ("i.csv:10", "missing_id"),
                     ("h", "unsafe_path"), ("i", None)]
    jsonl = [{"id": "a", "image": "a.png", "caption": "x"}, {"id": "b\ud800", "image": "a.png", "caption": "x"},
             {"id": "c", "image": "a.png", "caption": "x\udcff"}, {"id": "d", "image": "nope.png"},
             {"id": "e", "image": "a.png", "caption": "x", "extra": {"k\ud800": 1}}, {"image": "a.png"}]
    lines = [json.dumps(r).encode() for r in jsonl] + [b"{broken"]
    source = folder(tmp_path / "jsonl", "i.jsonl", b"\n".join(lines) + b"\n")
    found = outcome(source)
    assert len(found) == len(lines)
    assert found == [("a", None), ("b\\ud800", "unencodable_text"), ("c", "unencodable_text"), ("d", "missing_image"),
                     ("e", "unencodable_text"), ("i.jsonl:6", "missing_id"), ("i.jsonl:7", "bad_index_row")]


# --- image paths --------------------------------------------------------------------------------------------------


def test_image_paths_stay_inside_root(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"TOPSECRET-BYTES")
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "outside.png").symlink_to(secret)
    (root / "inside.png").symlink_to(root / "sub" / "real.png")
    (root / "sub" / "real.png").write_bytes(png())
    rows = [{"id": "abs", "image": str(secret)}, {"id": "up", "image": "../secret.png"},
            {"id": "link", "image": "outside.png"}, {"id": "nul", "image": "sub/real.png\u0000"},
            {"id": "ok_link", "image": "inside.png"}, {"id": "ok_dots", "image": "sub/../sub/real.png"},
            {"id": "dir", "image": "sub"}]
    data = b"\n".join(json.dumps({**r, "caption": "c"}).encode() for r in rows)
    source = folder(root, "i.jsonl", data, images=())
    assert outcome(source) == [("abs", "unsafe_path"), ("up", "unsafe_path"), ("link", "unsafe_path"),
                               ("nul", "unsafe_path"), ("ok_link", None), ("ok_dots", None), ("dir", "missing_image")]
    assert not any("TOPSECRET" in d for d in details(source).values())
    assert {i.path for i in source if i.error is None} == {str((root / "sub" / "real.png").resolve())}


# --- unencodable text ---------------------------------------------------------------------------------------------


def test_unencodable_text_is_rejected_and_rejects_can_be_written(tmp_path):
    rows = [b'{"id": "a", "image": "a.png", "caption": "lone \\ud800 surrogate"}',
            b'{"id": "b\\udcff", "image": "b.png", "caption": "fine"}',
            b'{"id": "c", "image": "c\\udcff.png", "caption": "fine"}']
    source = folder(tmp_path / "in", "i.jsonl", b"\n".join(rows))
    assert outcome(source) == [("a", "unencodable_text"), ("b\\udcff", "unencodable_text"), ("c", "unencodable_text")]
    assert details(source)["a"] == "caption holds U+D800 at position 5, which UTF-8 cannot encode"
    writer = WebDatasetWriter(str(tmp_path / "corpus"))
    writer.begin("000-00000")
    for item in source:
        writer.reject(item.id, item.error.reason, item.error.detail)
    writer.commit({})


def test_tar_keys_and_json_with_unencodable_text_are_rejected(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, errors="surrogateescape") as tar:
        for name, data in [("ok.png", png()), ("ok.txt", b"c"), ("bad\udcff.png", png()), ("bad\udcff.txt", b"c"),
                           ("j.png", png()), ("j.txt", b"c"), ("j.json", b'{"id": "x\\ud800"}')]:
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    (tmp_path / "s.tar").write_bytes(buf.getvalue())
    assert outcome(WebDatasetSource(str(tmp_path))) == [("ok", None), ("bad\\udcff", "unencodable_text"),
                                                        ("x\\ud800", "unencodable_text")]


# --- tar shards ---------------------------------------------------------------------------------------------------


def shard(path: Path, n: int = 5) -> bytes:
    import webdataset as wds

    path.parent.mkdir(parents=True, exist_ok=True)
    with wds.TarWriter(str(path)) as sink:
        for i in range(n):
            sink.write({"__key__": f"s{i}", "png": png(), "txt": f"caption {i}".encode()})
    return path.read_bytes()


def member_offsets(data: bytes) -> dict[str, tuple[int, int]]:
    """``{name: (header offset, data offset)}`` of a tar's members."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (m.offset, m.offset_data) for m in tar}


def shard_outcome(path: Path) -> tuple[list[tuple[str, str | None]], dict[str, str]]:
    source = WebDatasetSource(str(path))
    return outcome(source), details(source)


def test_valid_shards_read_as_webdataset_reads_them(tmp_path):
    import webdataset as wds

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("x" * 120 + ".png", b"1"), ("x" * 120 + ".TXT", b"2"), ("dir/", None), ("d/k.png", b"3"),
                           ("__meta__", b"m"), ("noext", b"z"), ("__x__/a.png", b"q"), ("k.seg.json", b"{}")]:
            member = tarfile.TarInfo(name)
            if data is None:
                member.type = tarfile.DIRTYPE
            member.size = len(data or b"")
            tar.addfile(member, io.BytesIO(data) if data else None)
    (tmp_path / "a.tar").write_bytes(buf.getvalue())
    gz = tmp_path / "b.tar"
    gz.write_bytes(gzip.compress(shard(tmp_path / "tmp" / "b.tar", n=2)))
    for path in (tmp_path / "a.tar", gz):
        expected = list(wds.DataPipeline(wds.SimpleShardList([str(path)]), wds.tarfile_to_samples()))
        assert [(s, p) for s, p in read_shard(str(path))] == [(s, None) for s in expected]
    assert shard_outcome(gz)[0] == [("s0", None), ("s1", None)]


def test_damaged_header_in_the_middle_is_reported(tmp_path):
    path = tmp_path / "part.tar"
    data = bytearray(shard(path))
    offset = member_offsets(bytes(data))["s2.txt"][0]
    data[offset + 148] ^= 0x11  # the header checksum
    path.write_bytes(bytes(data))
    found, why = shard_outcome(path)
    assert found == [("s0", None), ("s1", None), ("s2", None), ("part.tar#shard", "bad_shard")]
    assert f"damaged member header at byte {offset}" in why["part.tar#shard"]
    assert "after member 's2.png'; 3 samples read before it" in why["part.tar#shard"]


def test_zeroed_header_and_concatenated_archives_are_reported(tmp_path):
    data = shard(tmp_path / "src.tar")
    offset = member_offsets(data)["s2.png"][0]
    (tmp_path / "z" / "zeroed.tar").parent.mkdir()
    (tmp_path / "z" / "zeroed.tar").write_bytes(data[:offset] + bytes(512) + data[offset + 512:])
    found, why = shard_outcome(tmp_path / "z")
    assert found == [("s0", None), ("s1", None), ("zeroed.tar#shard", "bad_shard")]
    assert f"data after its end-of-archive marker, at byte {offset + 512}" in why["zeroed.tar#shard"]
    (tmp_path / "c" / "cat.tar").parent.mkdir()
    (tmp_path / "c" / "cat.tar").write_bytes(data + data)
    found, _ = shard_outcome(tmp_path / "c")
    assert found == [(f"s{i}", None) for i in range(5)] + [("cat.tar#shard", "bad_shard")]


def test_truncated_shards_are_reported(tmp_path):
    data = shard(tmp_path / "src.tar")
    offsets = member_offsets(data)
    cases = {
        "member": data[: offsets["s4.txt"][1] + 3],  # inside the last member's data
        "header": data[: offsets["s4.txt"][0] + 100],  # inside the last member's header
        "boundary": data[: offsets["s4.txt"][1] + 512],  # after the last member, no end-of-archive marker
    }
    for name, cut in cases.items():
        (tmp_path / name / "part.tar").parent.mkdir()
        (tmp_path / name / "part.tar").write_bytes(cut)
    found, why = shard_outcome(tmp_path / "member")
    assert found == [(f"s{i}", None) for i in range(4)] + [("s4", "bad_shard")]
    assert why["s4"].endswith(f"member 's4.txt' (header at byte {offsets['s4.txt'][0]}) is cut off (unexpected end of data); "
                              "the shard ends there, after 4 samples")
    found, why = shard_outcome(tmp_path / "header")
    assert found == [(f"s{i}", None) for i in range(5)] + [("part.tar#shard", "bad_shard")]
    assert f"ends inside the member header at byte {offsets['s4.txt'][0]}" in why["part.tar#shard"]
    found, why = shard_outcome(tmp_path / "boundary")
    assert found == [(f"s{i}", None) for i in range(5)] + [("part.tar#shard", "bad_shard")]
    assert "without an end-of-archive marker" in why["part.tar#shard"]


@pytest.mark.parametrize("name, content, message", [
    ("empty", b"", "cannot be read as a tar archive (empty file)"),
    ("text", b"this is not a tar archive\n" * 40, "cannot be read as a tar archive (invalid header)"),
    ("gzip_text", gzip.compress(b"not a tar either " * 60), "cannot be read as a tar archive (invalid header)"),
])
def test_files_that_are_not_tar_archives_are_reported(tmp_path, name, content, message):
    (tmp_path / f"{name}.tar").write_bytes(content)
    found, why = shard_outcome(tmp_path)
    assert found == [(f"{name}.tar#shard", "bad_shard")]
    assert message in why[f"{name}.tar#shard"]


def test_truncated_gzip_shard_is_reported(tmp_path):
    compressed = gzip.compress(shard(tmp_path / "src" / "x.tar", n=5) + b"\x01" * 20_000)
    (tmp_path / "in" / "x.tar").parent.mkdir()
    (tmp_path / "in" / "x.tar").write_bytes(compressed[: len(compressed) // 2])
    found, _ = shard_outcome(tmp_path / "in")
    assert found[-1][1] == "bad_shard" and all(reason is None for _, reason in found[:-1])


def test_missing_shard_is_reported(tmp_path):
    assert outcome(WebDatasetSource(str(tmp_path / "nope-{0..1}.tar"))) == [("nope-0.tar#shard", "bad_shard"),
                                                                           ("nope-1.tar#shard", "bad_shard")]


def test_webdataset_accounting_every_sample_is_one_item(tmp_path):
    import webdataset as wds

    samples = [{"__key__": "good", "png": png(), "txt": b"c"}, {"__key__": "noimage", "txt": b"c"},
               {"__key__": "latin1", "png": png(), "txt": "caf\xe9".encode("latin-1")},
               {"__key__": "deepjson", "png": png(), "txt": b"c", "json": b"[" * 100_000},
               {"__key__": "jsonid", "png": png(), "txt": b"c", "json": b'{"id": "PMC1"}'},
               {"__key__": "surrogate", "png": png(), "txt": b"c", "json": b'{"id": "s\\udcff"}'},
               {"__key__": "last", "png": png(), "txt": b"c" * 5000}]
    with wds.TarWriter(str(tmp_path / "a.tar")) as sink:
        for sample in samples:
            sink.write(sample)
    data = (tmp_path / "a.tar").read_bytes()
    cut = member_offsets(data)["last.txt"][1] + 100
    (tmp_path / "a.tar").write_bytes(data[:cut])
    dup = io.BytesIO()  # a member repeated inside a sample
    with tarfile.open(fileobj=dup, mode="w") as tar:
        for name in ("d.png", "d.txt", "d.png", "e.png", "e.txt"):
            member = tarfile.TarInfo(name)
            member.size = 1
            tar.addfile(member, io.BytesIO(b"x"))
    (tmp_path / "b.tar").write_bytes(dup.getvalue())
    found = outcome(WebDatasetSource(str(tmp_path)))
    assert len(found) == len(samples) + 2
    assert found == [("good", None), ("noimage", "missing_image"), ("latin1", "caption_not_utf8"), ("deepjson", None),
                     ("PMC1", None), ("s\\udcff", "unencodable_text"), ("last", "bad_shard"),
                     ("d", "bad_shard"), ("e", None)]


@given(st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=6),
       st.one_of(st.none(), st.integers(0, 1 << 16)), st.booleans())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_shard_with_random_damage_never_raises(edits, cut, compressed):
    with tempfile.TemporaryDirectory() as tmp:
        data = bytearray(shard(Path(tmp) / "src" / "x.tar", n=3))
        data = bytearray(gzip.compress(bytes(data))) if compressed else data
        for position, value in edits:
            data[position % len(data)] = value
        (Path(tmp) / "in").mkdir()
        (Path(tmp) / "in" / "x.tar").write_bytes(bytes(data[:cut]))
        found = outcome(WebDatasetSource(str(Path(tmp) / "in")))
    assert 1 <= len(found) <= 4


# --- through the miner ----------------------------------------------------------------------------------------------


class WholeFigure(components.FigureParser):
    def parse(self, image, caption):
        return FigureParse(image.width, image.height, [Panel("p0", (0, 0, image.width, image.height))])


class WholeCaption(components.CaptionSplitter):
    def split(self, caption, labels):
        return CaptionSplit(caption, segments={})


class MinimalPipeline:
    @hookimpl
    def register_figure_parsers(self, register):
        register("whole_figure", WholeFigure)

    @hookimpl
    def register_caption_splitters(self, register):
        register("caption_as_is", WholeCaption)


def test_mining_hostile_indexes_accounts_for_every_row(tmp_path, add_plugin):
    add_plugin(MinimalPipeline(), "minimal-pipeline")
    rows = [b'a,a.png,"unterminated', b"b,b.png,fine", b"c,c.png,caf\xe9", b"d,../b.png,x", b"e,c.png,fine"]
    folder(tmp_path / "csv", "i.csv", HEADER + b"\n".join(rows) + b"\n")
    lines = [b'{"id": "s\\ud800", "image": "a.png", "caption": "x"}', b'{"id": "t", "image": "a.png", "caption": "\\udcff"}',
             b'{"id": "u", "image": "a.png", "caption": "fine"}']
    folder(tmp_path / "jsonl", "i.jsonl", b"\n".join(lines))
    for name, index, expected in [("csv", "i.csv", {"b", "e"}), ("jsonl", "i.jsonl", {"u"})]:
        section = {"source": {"name": "folder_index", "args": {"root": str(tmp_path / name), "index": index}},
                   "parser": "whole_figure", "splitter": "caption_as_is",
                   "writer": {"name": "webdataset_corpus", "args": {"out": str(tmp_path / f"{name}-corpus")}}}
        stats = Miner(config.Recipe("r.yaml", {"mine": section})).run_shard(progress=False)
        figures = {r.figure.id for r in read_corpus(tmp_path / f"{name}-corpus")}
        rejects = read_rejects(tmp_path / f"{name}-corpus")
        assert figures == expected and stats.inputs == len(figures) + len(rejects) == (len(rows) if name == "csv" else len(lines))
    assert [r["reason"] for r in rejects] == ["unencodable_text", "unencodable_text"]
