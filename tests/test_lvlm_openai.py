"""The OpenAI-compatible HTTP backend against a scripted chat-completions server on 127.0.0.1, with the real openai
client: request shape, retries and back-off, timeouts, cut-off answers, bounded concurrency and malformed replies."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import threading
import time
from collections import defaultdict, deque

import pytest
from PIL import Image

from panel2patch.parsers.lvlm.backends import OpenAIBackend
from panel2patch.parsers.lvlm.cache import LVLMClient, Request
from panel2patch.parsers.lvlm.errors import BackendError
from panel2patch.parsers.lvlm.views import image_sha256, make_views

fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

SCHEMA = {"type": "array", "items": {"type": "object", "properties": {"label": {"type": "string"}}}}
ANSWER = '[{"bbox_2d": [1, 2, 30, 40], "label": "A"}]'


class Script:
    """What the server answers, per prompt, in order: ``("ok", text, finish)``, ``("status", code, headers)``,
    ``("sleep", seconds)`` (then the next step), ``("raw", body, content_type)``; an exhausted plan answers ANSWER."""

    def __init__(self):
        self.plans = defaultdict(deque)
        self.bodies, self.headers, self.arrivals = [], [], defaultdict(list)
        self.inflight = self.peak = 0

    def plan(self, prompt, *steps):
        self.plans[prompt].extend(steps)


def _app(state):
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response

    app = FastAPI()

    async def chat(http):  # a plain route: the raw request, whatever its body
        script = state["script"]
        body = await http.json()
        prompt = next(p["text"] for p in body["messages"][-1]["content"] if p["type"] == "text") \
            if isinstance(body["messages"][-1]["content"], list) else body["messages"][-1]["content"]
        script.bodies.append(body)
        script.headers.append(dict(http.headers))
        script.arrivals[prompt].append(time.monotonic())
        script.inflight += 1
        script.peak = max(script.peak, script.inflight)
        try:
            plan = script.plans[prompt]
            step = plan.popleft() if plan else ("ok", ANSWER, "stop")
            while step[0] == "sleep":
                await asyncio.sleep(step[1])
                step = plan.popleft() if plan else ("ok", ANSWER, "stop")
            if step[0] == "status":
                return JSONResponse({"error": {"message": f"scripted {step[1]}"}}, status_code=step[1],
                                    headers=step[2] if len(step) > 2 else None)
            if step[0] == "raw":
                return Response(step[1], media_type=step[2])
            _, text, finish = step
            return JSONResponse({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                              "finish_reason": finish}],
                                 "usage": {"prompt_tokens": 100 + len(body["messages"]),
                                           "completion_tokens": len(text) // 4, "total_tokens": 0}})
        finally:
            script.inflight -= 1

    app.add_route("/v1/chat/completions", chat, methods=["POST"])
    return app


@pytest.fixture(scope="module")
def server():
    state = {"script": Script()}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(_app(state), host="127.0.0.1", port=port, log_level="error", lifespan="off",
                            timeout_graceful_shutdown=1)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "test server did not start"
        time.sleep(0.02)
    yield state, f"http://127.0.0.1:{port}/v1"
    srv.should_exit = True
    thread.join(5)


@pytest.fixture
def script(server):
    server[0]["script"] = Script()
    return server[0]["script"]


@pytest.fixture
def url(server):
    return server[1]


def _backend(url, **kw):
    return OpenAIBackend(url, "served-qwen", api_key_env=None, **{"backoff": 0.01, "timeout": 5, **kw})


def _view():
    image = Image.new("RGB", (200, 120), "white")
    image.paste((200, 30, 30), (20, 20, 90, 100))
    return make_views(image)[0][1]


def test_request_shape_and_answer(url, script, monkeypatch):
    monkeypatch.setenv("P2P_TEST_KEY", "sk-test-123")
    view = _view()
    request = Request("qwen2.5-vl-72b", "Box every panel.", image=view, schema=SCHEMA, max_tokens=321,
                      temperature=0.0, system="You are precise.", settings={"seed": 5, "top_k": 20}, expect="list")
    backend = OpenAIBackend(url, "served-qwen", api_key_env="P2P_TEST_KEY", backoff=0.01)
    (answer,) = LVLMClient(backend).generate([request])
    assert (answer.text, answer.finish_reason, answer.status, answer.backend) == (ANSWER, "stop", "ok", "openai")
    assert (answer.tokens_in, answer.tokens_out) == (102, len(ANSWER) // 4)
    (body,) = script.bodies
    assert script.headers[0]["authorization"] == "Bearer sk-test-123"
    assert body["model"] == "served-qwen" and body["max_tokens"] == 321 and body["temperature"] == 0.0
    assert body["seed"] == 5 and body["top_k"] == 20  # extra settings travel in the body
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}}
    assert "guided_json" not in body  # removed from vllm: it would be ignored silently
    system, user = body["messages"]
    assert system == {"role": "system", "content": "You are precise."}
    image_part, text_part = user["content"]
    assert text_part == {"type": "text", "text": "Box every panel."}
    prefix = "data:image/png;base64,"
    assert image_part["type"] == "image_url" and image_part["image_url"]["url"].startswith(prefix)
    sent = Image.open(io.BytesIO(base64.b64decode(image_part["image_url"]["url"][len(prefix):])))
    assert sent.size == view.size and image_sha256(sent) == request.view_sha  # the view's exact pixels
    assert backend.counts["prompt_tokens"] == 102 and backend.counts["retries"] == 0


def test_free_text_request_has_no_response_format(url, script):
    (answer,) = _backend(url).generate([Request("m", "Describe.", max_tokens=7)])
    assert answer.text == ANSWER
    assert "response_format" not in script.bodies[0] and script.bodies[0]["messages"][-1]["content"] == "Describe."
    assert script.headers[0]["authorization"] == "Bearer EMPTY"


def test_missing_api_key_is_a_clear_error(url, monkeypatch):
    monkeypatch.delenv("P2P_TEST_KEY", raising=False)
    with pytest.raises(BackendError, match="P2P_TEST_KEY.*not set"):
        OpenAIBackend(url, "m", api_key_env="P2P_TEST_KEY")


def test_server_errors_are_retried_with_exponential_backoff(url, script):
    script.plan("p", ("status", 500), ("status", 502), ("ok", ANSWER, "stop"))
    backend = _backend(url, backoff=0.05)
    (answer,) = backend.generate([Request("m", "p")])
    assert answer.text == ANSWER
    first, second, third = script.arrivals["p"]
    assert second - first >= 0.05 and third - second >= 0.1
    assert backend.counts["retries"] == 2 and backend.counts["http_5xx"] == 2 and backend.counts["attempts"] == 3


def test_rate_limit_waits_for_retry_after(url, script):
    script.plan("p", ("status", 429, {"Retry-After": "0.3"}), ("ok", ANSWER, "stop"))
    backend = _backend(url)
    (answer,) = backend.generate([Request("m", "p")])
    assert answer.text == ANSWER and backend.counts["http_429"] == 1 and backend.counts["retries"] == 1
    first, second = script.arrivals["p"]
    assert second - first >= 0.3


def test_client_error_is_not_retried_and_names_the_request(url, script):
    script.plan("bad", ("status", 400))
    backend = _backend(url)
    with pytest.raises(BackendError, match=r"request 1 \(figure=f3\).*HTTP 400: scripted 400"):
        backend.generate([Request("m", "good"), Request("m", "bad", metadata={"figure": "f3"})])
    assert backend.counts["retries"] == 0 and len(script.arrivals["bad"]) == 1


def test_cut_off_answer_is_retried_by_the_client_with_a_larger_budget(url, script):
    script.plan("p", ("ok", ANSWER[:12], "length"), ("ok", ANSWER, "stop"))
    client = LVLMClient(_backend(url))
    (answer,) = client.generate([Request("m", "p", max_tokens=50, expect="list")])
    assert answer.retried and answer.text == ANSWER and answer.finish_reason == "stop"
    assert [b["max_tokens"] for b in script.bodies] == [50, 100]
    assert client.counts["retries"] == 1


def test_slow_server_times_out_after_the_retries(url, script):
    script.plan("slow", ("sleep", 1.0), ("sleep", 1.0))
    backend = _backend(url, timeout=0.25, retries=1)
    start = time.monotonic()
    with pytest.raises(BackendError, match=r"request 0: no answer from .* after 2 attempts; last: no answer within "
                                           r"0.25 s"):
        backend.generate([Request("m", "slow")])
    assert time.monotonic() - start < 1.5 and backend.counts["timeouts"] == 2


def test_unreachable_server_fails_after_retries():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    backend = _backend(f"http://127.0.0.1:{port}/v1", retries=2)
    with pytest.raises(BackendError, match="after 3 attempts; last: connection failed"):
        backend.generate([Request("m", "p")])
    assert backend.counts["connection_errors"] == 3


def test_concurrency_never_exceeds_the_limit(url, script):
    prompts = [f"p{i}" for i in range(10)]
    for p in prompts:
        script.plan(p, ("sleep", 0.1), ("ok", p.upper(), "stop"))
    answers = _backend(url, concurrency=3).generate([Request("m", p) for p in prompts])
    assert [a.text for a in answers] == [p.upper() for p in prompts]  # in request order
    assert script.peak == 3


@pytest.mark.parametrize("step, match", [
    (("raw", "<html>busy</html>", "text/html"), "without a choice"),
    (("raw", '{"choices": []}', "application/json"), "without a choice"),
    (("raw", '{"choices": [{"message": {"content": ["x"]}, "finish_reason": "stop"}]}', "application/json"),
     "answered with a list message"),
    (("raw", '{"choices": [{"message": {"content": "x"}, "finish_reason": 3}]}', "application/json"),
     "answered with a int finish_reason"),
])
def test_malformed_replies_are_clear_errors(url, script, step, match):
    script.plan("p", step)
    with pytest.raises(BackendError, match=match):
        _backend(url).generate([Request("m", "p")])


def test_empty_content_is_an_empty_answer(url, script):
    script.plan("p", ("raw", '{"choices": [{"message": {"content": null}, "finish_reason": "stop"}]}',
                      "application/json"))
    (answer,) = _backend(url).generate([Request("m", "p")])
    assert answer.text == "" and answer.tokens_in is None
