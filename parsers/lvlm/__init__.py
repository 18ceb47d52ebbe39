"""Foundations of the large vision-language model (LVLM) data engine: Qwen2.5-VL-style image views and the exact
mapping of their pixels back to the original figure (:mod:`.views`), tolerant parsing of model answers and
sanitising of the boxes they carry (:mod:`.answers`), and the request/answer records, backend interface, batching
client and append-only answer cache that doubles as a recorded backend (:mod:`.cache`). Nothing here loads a model
or registers a component; backends (vllm, OpenAI-compatible HTTP, transformers) and parsers build on this API."""
