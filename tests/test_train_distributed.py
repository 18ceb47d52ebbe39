"""Two ranks on CPU through the stock ``deepspeed`` launcher: ZeRO-2 over gloo trains, checkpoints, exports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from corpus_factory import tiny_recipe, write_corpus


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_deepspeed_launcher_two_ranks_zero2_on_cpu(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", figures=32, shard_size=8, seed=2)
    recipe = tiny_recipe(
        tmp_path / "recipe.yaml", corpus, tmp_path / "out",
        optim={"max_steps": 4, "warmup_steps": 1, "lr": 1e-3},
        checkpoint={"every_n_steps": 2, "keep": 2},
        deepspeed={"zero_optimization": {"stage": 2}, "gradient_clipping": 1.0},
        data={"batch_size": {"figure": 2, "panel": 4, "region": 4}, "workers": 0, "held_out": 0.0},
    )
    launcher = Path(sys.executable).parent / "deepspeed"

    cmd = [str(launcher), "--num_gpus", "2", "--master_port", str(_free_port()),
           "--module", "panel2patch.plugins.training", "--recipe", str(recipe), "train.seed=3"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    out = tmp_path / "out"
    info = json.loads((out / "run.json").read_text())
    assert info["world_size"] == 2 and info["deepspeed"]["zero_optimization"]["stage"] == 2
    final = out / "checkpoints" / "step-00000004"
    assert (out / "checkpoints" / "latest").read_text().strip() == final.name
    for rank in (0, 1):
        assert (final / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").is_file()
        assert (final / f"rng_rank{rank:05d}.json").is_file()
    assert (out / "checkpoints" / "step-00000002").is_dir()
    train = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in train if r["kind"] == "train"] == [1, 2, 3, 4]
    assert (out / "export" / "open_clip_model.safetensors").is_file()
    assert json.loads((out / "summary.json").read_text())["steps"] == 4

