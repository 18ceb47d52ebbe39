"""Training checkpoints: RNG states as JSON, nothing but tensors unpickled on resume, clear errors for bad files."""

from __future__ import annotations

import json
import random
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from corpus_factory import tiny_recipe, write_corpus

from panel2patch.cli import main
from panel2patch.config import load
from panel2patch.plugins.training import checkpoints
from panel2patch.plugins.training.checkpoints import DEEPSPEED_GLOBALS, MODEL_STATES
from panel2patch.plugins.training.errors import TrainError
from panel2patch.plugins.training.trainer import Trainer

OPTIM_STATES = "zero_pp_rank_0_mp_rank_00_optim_states.pt"


def _recipe(tmp_path: Path, corpus: Path, name: str, **train) -> Path:
    defaults = {"optim": {"max_steps": 2, "warmup_steps": 1, "lr": 1e-3}, "checkpoint": {"every_n_steps": 1, "keep": 3},
                "deepspeed": {"zero_optimization": {"stage": 2}, "gradient_clipping": 1.0}}
    defaults.update(train)
    return tiny_recipe(tmp_path / f"{name}.yaml", corpus, tmp_path / name, **defaults)


def _train_records(out_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "train"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-step ZeRO-2 run checkpointed after each step: ``(trainer, corpus, checkpoint folder)``."""
    tmp = tmp_path_factory.mktemp("trained")
    corpus = write_corpus(tmp / "corpus", figures=24, shard_size=12, seed=1)
    trainer = Trainer(load(str(_recipe(tmp, corpus, "run"))))
    trainer.fit()
    return trainer, corpus, tmp / "run" / "checkpoints"


@pytest.fixture
def ckpt(trained, tmp_path):
    """A copy of the trained run's checkpoint folder to damage."""
    return Path(shutil.copytree(trained[2], tmp_path / "checkpoints"))


class Payload:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def _write_malicious(path: Path, marker: Path) -> None:
    torch.save({"module": {"weight": torch.zeros(2)}, "hook": Payload(marker)}, path)
    assert zipfile.is_zipfile(path)


def test_checkpoints_hold_tensors_json_and_only_the_allowlisted_globals(trained):
    folder = trained[2] / "step-00000002"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [MODEL_STATES, "rng_rank00000.json", OPTIM_STATES]
    assert json.loads((folder / "rng_rank00000.json").read_text())["format"] == checkpoints.RNG_FORMAT
    found = {name: set(torch.serialization.get_unsafe_globals_in_checkpoint(str(folder / name)))
             for name in (MODEL_STATES, OPTIM_STATES)}
    # every allowlisted global is needed, and nothing else is
    assert found == {MODEL_STATES: set(), OPTIM_STATES: set(DEEPSPEED_GLOBALS)}


def test_resuming_a_zero2_checkpoint_reproduces_the_uninterrupted_step(trained, tmp_path):
    _, corpus, ckpt_dir = trained
    recipe = load(str(_recipe(tmp_path, corpus, "resumed")))
    Trainer(recipe, resume=str(ckpt_dir / "step-00000001")).fit()
    full = _train_records(ckpt_dir.parent)[-1]
    resumed = _train_records(tmp_path / "resumed")
    assert [r["step"] for r in resumed] == [2]
    keys = [k for k in full if "/" in k]
    assert keys and sorted(keys) == sorted(k for k in resumed[0] if "/" in k)
    for key in keys:
        assert resumed[0][key] == pytest.approx(full[key], rel=1e-5, abs=1e-6), key


def _draws() -> tuple:
    return (random.random(), random.gauss(0.0, 1.0), random.getrandbits(70), np.random.standard_normal(3).tolist(),
            np.random.randint(0, 10**9, 4).tolist(), torch.rand(4).tolist(), torch.randint(0, 10**9, (3,)).tolist())


def test_rng_states_round_trip_through_json_exactly(tmp_path):
    random.seed(11)
    np.random.seed(12)
    torch.manual_seed(13)
    random.gauss(0.0, 1.0)  # leave a cached Gaussian in both Python's and numpy's state
    np.random.standard_normal()
    path = tmp_path / "rng_rank00000.json"
    checkpoints.write_rng_state(path)
    expected = _draws()
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    state = checkpoints.read_rng_state(path)
    checkpoints.set_rng_state(state)
    assert _draws() == expected
    data = json.loads(path.read_text())
    assert data["numpy"]["has_gauss"] == 1 and data["python"]["gauss_next"] is not None


@pytest.mark.parametrize("target", [MODEL_STATES, "extra.pt"])
def test_a_malicious_pt_file_is_refused_and_never_run(trained, ckpt, tmp_path, capsys, target):
    _, corpus, _ = trained
    marker = tmp_path / "pwned"
    evil = ckpt / "step-00000002" / target
    _write_malicious(evil, marker)
    recipe = _recipe(tmp_path, corpus, "attacked", checkpoint={"dir": str(ckpt), "every_n_steps": 1, "keep": 3})
    assert main(["train", str(recipe), "--resume", "latest"]) == 2
    err = capsys.readouterr().err
    assert (f"panel2patch train: error: cannot resume: {evil} would import builtins.exec when loaded, which no "
            f"training checkpoint holds: refusing to load it; the previous checkpoint step-00000001 is intact: "
            f"resume from it with --resume {ckpt / 'step-00000001'}") in err
    assert "Traceback" not in err
    assert not marker.exists()
    # the payload is live: a plain torch.load runs it
    live = tmp_path / "live"
    _write_malicious(tmp_path / "live.pt", live)
    torch.load(tmp_path / "live.pt", weights_only=False)
    assert live.exists()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_record(path: Path, record_suffix: str) -> str:
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(record_suffix))
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + int.from_bytes(
        data[info.header_offset + 28:info.header_offset + 30], "little")
    data[start] ^= 0xFF
    path.write_bytes(bytes(data))
    return info.filename


def _legacy_rng(path: Path) -> None:
    torch.save({"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}, path)


def _resume_error(engine, ckpt: Path, resume: str = "latest") -> str:
    with pytest.raises(TrainError) as caught:
        checkpoints.load_checkpoint(engine, ckpt, resume, 0)
    return str(caught.value)


def test_latest_naming_a_missing_tag_names_the_previous_checkpoint(trained, ckpt):
    (ckpt / "latest").write_text("step-00000009")
    assert _resume_error(trained[0].engine, ckpt) == (
        f"cannot resume: {ckpt / 'latest'} names checkpoint step-00000009, but {ckpt / 'step-00000009'} does not "
        f"exist; the previous checkpoint step-00000002 is intact: resume from it with --resume {ckpt / 'step-00000002'}")
    (ckpt / "latest").write_text("../../etc\n")
    assert _resume_error(trained[0].engine, ckpt) == (
        f"cannot resume: {ckpt / 'latest'} does not name a checkpoint folder (it holds '../../etc')")


def test_damaged_files_are_named_with_the_previous_intact_checkpoint(trained, ckpt):
    engine = trained[0].engine
    folder = ckpt / "step-00000002"
    then = f"; the previous checkpoint step-00000001 is intact: resume from it with --resume {ckpt / 'step-00000001'}"
    original = {name: (folder / name).read_bytes() for name in (MODEL_STATES, OPTIM_STATES, "rng_rank00000.json")}

    def restore() -> None:
        for name, data in original.items():
            (folder / name).write_bytes(data)
        for extra in set(folder.iterdir()) - {folder / name for name in original}:
            extra.unlink()

    _truncate(folder / MODEL_STATES)
    assert _resume_error(engine, ckpt) == (
        f"cannot resume: {folder / MODEL_STATES} is damaged (truncated or corrupt zip archive: File is not a zip "
        f"file){then}")
    restore()
    (folder / OPTIM_STATES).write_bytes(random.Random(0).randbytes(4096))
    assert _resume_error(engine, ckpt) == f"cannot resume: {folder / OPTIM_STATES} is damaged (not a torch zip archive){then}"
    restore()
    record = _flip_record(folder / OPTIM_STATES, "/data/0")
    assert _resume_error(engine, ckpt) == (
        f"cannot resume: {folder / OPTIM_STATES} is damaged (record {record} fails its CRC check){then}")
    restore()
    (folder / MODEL_STATES).unlink()
    assert _resume_error(engine, ckpt) == (
        f"cannot resume: {folder} has no model-states file {MODEL_STATES}: the checkpoint is incomplete{then}")
    restore()
    (folder / OPTIM_STATES).unlink()
    assert _resume_error(engine, ckpt) == (
        f"cannot resume: {folder} has no optimizer-states file {OPTIM_STATES} of rank 0: the checkpoint is "
        f"incomplete{then}")
    restore()
    torch.save({"module": {"weight": torch.zeros(2)}}, folder / OPTIM_STATES, _use_new_zipfile_serialization=False)
    assert _resume_error(engine, ckpt) == (
        f"cannot resume: {folder / OPTIM_STATES} is in torch's legacy pickle format, which cannot be checked "
        f"without running it: refusing to load it{then}")
    restore()
    torch.save({"module": {"weight": torch.zeros(2)}}, folder / OPTIM_STATES, pickle_protocol=4)
    assert _resume_error(engine, ckpt) == (
        f"cannot resume: {folder / OPTIM_STATES} cannot be checked without running its pickle (Unsupported operand "
        f"149): refusing to load it{then}")
    restore()
    with zipfile.ZipFile(ckpt / "step-00000001" / OPTIM_STATES) as src, \
            zipfile.ZipFile(folder / OPTIM_STATES, "w", zipfile.ZIP_DEFLATED) as packed:
        for info in src.infolist():
            packed.writestr(info.filename, src.read(info.filename))
    assert _resume_error(engine, ckpt) == (
        f"cannot resume: {folder / OPTIM_STATES} is not a torch checkpoint (record "
        f"{info.filename.split('/')[0]}/data.pkl is compressed): refusing to load it{then}")
    restore()
    (folder / "rng_rank00000.json").write_text('{"format": 1, "python": ')
    assert _resume_error(engine, ckpt) == (
        f"cannot resume: {folder / 'rng_rank00000.json'} is damaged (JSONDecodeError: Expecting value: line 1 column "
        f"25 (char 24)){then}")
    restore()
    _legacy_rng(folder / "rng_rank00000.pt")
    assert _resume_error(engine, ckpt) == (
        f"cannot resume: {folder / 'rng_rank00000.pt'} would import numpy._core.multiarray._reconstruct, "
        "numpy.dtype, numpy.ndarray when loaded, which no training checkpoint holds: refusing to load it (RNG "
        f"states in the format of earlier versions are not read: delete the file to resume without them){then}")
    restore()
    _truncate(ckpt / "step-00000001" / OPTIM_STATES)
    _truncate(folder / OPTIM_STATES)
    assert _resume_error(engine, ckpt) == (
        f"cannot resume: {folder / OPTIM_STATES} is damaged (truncated or corrupt zip archive: File is not a zip "
        f"file); there is no earlier intact checkpoint in {ckpt}: start the run again without --resume")


def test_a_checkpoint_without_rng_states_resumes_with_a_warning(trained, ckpt):
    folder = ckpt / "step-00000001"
    (folder / "rng_rank00000.json").unlink()
    found, state = checkpoints.load_checkpoint(trained[0].engine, ckpt, str(folder), 0)
    assert found == folder and state["step"] == 1
    before = random.getstate()
    with pytest.warns(UserWarning, match=r"step-00000001 holds no RNG states of rank 0 \(rng_rank00000\.json\): "
                                         "resuming without restoring them"):
        checkpoints.restore_rng_state(folder, 0)
    assert random.getstate() == before


def test_deepspeeds_own_loads_are_weights_only_behind_the_checks(trained, ckpt, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    evil = ckpt / "step-00000002" / MODEL_STATES
    _write_malicious(evil, marker)
    monkeypatch.setattr(checkpoints, "_check_folder", lambda folder, rank, zero_stage: None)
    message = _resume_error(trained[0].engine, ckpt)
    assert message.startswith(f"cannot resume from {ckpt / 'step-00000002'}: refusing to load it (WeightsUnpickler "
                              "error: Unsupported global: GLOBAL exec ")
    assert not marker.exists()
    assert "load" not in vars(trained[0].engine.checkpoint_engine)
