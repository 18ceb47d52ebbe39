"""``panel2patch corpus verify|stats|merge`` on corpora mined by two ranks (launcher environment variables), and on
corpora damaged, edited or left unfinished."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from panel2patch.cli import main
from panel2patch.corpus import read_corpus
from panel2patch.plugins.corpus_tools import corpus_stats, merge, verify

RECIPE = """
mine:
  source: {{name: demo_figures, args: {{n: 6, seed: 4}}}}
  parser: {{name: cpu_layout}}
  markers: {{name: shape_markers}}
  splitter: {{name: label_splitter}}
  regions: {{name: marker_regions}}
  writer: {{name: webdataset_corpus, args: {{out: '{out}'}}}}
  chunk_size: 2
"""


def mine_as_ranks(tmp_path: Path, outs: tuple[str, str], launcher: str) -> list[Path]:
    """Mine the demo source as ranks 0 and 1 of a 2-process job, started together as a launcher starts them."""
    names = {"torchrun": ("RANK", "WORLD_SIZE", "LOCAL_RANK"), "slurm": ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID")}
    rank_var, size_var, local_var = names[launcher]
    procs = []
    for rank, out in enumerate(outs):
        recipe = tmp_path / f"mine-{rank}.yaml"
        recipe.write_text(RECIPE.format(out=tmp_path / out))
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        env.update({rank_var: str(rank), size_var: "2", local_var: str(rank)})
        procs.append(subprocess.Popen([sys.executable, "-m", "panel2patch", "mine", str(recipe), "--workers", "1"], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    return [tmp_path / out for out in dict.fromkeys(outs)]


@pytest.fixture(scope="module")
def two_rank_corpus(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ranks")
    (corpus,) = mine_as_ranks(tmp, ("corpus", "corpus"), "torchrun")
    return corpus


def test_two_ranks_writing_one_folder_make_a_complete_corpus(two_rank_corpus, capsys):
    assert sorted(p.name for p in two_rank_corpus.glob("manifest-*")) == ["manifest-000-of-002.json",
                                                                          "manifest-001-of-002.json"]
    problems, totals = verify(two_rank_corpus, progress=False)
    assert problems == [] and totals["inputs"] == 6 == totals["figures"] + totals["rejects"]
    assert main(["corpus", "verify", str(two_rank_corpus)]) == 0
    assert "complete (" in capsys.readouterr().out


def test_slurm_ranks_writing_their_own_folders_are_merged_into_a_complete_corpus(tmp_path, two_rank_corpus):
    parts = mine_as_ranks(tmp_path, ("node0", "node1"), "slurm")
    assert verify(parts[0], progress=False)[0] == ["mining shard 1 of 2 has no manifest: it has not finished"]
    assert merge(tmp_path / "merged", parts)["placed"] > 0
    assert verify(tmp_path / "merged", progress=False)[0] == []
    assert merge(tmp_path / "merged", parts)["placed"] == 0  # merging again changes nothing
    def members(corpus):
        return sorted((r.figure.id, json.dumps(r.figure.to_json(), sort_keys=True), r.image) for r in read_corpus(corpus))

    assert members(tmp_path / "merged") == members(two_rank_corpus)  # the same members, however the ranks started


def test_merging_folders_of_different_runs_is_refused(tmp_path, two_rank_corpus):
    other = tmp_path / "other"
    shutil.copytree(two_rank_corpus, other)
    stats = next((other / "shards").glob("corpus-000-00000.stats.json"))
    stats.write_text(stats.read_text().replace('"inputs"', '"inputs_"', 1))
    with pytest.raises(Exception, match="corpus-000-00000.stats.json is in .* already with other content"):
        merge(tmp_path / "merged", [two_rank_corpus, other])


@pytest.fixture
def copy(tmp_path, two_rank_corpus) -> Path:
    shutil.copytree(two_rank_corpus, tmp_path / "c")
    return tmp_path / "c"


def test_verify_finds_edited_shards_missing_manifests_leftovers_and_duplicates(copy):
    tar = copy / "shards" / "corpus-000-00000.tar"
    data = bytearray(tar.read_bytes())
    data[600] ^= 0xFF  # inside the first member's data
    tar.write_bytes(bytes(data))
    (copy / "manifest-001-of-002.json").unlink()
    (copy / "shards" / "corpus-001-00009.tar.tmp").write_bytes(b"")
    shutil.copy(copy / "shards" / "corpus-001-00000.tar", copy / "shards" / "corpus-001-00007.tar")
    problems, _ = verify(copy, progress=False)
    text = "\n".join(problems)
    assert "chunk 000-00000: corpus-000-00000.tar does not match the digest its stats record" in text
    assert "mining shard 1 of 2 has no manifest: it has not finished" in text
    assert "corpus-001-00009.tar.tmp: an uncommitted chunk" in text
    assert "corpus-001-00007.tar: a shard with no stats file" in text


def test_verify_finds_counts_that_disagree_and_members_that_fail_the_check(copy):
    stats = copy / "shards" / "corpus-001-00000.stats.json"
    data = json.loads(stats.read_text())
    data["figures"] += 1
    stats.write_text(json.dumps(data))
    problems, _ = verify(copy, progress=False)
    assert any(p.startswith("chunk 001-00000: ") and "its stats say" in p for p in problems)


def test_stats_count_everything_per_shard(two_rank_corpus, tmp_path, capsys):
    stats = corpus_stats(two_rank_corpus, progress=False)
    figures = [r.figure for r in read_corpus(two_rank_corpus, members=("json",))]
    assert stats["figures"] == len(figures) and stats["panels"] == sum(len(f.panels) for f in figures)
    assert stats["regions"] == sum(len(f.regions) for f in figures)
    assert set(stats["shards"]) == {"000", "001"}
    assert sum(s["figures"] for s in stats["shards"].values()) == stats["figures"]
    assert main(["corpus", "stats", str(two_rank_corpus), "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text()) == stats
    assert capsys.readouterr().out.splitlines()[0].split() == ["shard", "figures", "panels", "regions", "markers", "texts"]


def test_verify_of_a_folder_that_is_no_corpus_is_a_clear_error(tmp_path, capsys):
    assert main(["corpus", "verify", str(tmp_path)]) == 2
    assert "no committed chunks" in capsys.readouterr().err


def test_verify_names_a_member_that_fails_the_member_check(copy):
    from panel2patch.data import Figure, Panel, Region
    from panel2patch.plugins.writers import WebDatasetWriter

    writer = WebDatasetWriter(str(copy))
    writer.begin("000-00009")
    bad = Figure(id="bad", width=20, height=20, caption="c", panels=[Panel("p0", (0, 0, 20, 20))],
                 regions=[Region("r0", "p9", (1, 1, 5, 5), texts=["x"])])
    writer.write(bad, b"\x89PNG not checked here", "png")
    writer.commit({"inputs": 1, "figures": 1, "rejects": {}})
    problems, _ = verify(copy, progress=False)
    assert any("sample 'bad_" in p and "regions.0.panel_id: 'p9' names no panel of the figure" in p for p in problems)


def test_verify_of_hand_edited_stats_and_manifests_reports_them_without_a_traceback(copy, capsys):
    stats = copy / "shards" / "corpus-000-00000.stats.json"
    stats.write_text('{"inputs": "many", "rejects": [1], "sha1": "x"}')
    (copy / "shards" / "corpus-001-00000.stats.json").write_text("[1, 2]")
    (copy / "manifest-001-of-002.json").write_text('{"shard": "one", "num_shards": 2}')
    (copy / "shards" / "corpus-001-00001.rejects.jsonl").write_bytes(b"\xff\xfe not utf-8\n")
    assert main(["corpus", "verify", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "chunk 000-00000: " in err and "corpus-001-00000.stats.json: stats are not a JSON object" in err
    assert "mining shard 1 of 2 has no manifest" in err
