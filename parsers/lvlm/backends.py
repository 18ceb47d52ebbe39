"""The live backends: a local Qwen2.5-VL through transformers, an OpenAI-compatible HTTP server, and vllm's offline
engine. Each implements :class:`~panel2patch.parsers.lvlm.cache.Backend`: one batch in, one :class:`Answer` per
request out, in order. Images arrive at their view size (:func:`~panel2patch.parsers.lvlm.views.make_views`); a
backend never resizes them, so boxes answered in view pixels map back with the view's own transform. Heavy imports
(torch, transformers, openai, vllm) happen inside methods.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .cache import Answer, Backend, Request
from .errors import BackendError
from .views import MAX_PIXELS, MIN_PIXELS, view_bytes

#: Qwen2.5-VL's image placeholder in a prompt; the model's processor expands ``<|image_pad|>`` to the image's tokens.
IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
PATCH = 14
#: Request ``settings`` the OpenAI chat API takes as arguments; other settings go in the request body as they are.
OPENAI_SETTINGS = ("top_p", "seed", "stop", "frequency_penalty", "presence_penalty")
#: Request ``settings`` passed to vllm's ``SamplingParams``.
VLLM_SETTINGS = ("top_p", "top_k", "seed", "stop", "repetition_penalty", "frequency_penalty", "presence_penalty")


def describe_request(index: int, request: Request) -> str:
    """``request 3 (figure=..., view=full; image 448x336, sha 0123abcd4567)``: how errors name a request."""
    parts = [f"{k}={v}" for k, v in list(request.metadata.items())[:4] if isinstance(v, (str, int, float))]
    if request.image is not None:
        parts.append(f"image {request.image.size[0]}x{request.image.size[1]}, sha {(request.image_key() or '')[:12]}")
    return f"request {index}" + (f" ({'; '.join(parts)})" if parts else "")


def chat_messages(request: Request, image: Any = None) -> list[dict[str, Any]]:
    """The chat of one request: an optional system message, then the user turn holding the image (``image``, or a
    bare ``{"type": "image"}`` entry for a chat template) before the prompt."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    if request.image is None:
        messages.append({"role": "user", "content": request.prompt})
    else:
        part = image if image is not None else {"type": "image"}
        messages.append({"role": "user", "content": [part, {"type": "text", "text": request.prompt}]})
    return messages


def render_prompt(request: Request, processor_or_template: Any) -> str:
    """The prompt text of ``request`` by the model's chat template, ending in the assistant turn: through the
    ``apply_chat_template`` of a processor or tokenizer, or a Jinja template string. Raises :class:`BackendError`
    when the text does not hold the image placeholder exactly once for an image (never for text only)."""
    messages = chat_messages(request)
    if isinstance(processor_or_template, str):
        import jinja2

        try:
            template = jinja2.Environment(keep_trailing_newline=True).from_string(processor_or_template)
            text = template.render(messages=messages, add_generation_prompt=True)
        except jinja2.TemplateError as exc:
            raise BackendError(f"chat template cannot be rendered: {exc}") from None
    elif hasattr(processor_or_template, "apply_chat_template"):
        text = processor_or_template.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        raise BackendError(f"need a processor, a tokenizer or a chat template string, not a "
                           f"{type(processor_or_template).__name__}")
    if not isinstance(text, str):
        raise BackendError(f"the chat template gave a {type(text).__name__}, not text")
    want = 0 if request.image is None else 1
    if text.count(IMAGE_PLACEHOLDER) != want or text.count("<|image_pad|>") != want:
        raise BackendError(f"the chat template put the image placeholder {IMAGE_PLACEHOLDER} "
                           f"{text.count('<|image_pad|>')} times in the prompt, not {want}: it is not a Qwen2.5-VL "
                           "template")
    return text


def _settings(request: Request, names: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request's settings split into the ``names`` ones and the rest."""
    known = {k: v for k, v in request.settings.items() if k in names}
    return known, {k: v for k, v in request.settings.items() if k not in names}


# --- transformers ------------------------------------------------------------------------------------------------


class TransformersBackend(Backend):
    """A Qwen2.5-VL (``Qwen2_5_VLForConditionalGeneration`` + ``AutoProcessor``) from a hub id or a local folder,
    loaded at the first :meth:`generate`.

    Requests are batched by generation settings (``max_tokens`` as ``max_new_tokens``, temperature, ``settings``) in
    chunks of ``batch_size``, left padded; temperature 0 decodes greedily, a higher one samples after seeding torch's
    global generator with the ``seed`` setting (default 0), so a batch repeats as a whole. ``device`` ``"auto"``: CUDA
    when available, else CPU; ``dtype`` ``"auto"``: bf16 on CUDA, fp32 on CPU. The image processor is set to
    ``min_pixels``/``max_pixels`` after loading; every image's ``image_grid_thw`` must be its own size in 14-pixel
    patches, else :class:`BackendError` names the request (the processor resized it and the boxes would not map
    back).
    Schemas are NOT enforced: decoding is free unless ``logits_processors`` (called with the chunk's requests,
    returning a list of transformers logits processors) constrains it. Not thread-safe."""

    name = "transformers"

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", min_pixels: int = MIN_PIXELS,
                 max_pixels: int = MAX_PIXELS, batch_size: int = 8,
                 logits_processors: Callable[[Sequence[Request]], list[Any]] | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size!r}")
        self.model_path, self.device_name, self.dtype_name = str(model), device, dtype
        self.min_pixels, self.max_pixels, self.batch_size = min_pixels, max_pixels, batch_size
        self.logits_processors = logits_processors
        self.counts: Counter[str] = Counter()
        self._model: Any = None
        self._processor: Any = None
        self._device: Any = None

    @property
    def processor(self) -> Any:
        self._load()
        return self._processor

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

        device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device_name == "auto" else self.device_name
        self._device = torch.device(device)
        if self.dtype_name == "auto":
            dtype = torch.bfloat16 if self._device.type == "cuda" else torch.float32
        else:
            dtype = getattr(torch, self.dtype_name, None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"dtype must be 'auto' or a torch dtype name, not {self.dtype_name!r}")
        try:
            processor = AutoProcessor.from_pretrained(self.model_path)
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(self.model_path, dtype=dtype)
        except OSError as exc:
            raise BackendError(f"cannot load Qwen2.5-VL model {self.model_path!r}: {exc}") from None
        # Set after loading: a checkpoint's own min_pixels/max_pixels override a size= given to from_pretrained, and
        # min_pixels= given there is passed to every call (deprecated).
        images, size = processor.image_processor, {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels}
        images.size = size if isinstance(images.size, dict) else type(images.size)(**size)
        processor.tokenizer.padding_side = "left"
        self._processor, self._model = processor, model.to(self._device).eval()

    def generate(self, requests: Sequence[Request]) -> list[Answer]:
        self._load()
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(json.dumps([r.max_tokens, float(r.temperature), r.settings], sort_keys=True,
                                         default=str), []).append(i)
        answers: list[Answer | None] = [None] * len(requests)
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                for i, answer in zip(chunk, self._run([requests[i] for i in chunk], chunk)):
                    answers[i] = answer
        return answers  # type: ignore[return-value]

    def _run(self, requests: list[Request], indices: list[int]) -> list[Answer]:
        import torch

        processor, tok = self._processor, self._processor.tokenizer
        texts = [render_prompt(r, processor) for r in requests]
        images = [r.image if r.image.mode == "RGB" else r.image.convert("RGB") for r in requests if r.image is not None]
        inputs = processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        self._check_grids(requests, indices, inputs.get("image_grid_thw"))
        inputs = inputs.to(self._device)
        first = requests[0]
        max_new = first.max_tokens
        kwargs: dict[str, Any] = {"max_new_tokens": max_new, "pad_token_id": tok.pad_token_id}
        if first.temperature > 0:
            kwargs.update(do_sample=True, temperature=float(first.temperature),
                          top_p=float(first.settings.get("top_p", 1.0)))
            torch.manual_seed(int(first.settings.get("seed", 0)))
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if self.logits_processors is not None:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList(self.logits_processors(requests))
        with torch.inference_mode():
            out = self._model.generate(**inputs, **kwargs)
        prompt_len = inputs["input_ids"].shape[1]
        eos = self._model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [tok.eos_token_id])
        image_id = processor.image_token_id
        answers = []
        for row in range(len(requests)):
            ids = out[row, prompt_len:].tolist()
            end = next((k for k, t in enumerate(ids) if t in eos_ids), None)
            if end is None:
                ids = ids[:max_new]
                reason = "length" if len(ids) >= max_new else "stop"
                kept, n_out = ids, len(ids)
            else:
                reason, kept, n_out = "stop", ids[:end], end + 1
            text = tok.decode(kept, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            row_ids = inputs["input_ids"][row][inputs["attention_mask"][row].bool()]
            n_image = int((row_ids == image_id).sum())
            answers.append(Answer(text, reason, int(row_ids.numel()), n_out, backend=self.name,
                                         tokens_image=n_image))
            self.counts["prompt_tokens"] += int(row_ids.numel())
            self.counts["image_tokens"] += n_image
            self.counts["generated_tokens"] += n_out
        self.counts["requests"] += len(requests)
        self.counts["batches"] += 1
        return answers

    def _check_grids(self, requests: list[Request], indices: list[int], grids: Any) -> None:
        rows = [] if grids is None else [tuple(int(v) for v in g) for g in grids.tolist()]
        with_image = [(i, r) for i, r in zip(indices, requests) if r.image is not None]
        if len(rows) != len(with_image):
            raise BackendError(f"the processor made {len(rows)} image grids for {len(with_image)} images")
        for (i, request), (t, gh, gw) in zip(with_image, rows):
            w, h = request.image.size
            if (t, gh * PATCH, gw * PATCH) != (1, h, w):
                raise BackendError(
                    f"{describe_request(i, request)}: the processor resized the {w}x{h} image to {gw * PATCH}x"
                    f"{gh * PATCH} (grid {t}x{gh}x{gw}); send views made by make_views with min_pixels="
                    f"{self.min_pixels} and max_pixels={self.max_pixels}, or the boxes will not map back")

    def close(self) -> None:
        self._model = self._processor = None


# --- OpenAI-compatible HTTP ----------------------------------------------------------------------------------------


def openai_payload(request: Request, model: str, schema_name: str = "answer") -> dict[str, Any]:
    """The ``chat.completions.create`` arguments for ``request``: the image as a base64 PNG data URI, a strict
    ``json_schema`` response format when the request has a schema, temperature and ``max_tokens``; ``settings``
    named in :data:`OPENAI_SETTINGS` as arguments, the others in ``extra_body``."""
    image = None
    if request.image is not None:
        png, _ = view_bytes(request.image)
        image = {"type": "image_url",
                 "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}}
    payload: dict[str, Any] = {"model": model, "messages": chat_messages(request, image),
                               "temperature": float(request.temperature), "max_tokens": request.max_tokens}
    if request.schema is not None:
        payload["response_format"] = {"type": "json_schema",
                                      "json_schema": {"name": schema_name, "schema": request.schema, "strict": True}}
    known, extra = _settings(request, OPENAI_SETTINGS)
    payload.update(known)
    if extra:
        payload["extra_body"] = extra
    return payload


class OpenAIBackend(Backend):
    """Chat completions from an OpenAI-compatible server (``vllm serve``, a hosted API) at ``base_url``, asking for
    the served ``model`` (the request's ``model`` only keys the cache).

    Up to ``concurrency`` requests are in flight at once; each has ``timeout`` seconds and is retried up to
    ``retries`` times, after ``backoff * 2**attempt`` seconds (at least a 429's ``Retry-After``, capped at 60 s), on
    429, 5xx, timeouts and connection errors; other statuses and a malformed response raise :class:`BackendError` at
    once. A request failing for good fails the batch with a :class:`BackendError` naming it. The API key is read from
    the environment variable ``api_key_env`` (None: a server that needs none). :attr:`counts` holds ``requests``,
    ``attempts``, ``retries``, the errors by kind, and the usage tokens."""

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key_env: str | None = "OPENAI_API_KEY", concurrency: int = 8,
                 timeout: float = 120, retries: int = 4, backoff: float = 1.0, schema_name: str = "answer") -> None:
        if concurrency < 1 or retries < 0 or timeout <= 0 or backoff < 0:
            raise ValueError("concurrency must be >= 1, retries >= 0, timeout > 0 and backoff >= 0")
        if api_key_env is None:
            self._api_key = "EMPTY"  # the client insists on some key
        else:
            self._api_key = os.environ.get(api_key_env, "")
            if not self._api_key:
                raise BackendError(f"OpenAI-compatible backend at {base_url}: the environment variable {api_key_env} "
                                   "holding the API key is not set (api_key_env=None for a server without keys)")
        self.base_url, self.model, self.schema_name = base_url, model, schema_name
        self.concurrency, self.timeout, self.retries, self.backoff = concurrency, timeout, retries, backoff
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            try:
                import openai
            except ImportError:
                raise BackendError("the openai package is not installed: pip install openai") from None
            self._client = openai.OpenAI(base_url=self.base_url, api_key=self._api_key, timeout=self.timeout,
                                         max_retries=0)  # retries are ours, so they are counted
        return self._client

    def _count(self, **kw: int) -> None:
        with self._lock:
            self.counts.update(kw)

    def generate(self, requests: Sequence[Request]) -> list[Answer]:
        if not requests:
            return []
        self._get_client()
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests)), thread_name_prefix="openai")
        try:
            futures = [pool.submit(self._one, i, r) for i, r in enumerate(requests)]
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _one(self, index: int, request: Request) -> Answer:
        import openai

        payload = openai_payload(request, self.model, self.schema_name)
        self._count(requests=1)
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._count(retries=1)
            self._count(attempts=1)
            wait = self.backoff * 2 ** attempt
            try:
                response = self._client.chat.completions.create(**payload)
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status != 429 and status < 500:
                    raise BackendError(f"{describe_request(index, request)}: {self.base_url} refused it with HTTP "
                                       f"{status}: {_error_detail(exc)}") from None
                self._count(**{"http_429" if status == 429 else "http_5xx": 1})
                last = f"HTTP {status}: {_error_detail(exc)}"
                wait = max(wait, _retry_after(exc.response))
            except openai.APITimeoutError:
                self._count(timeouts=1)
                last = f"no answer within {self.timeout:g} s"
            except openai.APIConnectionError as exc:
                self._count(connection_errors=1)
                last = f"connection failed: {_short(str(exc.__cause__ or exc))}"
            except (openai.OpenAIError, ValueError) as exc:  # an unreadable body
                raise BackendError(f"{describe_request(index, request)}: {self.base_url} sent an unreadable "
                                   f"response: {_short(str(exc))}") from None
            else:
                return self._answer(index, request, response)
            if attempt < self.retries:
                time.sleep(wait)
        raise BackendError(f"{describe_request(index, request)}: no answer from {self.base_url} after "
                           f"{self.retries + 1} attempts; last: {last}")

    def _answer(self, index: int, request: Request, response: Any) -> Answer:
        try:
            choice = response.choices[0]
            text = choice.message.content
            reason = choice.finish_reason
            usage = response.usage
        except (AttributeError, IndexError, TypeError, KeyError):
            raise BackendError(f"{describe_request(index, request)}: {self.base_url} answered without a choice "
                               f"holding a message") from None
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise BackendError(f"{describe_request(index, request)}: {self.base_url} answered with a "
                               f"{type(text).__name__} message")
        if not (reason is None or isinstance(reason, str)):
            raise BackendError(f"{describe_request(index, request)}: {self.base_url} answered with a "
                               f"{type(reason).__name__} finish_reason")
        tokens_in = _int_or_none(getattr(usage, "prompt_tokens", None))
        tokens_out = _int_or_none(getattr(usage, "completion_tokens", None))
        self._count(prompt_tokens=tokens_in or 0, completion_tokens=tokens_out or 0)
        return Answer(text, reason, tokens_in, tokens_out, backend=self.name)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _error_detail(exc: Any) -> str:
    """The server's own error message when its body carries one, else the client's."""
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    return _short(message if isinstance(message, str) and message else str(getattr(exc, "message", exc)))


def _retry_after(response: Any) -> float:
    try:
        return min(60.0, max(0.0, float(response.headers.get("retry-after", 0))))
    except (AttributeError, TypeError, ValueError):
        return 0.0


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


# --- vllm ----------------------------------------------------------------------------------------------------------


def vllm_inputs(requests: Sequence[Request], processor_or_template: Any) -> tuple[list[dict[str, Any]],
                                                                                  list[dict[str, Any]]]:
    """``(prompts, sampling_kwargs)`` for one ``LLM.generate`` call, one entry each per request, in order. A prompt
    is ``{"prompt": text}`` by the chat template (:func:`render_prompt`), plus for an image
    ``"multi_modal_data": {"image": [pil]}`` and ``"multi_modal_uuids": {"image": [view sha]}`` (so prefix caching
    reuses identical views). Sampling kwargs: ``temperature``, ``max_tokens``, the :data:`VLLM_SETTINGS` of the
    request, and ``structured_outputs`` ``{"json": schema}`` (kwargs of ``StructuredOutputsParams``) or None. Imports
    no vllm."""
    prompts, sampling = [], []
    for request in requests:
        prompt: dict[str, Any] = {"prompt": render_prompt(request, processor_or_template)}
        if request.image is not None:
            image = request.image if request.image.mode == "RGB" else request.image.convert("RGB")
            prompt["multi_modal_data"] = {"image": [image]}
            prompt["multi_modal_uuids"] = {"image": [request.image_key()]}
        prompts.append(prompt)
        known, _ = _settings(request, VLLM_SETTINGS)
        sampling.append({"temperature": float(request.temperature), "max_tokens": request.max_tokens, **known,
                         "structured_outputs": None if request.schema is None else {"json": request.schema}})
    return prompts, sampling


_ENGINE: dict[str, Any] = {}  # one vllm engine per process: {"key": settings, "llm": LLM, "processor": ...}
_ENGINE_LOCK = threading.Lock()


class VllmBackend(Backend):
    """vllm's offline engine (``vllm.LLM``), created at the first :meth:`generate` and shared by every backend of the
    process with the same settings (a second set of settings raises: one engine holds the GPUs). Each batch is ONE
    ``llm.generate`` call with a ``SamplingParams`` per request (temperature, ``max_tokens``, JSON schema as
    structured output). Images are limited to one per prompt, videos to none; ``min_pixels``/``max_pixels`` go to the
    multimodal processor. Requires vllm on a CUDA machine (``pip install 'panel2patch[vllm]'``)."""

    name = "vllm"

    def __init__(self, model: str, tensor_parallel_size: int = 1, max_model_len: int | None = None,
                 max_num_seqs: int = 64, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS,
                 enable_prefix_caching: bool = True, seed: int = 0, gpu_memory_utilization: float = 0.9) -> None:
        self.model = model
        self.engine_kwargs: dict[str, Any] = {
            "model": model, "tensor_parallel_size": tensor_parallel_size, "max_model_len": max_model_len,
            "max_num_seqs": max_num_seqs, "limit_mm_per_prompt": {"image": 1, "video": 0},
            "mm_processor_kwargs": {"min_pixels": min_pixels, "max_pixels": max_pixels},
            "enable_prefix_caching": enable_prefix_caching, "seed": seed,
            "gpu_memory_utilization": gpu_memory_utilization}
        self.counts: Counter[str] = Counter()

    def _engine(self) -> tuple[Any, Any]:
        try:
            import vllm
        except ImportError as exc:
            raise BackendError(f"vllm is not importable ({exc}): pip install 'panel2patch[vllm]' on a CUDA "
                               "machine") from None
        key = json.dumps(self.engine_kwargs, sort_keys=True)
        with _ENGINE_LOCK:
            if _ENGINE and _ENGINE["key"] != key:
                raise BackendError(f"this process already runs a vllm engine with {_ENGINE['key']}; one engine per "
                                   "process (run another process for other settings)")
            if not _ENGINE:
                from transformers import AutoProcessor

                processor = AutoProcessor.from_pretrained(self.model)
                kwargs = {k: v for k, v in self.engine_kwargs.items() if v is not None}
                _ENGINE.update(key=key, llm=vllm.LLM(**kwargs), processor=processor)
        return _ENGINE["llm"], _ENGINE["processor"]

    def generate(self, requests: Sequence[Request]) -> list[Answer]:
        if not requests:
            return []
        llm, processor = self._engine()
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        prompts, sampling = vllm_inputs(requests, processor)
        params = []
        for kw in sampling:
            so = kw.pop("structured_outputs")
            structured = None if so is None else StructuredOutputsParams(**so)
            params.append(SamplingParams(**kw, structured_outputs=structured))
        try:
            outputs = llm.generate(prompts, params, use_tqdm=False)
        except ValueError as exc:  # e.g. a prompt longer than max_model_len
            raise BackendError(f"vllm refused the batch of {len(requests)} requests: {_short(str(exc), 400)}") from None
        if len(outputs) != len(requests):
            raise BackendError(f"vllm returned {len(outputs)} outputs for {len(requests)} requests")
        image_id = getattr(processor, "image_token_id", None)
        answers = []
        for out in outputs:
            completion = out.outputs[0]
            prompt_ids = list(out.prompt_token_ids or [])
            n_image = prompt_ids.count(image_id) if image_id is not None else None
            answers.append(Answer(completion.text, completion.finish_reason, len(prompt_ids),
                                         len(completion.token_ids), backend=self.name, tokens_image=n_image))
        self.counts.update(requests=len(requests), batches=1)
        return answers


__all__ = ["IMAGE_PLACEHOLDER", "OpenAIBackend", "TransformersBackend", "VllmBackend",
           "chat_messages", "describe_request", "openai_payload", "render_prompt", "vllm_inputs"]
