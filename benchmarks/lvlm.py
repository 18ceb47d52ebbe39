"""Cost of the LVLM data engine: model calls and tokens per figure for each LVLM recipe, and its throughput here.

1. Calls and tokens. Each recipe (``lvlm_72b``, ``lvlm_7b``, ``lvlm_http``) mines each set (a demo set made by
   ``panel2patch demo-data`` and the real development sets ``embo_2025`` and ``exsclaim_ncomms`` under ``--data``)
   with the ``reference`` backend, which answers from the annotations as a perfect model would, wrapped in the
   ``metered`` backend registered here. ``metered`` renders every request with a tiny local Qwen2.5-VL processor
   (:func:`~panel2patch.parsers.lvlm.tiny.build_tiny_qwen`, at the recipe's ``lvlm.min_pixels``/``max_pixels``)
   and reports its tokens to the engine, which counts them per figure (``lvlm.<component>.tokens_*``). Image tokens
   are exact (Qwen2.5-VL's own image processor); text tokens come from the tiny model's small byte-level BPE
   tokenizer, not Qwen2.5's 151k-token vocabulary (not available offline), so they are an upper bound, and
   characters are reported beside them.
2. Throughput on this machine, over the first ``--throughput`` demo figures: (a) the tiny random Qwen2.5-VL through
   the ``transformers`` backend on CPU, the ``lvlm_panels`` parser alone (its answers are garbage, so figures end
   rejected: the time is that of the real model classes); (b) ``lvlm_http`` through the ``openai`` backend against
   an OpenAI-compatible server on 127.0.0.1 that answers what the ``reference`` backend answered to the same
   requests (looked up by the sent view's pixel hash, prompt and ``max_tokens``); (c) the same again on the same
   answer cache file, against (b) as the baseline.

Writes ``OUT/lvlm.json`` (everything, with date, machine and versions) and ``OUT/lvlm.md`` (the tables, also
printed). Usage::

    python benchmarks/lvlm.py [--demo 12] [--seed 0] [--sets demo,embo_2025,exsclaim_ncomms]
                              [--recipes lvlm_72b,lvlm_7b,lvlm_http] [--data ../shared/data/dev] [--out out/bench/lvlm]
                              [--throughput 4]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import io
import json
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from panel2patch import manager
from panel2patch.config import Recipe, load
from panel2patch.errors import Reject
from panel2patch.hookspecs import hookimpl
from panel2patch.images import open_image
from panel2patch.mining import ChunkStats
from panel2patch.parsers.lvlm import engine as lvlm_engine
from panel2patch.parsers.lvlm.backends import render_prompt
from panel2patch.parsers.lvlm.cache import Answer, Backend, Request
from panel2patch.parsers.lvlm.errors import BackendError
from panel2patch.parsers.lvlm.views import FACTOR, MIN_PIXELS, image_sha256
from panel2patch.plugins.mine_workers import make_miner
from panel2patch.run import versions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev_sets import DEFAULT_DATA, load_real, write_truth  # noqa: E402

RECIPES = ("lvlm_72b", "lvlm_7b", "lvlm_http")
SETS = ("demo", "embo_2025", "exsclaim_ncomms")
#: Recipe slot -> the LVLM component that fills it (its ``lvlm.<component>.`` counts).
COMPONENTS = {"parser": "panels", "markers": "markers", "splitter": "splitter", "grounding": "grounding",
              "descriptions": "descriptions"}
#: The throughput run of the tiny model: small views and answers, so that it ends in seconds per figure on CPU.
TINY_MAX_PIXELS = 256 * 28 * 28
TINY_MAX_TOKENS, TINY_RETRY_TOKENS = 24, 32
TOKEN_NOTE = ("Text tokens come from the tiny local byte-level BPE tokenizer (400 tokens, trained on a few box "
              "answers), NOT Qwen2.5's own 151k-token vocabulary (not available offline): text token counts are an "
              "upper bound, characters are given beside them. Image tokens are exact: Qwen2.5-VL's own image "
              "processor at each recipe's lvlm.min_pixels/max_pixels, one token per 28x28 merged patch. Prompt "
              "tokens are the chat-template prompt without its image tokens; answer tokens are the answer text "
              "plus the end-of-turn token.")


# --- the metered backend -------------------------------------------------------------------------------------------


_PROCESSORS: dict[str, Any] = {}
_PROMPT_TOKENS: dict[tuple, tuple[int, int]] = {}  # (processor, system, prompt, view sha) -> (prompt, image) tokens


def _processor(folder: str) -> Any:
    if folder not in _PROCESSORS:
        from transformers import AutoProcessor

        _PROCESSORS[folder] = AutoProcessor.from_pretrained(folder)
    return _PROCESSORS[folder]


class MeteredBackend(Backend):
    """The ``backend`` built with ``args`` (``reference`` by default), with each answer's ``tokens_in``,
    ``tokens_image`` and ``tokens_out`` set from the Qwen2.5-VL processor saved in ``processor``, after ``latency``
    seconds per call; :attr:`calls` counts calls, :attr:`chars`
    counts prompt and answer characters by component, :attr:`extra_view_figures` the figures whose panels were
    asked again on extra views."""

    name = "metered"

    def __init__(self, processor: str, args: dict[str, Any], backend: str = "reference", latency: float = 0.0) -> None:
        self.inner = manager.build("lvlm_backends", backend, args)
        self.folder, self.processor = processor, _processor(processor)
        self.chars: Counter[str] = Counter()
        self.extra_view_figures = self.calls = 0
        self.latency = latency

    def generate(self, requests: Sequence[Request]) -> list[Answer]:
        self.calls += 1
        time.sleep(self.latency)  # a model that takes time, so that concurrent figures queue behind a call
        answers = self.inner.generate(requests)
        first = requests[0].metadata if requests else {}
        if first.get("task") == "panels" and first["view"].kind != "full":
            self.extra_view_figures += 1  # a figure's extra views go in one batch after its full view
        return [self._metered(r, a) for r, a in zip(requests, answers)]

    def _metered(self, request: Request, answer: Answer) -> Answer:
        key = (self.folder, request.system, request.prompt, request.image_key())
        if key not in _PROMPT_TOKENS:
            proc = self.processor
            ids = proc(text=[render_prompt(request, proc)], images=None if request.image is None else [request.image],
                       return_tensors="pt")["input_ids"][0]
            n_image = int((ids == proc.image_token_id).sum())
            if request.image is not None and n_image != request.image.width * request.image.height // FACTOR**2:
                raise BackendError(f"the processor gave {n_image} image tokens for a {request.image.size} view: it "
                                   "resized the view")
            _PROMPT_TOKENS[key] = (int(ids.numel()), n_image)
        tokens_in, tokens_image = _PROMPT_TOKENS[key]
        component = request.metadata.get("task", "?")
        self.chars[f"{component}.prompt"] += len(request.prompt) + len(request.system or "")
        self.chars[f"{component}.answer"] += len(answer.text)
        tokens_out = len(self.processor.tokenizer(answer.text, add_special_tokens=False)["input_ids"]) + 1
        return dataclasses.replace(answer, tokens_in=tokens_in, tokens_image=tokens_image, tokens_out=tokens_out)


class MeterPlugin:
    """Registers :class:`MeteredBackend` as the ``lvlm_backends`` component ``metered``."""

    @hookimpl
    def register_lvlm_backends(self, register):
        register("metered", MeteredBackend)


# --- sets ----------------------------------------------------------------------------------------------------------


@dataclass
class FigureSet:
    """A folder index for mining (``index``, images relative to ``root``) and what ``reference`` answers from
    (Figure JSON under ``annotations``, images by ``reference_index``)."""

    name: str
    root: Path
    index: Path
    annotations: Path
    reference_index: Path
    figures: int


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def demo_set(folder: Path, n: int) -> FigureSet:
    """The first ``n`` figures of the demo set in ``folder``."""
    rows = [json.loads(line) for line in (folder / "captions.jsonl").read_text(encoding="utf-8").splitlines()[:n]]
    index = _jsonl(folder / f"captions-{n}.jsonl", rows)
    return FigureSet(f"demo ({n})", folder, index, folder / "annotations", index, len(rows))


def real_sets(data: Path, names: list[str], work: Path) -> list[FigureSet]:
    """The real development sets ``names``: ground truth and indexes under ``work``, images where they are."""
    found = load_real(data)
    missing = sorted(set(names) - set(found))
    if missing:
        raise SystemExit(f"{data}: no development set {', '.join(missing)} (found: {', '.join(found) or 'none'})")
    out = []
    for name in names:
        figures, folder = found[name], work / name
        write_truth(figures, folder / "annotations")
        root = Path(os.path.commonpath([f.image.parent for f in figures]))
        index = _jsonl(folder / "captions.jsonl", [{"id": f.truth.id, "image": str(f.image.relative_to(root)),
                                                    "caption": f.truth.caption} for f in figures])
        reference = _jsonl(folder / "reference.jsonl", [{"id": f.truth.id, "image": str(f.image)} for f in figures])
        out.append(FigureSet(name, root, index, folder / "annotations", reference, len(figures)))
    return out


# --- mining runs ---------------------------------------------------------------------------------------------------


def _recipe(name: str, figures: FigureSet, out: Path, lvlm: dict[str, Any]) -> Recipe:
    """Recipe ``name`` mining ``figures`` into ``out``, its ``lvlm`` settings updated with ``lvlm``."""
    overrides = [f"lvlm.{k}={json.dumps(v)}" for k, v in lvlm.items()]
    recipe = load(name, [*overrides, f"mine.writer.args.out={json.dumps(str(out))}"])
    recipe.config["mine"]["source"] = {"name": "folder_index",
                                       "args": {"root": str(figures.root), "index": str(figures.index)}}
    return dataclasses.replace(recipe, recorded=None)


def mine(recipe: Recipe, desc: str, n: int, pool: int = 1) -> tuple[ChunkStats, float]:
    """Mine with a fresh engine (the answer cache read from its file), ``pool`` figures at once; the stats and the
    seconds of the run."""
    lvlm_engine._ENGINES.clear()
    miner = make_miner(recipe, 0, 1, None, pool)
    with tqdm(total=n, desc=desc, unit="fig", file=sys.stderr) as bar:
        start = time.perf_counter()
        stats = miner.run_shard(progress=bar.update)
        return stats, time.perf_counter() - start


def _reference(figures: FigureSet) -> dict[str, str]:
    return {"annotations": str(figures.annotations), "index": str(figures.reference_index)}


def tiny_folder(work: Path, min_pixels: int, max_pixels: int) -> str:
    """A tiny Qwen2.5-VL folder with these pixel limits, made at the first call (the progress its tokenizer trainer
    writes to the stdout file descriptor goes to stderr, so that stdout holds the tables only)."""
    from panel2patch.parsers.lvlm.tiny import build_tiny_qwen

    folder = work / f"tiny-qwen-{min_pixels}-{max_pixels}"
    if not folder.is_dir():
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
        try:
            build_tiny_qwen(folder, min_pixels, max_pixels)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    return str(folder)


def count(name: str, figures: FigureSet, work: Path) -> dict[str, Any]:
    """Calls, tokens and characters per figure of recipe ``name`` on ``figures``, answered by ``reference``, and the
    mined corpus's panel F1@0.5 and label accuracy against the annotations (what the pipeline keeps of perfect
    answers: views, coordinates, merging, cleaners)."""
    from panel2patch.parsers.tools.scoring import load_figures, score

    settings = lvlm_engine.engine_settings(load(name).config["lvlm"])
    processor = tiny_folder(work, settings.min_pixels, settings.max_pixels)
    out = work / f"{name}-{figures.name}"
    recipe = _recipe(name, figures, out, {
        "backend": "metered", "cache": None,
        "backends.metered": {"processor": processor, "args": _reference(figures)}})
    stats, seconds = mine(recipe, f"{name} on {figures.name}", figures.figures)
    backend = lvlm_engine.shared_engine(recipe.config["lvlm"]).backend
    n, diag = max(stats.inputs, 1), stats.diagnostics
    components = {}
    for slot, component in COMPONENTS.items():
        node = recipe.config["mine"].get(slot)
        prefix = f"lvlm.{component}."
        tokens_in, image = diag[prefix + "tokens_in"], diag[prefix + "tokens_image"]
        components[component] = {
            "name": node["name"] if node else None,
            "requests": diag[prefix + "requests"] / n, "image_tokens": image / n,
            "prompt_tokens": (tokens_in - image) / n, "answer_tokens": diag[prefix + "tokens_out"] / n,
            "total_tokens": (tokens_in + diag[prefix + "tokens_out"]) / n,
            "prompt_chars": backend.chars[f"{component}.prompt"] / n,
            "answer_chars": backend.chars[f"{component}.answer"] / n}
    total = {k: sum(c[k] for c in components.values()) for k in next(iter(components.values())) if k != "name"}
    return {"recipe": name, "set": figures.name, "figures": stats.inputs, "mined": stats.figures,
            "rejects": dict(stats.rejects), "min_pixels": settings.min_pixels, "max_pixels": settings.max_pixels,
            "extra_view_share": backend.extra_view_figures / n, "extra_views": diag["lvlm.panels.extra_views"] / n,
            "seconds": round(seconds, 2), "components": components, "total": total,
            "kept": _kept(score(load_figures(out), load_figures(figures.annotations)))}


def _kept(scores: dict[str, Any]) -> dict[str, float | None]:
    overall = scores.get("overall", scores)
    return {"panel_f1": overall["panels"]["0.5"]["f1"], "labels": overall["labels"]["accuracy"]}


def pooling(figures: FigureSet, work: Path, pools: Sequence[int] = (1, 8), name: str = "lvlm_72b",
            latency: float = 0.2) -> list[dict]:
    """Backend calls per figure of recipe ``name`` with ``pool`` figures mined at once: the batches a vllm engine
    would get (``panel2patch mine --pool``), against the sequential run as the baseline. Each call takes ``latency``
    seconds, as a model's would (the reference answers take none, and nothing would queue behind them)."""
    rows = []
    for pool in pools:
        settings = lvlm_engine.engine_settings(load(name).config["lvlm"])
        recipe = _recipe(name, figures, work / f"{name}-pool{pool}", {
            "backend": "metered", "cache": None, "backends.metered": {
                "processor": tiny_folder(work, settings.min_pixels, settings.max_pixels), "args": _reference(figures),
                "latency": latency}})
        stats, seconds = mine(recipe, f"{name} --pool {pool}", figures.figures, pool)
        calls = lvlm_engine.shared_engine(recipe.config["lvlm"]).backend.calls
        requests = sum(n for k, n in stats.diagnostics.items() if k.endswith(".requests"))
        rows.append({"recipe": name, "pool": pool, "latency": latency, "figures": stats.inputs, "backend_calls": calls,
                     "calls_per_figure": calls / max(stats.inputs, 1), "requests_per_call": requests / max(calls, 1),
                     "seconds": round(seconds, 2)})
    return rows


# --- throughput ----------------------------------------------------------------------------------------------------


def tiny_panels(figures: FigureSet, work: Path) -> dict[str, Any]:
    """Seconds per figure of ``lvlm_panels`` with the tiny random Qwen2.5-VL through ``transformers`` on CPU."""
    from panel2patch.parsers.lvlm.panels import SetOfMarksPanelParser

    rows = [json.loads(line) for line in figures.index.read_text(encoding="utf-8").splitlines()]
    folder = tiny_folder(work, MIN_PIXELS, TINY_MAX_PIXELS)
    lvlm_engine._ENGINES.clear()
    parser = SetOfMarksPanelParser({"model": folder, "backend": "transformers",
                                    "backends": {"transformers": {"device": "cpu", "batch_size": 4}},
                                    "max_pixels": TINY_MAX_PIXELS, "max_retry_tokens": TINY_RETRY_TOKENS},
                                   max_tokens=TINY_MAX_TOKENS)
    backend = parser.engine.backend
    start = time.perf_counter()
    _ = backend.processor  # loads the model
    load_seconds = time.perf_counter() - start
    rejects: Counter[str] = Counter()
    start = time.perf_counter()
    for row in tqdm(rows, desc="tiny Qwen2.5-VL, lvlm_panels on CPU", unit="fig", file=sys.stderr):
        image = open_image(figures.root / row["image"])
        try:
            parser.parse(image, row["caption"])
        except Reject as exc:
            rejects[exc.reason] += 1
    seconds = time.perf_counter() - start
    return {"path": "tiny Qwen2.5-VL, transformers on CPU (lvlm_panels only)", "figures": len(rows),
            "seconds": round(seconds, 2), "load_seconds": round(load_seconds, 2), "rejects": dict(rejects),
            "requests": backend.counts["requests"], "batches": backend.counts["batches"],
            "generated_tokens": backend.counts["generated_tokens"], "max_pixels": TINY_MAX_PIXELS,
            "max_tokens": TINY_MAX_TOKENS}


class AnswerServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1, in a thread, answering the answers of an
    :class:`AnswerCache` file, looked up by the sent image's pixel hash, the prompt's sha256 and ``max_tokens``."""

    def __init__(self, cache: Path) -> None:
        import uvicorn

        records = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines() if line.strip()]
        self.answers = {(r["image_sha"], r["prompt_sha"], r["max_tokens"]): r for r in records}
        self.requests = 0
        self._lock = threading.Lock()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="error",
                                                    lifespan="off", timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _answer(self, body: dict[str, Any]) -> dict[str, Any] | None:
        from PIL import Image

        content = body["messages"][-1]["content"]
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        prompt = next(p["text"] for p in parts if p["type"] == "text")
        url = next((p["image_url"]["url"] for p in parts if p["type"] == "image_url"), None)
        sha = None if url is None else image_sha256(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
        key = (sha, hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest(), body["max_tokens"])
        with self._lock:
            self.requests += 1
        return self.answers.get(key)

    def _app(self) -> Any:
        from fastapi import Body, FastAPI
        from fastapi.responses import JSONResponse

        app = FastAPI()

        @app.post("/v1/chat/completions")
        def chat(body: dict[str, Any] = Body()) -> Any:  # a plain function: FastAPI runs it in its thread pool
            record = self._answer(body)
            if record is None:
                return JSONResponse({"error": {"message": "no recorded answer for this request"}}, status_code=400)
            return {"id": "answer", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": record["text"]},
                                 "finish_reason": record["finish_reason"] or "stop"}]}

        return app

    def __enter__(self) -> AnswerServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise SystemExit("the local chat-completions server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def _row(path: str, stats: ChunkStats, seconds: float) -> dict[str, Any]:
    requests = sum(v for k, v in stats.diagnostics.items() if k.endswith(".requests"))
    hits = sum(v for k, v in stats.diagnostics.items() if k.endswith(".cache_hits"))
    return {"path": path, "figures": stats.inputs, "mined": stats.figures, "rejects": dict(stats.rejects),
            "seconds": round(seconds, 2), "requests": requests, "cache_hit_rate": hits / requests if requests else None}


def http_runs(figures: FigureSet, work: Path) -> list[dict[str, Any]]:
    """``lvlm_http`` with ``reference`` in process (recording the answers), then twice through ``openai`` against a
    local server that answers them, on one answer cache file: the first is the baseline, the second hits the cache."""
    folder = work / "http"
    answers, cache = folder / "reference.jsonl", folder / "answers.jsonl"
    recipe = _recipe("lvlm_http", figures, folder / "reference", {
        "backend": "reference", "cache": str(answers), "backends.reference": _reference(figures)})
    rows = [_row("lvlm_http, reference backend in process (no HTTP)", *mine(recipe, "lvlm_http, reference",
                                                                             figures.figures))]
    with AnswerServer(answers) as server:
        openai = {"backend": "openai", "cache": str(cache), "backends.openai.base_url": server.url,
                  "backends.openai.api_key_env": None}
        for n, what in enumerate(("HTTP, empty cache (baseline)", "HTTP re-run, same cache file")):
            recipe = _recipe("lvlm_http", figures, folder / f"corpus-{n}", openai)
            before = server.requests
            row = _row(f"lvlm_http, openai backend, {what}", *mine(recipe, f"lvlm_http, {what}", figures.figures))
            rows.append({**row, "server_requests": server.requests - before})
    base = rows[1]
    for row in rows[1:]:
        row["vs_baseline"] = base["seconds"] / row["seconds"] if row["seconds"] else None
    return rows


# --- output --------------------------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


def _n(v: float, digits: int = 0) -> str:
    return f"{v:,.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    m, v = result["machine"], result["versions"]
    lines = ["# LVLM data engine: cost per figure and throughput", "",
             f"{result['date']} · {m['platform']}, {m['cores']} cores · python {v['python']} · torch "
             f"{v.get('torch', '-')} · transformers {v.get('transformers', '-')} · openai {v.get('openai', '-')}", "",
             f"`{result['command']}` ({result['seconds']:.0f} s)", "",
             "## Calls and tokens per figure", "",
             "Every component answered by the `reference` backend (what a perfect model returns, from the "
             "annotations), so the calls are those of a model that is always right.", "", TOKEN_NOTE, ""]
    counts = result["counts"]
    lines += _table(
        ["recipe", "set", "figures", "rejected", "panel F1 / labels kept", "extra panel views", "requests/fig",
         "image tok/fig", "prompt tok/fig", "answer tok/fig", "total tok/fig", "prompt chars/fig", "answer chars/fig"],
        [[c["recipe"], c["set"], str(c["figures"]), str(sum(c["rejects"].values())),
          " / ".join("-" if v is None else f"{v:.3f}" for v in c["kept"].values()),
          f"{100 * c['extra_view_share']:.0f} %", _n(c["total"]["requests"], 1), _n(c["total"]["image_tokens"]),
          _n(c["total"]["prompt_tokens"]), _n(c["total"]["answer_tokens"]), _n(c["total"]["total_tokens"]),
          _n(c["total"]["prompt_chars"]), _n(c["total"]["answer_chars"])] for c in counts])
    lines += ["", "panel F1 / labels kept: panel F1@0.5 and label accuracy of the mined corpus against the annotations "
                  "with perfect answers, what views, coordinates, merging and cleaners keep of them.",
              "", "extra panel views: share of figures whose full-view panel answer disagreed with the caption's "
                  "labels, so its panels were asked again on the extra (re-scaled and cropped) views.", "",
              "### By component", ""]
    rows = []
    for c in counts:
        for component, x in c["components"].items():
            if x["name"] is None or not x["name"].startswith("lvlm_"):
                cells = ["-"] * 8 if x["name"] is None else ["0", *["-"] * 7]
                what = "not in the recipe" if x["name"] is None else f"{x['name']} (CPU, no LVLM)"
                rows.append([c["recipe"], c["set"], f"{component}: {what}", *cells])
                continue
            rows.append([c["recipe"], c["set"], component, _n(x["requests"], 2), _n(x["image_tokens"]),
                         _n(x["prompt_tokens"]), _n(x["answer_tokens"]), _n(x["total_tokens"]),
                         _n(x["prompt_chars"]), _n(x["answer_chars"]),
                         f"{100 * x['total_tokens'] / c['total']['total_tokens']:.0f} %"
                         if c["total"]["total_tokens"] else "-"])
    lines += _table(["recipe", "set", "component", "requests/fig", "image tok/fig", "prompt tok/fig",
                     "answer tok/fig", "total tok/fig", "prompt chars/fig", "answer chars/fig", "share of tokens"],
                    rows)
    lines += ["", "Components: `panels` (`lvlm_panels`: the full view, plus the extra views when the answer "
                  "disagrees with the caption), `markers` (`lvlm_markers`: one request per panel crop), `splitter` "
                  "(`lvlm_splitter`: one text-only request per figure with two or more labels), `grounding` "
                  "(`lvlm_grounding`: one request per panel with a sub-caption and a pointing marker), "
                  "`descriptions` (`lvlm_descriptions`: one request per panel, its regions as numbered boxes). `lvlm_7b` "
                  "finds markers with the CPU detector `shape_markers` (no marker requests) and writes no "
                  "descriptions. Answers hold what the annotations hold: where they have no markers, `lvlm_markers` "
                  "answers none and so no panel is asked for grounding; the real sets annotate no regions and no "
                  "descriptions, so their grounding answers are empty and each description is one templated "
                  "sentence (a model writes up to 40 words): there, these two answers are shorter than a model's."]
    if result.get("pooling"):
        lines += ["", "## Batches of figures (`panel2patch mine --pool N`)", "",
                  "Backend calls (one `generate` call of a vllm engine each) per figure on the demo set, answers from "
                  f"the `reference` backend after {result['pooling'][0]['latency']:g} s per call (a model takes "
                  "time, so concurrent figures queue behind a call); the sequential run (pool 1) is the baseline.",
                  ""]
        base = result["pooling"][0]["backend_calls"]
        first = result["pooling"][0]["seconds"]
        lines += _table(["recipe", "pool", "figures", "backend calls", "calls/figure", "requests/call", "seconds",
                         "calls vs pool 1", "time vs pool 1"],
                        [[r["recipe"], str(r["pool"]), str(r["figures"]), str(r["backend_calls"]),
                          _n(r["calls_per_figure"], 2), _n(r["requests_per_call"], 1), f"{r['seconds']:.1f}",
                          f"{base / max(r['backend_calls'], 1):.1f}x fewer", f"{first / max(r['seconds'], 1e-9):.1f}x faster"]
                         for r in result["pooling"]])
    if result["throughput"]:
        lines += ["", "## Throughput on this machine", "",
                  "One torch thread. The HTTP server runs in this process on 127.0.0.1 and answers what the "
                  "`reference` backend answered (it decodes each sent PNG to look the answer up), so the HTTP rows "
                  "time the client's side (views, PNG encoding, HTTP, mining) with a model that costs nothing.", ""]
        rows = []
        for t in result["throughput"]:
            rate = t["cache_hit_rate"] if "cache_hit_rate" in t else None
            rows.append([t["path"], str(t["figures"]), str(sum(t["rejects"].values())), f"{t['seconds']:.2f}",
                         f"{t['seconds'] / t['figures']:.2f}", f"{t['figures'] / t['seconds']:.2f}",
                         str(t["requests"]), str(t.get("server_requests", "-")), "-" if rate is None else f"{rate:.2f}",
                         f"{t['vs_baseline']:.2f}x" if t.get("vs_baseline") else "-"])
        lines += _table(["path", "figures", "rejected", "seconds", "s/fig", "fig/s", "requests", "sent to server",
                         "cache hit rate",
                         "speed vs baseline"], rows)
        tiny = result["throughput"][0]
        lines += ["", f"The tiny model (random weights, {tiny['max_pixels']:,}-pixel views, {tiny['max_tokens']} "
                      f"answer tokens, one retry) answers garbage, so its figures end rejected "
                      f"({', '.join(f'{k}: {n}' for k, n in tiny['rejects'].items()) or 'none'}); its row times the "
                      f"real model classes ({tiny['requests']} requests in {tiny['batches']} batches, model load "
                      f"{tiny['load_seconds']:.1f} s not included), not a real model."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=int, default=12, help="demo figures to count on")
    ap.add_argument("--seed", type=int, default=0, help="seed of the demo set")
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated sets: demo and real development sets")
    ap.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated LVLM recipes")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the real development sets")
    ap.add_argument("--out", type=Path, default=Path("out/bench/lvlm"), help="folder for lvlm.json and lvlm.md")
    ap.add_argument("--throughput", type=int, default=4, help="demo figures of the throughput runs (0: none)")
    args = ap.parse_args(argv)
    sets, recipes = [s for s in args.sets.split(",") if s], [r for r in args.recipes.split(",") if r]

    import torch
    from transformers.utils import logging as transformers_logging

    torch.set_num_threads(1)
    transformers_logging.disable_progress_bar()
    manager.plugin_manager().register(MeterPlugin(), name="lvlm-benchmark-meter")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lvlm-bench-") as tmp:
        work = Path(tmp)
        demo_n = max(args.demo if "demo" in sets else 0, args.throughput)
        if demo_n:
            from panel2patch.plugins.demo.write import write_demo

            write_demo(work / "demo", demo_n, args.seed)
        figure_sets = ([demo_set(work / "demo", args.demo)] if "demo" in sets else []) + real_sets(
            args.data, [s for s in sets if s != "demo"], work)
        counts = [count(name, figures, work) for name in recipes for figures in figure_sets]
        pooled = pooling(demo_set(work / "demo", args.demo), work) if "demo" in sets and args.demo else []
        throughput = []
        if args.throughput:
            bench = demo_set(work / "demo", args.throughput)
            throughput = [tiny_panels(bench, work), *http_runs(bench, work)]
    result = {"date": time.strftime("%Y-%m-%d %H:%M %Z"),
              "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "cpu": platform.processor()},
              "versions": versions("torch", "transformers", "openai", "fastapi", "uvicorn"),
              "command": " ".join(["python benchmarks/lvlm.py", *sys.argv[1:]] if argv is None else argv),
              "seconds": round(time.perf_counter() - started, 1), "token_note": TOKEN_NOTE,
              "counts": counts, "pooling": pooled, "throughput": throughput}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lvlm.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    text = markdown(result)
    (args.out / "lvlm.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
