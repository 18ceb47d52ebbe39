"""The LVLM a recipe's components share: settings, the backend they name, the answer cache and the batching client.

Recipes put the settings in a top-level ``lvlm`` section and hand it to each LVLM component as ``engine: ${lvlm}``;
components with equal settings share one :class:`Engine` per process (one vllm engine holds the GPUs). Every answer
goes through the answer cache, so a re-run or a resumed mining job never asks twice. :meth:`Engine.ask` counts
requests, cache hits, retries, tokens and answer statuses against the figure being mined
(:func:`panel2patch.mining.count_diagnostic`), under ``lvlm.<component>.``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from panel2patch.config import parse_settings
from panel2patch.mining import count_diagnostic

from .answers import ParsedAnswer, parse_answer
from .cache import Answer, AnswerCache, LVLMClient, Request
from .errors import LVLMError
from .views import MIN_PIXELS

#: transformers' Qwen2-VL image processor default (``longest_edge``): about 1,280 merged patches.
DEFAULT_MAX_PIXELS = 1_003_520


@dataclass
class EngineSettings:
    """``model``: the hub id, local folder or served model name (part of every answer's cache key); ``backend``: a
    registered ``lvlm_backends`` name (``vllm``, ``openai``, ``transformers``, ``recorded``, ``reference``), built
    with its entry of ``backends`` (arguments by backend name, so that ``lvlm.backend=recorded`` switches a recipe
    to replaying; plus ``model`` when the backend takes one and its arguments do not give it); ``cache``: the answer
    cache file (None: none, every run asks again); ``min_pixels``/``max_pixels``: the pixel budget of each image view
    (sent at exactly its Qwen2.5-VL size); ``retry_factor``/``max_retry_tokens``: the one retry of cut-off or
    unparseable answers; ``temperature``: 0 decodes greedily."""

    model: str = ""
    backend: str = "transformers"
    backends: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache: str | None = None
    min_pixels: int = MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    retry_factor: float = 2.0
    max_retry_tokens: int | None = 8192
    temperature: float = 0.0

    def check(self) -> None:
        if not self.model:
            raise ValueError("model: name the model (a hub id, a local folder or the served model name)")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(f"min_pixels: need 0 < min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}")
        if not self.retry_factor > 1:
            raise ValueError(f"retry_factor: must be > 1, got {self.retry_factor}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")
        from panel2patch.errors import Panel2PatchError
        from panel2patch.manager import registry

        backends = registry("lvlm_backends")
        for name in {self.backend, *self.backends}:
            try:
                backends.bind(name, self.backend_args(name))
            except Panel2PatchError as exc:
                raise ValueError(f"backends.{name}: {exc}") from None

    def backend_args(self, name: str) -> dict[str, Any]:
        """The arguments ``name`` is built with: its ``backends`` entry, plus ``model`` when it takes one."""
        from panel2patch.manager import registry

        args = dict(self.backends.get(name) or {})
        if "model" in inspect.signature(registry("lvlm_backends").get(name).factory).parameters:
            args.setdefault("model", self.model)
        return args


def engine_settings(engine: dict[str, Any] | EngineSettings) -> EngineSettings:
    """``engine`` (a component's ``engine`` arg, usually the recipe's ``lvlm`` section) checked into settings."""
    if isinstance(engine, EngineSettings):
        return engine
    if not isinstance(engine, dict):
        raise LVLMError(f"engine must be a mapping of LVLM settings (the recipe's lvlm section), not {engine!r}")
    return parse_settings(EngineSettings, engine, "lvlm", "engine")


_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()


def shared_engine(engine: dict[str, Any] | EngineSettings) -> Engine:
    """The process's :class:`Engine` for these settings (made at the first call)."""
    settings = engine_settings(engine)
    key = json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str)
    with _LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = Engine(settings)
        return _ENGINES[key]


class Engine:
    """A backend, its answer cache and an :class:`LVLMClient` over them. The backend is built at once (so that a bad
    name or argument fails before mining starts) but loads its model at the first request."""

    def __init__(self, settings: EngineSettings) -> None:
        from panel2patch.manager import build

        self.settings = settings
        self.backend = build("lvlm_backends", settings.backend, settings.backend_args(settings.backend))
        self.cache = AnswerCache(settings.cache) if settings.cache else None
        self.client = LVLMClient(self.backend, self.cache, retry_factor=settings.retry_factor,
                                 max_retry_tokens=settings.max_retry_tokens)
        self._queue: list[_Pending] = []
        self._queue_lock, self._send_lock = threading.Lock(), threading.Lock()

    def request(self, prompt: str, image: Any = None, schema: dict[str, Any] | None = None, max_tokens: int = 1024,
                expect: str | None = "any", system: str | None = None, **metadata: Any) -> Request:
        """A request of this engine's model and temperature. ``expect`` is what the client checks before deciding on
        a retry: ``"any"`` JSON value by default (a bare list and the schema's wrapping object both pass); the
        component fits the answer to its own shape (:func:`parsed`)."""
        return Request(model=self.settings.model, prompt=prompt, image=image, schema=schema, max_tokens=max_tokens,
                       temperature=self.settings.temperature, system=system, expect=expect, metadata=metadata)

    def ask(self, requests: Sequence[Request], component: str) -> list[Answer]:
        """The answers to ``requests`` (one batched backend call for those not cached), counted under
        ``lvlm.<component>.``: ``requests``, ``cache_hits``, ``retried``, ``tokens_in``/``tokens_image``/``tokens_out``
        and ``status.<status>``.

        Thread-safe, and concurrent callers (figures mined at once, ``panel2patch mine --pool``) are answered
        together: while one batch is with the backend the others queue, and the next caller to get the backend sends
        everything queued as one batch. A batch that fails is sent again caller by caller, so one caller's error
        (a missing recorded answer) stays its own."""
        if not requests:
            return []
        pending = _Pending(list(requests))
        with self._queue_lock:
            self._queue.append(pending)
        with self._send_lock:  # the client and its cache are not thread-safe
            if not pending.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._send(batch)
        if pending.error is not None:
            raise pending.error
        if not pending.done:  # the batch that held them was interrupted (KeyboardInterrupt in another thread)
            raise LVLMError(f"{len(requests)} {component} requests were not answered: their batch was interrupted")
        answers = pending.answers
        prefix = f"lvlm.{component}."
        count_diagnostic(prefix + "requests", len(answers))
        count_diagnostic(prefix + "cache_hits", sum(a.cached for a in answers))
        count_diagnostic(prefix + "retried", sum(a.retried for a in answers))
        for name in ("tokens_in", "tokens_image", "tokens_out"):
            count_diagnostic(prefix + name, sum(getattr(a, name) or 0 for a in answers))
        for answer in answers:
            if answer.status is not None:
                count_diagnostic(f"{prefix}status.{answer.status}")
        return answers

    def _send(self, batch: list[_Pending]) -> None:
        try:
            answers = self.client.generate([r for p in batch for r in p.requests])
        except Exception as exc:
            if len(batch) > 1:
                for pending in batch:
                    self._send([pending])
                return
            batch[0].error, batch[0].done = exc, True
            return
        start = 0
        for pending in batch:
            pending.answers, pending.done = answers[start:start + len(pending.requests)], True
            start += len(pending.requests)


@dataclass
class _Pending:
    """One caller's requests waiting for a batch, then its answers or error."""

    requests: list[Request]
    answers: list[Answer] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


def parsed(answer: Answer, component: str, expect: str = "list", list_key: str | None = None) -> ParsedAnswer:
    """``answer`` parsed into ``expect``; each repair is counted as ``lvlm.<component>.repair.<name>``."""
    result = parse_answer(answer.text, expect=expect, list_key=list_key)
    for repair in result.repairs:
        if repair != "fenced":
            count_diagnostic(f"lvlm.{component}.repair.{repair}")
    return result


def count_boxes(counts: dict[str, int], component: str) -> None:
    """Count what :func:`~.answers.sanitise_boxes` dropped or fixed, as ``lvlm.<component>.box.<reason>``."""
    for reason, n in counts.items():
        count_diagnostic(f"lvlm.{component}.box.{reason}", n)
