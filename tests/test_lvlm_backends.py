"""The transformers backend on a tiny random Qwen2.5-VL built offline (real model, processor and tokenizer classes),
and the request building of the vllm backend."""

from __future__ import annotations

import importlib.util
import json

import pytest
from PIL import Image, ImageDraw

from panel2patch.parsers.lvlm.answers import parse_answer, sanitise_boxes
from panel2patch.parsers.lvlm.backends import (
    IMAGE_PLACEHOLDER,
    TransformersBackend,
    VllmBackend,
    vllm_inputs,
)
from panel2patch.parsers.lvlm.cache import Answer, LVLMClient, Request
from panel2patch.parsers.lvlm.errors import BackendError
from panel2patch.parsers.lvlm.tiny import TEMPLATE, build_tiny_qwen
from panel2patch.parsers.lvlm.views import make_views

MIN_PIXELS, MAX_PIXELS = 4 * 28 * 28, 64 * 28 * 28
SCHEMA = {"type": "array", "items": {"type": "object", "properties": {"bbox_2d": {"type": "array"},
                                                                      "label": {"type": "string"}}}}




@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A folder holding a random Qwen2.5-VL and its processor (nothing downloaded)."""
    return build_tiny_qwen(tmp_path_factory.mktemp("tiny-qwen2.5-vl"), MIN_PIXELS, MAX_PIXELS)


@pytest.fixture(scope="module")
def backend(tiny_model):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        b = TransformersBackend(str(tiny_model), device="cpu", min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
        assert b.processor.image_processor.size["longest_edge"] == MAX_PIXELS  # loaded while offline
        yield b


def _figure(size=(300, 200)):
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, size[0] // 2 - 5, size[1] - 10), outline="black", width=3)
    draw.rectangle((size[0] // 2 + 5, 10, size[0] - 10, size[1] // 2), fill="red")
    return image


def _views(image, **kw):
    return make_views(image, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, **kw)


def test_batch_of_different_image_sizes_through_the_client(backend):
    (wide, wide_img), = _views(_figure((300, 200)))
    (tall, tall_img), = _views(_figure((120, 330)))
    assert wide.size != tall.size
    requests = [Request("tiny", "Box every panel.", image=wide_img, max_tokens=5, metadata={"view": wide.name}),
                Request("tiny", "Box every panel.", image=tall_img, max_tokens=5),
                Request("tiny", "Say nothing.", max_tokens=5)]
    client = LVLMClient(backend)
    before = backend.counts["batches"]
    answers = client.generate(requests)
    assert backend.counts["batches"] - before >= 1 and client.counts["sent"] == 3 + client.counts["retries"]
    for request, answer in zip(requests, answers):
        assert isinstance(answer, Answer) and answer.backend == "transformers" and not answer.cached
        budget = 10 if answer.retried else 5  # a cut-off answer is retried with twice the budget
        assert answer.finish_reason in ("stop", "length")
        assert (answer.tokens_out == budget) if answer.finish_reason == "length" else (answer.tokens_out <= budget)
        if request.image is None:
            assert answer.tokens_image == 0
        else:
            w, h = request.image.size
            assert answer.tokens_image == (w // 28) * (h // 28)  # 14-pixel patches merged 2x2
        assert answer.tokens_in > answer.tokens_image
    # padding does not leak into the counts: the wide image's row is longer by its extra image tokens
    assert answers[0].tokens_in - answers[0].tokens_image == answers[1].tokens_in - answers[1].tokens_image
    # nor into the answers: a padded row decodes as it does alone
    batched = backend.generate(requests[:2])
    assert [a.text for a in batched] == [backend.generate([r])[0].text for r in requests[:2]]


def test_requests_of_different_settings_are_batched_apart_and_answered_in_order(backend):
    image = _views(_figure())[0][1]
    sampled = {"temperature": 0.8, "settings": {"seed": 3}}
    requests = [Request("tiny", "a", image=image, max_tokens=3), Request("tiny", "b", max_tokens=2, **sampled),
                Request("tiny", "c", image=image, max_tokens=3), Request("tiny", "b", max_tokens=2, **sampled)]
    before = backend.counts["batches"]
    answers = backend.generate(requests)
    assert backend.counts["batches"] - before == 2
    assert [a.tokens_image > 0 for a in answers] == [True, False, True, False]
    assert all(a.tokens_out <= r.max_tokens for a, r in zip(answers, requests))
    assert [a.text for a in backend.generate(requests)] == [a.text for a in answers]  # seeded sampling repeats


@pytest.mark.parametrize("size, why", [((100, 70), "not multiples of 28"), ((392, 308), "above max_pixels")])
def test_an_image_the_processor_would_resize_is_refused(backend, size, why):
    good = _views(_figure())[0][1]
    requests = [Request("tiny", "Box.", image=good, max_tokens=2),
                Request("tiny", "Box.", image=_figure(size), max_tokens=2, metadata={"figure": "f7"})]
    before = backend.counts["batches"]
    with pytest.raises(BackendError, match=rf"request 1 \(figure=f7; image {size[0]}x{size[1]}.*resized"):
        backend.generate(requests)
    assert backend.counts["batches"] == before  # refused before generating


class _Force:
    """A logits processor that makes each batch row emit its target token ids, then end-of-text."""

    def __init__(self, targets, eos):
        self.targets, self.eos, self.start = targets, eos, None

    def __call__(self, input_ids, scores):
        import torch

        self.start = input_ids.shape[1] if self.start is None else self.start
        step = input_ids.shape[1] - self.start
        forced = torch.full_like(scores, -float("inf"))
        for row, target in enumerate(self.targets):
            forced[row, target[step] if step < len(target) else self.eos] = 0.0
        return forced


def test_recorded_answers_forced_through_generate_reproduce_and_map_back(backend):
    tok = backend.processor.tokenizer
    image = _figure((300, 200))
    views = _views(image, crops=1, seed=3)
    (full, _), (crop, _) = views
    assert full.size == (252, 168)  # the boxes below lie inside it
    recorded = {
        "full": '```json\n[{"bbox_2d": [10, 10, 120, 150], "label": "A"}, {"bbox_2d": [130, 10, 240, 80], '
                '"label": "(b) 5 µm"}]\n```',
        "crop1": '[{"bbox_2d": [-5, 4, 60, 50], "label": "B"}]',
    }
    targets = {name: tok.encode(text, add_special_tokens=False) for name, text in recorded.items()}
    longest = max(map(len, targets.values()))
    requests = [Request("tiny", "Box every panel.", image=img, schema=SCHEMA, expect="list", max_tokens=8,
                        metadata={"view": v.name}) for v, img in views]
    backend.logits_processors = lambda reqs: [_Force([targets[r.metadata["view"]] for r in reqs], tok.eos_token_id)]
    try:
        cut = backend.generate(requests)
        client = LVLMClient(backend, retry_factor=100, max_retry_tokens=longest + 1)
        answers = client.generate(requests)
    finally:
        backend.logits_processors = None
    assert [a.finish_reason for a in cut] == ["length", "length"]
    assert [a.tokens_out for a in cut] == [8, 8]
    assert recorded["full"].startswith(cut[0].text) and cut[0].text
    for (view, _), answer in zip(views, answers):
        assert answer.retried and answer.finish_reason == "stop"
        assert answer.text.encode() == recorded[view.name].encode()  # byte for byte
        assert answer.status == "ok"
    parsed = parse_answer(answers[0].text, expect="list")
    items, counts = sanitise_boxes(parsed.value, full)
    assert [i.label for i in items] == ["A", "(b) 5 µm"] and not counts
    assert items[1].box == pytest.approx(full.to_original((130, 10, 240, 80)))
    items, counts = sanitise_boxes(parse_answer(answers[1].text, expect="list").value, crop)
    assert counts == {"clipped": 1}
    assert items[0].box == pytest.approx(crop.to_original((0, 4, 60, 50)))
    assert crop.crop[0] > 0 or crop.crop[1] > 0  # the crop's offset is part of the mapping


def test_vllm_inputs_build_one_prompt_per_request_in_order(backend):
    views = _views(_figure(), crops=1, seed=1)
    requests = [Request("m", f"Box panels {i}.", image=img, schema=SCHEMA if i == 0 else None, max_tokens=100 + i,
                        temperature=0.5 * i, settings={"seed": 7, "beam": 1}) for i, (_, img) in enumerate(views)]
    requests.append(Request("m", "Text only.", system="Be brief.", max_tokens=3))
    for source in (backend.processor, TEMPLATE):
        prompts, sampling = vllm_inputs(requests, source)
        assert len(prompts) == len(sampling) == 3
        for request, prompt, params in zip(requests, prompts, sampling):
            assert request.prompt in prompt["prompt"] and prompt["prompt"].endswith("<|im_start|>assistant\n")
            assert prompt["prompt"].count(IMAGE_PLACEHOLDER) == (request.image is not None)
            assert params["max_tokens"] == request.max_tokens and params["temperature"] == request.temperature
            if request.image is not None:
                assert prompt["multi_modal_data"]["image"][0] is request.image
                assert prompt["multi_modal_uuids"] == {"image": [request.image_key()]}
                assert params["seed"] == 7 and "beam" not in params
            else:
                assert "multi_modal_data" not in prompt and "Be brief." in prompt["prompt"]
        assert sampling[0]["structured_outputs"] == {"json": SCHEMA} and sampling[1]["structured_outputs"] is None
    # identical views share a uuid, so vllm's prefix cache reuses them
    again = vllm_inputs([Request("m", "Other prompt.", image=views[0][1].copy())], TEMPLATE)[0]
    assert again[0]["multi_modal_uuids"] == vllm_inputs(requests[:1], TEMPLATE)[0][0]["multi_modal_uuids"]


def test_vllm_inputs_refuse_a_template_without_the_image_placeholder():
    image = _views(_figure())[0][1]
    plain = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(BackendError, match="image placeholder"):
        vllm_inputs([Request("m", "Box.", image=image)], plain)
    with pytest.raises(BackendError, match="cannot be rendered"):
        vllm_inputs([Request("m", "Box.")], "{% for %}")
    with pytest.raises(BackendError, match="chat template string"):
        vllm_inputs([Request("m", "Box.")], 42)


def test_vllm_backend_without_vllm_says_how_to_install():
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here; its real run is a GPU check")
    backend = VllmBackend("Qwen/Qwen2.5-VL-7B-Instruct", max_model_len=8192)
    assert backend.engine_kwargs["limit_mm_per_prompt"] == {"image": 1, "video": 0}
    with pytest.raises(BackendError, match=r"pip install 'panel2patch\[vllm\]' on a CUDA machine"):
        backend.generate([Request("m", "Box.")])
    assert json.dumps(backend.engine_kwargs)  # plain settings: the engine key


class _FakeVllm:
    """Stands in for the vllm module: records engines and calls, answers with the prompt's image-token count."""

    def __init__(self, image_id):
        self.engines, self.calls, fake = [], [], self

        class LLM:
            def __init__(self, **kwargs):
                fake.engines.append(kwargs)

            def generate(self, prompts, params, use_tqdm=True):
                fake.calls.append((prompts, params))
                n = [p["prompt"].count("<|image_pad|>") * 6 for p in prompts]
                return [_Obj(prompt_token_ids=[1, 2] + [image_id] * k,
                             outputs=[_Obj(text=f"answer {i}", finish_reason="length" if i else "stop",
                                           token_ids=[9] * (i + 1))]) for i, k in enumerate(n)]

        self.LLM = LLM
        self.SamplingParams = lambda **kw: _Obj(**kw)
        self.StructuredOutputsParams = lambda **kw: _Obj(**kw)


class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_vllm_backend_runs_each_batch_as_one_generate_call_on_one_engine(backend, tiny_model, monkeypatch):
    import sys
    import types

    from panel2patch.parsers.lvlm import backends as module

    fake = _FakeVllm(backend.processor.image_token_id)
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = fake.LLM, fake.SamplingParams
    params_module = types.ModuleType("vllm.sampling_params")
    params_module.StructuredOutputsParams = fake.StructuredOutputsParams
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", params_module)
    monkeypatch.setattr(module, "_ENGINE", {})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    image = _views(_figure())[0][1]
    requests = [Request("m", "Box.", image=image, schema=SCHEMA, max_tokens=9), Request("m", "Say.", max_tokens=4)]
    first = VllmBackend(str(tiny_model), max_model_len=2048, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    answers = first.generate(requests)
    again = VllmBackend(str(tiny_model), max_model_len=2048, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    again.generate(requests[:1])
    (engine,) = fake.engines  # created once, shared
    assert engine["limit_mm_per_prompt"] == {"image": 1, "video": 0} and engine["max_model_len"] == 2048
    assert engine["mm_processor_kwargs"] == {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}
    assert engine["enable_prefix_caching"] is True and engine["seed"] == 0
    (prompts, params), _ = fake.calls
    assert len(prompts) == len(params) == 2
    assert params[0].structured_outputs.json == SCHEMA and params[1].structured_outputs is None
    assert [p.max_tokens for p in params] == [9, 4] and params[0].temperature == 0.0
    assert [(a.text, a.finish_reason, a.tokens_out, a.tokens_image, a.backend) for a in answers] == [
        ("answer 0", "stop", 1, 6, "vllm"), ("answer 1", "length", 2, 0, "vllm")]
    assert answers[0].tokens_in == 8
    with pytest.raises(BackendError, match="one engine per process"):
        VllmBackend(str(tiny_model), max_model_len=4096).generate(requests)


def test_the_gpu_check_script_runs_end_to_end_on_cpu(capsys):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lvlm_gpu_check.py"
    spec = importlib.util.spec_from_file_location("lvlm_gpu_check", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--allow-cpu", "--figures", "2", "--max-tokens", "6"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert row["backend"] == "transformers (cpu fp32)" and row["figures"] == 2 and row["requests"] >= 2
    assert row["image_tokens"] > 0 and row["figures_per_s"] > 0


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_transformers_backend_generates_in_bf16_on_cuda(tiny_model):
    import torch

    backend = TransformersBackend(str(tiny_model), device="cuda", min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    views = _views(_figure())
    answers = LVLMClient(backend).generate([Request("tiny", "Box the panels.", image=v[1], max_tokens=6)
                                            for v in views])
    assert backend.model.dtype == torch.bfloat16 and len(answers) == len(views)
    assert all(a.tokens_image and a.tokens_out for a in answers)
