"""Mining with the LVLM data engine (recipe ``lvlm_demo``): the whole pipeline on annotated demo figures, replay of
the answer cache, resume after a kill without asking twice, malformed answers through mining, and the panel parser on
a tiny real Qwen2.5-VL whose decoding is forced to a recorded answer."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from panel2patch.cli import main
from panel2patch.corpus import read_corpus, read_manifest, read_rejects
from panel2patch.data import Figure
from panel2patch.hookspecs import hookimpl
from panel2patch.parsers.boxes import box_iou
from panel2patch.parsers.lvlm.cache import Answer, request_key
from panel2patch.parsers.lvlm.reference import ReferenceBackend

HERE = Path(__file__).resolve().parent
HOLD_ENV = "LVLM_MINING_HOLD_AT"  # "<figure id>:<component>": the counting backend stops answering there
HELD_ENV = "LVLM_MINING_HELD_FLAG"  # file the counting backend writes once it holds


@pytest.fixture(autouse=True)
def fresh_engines(monkeypatch):
    """Every test builds its own engines (they are shared per process by settings)."""
    monkeypatch.setattr("panel2patch.parsers.lvlm.engine._ENGINES", {})


# --- shared steps --------------------------------------------------------------------------------------------------


def demo(root: Path, n: int, seed: int) -> dict[str, Figure]:
    """Write a demo set under ``root/demo``; its annotated figures by id."""
    assert main(["demo-data", str(root / "demo"), "--n", str(n), "--seed", str(seed)]) == 0
    return {p.stem: Figure.from_json(json.loads(p.read_text())) for p in sorted((root / "demo/annotations").glob("*.json"))}


def mine(*overrides: str) -> int:
    return main(["mine", "lvlm_demo", *overrides, "--workers", "1"])


def digest(corpus: Path) -> list[tuple]:
    """Every sample's key, Figure JSON (without the recorded components and the diagnostics) and image bytes."""
    return sorted((r.key, json.dumps({**r.figure.to_json(), "components": None, "diagnostics": None}, sort_keys=True),
                   r.image) for r in read_corpus(corpus))


def figures_of(corpus: Path) -> dict[str, Figure]:
    return {r.figure.id: r.figure for r in read_corpus(corpus)}


def summed_diagnostics(figures) -> Counter:
    total: Counter = Counter()
    for f in figures:
        total.update(f.diagnostics)
    return total


def component_of(request) -> str:
    """The LVLM component that made ``request`` (the ``task`` every component puts in its requests' metadata)."""
    return request.metadata["task"]


def index_lines(root: Path) -> int:
    return len([line for line in (root / "demo/captions.jsonl").read_text().splitlines() if line.strip()])


# --- 1. the recipe end to end, then replayed ----------------------------------------------------------------------


def test_lvlm_demo_mines_the_annotations_and_replays_without_asking(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    truth = demo(tmp_path, 4, 5)
    assert mine() == 0
    corpus = tmp_path / "out/lvlm_demo/corpus"
    figures, rejects = figures_of(corpus), read_rejects(corpus)
    manifest = read_manifest(corpus)
    assert manifest["inputs"] == index_lines(tmp_path) == len(figures) + len(rejects) == 4
    assert not rejects and set(figures) == set(truth)

    for fid, figure in figures.items():
        want = truth[fid]
        assert sorted(p.label for p in figure.panels) == sorted(p.label for p in want.panels), fid
        for panel in figure.panels:  # each labelled box where the annotation has it (rounding of the view only)
            (ref,) = [p for p in want.panels if p.label == panel.label]
            assert box_iou(panel.box, ref.box) > 0.95, (fid, panel.label, panel.box, ref.box)
            assert panel.provenance == "lvlm_panels:votes=1/1" and panel.score == 1.0
            assert panel.description and panel.description.strip()
        if want.markers:
            assert figure.markers, fid
        assert all(m.panel_id in {p.id for p in figure.panels} for m in figure.markers)
        for region in figure.regions:
            assert region.description and region.description.strip()
            assert region.panel_id in {p.id for p in figure.panels} and region.texts
    regions = [r for f in figures.values() for r in f.regions]
    assert regions and any(r.provenance == "lvlm_grounding" for r in regions)
    assert sum(len(f.markers) for f in figures.values()) > 0

    # the counts each figure carries add up to the manifest's (no rejects whose counts only the manifest holds)
    total = summed_diagnostics(figures.values())
    assert dict(total) == manifest["diagnostics"]
    assert total["lvlm.panels.requests"] == len(figures)  # the full view agreed: no extra views
    removed = Counter()  # boxes the cleaners dropped after the LVLM stages saw them
    for counts in manifest["cleaners"].values():
        removed.update(counts)
    panels = sum(len(f.panels) for f in figures.values()) + removed["panels"]
    assert total["lvlm.markers.requests"] == panels
    assert total["lvlm.descriptions.requests"] == panels  # one per panel, its regions described in the same answer
    assert total["lvlm.panels.status.ok"] == total["lvlm.panels.requests"]
    for f in figures.values():
        assert f.diagnostics["lvlm.panels.requests"] == 1 and f.diagnostics["lvlm.splitter.requests"] == 1
    cache = tmp_path / "out/lvlm_demo/answers.jsonl"
    recorded = [json.loads(line) for line in cache.read_text().splitlines()]
    assert {r["backend"] for r in recorded} == {"reference"}
    assert len({r["key"] for r in recorded}) == sum(v for k, v in total.items() if k.endswith(".requests"))

    # replay: the recorded backend alone, no cache, no annotations, no live backend
    shutil.move(tmp_path / "demo/annotations", tmp_path / "annotations-away")

    def no_live_answer(self, requests):
        raise AssertionError("the replay asked the reference backend")

    monkeypatch.setattr(ReferenceBackend, "generate", no_live_answer)
    before = cache.read_bytes()
    assert mine("lvlm.backend=recorded", "lvlm.cache=null", "mine.writer.args.out=out/replay") == 0
    replay = tmp_path / "out/replay"
    assert read_rejects(replay) == []  # a miss raises MissingAnswerError, which would reject the figure
    assert digest(replay) == digest(corpus)
    replayed = figures_of(replay)
    assert read_manifest(replay)["inputs"] == 4
    for fid, figure in replayed.items():
        assert figure.components["parser"]["args"]["engine"]["backend"] == "recorded"
        counts = {k: v for k, v in figure.diagnostics.items() if not k.endswith(".cache_hits")}
        assert counts == {k: v for k, v in figures[fid].diagnostics.items() if not k.endswith(".cache_hits")}
    assert cache.read_bytes() == before  # replaying writes no answers


# --- 2. kill and resume: the same corpus, nothing asked twice ----------------------------------------------------


class CountingBackend(ReferenceBackend):
    """The reference answers, with the key of every answered request appended to ``log`` (one line each, synced, so
    the count survives the process). With ``$LVLM_MINING_HOLD_AT`` = ``<figure id>:<component>`` it stops at the
    first batch of that figure and component, before answering: writes ``$LVLM_MINING_HELD_FLAG`` and waits to be killed."""

    name = "counting"

    def __init__(self, annotations: str, index: str, log: str) -> None:
        super().__init__(annotations, index)
        self.log = Path(log)

    def generate(self, requests):
        hold = os.environ.get(HOLD_ENV)
        if hold and any(f"{self._figure(r).id}:{component_of(r)}" == hold for r in requests):
            Path(os.environ[HELD_ENV]).write_text("held")
            time.sleep(600)
        answers = super().generate(requests)
        with self.log.open("a") as fh:
            fh.write("".join(request_key(r) + "\n" for r in requests))
            fh.flush()
            os.fsync(fh.fileno())
        return answers


class CountingPlugin:
    @hookimpl
    def register_lvlm_backends(self, register):
        register("counting", CountingBackend)


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
from panel2patch import manager
from panel2patch.cli import main
from test_lvlm_mining import CountingPlugin
manager.plugin_manager().register(CountingPlugin(), name="counting-backend")
sys.exit(main(["mine", "lvlm_demo", *{overrides!r}, "--workers", "1"]))  # the plugin lives in this process
"""


def counting_overrides(name: str) -> list[str]:
    return ["lvlm.backend=counting", "lvlm.backends.counting.annotations=demo/annotations",
            "lvlm.backends.counting.index=demo/captions.jsonl", f"lvlm.backends.counting.log=out/{name}/asked.log",
            f"lvlm.cache=out/{name}/answers.jsonl", f"mine.writer.args.out=out/{name}/corpus", "mine.chunk_size=1"]


def asked(name: str, root: Path) -> Counter:
    path = root / "out" / name / "asked.log"
    return Counter(path.read_text().split()) if path.exists() else Counter()


def test_killed_lvlm_run_resumes_to_the_same_corpus_without_asking_twice(tmp_path, monkeypatch, add_plugin):
    monkeypatch.chdir(tmp_path)
    demo(tmp_path, 5, 11)
    add_plugin(CountingPlugin(), "counting-backend")
    assert mine(*counting_overrides("ref")) == 0  # uninterrupted, in this process
    ref_asked = asked("ref", tmp_path)
    assert ref_asked and max(ref_asked.values()) == 1

    env = {**os.environ, HOLD_ENV: "demo-00002:markers", HELD_ENV: str(tmp_path / "held")}
    driver = [sys.executable, "-c", DRIVER.format(tests=str(HERE), overrides=counting_overrides("killed"))]
    log = tmp_path / "killed.err"
    with log.open("wb") as err:
        proc = subprocess.Popen(driver, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 300  # start-up (torch) can be slow on a loaded machine
    while time.time() < deadline and not (tmp_path / "held").exists() and proc.poll() is None:
        time.sleep(0.05)
    held = (tmp_path / "held").exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert held, f"the run never reached the third figure's markers: {log.read_text()[-2000:]}"
    shards = tmp_path / "out/killed/corpus/shards"
    assert len(list(shards.glob("*.stats.json"))) == 2, "not killed inside the third chunk"
    assert not (tmp_path / "out/killed/corpus/manifest.json").exists()
    first = asked("killed", tmp_path)
    assert 0 < sum(first.values()) < sum(ref_asked.values())

    env.pop(HOLD_ENV)
    done = subprocess.run(driver, cwd=tmp_path, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    second = asked("killed", tmp_path) - first
    assert digest(tmp_path / "out/killed/corpus") == digest(tmp_path / "out/ref/corpus")
    assert not list(shards.glob("*.tmp"))
    # every request answered once over both runs: exactly the uninterrupted run's requests
    n_first, n_second, n_ref = sum(first.values()), sum(second.values()), sum(ref_asked.values())
    assert (n_first, n_second, n_first + n_second) == (n_first, n_ref - n_first, n_ref)
    assert first + second == ref_asked and max((first + second).values()) == 1
    ref_manifest, resumed = read_manifest(tmp_path / "out/ref/corpus"), read_manifest(tmp_path / "out/killed/corpus")
    for key in ("inputs", "figures", "counts", "rejects", "cleaners"):
        assert resumed[key] == ref_manifest[key], key
    # the third figure's panel answer, asked before the kill, came from the cache on resume
    third = figures_of(tmp_path / "out/killed/corpus")["demo-00002"]
    assert third.diagnostics["lvlm.panels.cache_hits"] == 1 == third.diagnostics["lvlm.panels.requests"]
    assert third.diagnostics.get("lvlm.markers.cache_hits", 0) == 0
    ref_diag = {k: v for k, v in read_manifest(tmp_path / "out/ref/corpus")["diagnostics"].items()
                if not k.endswith(".cache_hits")}
    assert {k: v for k, v in resumed["diagnostics"].items() if not k.endswith(".cache_hits")} == ref_diag


# --- 3. malformed answers through mining ---------------------------------------------------------------------------


def _cut_inside_last_item(answer: Answer) -> Answer:
    """The answer cut off by the token limit inside its last item (an answer without items as it is)."""
    at = answer.text.rfind('{"bbox_2d"')
    return Answer(answer.text[: at + 12], "length") if at >= 0 else answer


#: How the panel answer of each demo figure (in id order) is mangled, and how the figure must end.
CASES = ["fenced", "truncated_once", "truncated_always", "single_object", "bare_list", "other_key", "python_literal",
         "empty", "prose"]


class MangledBackend(ReferenceBackend):
    """The reference answers, with each figure's panel answers mangled by its case of :data:`CASES`."""

    name = "mangled"

    def generate(self, requests):
        answers = super().generate(requests)
        out = []
        for request, answer in zip(requests, answers):
            if component_of(request) != "panels":
                out.append(answer)
                continue
            case = CASES[int(self._figure(request).id.rsplit("-", 1)[1])]
            out.append(self._mangle(case, answer, first=request.max_tokens == 1024))
        return out

    @staticmethod
    def _mangle(case: str, answer: Answer, first: bool) -> Answer:
        text, value = answer.text, json.loads(answer.text)
        items = value["panels"]
        if case == "fenced":
            return Answer(f"```json\n{text}\n```", "stop")
        if case == "truncated_once":
            return _cut_inside_last_item(answer) if first else answer
        if case == "truncated_always":
            return _cut_inside_last_item(answer)
        if case == "single_object":
            return Answer(json.dumps(items[0] if items else {}), "stop")
        if case == "bare_list":
            return Answer(json.dumps(items), "stop")
        if case == "other_key":
            return Answer(json.dumps({"results": items}), "stop")
        if case == "python_literal":
            return Answer(repr({"panels": [{**item, "note": None} for item in items]}), "stop")
        if case == "empty":
            return Answer("", "stop")
        if case == "prose":
            return Answer("I am sorry, but I cannot tell where the panels of this figure are.", "stop")
        raise AssertionError(case)


class MangledPlugin:
    @hookimpl
    def register_lvlm_backends(self, register):
        register("mangled", MangledBackend)


def test_malformed_panel_answers_end_as_figures_or_rejects(tmp_path, monkeypatch, add_plugin):
    monkeypatch.chdir(tmp_path)
    truth = demo(tmp_path, len(CASES), 4)
    assert all(len(f.panels) >= 2 for f in truth.values())  # a cut inside the last item leaves complete ones
    add_plugin(MangledPlugin(), "mangled-backend")
    assert mine("lvlm.backend=mangled", "lvlm.backends.mangled.annotations=demo/annotations",
                "lvlm.backends.mangled.index=demo/captions.jsonl", "lvlm.cache=out/mangled/answers.jsonl",
                "mine.writer.args.out=out/mangled/corpus", "mine.chunk_size=3") == 0
    corpus = tmp_path / "out/mangled/corpus"
    figures, rejects, manifest = figures_of(corpus), read_rejects(corpus), read_manifest(corpus)
    assert manifest["inputs"] == index_lines(tmp_path) == len(figures) + len(rejects) == len(CASES)
    case_of = {fid: CASES[int(fid.rsplit("-", 1)[1])] for fid in truth}
    by_case = {case_of[fid]: f for fid, f in figures.items()}
    assert set(by_case) == set(CASES) - {"empty", "prose"}
    assert {case_of[r["id"]]: r["reason"] for r in rejects} == {"empty": "lvlm_unusable_answer",
                                                                 "prose": "lvlm_unusable_answer"}
    for r in rejects:
        assert "stayed unusable" in r["detail"] and ("empty" if case_of[r["id"]] == "empty" else "unparseable") in r["detail"]

    def labels(case):
        return sorted(p.label for p in by_case[case].panels)

    def truth_labels(case):
        (fid,) = [fid for fid, c in case_of.items() if c == case]
        return sorted(p.label for p in truth[fid].panels)

    def repairs(case):
        return {k.rsplit(".", 1)[1] for k in by_case[case].diagnostics if k.startswith("lvlm.panels.repair.")}

    def diag(case, name):
        return by_case[case].diagnostics.get(f"lvlm.panels.{name}", 0)

    # every figure's panel answers were counted usable (the client's status: ok or repaired), one per request
    for case in ("fenced", "truncated_once", "truncated_always", "single_object", "bare_list", "other_key",
                 "python_literal"):
        assert diag(case, "status.ok") + diag(case, "status.repaired") == diag(case, "requests") >= 1, case
    # well-formed after the benign repair: the annotated panels, one request
    assert labels("fenced") == truth_labels("fenced")
    assert diag("fenced", "status.ok") == diag("fenced", "requests") == 1 and not repairs("fenced")
    # a bare list is the asked list without its key: the annotated panels, usable as it is (no retry)
    assert labels("bare_list") == truth_labels("bare_list") and not repairs("bare_list")
    assert diag("bare_list", "status.ok") == diag("bare_list", "requests") == 1 and diag("bare_list", "retried") == 0
    # cut off, then complete on the retry with the larger budget
    assert labels("truncated_once") == truth_labels("truncated_once")
    assert diag("truncated_once", "retried") == 1 == diag("truncated_once", "status.ok") == diag("truncated_once", "requests")
    assert not repairs("truncated_once") and diag("truncated_once", "status.repaired") == 0
    # cut off twice: the complete leading items, repaired
    assert labels("truncated_always") and set(labels("truncated_always")) < set(truth_labels("truncated_always"))
    assert diag("truncated_always", "status.repaired") >= 1 and "truncated" in repairs("truncated_always")
    assert diag("truncated_always", "retried") >= diag("truncated_always", "status.repaired")
    # shapes fitted to the asked list
    assert "single_object" in repairs("single_object")
    assert labels("single_object") and set(labels("single_object")) <= set(truth_labels("single_object"))
    assert diag("single_object", "requests") > 1  # a lone panel disagrees with the caption: extra views asked
    assert labels("other_key") == truth_labels("other_key") and repairs("other_key") == {"wrapped"}
    assert labels("python_literal") == truth_labels("python_literal")
    assert repairs("python_literal") == {"python_literal"} and diag("python_literal", "status.repaired") == 1
    for case in ("other_key", "python_literal"):
        assert diag(case, "requests") == 1 and diag(case, "retried") == 0, case
    # the rejected figures' counts are in the manifest only: every view asked, the prose retried, nothing else
    counted = Counter(manifest["diagnostics"])
    in_figures = summed_diagnostics(figures.values())
    for key, n in in_figures.items():
        assert counted[key] >= n, key
    views = {case_of[r["id"]]: int(re.search(r"answers of (\d+) views", r["detail"])[1]) for r in rejects}
    assert views["empty"] >= 2 and views["prose"] >= 2  # the full view disagreed: the extra views were asked too
    only_rejects = counted - in_figures
    assert only_rejects["lvlm.panels.status.empty"] == views["empty"]
    assert only_rejects["lvlm.panels.status.unparseable"] == views["prose"] == only_rejects["lvlm.panels.retried"]
    assert only_rejects["lvlm.panels.requests"] == views["empty"] + views["prose"]
    assert not {k for k in only_rejects if k.startswith(("lvlm.markers.", "lvlm.grounding.", "lvlm.descriptions."))}

    page = tmp_path / "report.html"
    assert main(["report", str(corpus), str(page)]) == 0
    html = page.read_text()
    assert "lvlm_unusable_answer" in html and "lvlm.panels.repair.python_literal" in html
    assert "lvlm.panels.status.empty" in html and html.count('<div class="fig">') == len(figures)


# --- 4. the panel parser on a tiny real Qwen2.5-VL ------------------------------------------------------------------

MIN_PIXELS, MAX_PIXELS = 4 * 28 * 28, 64 * 28 * 28


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    from panel2patch.parsers.lvlm.tiny import build_tiny_qwen

    return build_tiny_qwen(tmp_path_factory.mktemp("tiny-qwen"), MIN_PIXELS, MAX_PIXELS)


class ForceText:
    """A logits processor that makes batch row ``i`` emit ``targets[i]`` (token ids), then ``eos``."""

    def __init__(self, targets: list[list[int]], eos: int) -> None:
        self.targets, self.eos, self.start = targets, eos, None

    def __call__(self, input_ids, scores):
        import torch

        if self.start is None:
            self.start = input_ids.shape[1]
        step = input_ids.shape[1] - self.start
        forced = torch.full_like(scores, -float("inf"))
        for row, target in enumerate(self.targets):
            forced[row, target[step] if step < len(target) else self.eos] = 0.0
        return forced


def _two_panel_figure() -> Image.Image:
    image = Image.new("RGB", (300, 200), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, 142, 190), outline="black", width=3)
    draw.rectangle((158, 8, 292, 110), fill=(200, 40, 40))
    return image


def test_panel_parser_maps_a_forced_answer_of_a_real_tiny_qwen(tiny_qwen, tmp_path, monkeypatch):
    from panel2patch.parsers.lvlm.cache import AnswerCache
    from panel2patch.parsers.lvlm.panels import SetOfMarksPanelParser
    from panel2patch.parsers.lvlm.views import make_views

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "answers.jsonl"
    engine = {"model": "tiny-qwen", "backend": "transformers", "cache": str(cache), "min_pixels": MIN_PIXELS,
              "max_pixels": MAX_PIXELS,
              "backends": {"transformers": {"model": str(tiny_qwen), "device": "cpu", "min_pixels": MIN_PIXELS,
                                            "max_pixels": MAX_PIXELS}}}
    parser = SetOfMarksPanelParser(engine)
    backend = parser.engine.backend
    assert backend.name == "transformers" and parser.engine.client.backend is backend
    processor_size = backend.processor.image_processor.size
    assert (processor_size["shortest_edge"], processor_size["longest_edge"]) == (
        parser.engine.settings.min_pixels, parser.engine.settings.max_pixels)

    image = _two_panel_figure()
    (full, _), = make_views(image, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    assert full.size == (252, 168)
    forced = ('```json\n{"panels": [{"bbox_2d": [7, 7, 119, 160], "label": "A", "kind": "photo"}, '
              '{"bbox_2d": [133, 7, 245, 92], "label": "(b)", "kind": "other"}]}\n```')
    tok = backend.processor.tokenizer
    target = tok.encode(forced, add_special_tokens=False)
    assert tok.decode(target) == forced  # byte-level BPE: any text is spelled exactly
    seen = []

    def processors(requests):
        seen.extend(r.metadata.get("view").name for r in requests)
        return [ForceText([target for _ in requests], tok.eos_token_id)]

    backend.logits_processors = processors
    parse = parser.parse(image, "Two panels. (A) A stained section. (B) Quantification of the signal.")

    assert seen == ["full"]  # the full view agreed with the caption: no extra views, no retry
    assert backend.counts["requests"] == 1 and backend.counts["image_tokens"] == (252 // 28) * (168 // 28)
    assert (parse.width, parse.height) == image.size
    got = [(p.label, p.kind, p.provenance) for p in parse.panels]
    assert got == [("A", "photo", "lvlm_panels:votes=1/1"), ("B", "unknown", "lvlm_panels:votes=1/1")]
    assert parse.panels[0].box == pytest.approx(full.to_original((7, 7, 119, 160)))
    assert parse.panels[1].box == pytest.approx(full.to_original((133, 7, 245, 92)))
    assert parse.panels[1].box == pytest.approx((133 * 300 / 252, 7 * 200 / 168, 245 * 300 / 252, 92 * 200 / 168))

    # the answer landed in the cache byte for byte; a recorded replay parses the same panels without the model
    (record,) = [json.loads(line) for line in cache.read_text().splitlines()]
    assert record["text"] == forced and record["finish_reason"] == "stop" and record["backend"] == "transformers"
    assert record["tokens_image"] == (252 // 28) * (168 // 28)
    assert len(AnswerCache(cache)) == 1
    backend.logits_processors = None
    replay = SetOfMarksPanelParser({**engine, "backend": "recorded", "cache": None,
                                    "backends": {"recorded": {"path": str(cache)}}})
    again = replay.parse(image, "Two panels. (A) A stained section. (B) Quantification of the signal.")
    assert [(p.label, p.kind, p.box) for p in again.panels] == [(p.label, p.kind, p.box) for p in parse.panels]
    assert backend.counts["requests"] == 1
