"""Figures mined at once (``panel2patch mine --pool N``): the engine answers concurrent figures in one batch, one
caller's error stays its own, and the corpus is the one a sequential run writes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from panel2patch.cli import main
from panel2patch.corpus import read_corpus
from panel2patch.hookspecs import hookimpl
from panel2patch.parsers.lvlm import engine as engine_module
from panel2patch.parsers.lvlm.cache import Answer, Backend
from panel2patch.parsers.lvlm.engine import Engine, EngineSettings
from panel2patch.parsers.lvlm.reference import ReferenceBackend

BATCHES: list[list] = []  # what the backends of this module were sent, batch by batch
HOLDING = threading.Event()  # the held backend has its first batch


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(engine_module, "_ENGINES", {})
    BATCHES.clear()
    HOLDING.clear()


class HeldBackend(Backend):
    """Answers each prompt with itself; the first batch waits until ``waiting`` other callers have queued, and a
    prompt ``"bad"`` fails the whole batch it is in."""

    name = "held"

    def __init__(self, waiting: int) -> None:
        self.waiting, self.engine = waiting, None

    def generate(self, requests):
        if not BATCHES:
            HOLDING.set()
            deadline = time.monotonic() + 10
            while len(self.engine._queue) < self.waiting and time.monotonic() < deadline:
                time.sleep(0.005)
        BATCHES.append([r.prompt for r in requests])
        if any(r.prompt == "bad" for r in requests):
            raise RuntimeError("the server refused a request")
        return [Answer(json.dumps({"echo": r.prompt})) for r in requests]


class Recording(ReferenceBackend):
    """The reference answers; each batch recorded as the figures (image sizes) its requests belong to."""

    name = "recording"

    def generate(self, requests):
        BATCHES.append([r.metadata["figure"].size if "figure" in r.metadata else r.metadata["caption"][:20]
                        for r in requests])
        return super().generate(requests)


class Backends:
    @hookimpl
    def register_lvlm_backends(self, register):
        register("held", HeldBackend)
        register("recording", Recording)


def held_engine(add_plugin, waiting: int) -> Engine:
    add_plugin(Backends(), "pool-test-backends")
    engine = Engine(EngineSettings(model="m", backend="held", backends={"held": {"waiting": waiting}}))
    engine.backend.engine = engine
    return engine


def ask_concurrently(engine: Engine, prompts: list[str]) -> dict[str, object]:
    """Each prompt asked by a thread of its own, the first one first; what each thread got (answer text or error)."""
    got: dict[str, object] = {}

    def ask(prompt: str) -> None:
        try:
            got[prompt] = engine.ask([engine.request(prompt)], "probe")[0].text
        except RuntimeError as exc:
            got[prompt] = exc

    first = threading.Thread(target=ask, args=(prompts[0],))
    first.start()
    assert HOLDING.wait(10)  # the first caller holds the backend
    others = [threading.Thread(target=ask, args=(p,)) for p in prompts[1:]]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(timeout=20)
    return got


def test_callers_that_queue_while_a_batch_is_out_go_together(add_plugin):
    engine = held_engine(add_plugin, waiting=3)
    got = ask_concurrently(engine, ["p0", "p1", "p2", "p3"])
    assert BATCHES[0] == ["p0"] and sorted(BATCHES[1]) == ["p1", "p2", "p3"] and len(BATCHES) == 2
    assert got == {p: json.dumps({"echo": p}) for p in ["p0", "p1", "p2", "p3"]}  # each caller its own answer


def test_a_failing_batch_is_sent_again_caller_by_caller(add_plugin):
    engine = held_engine(add_plugin, waiting=3)
    got = ask_concurrently(engine, ["p0", "p1", "bad", "p3"])
    assert sorted(BATCHES[1]) == ["bad", "p1", "p3"]  # together first, then one by one
    assert sorted(map(tuple, BATCHES[2:])) == [("bad",), ("p1",), ("p3",)]
    assert isinstance(got["bad"], RuntimeError)
    assert got["p1"] == json.dumps({"echo": "p1"}) and got["p3"] == json.dumps({"echo": "p3"})


def digest(corpus: Path) -> list[tuple]:
    return sorted((r.key, json.dumps({**r.figure.to_json(), "components": None}, sort_keys=True), r.image)
                  for r in read_corpus(corpus))


def test_a_pooled_run_writes_the_sequential_corpus_and_batches_figures_together(tmp_path, monkeypatch, add_plugin):
    monkeypatch.chdir(tmp_path)
    assert main(["demo-data", "demo", "--n", "6", "--seed", "2"]) == 0
    add_plugin(Backends(), "pool-test-backends")
    common = ["lvlm.backend=recording", "lvlm.backends.recording.annotations=demo/annotations",
              "lvlm.backends.recording.index=demo/captions.jsonl", "mine.chunk_size=4"]
    calls = {}
    for name, pool in (("alone", "1"), ("pooled", "3")):
        BATCHES.clear()
        assert main(["mine", "lvlm_demo", *common, f"lvlm.cache=out/{name}/answers.jsonl",
                     f"mine.writer.args.out=out/{name}/corpus", "--workers", "1", "--pool", pool]) == 0
        calls[name] = [len(set(batch)) for batch in BATCHES]  # figures per backend call
    assert max(calls["alone"]) == 1
    assert max(calls["pooled"]) >= 2 and len(calls["pooled"]) < len(calls["alone"]), calls
    assert digest(tmp_path / "out/pooled/corpus") == digest(tmp_path / "out/alone/corpus")
    manifests = [json.loads((tmp_path / f"out/{n}/corpus/manifest.json").read_text()) for n in ("alone", "pooled")]
    assert [m["figures"] for m in manifests] == [6, 6] and manifests[0]["diagnostics"] == manifests[1]["diagnostics"]


def test_the_pool_must_be_positive(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["mine", "lvlm_demo", "--workers", "1", "--pool", "0"]) != 0
    assert "--pool must be >= 1 (got 0)" in capsys.readouterr().err
