"""Images/s and peak memory of one training step per level vs a flat open_clip step, in one process.

For each level (figure M, panel P, region R) a batch is loaded once and kept in memory; then, with the
same model and freezing (text tower frozen, last K vision blocks + projection trainable), we time:

* ``flat``: open_clip's own step on the same images: ``encode_image`` + ``encode_text`` (frozen tower,
  still run every step as open_clip does), ``open_clip.loss.ClipLoss``, backward, AdamW step;
* ``zoom``: panel2patch's level step (one vision pass for samples and related crops, patch map,
  clip_contrastive + interlevel_contrastive + roi_consistency terms), backward, AdamW step, texts from the warm embedding cache;
* ``zoom-nocache``: the same step encoding the texts at every step.

Both see the same number of images per step (the level batch with its children or parents). Memory
is the peak CUDA allocation on GPU, the peak resident set size of the process on CPU (Linux).

    python benchmarks/train_step.py                       # tiny model, synthetic corpus, CPU
    python benchmarks/train_step.py --model ViT-B-32 --unlocked 5 --data CORPUS --device cuda
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from panel2patch.corpus import find_shards
from panel2patch.manager import build
from panel2patch.plugins.training.loaders import LevelLoader, LoaderOptions, StreamSpec
from panel2patch.plugins.training.model import parameter_counts, patch_size, wrap_model
from panel2patch.plugins.training.step import TextSource, level_step
from panel2patch.plugins.training.text_cache import TextEmbeddingCache, text_fingerprint, text_tower_names

ROOT = Path(__file__).resolve().parents[1]


def peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets the process's peak RSS (VmHWM)
    except OSError:
        pass


def peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def timed(step, steps: int, warmup: int, device: torch.device) -> tuple[float, float]:
    """Seconds per step (mean over ``steps`` after ``warmup``) and peak memory (MiB)."""
    for _ in range(warmup):
        step()
    peak_reset(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps, peak_mib(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="open_clip model name, or 'tiny' (32 px ViT)")
    parser.add_argument("--pretrained", default=None)
    parser.add_argument("--unlocked", type=int, default=2, help="trainable last vision blocks")
    parser.add_argument("--data", help="corpus directory (default: a generated synthetic corpus)")
    parser.add_argument("--batch", type=int, nargs=3, default=(8, 16, 16), metavar=("M", "P", "R"))
    parser.add_argument("--max-children", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (1 gives stable timings on a busy machine)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    sys.path.insert(0, str(ROOT / "tests"))  # the synthetic corpus and tiny model the tests use
    from corpus_factory import TINY_MODEL, write_corpus

    corpus = args.data or str(write_corpus(Path(tempfile.mkdtemp(prefix="p2p-bench-")) / "corpus", figures=64,
                                           shard_size=32, seed=0))
    model_args = {"model": args.model, "pretrained": args.pretrained, "unlocked_vision_blocks": args.unlocked}
    if args.model == "tiny":
        model_args.update(model="p2p-bench-tiny", config=TINY_MODEL)
    loader = build("model_loaders", "open_clip", model_args)
    clip, transform, tokenizer = loader.load()
    fingerprint = text_fingerprint(clip, tokenizer, text_tower_names(clip))
    model = wrap_model(clip).to(device).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_train, n_total = parameter_counts(model)
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, weight_decay=0.05, betas=(0.9, 0.95))
    terms = [(n, build("loss_terms", n, {})) for n in ("clip_contrastive", "interlevel_contrastive", "roi_consistency")]
    aggregator = build("aggregators", "mean_pool", {})
    from open_clip.loss import ClipLoss

    clip_loss = ClipLoss()
    uncached = TextSource(clip, tokenizer, device, True, None)
    cached = TextSource(clip, tokenizer, device, True, TextEmbeddingCache(uncached.encode, fingerprint, None))
    patch = patch_size(clip)

    rows = []
    for (name, size) in zip(("figure", "panel", "region"), args.batch):
        level = build("levels", name, {})
        spec = StreamSpec(shards=find_shards(corpus), level=level, split="train", held_out=0.0, batch_size=size,
                          seed=0, shuffle_buffer=64, by_shard=False, max_children=args.max_children)
        batch = next(LevelLoader(spec, transform, dict(clip.visual.preprocess_cfg), LoaderOptions(workers=0)))
        images = batch.images.to(device)
        tokens = tokenizer(batch.texts).to(device)

        def flat_step():
            image = model.clip.encode_image(images, normalize=True)
            text = model.clip.encode_text(tokens, normalize=True)
            loss = clip_loss(image, text, model.clip.logit_scale.exp())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        def zoom_step(texts):
            def run():
                loss, _ = level_step(model, batch, texts, terms, aggregator, device, torch.float32, patch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            return run

        cold_start = time.perf_counter()
        cached.cache(batch.texts)
        cold = time.perf_counter() - cold_start
        warm_start = time.perf_counter()
        cached.cache(batch.texts)
        warm = time.perf_counter() - warm_start
        n = batch.num_images
        flat_s, flat_mem = timed(flat_step, args.steps, args.warmup, device)
        zoom_s, zoom_mem = timed(zoom_step(cached), args.steps, args.warmup, device)
        nocache_s, nocache_mem = timed(zoom_step(uncached), args.steps, args.warmup, device)
        rows.append({
            "level": name, "samples": batch.num_samples, "images": n,
            "flat_img_s": n / flat_s, "zoom_img_s": n / zoom_s, "zoom_nocache_img_s": n / nocache_s,
            "zoom_vs_flat": flat_s / zoom_s, "flat_peak_mib": flat_mem, "zoom_peak_mib": zoom_mem,
            "zoom_nocache_peak_mib": nocache_mem, "text_encode_ms": cold * 1e3, "text_cache_hit_ms": warm * 1e3,
        })

    print(f"model {args.model} ({n_train:,} trainable / {n_total:,} params), device {device}, "
          f"torch threads {torch.get_num_threads()}, {args.steps} timed steps after {args.warmup} warm-up")
    head = (f"{'level':<7}{'imgs':>5}{'flat img/s':>12}{'zoom img/s':>12}{'zoom/flat':>10}{'nocache img/s':>15}"
            f"{'flat MiB':>10}{'zoom MiB':>10}{'text enc ms':>12}{'cache ms':>10}")
    print(head)
    for r in rows:
        print(f"{r['level']:<7}{r['images']:>5}{r['flat_img_s']:>12.1f}{r['zoom_img_s']:>12.1f}{r['zoom_vs_flat']:>10.2f}"
              f"{r['zoom_nocache_img_s']:>15.1f}{r['flat_peak_mib']:>10.0f}{r['zoom_peak_mib']:>10.0f}"
              f"{r['text_encode_ms']:>12.2f}{r['text_cache_hit_ms']:>10.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "device": str(device), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
