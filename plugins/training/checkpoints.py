"""DeepSpeed checkpoints of a run: saved with each rank's RNG states as JSON, located for ``--resume``,
checked so that nothing but tensors and plain data is ever unpickled, loaded back.

A checkpoint is a tag folder ``step-NNNNNNNN`` of the checkpoint folder (which also holds ``latest``, the
newest tag). Before DeepSpeed loads one, every ``*.pt`` under the tag folder must be an intact torch zip
archive whose pickle imports only torch's weights-only globals and :data:`DEEPSPEED_GLOBALS`; DeepSpeed's
loads then run with ``weights_only=True`` as well. A damaged checkpoint is refused with an error that names
the file and, where there is one, the newest intact checkpoint before it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import importlib
import json
import os
import pickle
import random
import shutil
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import TrainError

#: The key of the run's own state (step, schedule, data positions, plan) in DeepSpeed's client state.
CLIENT_KEY = "panel2patch"

#: The model-states file DeepSpeed writes in a tag folder (the trainer has no model or pipeline parallelism).
MODEL_STATES = "mp_rank_00_model_states.pt"

#: Globals of DeepSpeed's own checkpoint files beyond torch's weights-only defaults, as listed by
#: ``torch.serialization.get_unsafe_globals_in_checkpoint`` on the files of ZeRO 0, 1 and 2 runs in fp32
#: and bf16: the ZeRO optimizer's loss scaler and stage, and the fragment map of its flat partitions
#: (``zero_pp_rank_*_optim_states.pt``; the model-states file needs none). Anything else is refused.
DEEPSPEED_GLOBALS = (
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.runtime.zero.config.ZeroStageEnum",
    "deepspeed.utils.tensor_fragment.fragment_address",
)

RNG_FORMAT = 1


def rng_file(folder: Path, rank: int) -> Path:
    return folder / f"rng_rank{rank:05d}.json"


# -- RNG states as JSON ---------------------------------------------------------------------------


def _b64(tensor: Any) -> str:
    return base64.b64encode(tensor.numpy().tobytes()).decode("ascii")


def rng_state() -> dict[str, Any]:
    """This process's Python, numpy and torch (CPU and CUDA) RNG states as JSON-ready data."""
    import numpy as np
    import torch

    version, internal, gauss_next = random.getstate()
    kind, key, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "format": RNG_FORMAT,
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
        "numpy": {"bit_generator": kind, "key": key.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "torch": _b64(torch.get_rng_state()),
    }
    if torch.cuda.is_available():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def _ints(value: Any, length: int, what: str) -> list[int]:
    if not isinstance(value, list) or len(value) != length or not all(type(v) is int for v in value):
        raise ValueError(f"{what} is not a list of {length} integers")
    return value


def _bytes_state(value: Any, what: str) -> Any:
    import torch

    if not isinstance(value, str):
        raise ValueError(f"{what} is not a base64 string")
    raw = base64.b64decode(value.encode("ascii"), validate=True)
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)


def decode_rng_state(data: Any) -> dict[str, Any]:
    """The RNG states of :func:`rng_state`'s JSON data as the objects their ``set_state`` functions take;
    ``ValueError`` if it is malformed."""
    import numpy as np
    import torch

    try:
        if not isinstance(data, dict) or data.get("format") != RNG_FORMAT:
            raise ValueError(f"not RNG states of format {RNG_FORMAT}")
        py, npy = data["python"], data["numpy"]
        if py["version"] != 3:
            raise ValueError("python state is not of version 3")
        gauss_next = py["gauss_next"]
        if gauss_next is not None and type(gauss_next) is not float:
            raise ValueError("python.gauss_next is not a number")
        if npy["bit_generator"] != "MT19937" or type(npy["pos"]) is not int or not 0 <= npy["pos"] <= 624 \
                or npy["has_gauss"] not in (0, 1) or type(npy["cached_gaussian"]) is not float:
            raise ValueError("numpy state is malformed")
        state = {
            "python": (py["version"], tuple(_ints(py["state"], 625, "python.state")), gauss_next),
            "numpy": ("MT19937", np.array(_ints(npy["key"], 624, "numpy.key"), dtype=np.uint32), npy["pos"],
                      npy["has_gauss"], npy["cached_gaussian"]),
            "torch": _bytes_state(data["torch"], "torch"),
        }
        if state["torch"].numel() != torch.get_rng_state().numel():
            raise ValueError("torch state has the wrong size")
        if "cuda" in data:
            if not isinstance(data["cuda"], list):
                raise ValueError("cuda is not a list")
            state["cuda"] = [_bytes_state(s, "cuda") for s in data["cuda"]]
        return state
    except (KeyError, TypeError, OverflowError, binascii.Error, UnicodeError) as exc:
        raise ValueError(f"malformed RNG states ({type(exc).__name__}: {exc})") from None


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore states decoded by :func:`decode_rng_state`."""
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def read_rng_state(path: Path) -> dict[str, Any]:
    """The decoded RNG states of ``path``; ``ValueError`` naming the problem if it is unreadable."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    return decode_rng_state(data)


def write_rng_state(path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rng_state()), encoding="utf-8")
    os.replace(tmp, path)


# -- saving ---------------------------------------------------------------------------------------


def save_checkpoint(engine: Any, ckpt_dir: Path, step: int, run_state: Mapping[str, Any], rank: int,
                    keep: int) -> Path:
    """Save a DeepSpeed checkpoint ``step-NNNNNNNN`` (all ranks) plus this rank's RNG states; the main rank
    then deletes all but the ``keep`` newest (``keep`` <= 0 keeps all)."""
    import torch

    tag = f"step-{step:08d}"
    engine.save_checkpoint(str(ckpt_dir), tag=tag, client_state={CLIENT_KEY: dict(run_state)},
                           exclude_frozen_parameters=True)
    write_rng_state(rng_file(ckpt_dir / tag, rank))
    torch.distributed.barrier()
    if rank == 0 and keep > 0:
        tags = sorted(p for p in ckpt_dir.glob("step-*") if p.is_dir())
        for old in tags[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    torch.distributed.barrier()
    return ckpt_dir / tag


# -- checking -------------------------------------------------------------------------------------


class _Refused(Exception):
    """A checkpoint folder that must not be loaded; the message says why."""


def _pt_problem(path: Path, read_all: bool) -> str | None:
    """Why ``path`` must not be loaded, or None; ``read_all`` also checks the CRC of every record."""
    import torch

    if not path.is_file():
        return f"{path} is not a regular file: refusing to load it"
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        return f"{path} cannot be read ({exc})"
    if head[:1] == b"\x80":
        return (f"{path} is in torch's legacy pickle format, which cannot be checked without running it: "
                "refusing to load it")
    if head != b"PK\x03\x04":
        return f"{path} is damaged (empty)" if not head else f"{path} is damaged (not a torch zip archive)"
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in archive.namelist()):
                return f"{path} is damaged (no data.pkl record)"
            packed = next((i.filename for i in archive.infolist() if i.compress_type != zipfile.ZIP_STORED), None)
            if packed is not None:  # torch stores records uncompressed; a packed one may be a zip bomb
                return f"{path} is not a torch checkpoint (record {packed} is compressed): refusing to load it"
            bad = archive.testzip() if read_all else None
            if bad is not None:
                return f"{path} is damaged (record {bad} fails its CRC check)"
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, ValueError) as exc:
        return f"{path} is damaged (truncated or corrupt zip archive: {exc})"
    try:
        unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except pickle.UnpicklingError as exc:
        return f"{path} cannot be checked without running its pickle ({exc}): refusing to load it"
    except (EOFError, RuntimeError, ValueError, OSError) as exc:
        return f"{path} is damaged ({type(exc).__name__}: {exc})"
    unsafe -= set(DEEPSPEED_GLOBALS)
    if unsafe:
        problem = (f"{path} would import {', '.join(sorted(unsafe))} when loaded, which no training checkpoint "
                   "holds: refusing to load it")
        if path.name.startswith("rng_rank"):
            problem += " (RNG states in the format of earlier versions are not read: delete the file to resume " \
                       "without them)"
        return problem
    return None


def _optimizer_states(folder: Path, rank: int) -> list[Path]:
    name = f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt"
    return [folder / name, folder / f"bf16_{name}"]


def _check_folder(folder: Path, rank: int, zero_stage: int) -> None:
    """Raise :class:`_Refused` unless ``folder`` is a complete, intact checkpoint that only holds tensors
    and plain data."""
    if not (folder / MODEL_STATES).is_file():
        raise _Refused(f"{folder} has no model-states file {MODEL_STATES}: the checkpoint is incomplete")
    if zero_stage > 0 and not any(p.is_file() for p in _optimizer_states(folder, rank)):
        raise _Refused(f"{folder} has no optimizer-states file {_optimizer_states(folder, rank)[0].name} of "
                       f"rank {rank}: the checkpoint is incomplete")
    own = {p.name for p in _optimizer_states(folder, rank)}
    for path in sorted(folder.rglob("*.pt")):
        # a rank loads only its own optimizer states (ZeRO's elastic mode aside): the CRC of every record
        # is checked for the files this rank loads, the structure and globals for all
        other_rank = "zero_pp_rank_" in path.name and path.name not in own
        problem = _pt_problem(path, read_all=not other_rank)
        if problem:
            raise _Refused(problem)
    for path in sorted(folder.glob("rng_rank*.json")):
        try:
            read_rng_state(path)
        except ValueError as exc:
            raise _Refused(f"{path} is damaged ({exc})") from None


def verify_checkpoint(folder: Path, zero_stage: int) -> None:
    """Raise :class:`TrainError` unless ``folder`` is a complete, intact checkpoint holding only tensors and
    plain data (every rank's files checked for structure and globals, rank 0's records for their CRC)."""
    try:
        _check_folder(folder, 0, zero_stage)
    except _Refused as exc:
        raise TrainError(str(exc)) from None


def _previous_intact(root: Path, before: str | None, rank: int, zero_stage: int) -> Path | None:
    """The newest intact checkpoint of ``root`` whose tag sorts before ``before`` (any when None)."""
    tags = sorted((p for p in root.glob("step-*") if p.is_dir() and (before is None or p.name < before)),
                  reverse=True)
    for folder in tags:
        try:
            _check_folder(folder, rank, zero_stage)
        except _Refused:
            continue
        return folder
    return None


def _what_to_do(root: Path, before: str | None, rank: int, zero_stage: int) -> str:
    previous = _previous_intact(root, before, rank, zero_stage)
    if previous is None:
        return f"; there is no earlier intact checkpoint in {root}: start the run again without --resume"
    return f"; the previous checkpoint {previous.name} is intact: resume from it with --resume {previous}"


def locate_checkpoint(ckpt_dir: Path, resume: str) -> tuple[Path, str, Path | None]:
    """``(load_dir, tag, latest_file)`` for ``--resume``: ``latest`` (of ``ckpt_dir``), a checkpoint folder
    with a ``latest`` file (``latest_file`` is that file), or a tag folder (``latest_file`` is None)."""
    if resume == "latest":
        load_dir = ckpt_dir
        if not (ckpt_dir / "latest").is_file():
            raise TrainError(f"--resume latest: no checkpoint in {ckpt_dir} (no 'latest' file)")
    else:
        path = Path(resume)
        if not path.is_dir():
            raise TrainError(f"--resume {resume}: not a checkpoint directory")
        if not (path / "latest").is_file():
            return path.parent, path.name, None
        load_dir = path
    latest = load_dir / "latest"
    try:
        tag = latest.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as exc:
        raise TrainError(f"cannot resume: {latest} cannot be read ({exc})") from None
    if not tag or tag in (".", "..") or any(c in tag for c in "/\\\0"):
        raise TrainError(f"cannot resume: {latest} does not name a checkpoint folder (it holds {tag!r})")
    return load_dir, tag, latest


# -- loading --------------------------------------------------------------------------------------


def _allowed_globals() -> list[Any]:
    found = []
    for name in DEEPSPEED_GLOBALS:
        module, _, attr = name.rpartition(".")
        found.append(getattr(importlib.import_module(module), attr))
    return found


@contextlib.contextmanager
def _weights_only_loads(engine: Any) -> Iterator[None]:
    """DeepSpeed's checkpoint engine loads with ``weights_only=False``; within this block the engine's
    loads go through torch's weights-only unpickler, allowing :data:`DEEPSPEED_GLOBALS` only."""
    import torch

    checkpoint_engine = engine.checkpoint_engine
    allowed = _allowed_globals()

    def load(path: str, map_location: Any = None) -> Any:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location=map_location, weights_only=True)

    shadowed = vars(checkpoint_engine).get("load")
    checkpoint_engine.load = load
    try:
        yield
    finally:
        if shadowed is None:
            del checkpoint_engine.load
        else:
            checkpoint_engine.load = shadowed


def load_checkpoint(engine: Any, ckpt_dir: Path, resume: str, rank: int) -> tuple[Path, dict[str, Any]]:
    """Check the checkpoint ``--resume`` names (see :func:`locate_checkpoint`), load model, optimizer and LR
    scheduler into ``engine``; returns the tag folder and the run state saved with them."""
    load_dir, tag, latest = locate_checkpoint(ckpt_dir, resume)
    folder = load_dir / tag
    zero_stage = int(engine.zero_optimization_stage())
    if not folder.is_dir():
        missing = "is not a folder" if folder.exists() else "does not exist"
        raise TrainError(f"cannot resume: {latest} names checkpoint {tag}, but {folder} {missing}"
                         + _what_to_do(load_dir, None, rank, zero_stage))
    try:
        _check_folder(folder, rank, zero_stage)
    except _Refused as exc:
        raise TrainError(f"cannot resume: {exc}{_what_to_do(load_dir, tag, rank, zero_stage)}") from None
    try:
        with _weights_only_loads(engine):
            path, client = engine.load_checkpoint(str(load_dir), tag=tag, load_module_strict=False)
    except pickle.UnpicklingError as exc:  # a file changed after the checks
        reason = next((line.strip() for line in str(exc).splitlines() if "WeightsUnpickler" in line), str(exc))
        raise TrainError(f"cannot resume from {folder}: refusing to load it ({reason})") from None
    except Exception as exc:  # the files passed the checks: what is left is a checkpoint of another model
        raise TrainError(f"cannot resume from {folder}: loading it failed ({type(exc).__name__}: {exc}); "
                         "was it written by a run of the same recipe?") from None
    if path is None or client is None or CLIENT_KEY not in client:
        raise TrainError(f"cannot load checkpoint {folder}: not a panel2patch training checkpoint")
    return folder, client[CLIENT_KEY]


def restore_rng_state(folder: Path, rank: int) -> None:
    """Restore this rank's RNG states saved with the checkpoint; warns and leaves them if there are none."""
    path = rng_file(folder, rank)
    if not path.is_file():
        warnings.warn(f"{folder} holds no RNG states of rank {rank} ({path.name}): resuming without restoring "
                      "them, so random draws differ from an uninterrupted run", stacklevel=2)
        return
    try:
        set_rng_state(read_rng_state(path))
    except (ValueError, RuntimeError) as exc:
        raise TrainError(f"cannot resume: {path} is damaged ({exc})") from None
