"""Requests, answers, the backend interface, the batching client and the on-disk answer cache.

A request's key (:func:`request_key`) is a sha256 of everything that changes the answer: model, system and user
prompt, the image view's pixel hash, the JSON schema and the generation settings. :class:`AnswerCache` stores answers
by key in an append-only JSONL file; :class:`RecordedBackend` replays such a file, so answers computed on a GPU
machine replay anywhere. :class:`LVLMClient` answers a batch from the cache, sends the rest to its backend in one
batched call, retries cut-off or unparseable answers once with a larger token budget, and writes everything back.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime
import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .answers import parse_answer
from .errors import BackendError, LVLMError, MissingAnswerError

if TYPE_CHECKING:
    from PIL import Image

KEY_VERSION = 1
RECORD_VERSION = 1
EXPECTS = ("list", "object", "any")
_MAX_PROBLEMS = 100  # problem messages kept; the count goes on


@dataclass
class Request:
    """One generation request. ``image``: the view image exactly as it is to be sent (see
    :func:`~panel2patch.parsers.lvlm.views.make_views`), or None for text only; ``view_sha`` its
    :func:`~panel2patch.parsers.lvlm.views.image_sha256` (computed from ``image`` when None). ``schema``: a JSON
    schema the backend constrains decoding with (None: free generation). ``settings``: further generation settings
    that change the answer (``top_p``, ``seed``…), part of the key. ``expect``: the answer shape the client checks
    (:func:`~panel2patch.parsers.lvlm.answers.parse_answer`'s ``expect``; None: free text, never checked, but
    ``"any"`` when a schema is given). ``metadata`` (figure id, view name…) is carried along, not part of the key."""

    model: str
    prompt: str
    image: Image.Image | None = None
    view_sha: str | None = None
    schema: dict[str, Any] | None = None
    max_tokens: int = 1024
    temperature: float = 0.0
    system: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    expect: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"request model must be a non-empty string, not {self.model!r}")
        if not isinstance(self.prompt, str):
            raise ValueError(f"request prompt must be a string, not {type(self.prompt).__name__}")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"request max_tokens must be a positive int, not {self.max_tokens!r}")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature >= 0):
            raise ValueError(f"request temperature must be a finite number >= 0, not {self.temperature!r}")
        if self.expect is not None and self.expect not in EXPECTS:
            raise ValueError(f"request expect must be one of {EXPECTS} or None, not {self.expect!r}")

    @property
    def answer_shape(self) -> str | None:
        """The shape the answer is checked against: ``expect``, else ``"any"`` with a schema, else None."""
        return self.expect or ("any" if self.schema is not None else None)

    def image_key(self) -> str | None:
        """``view_sha``, computed from ``image`` (and stored) when not given."""
        if self.view_sha is None and self.image is not None:
            from .views import image_sha256

            self.view_sha = image_sha256(self.image)
        return self.view_sha


@dataclass
class Answer:
    """A backend's answer to one request. ``finish_reason``: ``"stop"``, ``"length"`` (cut off by ``max_tokens``)
    or what the backend reports (None: unknown). ``cached``: served from the client's cache; ``backend``: the name of
    the backend that produced it; ``tokens_image``: how many of ``tokens_in`` are image tokens (None: not reported);
    ``key``: the request key; ``retried``: the answer of the retry with a larger budget;
    ``status``: the :func:`~panel2patch.parsers.lvlm.answers.parse_answer` status under the request's
    :attr:`Request.answer_shape` (None for free text). The client fills the last four."""

    text: str
    finish_reason: str | None = "stop"
    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_image: int | None = None
    cached: bool = False
    backend: str = ""
    key: str | None = None
    retried: bool = False
    status: str | None = None


def request_key(request: Request) -> str:
    """The sha256 (hex) of the canonical JSON (sorted keys, ASCII, no spaces) of the request's model, system prompt,
    prompt, image sha, schema, ``max_tokens``, ``temperature`` (as a float) and ``settings``, plus a key version."""
    payload = {"v": KEY_VERSION, "model": request.model, "system": request.system, "prompt": request.prompt,
               "image": request.image_key(), "schema": request.schema, "max_tokens": int(request.max_tokens),
               "temperature": float(request.temperature), "settings": request.settings}
    try:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise LVLMError(f"request for model {request.model!r}: schema or settings are not plain JSON ({exc})") from None
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def answer_record(request: Request, answer: Answer, key: str | None = None) -> dict[str, Any]:
    """The cache record of ``answer`` to ``request``: one JSON object of one line of the cache file."""
    return {"v": RECORD_VERSION, "key": key or request_key(request), "model": request.model,
            "prompt_sha": hashlib.sha256(request.prompt.encode("utf-8", "surrogatepass")).hexdigest(),
            "image_sha": request.image_key(), "max_tokens": request.max_tokens, "temperature": request.temperature,
            "text": answer.text, "finish_reason": answer.finish_reason, "tokens_in": answer.tokens_in,
            "tokens_out": answer.tokens_out, "tokens_image": answer.tokens_image, "status": answer.status, "backend": answer.backend,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def answer_from_record(record: dict[str, Any], cached: bool) -> Answer:
    """The :class:`Answer` a cache record stores (``status`` is left for the client to recompute)."""
    return Answer(text=record["text"], finish_reason=_opt(record.get("finish_reason"), str),
                  tokens_in=_opt(record.get("tokens_in"), int), tokens_out=_opt(record.get("tokens_out"), int),
                  tokens_image=_opt(record.get("tokens_image"), int), cached=cached, backend=str(record.get("backend") or ""), key=record["key"])


def _opt(value: Any, kind: type) -> Any:
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


class AnswerCache:
    """Answers by request key in an append-only JSONL file, loaded into memory when opened.

    One record per line (:func:`answer_record`); the last record of a key wins. Lines that cannot be read (a record
    torn by a killed writer, bytes that are not a JSON record) are skipped and reported in :attr:`problems` with their
    line number; the file is never rewritten. Several processes may append to one file: each record is one
    ``write`` on an ``O_APPEND`` descriptor, so lines do not interleave (on local file systems; not on NFS). A
    process sees the records of others when it opens the file. ``readonly`` refuses writes; the file is created at
    the first write.
    """

    def __init__(self, path: str | os.PathLike[str], readonly: bool = False, fsync: bool = True) -> None:
        self.path = Path(path)
        self.readonly, self.fsync = readonly, fsync
        self.problems: list[str] = []
        self._records: dict[str, dict[str, Any]] = {}
        self._fd: int | None = None
        self.hits = self.misses = self.written = self.bad_lines = 0
        self.torn_tail = False
        self._load()

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise LVLMError(f"answer cache {self.path}: cannot read ({exc})") from None
        lines = data.split(b"\n")
        if lines[-1]:
            self.torn_tail = True
            self._problem(len(lines), "incomplete last record (a write was interrupted), skipped")
        for number, line in enumerate(lines[:-1], start=1):
            if line.strip():
                self._read_line(number, line)

    def _read_line(self, number: int, line: bytes) -> None:
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            self._problem(number, f"not a JSON record ({str(exc)[:80]})")
            return
        if not (isinstance(record, dict) and isinstance(record.get("key"), str) and isinstance(record.get("text"), str)):
            self._problem(number, "a JSON value without a string 'key' and 'text'")
            return
        self._records[record["key"]] = record

    def _problem(self, number: int, what: str) -> None:
        self.bad_lines += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(f"{self.path}: line {number}: {what}")

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def get(self, key: str) -> dict[str, Any] | None:
        """The record stored under ``key`` (do not modify it), or None; counted as a hit or a miss."""
        record = self._records.get(key)
        if record is None:
            self.misses += 1
        else:
            self.hits += 1
        return record

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Store one record (see :meth:`put_many`)."""
        self.put_many([(key, record)])

    def put_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Append the records, each under its key (set as the record's ``"key"``), then flush them to disk once
        (``fsync``). A record without a string ``"text"`` or that is not plain JSON raises :class:`LVLMError` before
        anything is written."""
        if self.readonly:
            raise LVLMError(f"answer cache {self.path} is read-only")
        records, lines = [], []
        for key, record in items:
            if not (isinstance(key, str) and isinstance(record, dict) and isinstance(record.get("text"), str)):
                raise LVLMError(f"answer cache {self.path}: a record needs a string key and a string 'text'")
            record = {**record, "key": key}
            try:
                lines.append(json.dumps(record, ensure_ascii=True, sort_keys=True, allow_nan=False).encode() + b"\n")
            except (TypeError, ValueError) as exc:
                raise LVLMError(f"answer cache {self.path}: record {key[:12]}… is not plain JSON ({exc})") from None
            records.append(record)
        if not lines:
            return
        fd = self._open()
        end = os.fstat(fd).st_size
        if end and os.pread(fd, 1, end - 1) != b"\n":
            lines[0] = b"\n" + lines[0]  # end a torn record left by a killed writer, or ours would join it
        for line in lines:
            _write_all(fd, line)
        if self.fsync:
            os.fsync(fd)
        self.written += len(lines)
        self._records.update((r["key"], r) for r in records)

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def stats(self) -> dict[str, int]:
        """Records held, hits, misses, records written by this process, unreadable lines, whether the last line was
        torn."""
        return {"records": len(self._records), "hits": self.hits, "misses": self.misses, "written": self.written,
                "bad_lines": self.bad_lines, "torn_tail": int(self.torn_tail)}

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Backend(abc.ABC):
    """Where answers come from: a model served by vllm, an OpenAI-compatible server, transformers, or a recording.

    Subclasses set :attr:`name` and implement :meth:`generate`, which receives a whole batch so that engines can
    schedule it together. Images arrive already at their final size (the backend must not resize them differently;
    a Qwen2.5-VL processor given the view's size leaves it unchanged)."""

    name: str = "backend"

    @abc.abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Answer]:
        """One :class:`Answer` per request, in request order, with ``finish_reason`` ``"length"`` when
        ``max_tokens`` cut the answer off. A failure of the whole batch (server unreachable) raises; a bad answer to
        one request is returned as its text, for the caller to judge."""

    def close(self) -> None:
        """Release engines, sessions or processes (default: nothing)."""
        return None


class RecordedBackend(Backend):
    """Replays the answers of an :class:`AnswerCache` file (read-only): for tests, and to rerun mining on a machine
    without the model. A request without a recorded answer raises :class:`MissingAnswerError`."""

    name = "recorded"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not Path(path).is_file():
            raise LVLMError(f"recorded answers {path}: no such file")
        self.store = AnswerCache(path, readonly=True)

    def generate(self, requests: Sequence[Request]) -> list[Answer]:
        answers, missing = [], []
        for request in requests:
            key = request_key(request)
            record = self.store.get(key)
            if record is None:
                missing.append((request, key))
            else:
                answers.append(dataclasses.replace(answer_from_record(record, cached=False), backend=self.name))
        if missing:
            request, key = missing[0]
            image = (request.view_sha or "")[:12] or "none"
            more = f" (and {len(missing) - 1} more of {len(requests)} requests)" if len(missing) > 1 else ""
            raise MissingAnswerError(
                f"{self.store.path}: no recorded answer for model {request.model!r}, prompt {request.prompt[:60]!r}"
                f"{'…' if len(request.prompt) > 60 else ''}, image {image}, max_tokens {request.max_tokens} "
                f"(key {key[:12]}){more}; record it with a live backend and the same settings")
        return answers


class LVLMClient:
    """Answers batches of requests through ``backend``, reading and filling ``cache`` (None: no cache).

    An answer is retried once, with ``max_tokens`` multiplied by ``retry_factor`` (capped at ``max_retry_tokens``),
    when it was cut off (``finish_reason == "length"``) or, with ``retry_unparseable``, when a request that expects
    JSON got an unparseable answer; the retry's answer replaces it. :attr:`counts`: ``hits``, ``misses``, ``sent``
    (requests the backend answered), ``backend_calls``, ``retries``."""

    def __init__(self, backend: Backend, cache: AnswerCache | None = None, retry_factor: float = 2.0,
                 max_retry_tokens: int | None = None, retry_unparseable: bool = True) -> None:
        if not retry_factor > 1:
            raise ValueError(f"retry_factor must be > 1, not {retry_factor!r}")
        self.backend, self.cache = backend, cache
        self.retry_factor, self.max_retry_tokens = retry_factor, max_retry_tokens
        self.retry_unparseable = retry_unparseable
        self.counts: Counter[str] = Counter()

    def generate(self, requests: Sequence[Request]) -> list[Answer]:
        """One answer per request, in request order: from the cache where present, the rest from one batched
        backend call (identical requests are sent once), then one batched call for the retries."""
        answers = self._resolve(requests)
        retry = []
        for i, (request, answer) in enumerate(zip(requests, answers)):
            budget = self._bigger(request.max_tokens)
            if budget > request.max_tokens and self._needs_retry(answer):
                retry.append((i, dataclasses.replace(request, max_tokens=budget)))
        if retry:
            self.counts["retries"] += len(retry)
            for (i, _), answer in zip(retry, self._resolve([r for _, r in retry])):
                answers[i] = dataclasses.replace(answer, retried=True)
        return answers

    def _needs_retry(self, answer: Answer) -> bool:
        return answer.finish_reason == "length" or (self.retry_unparseable and answer.status == "unparseable")

    def _bigger(self, max_tokens: int) -> int:
        budget = math.ceil(max_tokens * self.retry_factor)
        return budget if self.max_retry_tokens is None else min(budget, self.max_retry_tokens)

    def _resolve(self, requests: Sequence[Request]) -> list[Answer]:
        keys = [request_key(r) for r in requests]
        answers: list[Answer | None] = [None] * len(requests)
        pending: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            record = self.cache.get(key) if self.cache is not None else None
            if record is None:
                pending.setdefault(key, []).append(i)
                self.counts["misses"] += 1
            else:
                answers[i] = self._checked(requests[i], answer_from_record(record, cached=True))
                self.counts["hits"] += 1
        if pending:
            sent = [requests[idx[0]] for idx in pending.values()]
            got = self.backend.generate(sent)
            self.counts["backend_calls"] += 1
            self.counts["sent"] += len(sent)
            if not isinstance(got, list) or len(got) != len(sent) or not all(isinstance(a, Answer) for a in got):
                raise BackendError(f"backend {self.backend.name!r} returned {_describe(got)} for {len(sent)} requests; "
                                   "it must return one Answer per request, in order")
            records = []
            for (key, idx), request, answer in zip(pending.items(), sent, got):
                if not isinstance(answer.text, str):
                    raise BackendError(f"backend {self.backend.name!r} answered with a {type(answer.text).__name__}, "
                                       "not text")
                answer = self._checked(request, dataclasses.replace(
                    answer, cached=False, key=key, backend=answer.backend or self.backend.name))
                records.append((key, answer_record(request, answer, key)))
                for i in idx:  # one key, but each request checks the answer against its own expected shape
                    answers[i] = answer if i == idx[0] else self._checked(requests[i], answer)
            if self.cache is not None:
                self.cache.put_many(records)
        return answers  # type: ignore[return-value]

    @staticmethod
    def _checked(request: Request, answer: Answer) -> Answer:
        shape = request.answer_shape
        status = None if shape is None else parse_answer(answer.text, expect=shape).status
        return dataclasses.replace(answer, status=status)


def _describe(value: Any) -> str:
    return f"{len(value)} items" if isinstance(value, (list, tuple)) else f"a {type(value).__name__}"
