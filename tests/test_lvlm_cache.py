"""Request keys, the append-only answer cache (torn lines, killed and concurrent writers), the batching client and
the recorded backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from panel2patch.errors import Panel2PatchError
from panel2patch.parsers.lvlm.cache import (
    Answer,
    AnswerCache,
    Backend,
    LVLMClient,
    RecordedBackend,
    Request,
    answer_record,
    request_key,
)
from panel2patch.parsers.lvlm.errors import BackendError, LVLMError, MissingAnswerError
from panel2patch.parsers.lvlm.views import image_sha256

SCHEMA = {"type": "array", "items": {"type": "object", "properties": {"label": {"type": "string"}}}}
FULL = json.dumps([{"bbox_2d": [1, 2, 30, 40], "label": "A"}, {"bbox_2d": [5, 6, 70, 80], "label": "B"}])


def _request(**kw):
    base = {"model": "qwen2.5-vl-72b", "prompt": "Box every panel.", "view_sha": "ab" * 32, "schema": SCHEMA,
            "max_tokens": 100, "expect": "list"}
    return Request(**{**base, **kw})


# --- keys -------------------------------------------------------------------------------------------------------

def test_request_key_changes_with_everything_that_changes_the_answer():
    base = request_key(_request())
    variants = [_request(model="qwen2.5-vl-7b"), _request(prompt="Box every panel!"), _request(view_sha="cd" * 32),
                _request(view_sha=None), _request(schema=None), _request(schema={**SCHEMA, "minItems": 1}),
                _request(max_tokens=101), _request(temperature=0.7), _request(system="You are careful."),
                _request(settings={"top_p": 0.9})]
    keys = [request_key(r) for r in variants]
    assert base not in keys and len(set(keys)) == len(keys)
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in keys)


def test_request_key_ignores_what_does_not_change_the_answer():
    reordered = {"items": SCHEMA["items"], "type": "array"}
    same = [_request(schema=reordered), _request(temperature=0), _request(temperature=0.0),
            _request(metadata={"figure": "PMC1", "view": "crop2"}), _request(expect=None)]
    assert {request_key(r) for r in same} == {request_key(_request())}
    image = Image.new("RGB", (56, 28), (10, 20, 30))
    with_image = _request(view_sha=None, image=image)
    assert request_key(with_image) == request_key(_request(view_sha=image_sha256(image)))
    assert with_image.view_sha == image_sha256(image)


def test_request_key_is_stable_across_processes():
    code = ("import json, sys; from panel2patch.parsers.lvlm.cache import Request, request_key; "
            "print(request_key(Request(**json.loads(sys.argv[1]))))")
    fields = {"model": "m", "prompt": "Box the panels: (a) – µ", "view_sha": "ff" * 32,
              "schema": {"b": [1, {"y": 2, "x": 1}], "a": None}, "settings": {"seed": 3, "top_p": 0.5}}
    keys = {subprocess.run([sys.executable, "-c", code, json.dumps(fields)], check=True, capture_output=True,
                           text=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
            for seed in ("1", "2")}
    assert keys == {request_key(Request(**fields))}


def test_requests_are_validated():
    for bad in ({"model": ""}, {"max_tokens": 0}, {"max_tokens": True}, {"temperature": float("nan")},
                {"expect": "table"}):
        with pytest.raises(ValueError):
            _request(**bad)
    with pytest.raises(LVLMError, match="not plain JSON"):
        request_key(_request(schema={"type": object}))


# --- the cache --------------------------------------------------------------------------------------------------

def _record(text="[]", **kw):
    return {"text": text, "model": "m", "finish_reason": "stop", **kw}


def test_cache_round_trips_and_counts(tmp_path):
    path = tmp_path / "sub" / "answers.jsonl"
    with AnswerCache(path) as cache:
        assert cache.get("k1") is None and not path.exists()
        cache.put_many([("k1", _record("one")), ("k2", _record("two"))])
        cache.put("k1", _record("one again"))
        assert cache.get("k1")["text"] == "one again"
        assert cache.stats() == {"records": 2, "hits": 1, "misses": 1, "written": 3, "bad_lines": 0, "torn_tail": 0}
    lines = path.read_bytes().split(b"\n")
    assert len(lines) == 4 and lines[-1] == b"" and all(json.loads(x)["key"] for x in lines[:-1])
    reopened = AnswerCache(path)
    assert len(reopened) == 2 and "k2" in reopened
    assert reopened.get("k1")["text"] == "one again"  # the last record of a key wins
    assert reopened.problems == []


def test_a_torn_last_line_is_skipped_and_reported(tmp_path):
    path = tmp_path / "answers.jsonl"
    with AnswerCache(path) as cache:
        cache.put_many([("k1", _record("one")), ("k2", _record("two"))])
    with open(path, "ab") as f:
        f.write(b'{"key": "k3", "text": "thr')  # a writer killed mid-record
    cache = AnswerCache(path)
    assert sorted(cache._records) == ["k1", "k2"]
    assert cache.stats()["torn_tail"] == 1 and cache.stats()["bad_lines"] == 1
    assert len(cache.problems) == 1 and "line 3" in cache.problems[0] and "incomplete" in cache.problems[0]
    cache.put("k4", _record("four"))  # must not join the torn fragment
    cache.close()
    again = AnswerCache(path)
    assert sorted(again._records) == ["k1", "k2", "k4"] and again.get("k4")["text"] == "four"
    assert again.stats()["torn_tail"] == 0
    assert len(again.problems) == 1 and "line 3" in again.problems[0] and "not a JSON record" in again.problems[0]


def test_unreadable_middle_lines_are_reported_by_number(tmp_path):
    path = tmp_path / "answers.jsonl"
    good = [json.dumps({"key": f"k{i}", "text": str(i)}) for i in range(3)]
    path.write_bytes("\n".join([good[0], "garbage {", good[1], "", "[1, 2]", '{"key": 5, "text": "x"}']).encode()
                     + b"\n\xff\xfe\n" + good[2].encode() + b"\n")
    cache = AnswerCache(path)
    assert sorted(cache._records) == ["k0", "k1", "k2"]
    assert [p.split(": ")[1] for p in cache.problems] == ["line 2", "line 5", "line 6", "line 7"]
    assert cache.stats()["bad_lines"] == 4 and cache.stats()["torn_tail"] == 0


def test_readonly_caches_refuse_writes(tmp_path):
    cache = AnswerCache(tmp_path / "a.jsonl", readonly=True)
    with pytest.raises(LVLMError, match="read-only"):
        cache.put("k", _record())
    assert not (tmp_path / "a.jsonl").exists()
    with pytest.raises(LVLMError, match="not plain JSON"):
        AnswerCache(tmp_path / "b.jsonl").put("k", _record(extra=object()))
    with pytest.raises(LVLMError, match="string 'text'"):
        AnswerCache(tmp_path / "b.jsonl").put_many([("k1", _record()), ("k2", {"text": None})])
    assert not (tmp_path / "b.jsonl").exists()  # nothing of a refused batch is written


APPENDER = """
import os, sys, time
from panel2patch.parsers.lvlm.cache import AnswerCache
path, worker, go = sys.argv[1], sys.argv[2], sys.argv[3]
cache = AnswerCache(path)
while not os.path.exists(go):
    time.sleep(0.001)
for start in range(0, 200, 10):
    cache.put_many([(f"w{worker}-{i}", {"text": worker * 9000 + str(i)}) for i in range(start, start + 10)])
"""


def test_two_processes_append_whole_lines(tmp_path):
    path, go = tmp_path / "shared.jsonl", tmp_path / "go"
    workers = [subprocess.Popen([sys.executable, "-c", APPENDER, str(path), w, str(go)]) for w in ("1", "2")]
    time.sleep(0.3)  # both import and open the cache, then start together
    go.touch()
    assert [p.wait(60) for p in workers] == [0, 0]
    cache = AnswerCache(path)
    assert cache.problems == [] and len(cache) == 400  # records of 9 kB: more than one pipe buffer each
    for w in ("1", "2"):
        for i in range(200):
            assert cache.get(f"w{w}-{i}")["text"] == w * 9000 + str(i)


def test_a_killed_writer_leaves_a_readable_cache(tmp_path):
    path = tmp_path / "killed.jsonl"
    code = ("import sys; from panel2patch.parsers.lvlm.cache import AnswerCache\n"
            "c = AnswerCache(sys.argv[1], fsync=False)\n"
            "i = 0\n"
            "while True:\n"
            "    c.put_many([(f'k{i}-{j}', {'text': 'x' * 200000}) for j in range(5)]); i += 1\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)])
    try:
        deadline = time.monotonic() + 30
        while (not path.exists() or path.stat().st_size < 5_000_000) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    cache = AnswerCache(path)
    assert len(cache) >= 5
    assert all(r["text"] == "x" * 200000 for r in cache._records.values())
    assert cache.bad_lines == cache.stats()["torn_tail"] <= 1


# --- the client -------------------------------------------------------------------------------------------------

class FakeBackend(Backend):
    """Answers in full when given at least ``needed`` tokens, else a cut-off prefix with finish_reason "length"."""

    name = "fake"

    def __init__(self, needed=150, text=FULL):
        self.calls: list[list[Request]] = []
        self.needed, self.text = needed, text

    def generate(self, requests):
        self.calls.append(list(requests))
        out = []
        for r in requests:
            if r.max_tokens >= self.needed:
                out.append(Answer(f"{self.text} <{r.prompt}>" if r.expect is None else self.text, "stop", 10, 20))
            else:
                out.append(Answer(self.text[:r.max_tokens // 3], "length", 10, r.max_tokens))
        return out


def test_client_batches_misses_into_one_call_and_serves_hits_from_the_cache(tmp_path):
    cache = AnswerCache(tmp_path / "c.jsonl")
    backend = FakeBackend()
    client = LVLMClient(backend, cache)
    requests = [_request(prompt=f"p{i}", max_tokens=200, expect=None, schema=None) for i in range(5)]
    cache.put(request_key(requests[1]), answer_record(requests[1], Answer("from the cache", backend="earlier")))
    answers = client.generate(requests)
    assert len(backend.calls) == 1 and [r.prompt for r in backend.calls[0]] == ["p0", "p2", "p3", "p4"]
    assert [a.text for a in answers] == [f"{FULL} <p{i}>" if i != 1 else "from the cache" for i in range(5)]
    assert [a.cached for a in answers] == [False, True, False, False, False]
    assert answers[1].backend == "earlier" and answers[0].backend == "fake"
    assert all(a.status is None and a.key == request_key(r) for a, r in zip(answers, requests))
    assert client.counts == {"hits": 1, "misses": 4, "sent": 4, "backend_calls": 1}
    again = client.generate(list(reversed(requests)))
    assert len(backend.calls) == 1 and all(a.cached for a in again)
    assert [a.text for a in again] == [a.text for a in reversed(answers)]
    reopened = AnswerCache(tmp_path / "c.jsonl")
    assert len(reopened) == 5 and reopened.get(request_key(requests[3]))["text"] == f"{FULL} <p3>"


def test_identical_requests_are_sent_once():
    backend = FakeBackend()
    client = LVLMClient(backend)
    answers = client.generate([_request(max_tokens=200)] * 3 + [_request(max_tokens=300)])
    assert [len(c) for c in backend.calls] == [2]
    assert len({a.text for a in answers}) == 1 and all(a.status == "ok" for a in answers)
    same_key = client.generate([_request(max_tokens=500), _request(max_tokens=500, expect="object")])
    assert [[r.max_tokens for r in c] for c in backend.calls][1:] == [[500], [1000]]  # the second is retried
    assert [(a.status, a.retried) for a in same_key] == [("ok", False), ("unparseable", True)]  # own shape each


def test_cut_off_answers_are_retried_once_with_a_larger_budget(tmp_path):
    path = tmp_path / "c.jsonl"
    backend = FakeBackend(needed=150)
    client = LVLMClient(backend, AnswerCache(path), retry_factor=2.0)
    requests = [_request(prompt="short", max_tokens=100), _request(prompt="long", max_tokens=400),
                _request(prompt="tiny", max_tokens=30)]
    answers = client.generate(requests)
    assert [[r.max_tokens for r in c] for c in backend.calls] == [[100, 400, 30], [200, 60]]
    assert [a.retried for a in answers] == [True, False, True]
    assert [a.finish_reason for a in answers] == ["stop", "stop", "length"]  # one retry only
    assert answers[0].text == FULL and answers[0].status == "ok"
    assert answers[2].status in ("repaired", "unparseable")
    assert client.counts["retries"] == 2 and client.counts["backend_calls"] == 2
    assert len(AnswerCache(path)) == 5  # the cut-off answers and their retries

    replay = LVLMClient(RecordedBackend(path))  # the recording replays the retries too
    replayed = replay.generate(requests)
    assert [(a.text, a.finish_reason, a.retried) for a in replayed] == \
        [(a.text, a.finish_reason, a.retried) for a in answers]
    assert all(a.backend == "recorded" and not a.cached for a in replayed)
    cached = LVLMClient(FakeBackend(), AnswerCache(path))
    assert [a.text for a in cached.generate(requests)] == [a.text for a in answers]
    assert cached.backend.calls == [] and cached.counts["hits"] == 5


def test_unparseable_answers_are_retried_and_the_budget_is_capped():
    backend = FakeBackend(text="Sorry, I cannot help.")
    client = LVLMClient(backend, retry_factor=3.0, max_retry_tokens=250)
    answers = client.generate([_request(max_tokens=200), _request(max_tokens=250),
                               _request(expect=None, schema=None, max_tokens=200)])
    assert [[r.max_tokens for r in c] for c in backend.calls] == [[200, 250, 200], [250]]
    assert [a.status for a in answers] == ["unparseable", "unparseable", None]
    assert [a.retried for a in answers] == [True, False, False]
    quiet = LVLMClient(FakeBackend(text="Sorry."), retry_unparseable=False)
    quiet.generate([_request(max_tokens=200)])
    assert len(quiet.backend.calls) == 1
    with pytest.raises(ValueError):
        LVLMClient(backend, retry_factor=1.0)


def test_a_backend_breaking_its_contract_is_named():
    class Short(FakeBackend):
        name = "short"

        def generate(self, requests):
            return super().generate(requests)[:-1]

    with pytest.raises(BackendError, match="'short' returned 1 items for 2 requests"):
        LVLMClient(Short()).generate([_request(prompt="a"), _request(prompt="b")])


def test_recorded_backend_names_what_is_missing(tmp_path):
    path = tmp_path / "rec.jsonl"
    with pytest.raises(LVLMError, match="no such file"):
        RecordedBackend(path)
    known = _request(prompt="Box every panel of this figure.", max_tokens=200)
    AnswerCache(path).put(request_key(known), answer_record(known, Answer(FULL, "stop", 5, 7, backend="vllm")))
    backend = RecordedBackend(path)
    (answer,) = backend.generate([known])
    assert (answer.text, answer.finish_reason, answer.tokens_in, answer.tokens_out) == (FULL, "stop", 5, 7)
    unknown = _request(prompt="Describe the arrows in the figure and what they point at, one by one, in detail.")
    with pytest.raises(MissingAnswerError) as err:
        backend.generate([known, unknown, _request(prompt="other")])
    message = str(err.value)
    assert isinstance(err.value, Panel2PatchError)
    assert "qwen2.5-vl-72b" in message and "Describe the arrows in the figure" in message
    assert "and 1 more of 3 requests" in message and str(path) in message
    assert not message.startswith("'")


def test_a_record_keeps_every_token_count_of_its_answer():
    from panel2patch.parsers.lvlm.cache import Answer, answer_from_record, answer_record

    request = Request("m", "Box the panels.", max_tokens=64)
    record = answer_record(request, Answer("[]", "length", tokens_in=900, tokens_out=64, tokens_image=780))
    back = answer_from_record(json.loads(json.dumps(record)), cached=True)
    assert (back.text, back.finish_reason, back.tokens_in, back.tokens_out, back.tokens_image, back.cached) == (
        "[]", "length", 900, 64, 780, True)
