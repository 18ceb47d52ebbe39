"""``panel2patch mine --workers N``: the same corpus members for any N, resume after SIGKILL, one progress bar, and
clear errors from workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from corpus_factory import mine_recipe

from panel2patch.cli import main
from panel2patch.corpus import find_shards, iter_shard
from panel2patch.plugins.corpus_tools import verify
from panel2patch.plugins.mine_workers import default_workers, worker_limits


def members(corpus: Path) -> dict[str, dict[str, bytes]]:
    """Every sample's members, byte for byte, by sample key."""
    return {key: sample for shard in find_shards(corpus) for key, sample in iter_shard(shard)}


def recipe(tmp_path: Path, name: str, n: int = 8) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(mine_recipe(f"{{name: demo_figures, args: {{n: {n}, seed: 8}}}}", tmp_path / name, chunk_size=2))
    return path


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("one")
    assert main(["mine", str(recipe(tmp, "corpus", n=8)), "--workers", "1"]) == 0
    return tmp / "corpus"


def test_two_workers_write_the_same_members_as_one(one_worker, tmp_path, capsys):
    assert main(["mine", str(recipe(tmp_path, "two", n=8)), "--workers", "2"]) == 0
    captured = capsys.readouterr()
    assert "mined 8 inputs: 8 figures" in captured.out and "(2 workers)" in captured.err
    assert members(tmp_path / "two") == members(one_worker)
    assert sorted(p.name for p in (tmp_path / "two").glob("manifest-*")) == ["manifest-000-of-002.json",
                                                                             "manifest-001-of-002.json"]
    assert verify(tmp_path / "two", progress=False)[0] == []


def test_a_run_killed_with_sigkill_and_run_again_gives_the_same_members(tmp_path):
    reference = tmp_path / "ref"
    assert main(["mine", str(recipe(tmp_path, "ref", n=12)), "--workers", "1"]) == 0
    command = [sys.executable, "-m", "panel2patch", "mine", str(recipe(tmp_path, "killed", n=12)), "--workers", "2"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    shards = tmp_path / "killed" / "shards"
    deadline = time.time() + 600
    while time.time() < deadline and len(list(shards.glob("*.stats.json"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and both workers, at once
    proc.wait()
    committed = len(list(shards.glob("*.stats.json")))
    assert 2 <= committed < 6, "the run was not killed mid-way"
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert members(tmp_path / "killed") == members(reference)
    assert verify(tmp_path / "killed", progress=False)[0] == []


def test_a_worker_refusing_to_resume_is_a_clear_error(one_worker, tmp_path, capsys):
    import shutil

    shutil.copytree(one_worker, tmp_path / "corpus")
    code = main(["mine", str(recipe(tmp_path, "corpus", n=8)), "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "worker panel2patch-mine-0: chunk 000-00000" in err and "resuming would mix" in err


def test_bad_worker_counts_are_refused(tmp_path, capsys):
    assert main(["mine", str(recipe(tmp_path, "x")), "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err


def test_limits_and_default_worker_counts(monkeypatch):
    assert worker_limits(None, 3) == [None, None, None]
    assert worker_limits(7, 3) == [3, 2, 2] and sum(worker_limits(1, 4)) == 1
    monkeypatch.setattr("panel2patch.plugins.mine_workers.available_cores", lambda: 16)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")  # torchrun started 8 ranks on this node
    assert default_workers() == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "64")
    assert default_workers() == 1


@pytest.mark.parametrize("gpus, local_rank, local_ranks, workers, expected", [
    (["0", "1", "2", "3"], 0, 1, 2, [["0", "2"], ["1", "3"]]),         # one rank, two workers: two GPUs each
    (["0", "1", "2", "3"], 1, 2, 2, [["1"], ["3"]]),                   # torchrun rank 1 of 2 on the node
    (["0", "1"], 0, 1, 4, [["0"], ["1"], ["0"], ["1"]]),                # fewer GPUs than workers: shared
    (["0"], 1, 2, 1, [["0"]]),                                          # fewer GPUs than ranks: shared
    (["5", "7"], 0, 1, 1, [["5", "7"]]),                                # SLURM's per-task list, kept whole
    ([], 0, 2, 2, [[], []]),                                            # no GPU: nothing to share
])
def test_each_worker_gets_its_share_of_the_gpus(gpus, local_rank, local_ranks, workers, expected):
    from panel2patch.plugins.mine_workers import gpu_share

    assert [gpu_share(gpus, local_rank, local_ranks, k, workers) for k in range(workers)] == expected


def test_the_visible_gpus_are_the_launchers_list_when_it_set_one(monkeypatch):
    from panel2patch.plugins.mine_workers import visible_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert visible_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_a_worker_sets_its_thread_budget_and_gpus_before_building_anything(monkeypatch, tmp_path):
    import queue

    from panel2patch.config import load
    from panel2patch.plugins.mine_workers import THREAD_VARIABLES, _worker

    for name in (*THREAD_VARIABLES, "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)  # restored after the test: the worker writes this process's environment
    monkeypatch.setattr("multiprocessing.current_process", lambda: type("P", (), {"name": "w0"})())
    messages: queue.Queue = queue.Queue()
    bad = load(str(recipe(tmp_path, "x")), ["mine.source.name=no_such_source"])
    _worker(bad, 0, 2, None, 3, ["1", "3"], messages)
    assert all(os.environ[name] == "3" for name in THREAD_VARIABLES) and os.environ["CUDA_VISIBLE_DEVICES"] == "1,3"
    kind, who, text = messages.get_nowait()
    assert (kind, who) == ("error", "w0") and "unknown sources component 'no_such_source'" in text


def test_a_single_worker_rank_under_torchrun_keeps_to_its_gpu(monkeypatch):
    from panel2patch.plugins.mine_workers import use_gpu_share

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    for name, value in {"RANK": "6", "WORLD_SIZE": "8", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "4"}.items():
        monkeypatch.setenv(name, value)  # as torchrun sets them for rank 6 of 2 nodes x 4
    use_gpu_share()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # SLURM gave this task one GPU: nothing to change
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    use_gpu_share()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
