"""GPU check of the LVLM backends: the tiny random Qwen2.5-VL in bf16 through the transformers backend and, where
vllm is installed, through the vllm backend, end to end (views -> one batched generate -> answers), with throughput.

Run it on a machine with CUDA; ``--allow-cpu`` runs the transformers half on CPU in fp32 (a check of the script, not
of the GPU path). Nothing is downloaded: the model and its tokenizer are built locally. Throughput is of the tiny
model, so it measures the plumbing's overhead (batching, preprocessing, one engine per process), not a real model.

    python benchmarks/lvlm_gpu_check.py                   # CUDA: transformers bf16, then vllm if importable
    python benchmarks/lvlm_gpu_check.py --allow-cpu --figures 4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from panel2patch.parsers.lvlm.backends import TransformersBackend, VllmBackend
from panel2patch.parsers.lvlm.cache import LVLMClient, Request
from panel2patch.parsers.lvlm.prompts import PANEL_SCHEMA, panels_prompt
from panel2patch.parsers.lvlm.tiny import build_tiny_qwen
from panel2patch.parsers.lvlm.views import make_views

MIN_PIXELS, MAX_PIXELS = 4 * 28 * 28, 256 * 28 * 28


def figures(n: int) -> list[Image.Image]:
    """``n`` two-panel figures of varied sizes."""
    out = []
    for i in range(n):
        w, h = 320 + 40 * (i % 5), 220 + 30 * (i % 3)
        image = Image.new("RGB", (w, h), "white")
        draw = ImageDraw.Draw(image)
        draw.rectangle((8, 8, w // 2 - 4, h - 8), outline="black", width=3)
        draw.rectangle((w // 2 + 4, 8, w - 8, h // 2), fill=(200, 40, 40))
        draw.text((12, 12), "A", fill="black")
        draw.text((w // 2 + 8, 12), "B", fill="white")
        out.append(image)
    return out


def requests(images: list[Image.Image], max_tokens: int) -> list[Request]:
    prompt = panels_prompt(["A", "B"])
    out = []
    for i, image in enumerate(images):
        for view, picture in make_views(image, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, crops=1, seed=i):
            out.append(Request("tiny-qwen2.5-vl", prompt, image=picture, schema=PANEL_SCHEMA, max_tokens=max_tokens,
                               metadata={"figure": i, "view": view.name}))
    return out


def run(name: str, backend, reqs: list[Request], n_figures: int) -> dict:
    client = LVLMClient(backend)
    client.generate(reqs[:2])  # warm-up: engine start, kernels
    start = time.perf_counter()
    answers = client.generate(reqs)
    seconds = time.perf_counter() - start
    row = {"backend": name, "figures": n_figures, "requests": len(reqs), "seconds": round(seconds, 3),
           "figures_per_s": round(n_figures / seconds, 2), "requests_per_s": round(len(reqs) / seconds, 2),
           "tokens_out": sum(a.tokens_out or 0 for a in answers),
           "image_tokens": sum(a.tokens_image or 0 for a in answers), "client": dict(client.counts)}
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--allow-cpu", action="store_true", help="run the transformers backend on CPU in fp32")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        print("lvlm_gpu_check: no CUDA device (use --allow-cpu to check the script on CPU)", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="tiny-qwen-") as folder:
        model = build_tiny_qwen(Path(folder), MIN_PIXELS, MAX_PIXELS)
        reqs = requests(figures(args.figures), args.max_tokens)
        backend = TransformersBackend(str(model), device="cuda" if cuda else "cpu",
                                      dtype="bfloat16" if cuda else "float32",
                                      min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
        rows.append(run(f"transformers ({'cuda bf16' if cuda else 'cpu fp32'})", backend, reqs, args.figures))
        try:
            import vllm  # noqa: F401
        except ImportError:
            print("lvlm_gpu_check: vllm is not installed; its backend was not run", file=sys.stderr)
        else:
            if cuda:
                rows.append(run("vllm", VllmBackend(str(model), max_model_len=4096, min_pixels=MIN_PIXELS,
                                                    max_pixels=MAX_PIXELS, gpu_memory_utilization=0.3),
                                reqs, args.figures))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
