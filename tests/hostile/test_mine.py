"""``panel2patch mine`` on hostile inputs of every source kind: no traceback, every input in the corpus or the rejects
with the exact reason, and stored images that are what their JSON describes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hostile_inputs import csv_source, folder_source, mine_recipe, webdataset_source
from PIL import Image

from panel2patch.cli import main
from panel2patch.corpus import read_corpus, read_manifest, read_rejects
from panel2patch.images import open_image


def mine(capsys, recipe: Path, *overrides: str) -> tuple[int, str]:
    code = main(["mine", str(recipe), *overrides])
    return code, capsys.readouterr().err


def recipe(tmp_path: Path, source: str, out: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(mine_recipe(source, out))
    return path


def outcomes(corpus: Path) -> Counter:
    """``(id, reason or None)`` of every input, from the corpus and its rejects."""
    found = Counter((r.figure.id, None) for r in read_corpus(corpus))
    found.update((r["id"], r["reason"]) for r in read_rejects(corpus))
    return found


def assert_accounted(corpus: Path, cases) -> None:
    manifest = read_manifest(corpus)
    assert manifest["inputs"] == len(cases) == manifest["figures"] + sum(manifest["rejects"].values())
    assert outcomes(corpus) == Counter((c.id, c.reason) for c in cases)


def assert_stored_images_match_their_json(corpus: Path) -> None:
    for record in read_corpus(corpus):
        with Image.open(__import__("io").BytesIO(record.image)) as stock:  # what any stock reader shows
            assert stock.size == (record.figure.width, record.figure.height), record.figure.id
            assert stock.mode in ("RGB", "L", "P"), record.figure.id
        assert open_image(record.image).size == stock.size


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "figures"
    return root, folder_source(root), csv_source(root)


def mined_and_accounted(tmp_path: Path, capsys, source: str, cases) -> Path:
    """Mine ``source`` without a traceback; every case in the corpus or the rejects as it expects."""
    code, err = mine(capsys, recipe(tmp_path, source, tmp_path / "corpus"))
    assert code == 0 and "Traceback" not in err
    assert_accounted(tmp_path / "corpus", cases)
    return tmp_path / "corpus"


def test_a_hostile_folder_index_is_fully_accounted_for(tmp_path, capsys, folder):
    root, cases, _ = folder
    source = f"{{name: folder_index, args: {{root: '{root}', index: captions.jsonl, max_bytes: 2000000}}}}"
    assert_stored_images_match_their_json(mined_and_accounted(tmp_path, capsys, source, cases))
    details = {r["id"]: r["detail"] for r in read_rejects(tmp_path / "corpus")}
    assert "resolves outside" in details["escape"] and "is absolute" in details["absolute"]
    assert "<html>" not in details["text_png"]  # a reject quotes no bytes of what it read


def test_a_hostile_csv_index_loses_no_row(tmp_path, capsys, folder):
    root, _, cases = folder
    mined_and_accounted(tmp_path, capsys, f"{{name: folder_index, args: {{root: '{root}', index: captions.csv}}}}", cases)
    captions = {r.figure.id: r.figure.caption for r in read_corpus(tmp_path / "corpus")}
    assert captions["csv_after"] == "the row after it survives" and captions["csv_multi"] == "a caption\nover two lines"


def test_hostile_webdataset_shards_are_fully_accounted_for(tmp_path, capsys):
    cases = webdataset_source(tmp_path / "shards")
    mined_and_accounted(tmp_path, capsys, f"{{name: webdataset_source, args: {{urls: '{tmp_path / 'shards'}'}}}}", cases)
    details = {r["id"]: r["detail"] for r in read_rejects(tmp_path / "corpus")}
    assert "damaged member header" in details["b-000.tar#shard"] and "cut off" in details["d2"]


@pytest.mark.slow  # parses a 100-megapixel figure
def test_a_pixel_limit_above_pils_own_is_honoured(tmp_path, capsys, folder):
    root, _, _ = folder
    (tmp_path / "bomb.jsonl").write_text('{"id": "bomb_png", "image": "bomb.png", "caption": "(A) Blank."}\n')
    source = f"{{name: folder_index, args: {{root: '{root}', index: '{tmp_path / 'bomb.jsonl'}'}}}}"
    code, _ = mine(capsys, recipe(tmp_path, source, tmp_path / "corpus"), "mine.max_pixels=120000000")
    assert code == 0
    bomb = [r for r in read_corpus(tmp_path / "corpus", members=("json",)) if r.figure.id == "bomb_png"]
    assert [(b.figure.width, b.figure.height) for b in bomb] == [(10_000, 10_000)]


@pytest.mark.parametrize("setting, message", [
    ("mine.chunk_size=-1", "key mine.chunk_size must be > 0, got -1"),
    ("mine.chunk_size=0", "key mine.chunk_size must be > 0, got 0"),
    ("mine.chunk_size=ten", "key mine.chunk_size"),
    ("mine.max_pixels=0", "key mine.max_pixels must be > 0, got 0"),
    ("mine.chunk_sise=4", "key mine.chunk_sise"),
])
def test_bad_mine_settings_are_refused_before_anything_is_written(tmp_path, capsys, folder, setting, message):
    root, _, _ = folder
    source = f"{{name: folder_index, args: {{root: '{root}', index: captions.jsonl}}}}"
    code, err = mine(capsys, recipe(tmp_path, source, tmp_path / "corpus"), setting)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "corpus").exists()


def test_an_output_folder_that_cannot_be_created_is_a_clear_error(tmp_path, capsys, folder):
    root, _, _ = folder
    (tmp_path / "a_file").write_text("")
    source = f"{{name: folder_index, args: {{root: '{root}', index: captions.jsonl}}}}"
    code, err = mine(capsys, recipe(tmp_path, source, tmp_path / "a_file" / "corpus"))
    assert code == 2 and "panel2patch mine: error: [Errno 20] Not a directory" in err and "Traceback" not in err
