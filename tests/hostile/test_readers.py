"""Hand-edited and damaged corpus members through every reader: ``report`` and ``export-pairs`` skip them with a
counted warning naming each, training and scoring stop with a clear error naming the member; none shows a traceback."""

from __future__ import annotations

import json

import pytest
from hostile_inputs import hostile_corpus, run_cli

from panel2patch.cli import main
from panel2patch.corpus import CorpusError, read_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-corpus")
    return root, hostile_corpus(root)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_the_reader_names_the_first_bad_member_or_skips_each_with_its_problem(corpus):
    root, members = corpus
    json_problems = [(key, problem) for key, problem, _ in members if problem and problem != "image"]
    with pytest.raises(CorpusError, match=f"sample '{json_problems[0][0]}'.*{json_problems[0][1]}"):
        list(read_corpus(root))
    skipped: list[str] = []
    readable = [r.figure.id for r in read_corpus(root, skipped=skipped)]
    assert len(skipped) == len(json_problems)
    for (key, problem), message in zip(json_problems, skipped):
        assert key in message and problem in message
    assert len(readable) == sum(1 for _, problem, _ in members if problem in (None, "image"))


def test_report_shows_every_readable_figure_escaped_and_counts_the_rest(corpus, tmp_path, capsys):
    root, members = corpus
    code, out, err = run(capsys, "report", str(root), str(tmp_path / "report.html"))
    assert code == 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    unreadable = sum(1 for _, problem, _ in members if problem and problem != "image")
    assert f"'unreadable members': {unreadable}" in out and "report: skipped" in err
    assert "<script>" not in page and "<img src=x" not in page and "<b>x</b>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 8  # id, caption, source, label, kind, texts, ...
    assert "Unreadable corpus members" in page and "regions.0.marker_ids.0" in page


def test_export_pairs_writes_the_readable_pairs_and_records_what_it_left_out(corpus, tmp_path, capsys):
    root, members = corpus
    code, out, err = run(capsys, "export-pairs", str(root), str(tmp_path / "pairs"), "--level", "region")
    assert code == 0
    summary = json.loads((tmp_path / "pairs" / "export.json").read_text())
    bad = [key for key, problem, _ in members if problem]
    assert summary["unreadable_members"] == len(bad) == len(summary["skipped"])
    readable = [key for key, problem, _ in members if problem is None]
    assert summary["pairs"] == len(readable) + 1  # the hostile-HTML member's region has two texts
    assert "image is 240x120 but its JSON says 480x120" in " ".join(summary["skipped"])
    assert f"wrote {summary['pairs']} region pairs" in out and f"{len(bad)} unreadable corpus members left out" in out


def test_training_on_a_damaged_corpus_stops_before_the_first_step_naming_the_member(corpus, tmp_path):
    root, members = corpus
    code, err = run_cli("train", "train_tiny", f"train.data.corpus={root}", f"train.output_dir={tmp_path / 'run'}")
    first = next(key for key, problem, _ in members if problem and problem != "image")
    assert code == 2 and f"sample '{first}'" in err and "unreadable figure JSON" in err


def test_scoring_against_a_damaged_reference_names_the_member(corpus, tmp_path, capsys):
    root, members = corpus
    (tmp_path / "pred").mkdir()
    code, _, err = run(capsys, "score", str(tmp_path / "pred"), str(root))
    assert code == 2 and "error:" in err


@pytest.mark.parametrize("command", ["report", "export-pairs"])
def test_an_output_that_cannot_be_created_is_a_clear_error(corpus, tmp_path, capsys, command):
    root, _ = corpus
    (tmp_path / "a_file").write_text("")
    code, _, err = run(capsys, command, str(root), str(tmp_path / "a_file" / "out"))
    assert code == 2 and f"panel2patch {command}: error: " in err and "a_file" in err


def test_export_pairs_refuses_to_write_inside_the_corpus_it_reads(corpus, capsys):
    root, _ = corpus
    code, _, err = run(capsys, "export-pairs", str(root), str(root / "pairs"))
    assert code == 2 and "is inside the corpus" in err and not (root / "pairs").exists()
