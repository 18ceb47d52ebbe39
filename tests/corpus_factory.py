"""Small synthetic hierarchical corpora for tests (and benchmarks): generated figures, exact boxes.

Each figure is a row or grid of panels; a panel is filled with a coloured texture (its concept, named in
its sub-caption) and may hold one or two small shapes (its regions, named in the region texts). Every
box is exact. :func:`write_corpus` writes WebDataset shards in the corpus layout the trainer reads
(``shards/*.tar`` with ``KEY.png``, ``KEY.txt``, ``KEY.json``) plus a ``manifest.json``.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from panel2patch.corpus import sample_key
from panel2patch.data import Figure, Panel, Region

COLORS = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 210, 20),
    "magenta": (200, 40, 200),
    "cyan": (20, 200, 210),
}
PATTERNS = ("horizontal stripes", "vertical stripes", "checkerboard", "solid")
SHAPE_COLORS = {"black": (10, 10, 10), "white": (250, 250, 250), "orange": (250, 140, 0)}
SHAPES = ("circle", "square", "triangle")

#: A tiny open_clip architecture that trains on 2 CPU cores: 32 px input, 4x4 patch grid.
TINY_MODEL = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 3, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}


def _texture(size: tuple[int, int], color: tuple[int, int, int], pattern: str) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    step = max(4, min(w, h) // 6)
    if pattern == "solid":
        draw.rectangle((0, 0, w, h), fill=color)
    elif pattern == "horizontal stripes":
        for y in range(0, h, 2 * step):
            draw.rectangle((0, y, w, y + step - 1), fill=color)
    elif pattern == "vertical stripes":
        for x in range(0, w, 2 * step):
            draw.rectangle((x, 0, x + step - 1, h), fill=color)
    else:
        for y in range(0, h, step):
            for x in range(0, w, step):
                if (x // step + y // step) % 2 == 0:
                    draw.rectangle((x, y, x + step - 1, y + step - 1), fill=color)
    return img


def _shape(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], shape: str, color: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=color)
    elif shape == "square":
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=color)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=color)


def make_figure(rng: random.Random, index: int, max_panels: int = 4) -> tuple[Figure, Image.Image]:
    """One synthetic figure and its image. Panels may have 0-2 regions; some figures have one panel."""
    n = rng.randint(1, max_panels)
    cols = n if n <= 3 else 2
    rows = (n + cols - 1) // cols
    cell_w, cell_h, gutter = rng.randint(60, 90), rng.randint(56, 84), 6
    width = cols * cell_w + (cols + 1) * gutter
    height = rows * cell_h + (rows + 1) * gutter
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    panels, regions, segments = [], [], []
    for i in range(n):
        r, c = divmod(i, cols)
        x0, y0 = gutter + c * (cell_w + gutter), gutter + r * (cell_h + gutter)
        box = (float(x0), float(y0), float(x0 + cell_w), float(y0 + cell_h))
        color = rng.choice(list(COLORS))
        pattern = rng.choice(PATTERNS)
        canvas.paste(_texture((cell_w, cell_h), COLORS[color], pattern), (x0, y0))
        label = "ABCDEFGH"[i]
        segment = f"{color} {pattern}."
        segments.append(f"({label}) {segment}")
        panel_id = f"p{i}"
        panels.append(Panel(id=panel_id, box=box, label=label, kind="photo", subcaption=segment,
                            description=f"a panel with {color} {pattern}" if rng.random() < 0.5 else None))
        for j in range(rng.choice((0, 1, 1, 2))):
            side = rng.randint(14, 22)
            sx = rng.randint(x0 + 3, x0 + cell_w - side - 3)
            sy = rng.randint(y0 + 3, y0 + cell_h - side - 3)
            shape_color = rng.choice(list(SHAPE_COLORS))
            shape = rng.choice(SHAPES)
            _shape(draw, (sx, sy, sx + side, sy + side), shape, SHAPE_COLORS[shape_color])
            regions.append(Region(
                id=f"r{i}_{j}", panel_id=panel_id, box=(float(sx), float(sy), float(sx + side), float(sy + side)),
                texts=[f"{shape_color} {shape}", f"the marked {shape} is {shape_color}"],
            ))
    caption = "Synthetic textures. " + " ".join(segments)
    figure = Figure(id=f"synthetic-{index:05d}", width=width, height=height, caption=caption,
                    source="corpus_factory", panels=panels, regions=regions)
    return figure, canvas


def write_corpus(root: str | Path, figures: int = 48, shard_size: int = 16, seed: int = 0,
                 image_format: str = "png", max_panels: int = 4) -> Path:
    """Write ``figures`` synthetic figures as WebDataset shards under ``root/shards``; returns ``root``."""
    import webdataset as wds

    root = Path(root)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    counts: dict[str, Any] = {"figures": 0, "panels": 0, "regions": 0}
    writer = None
    for i in range(figures):
        if i % shard_size == 0:
            if writer is not None:
                writer.close()
            writer = wds.TarWriter(str(root / "shards" / f"corpus-000-{i // shard_size:05d}.tar"))
        figure, image = make_figure(rng, i, max_panels=max_panels)
        buf = io.BytesIO()
        image.save(buf, format="PNG" if image_format == "png" else "JPEG", quality=95)
        writer.write({
            "__key__": sample_key(figure.id),
            image_format: buf.getvalue(),
            "txt": figure.caption.encode("utf-8"),
            "json": json.dumps(figure.to_json()).encode("utf-8"),
        })
        counts["figures"] += 1
        counts["panels"] += len(figure.panels)
        counts["regions"] += len(figure.regions)
    if writer is not None:
        writer.close()
    (root / "manifest.json").write_text(json.dumps({"counts": counts, "source": "corpus_factory"}), encoding="utf-8")
    return root


def tiny_recipe(path: str | Path, corpus: str | Path, output_dir: str | Path, **train: Any) -> Path:
    """Write a training recipe for :data:`TINY_MODEL` on ``corpus``; ``train`` keys replace defaults."""
    from omegaconf import OmegaConf

    section: dict[str, Any] = {
        "model": {"name": "open_clip", "args": {"model": "p2p-test-tiny", "config": TINY_MODEL,
                                                 "unlocked_vision_blocks": 2}},
        "levels": [{"name": "figure"}, {"name": "panel"}, {"name": "region"}],
        "aggregator": {"name": "mean_pool"},
        "losses": [{"name": "clip_contrastive", "args": {"weight": 1.0}},
                   {"name": "interlevel_contrastive", "args": {"weight": 0.5}},
                   {"name": "roi_consistency", "args": {"weight": 0.5}}],
        "schedule": {"name": "alternating", "args": {"order": ["M", "P", "R"], "steps_per_phase": 1}},
        "data": {"corpus": str(corpus), "batch_size": {"figure": 4, "panel": 8, "region": 8}, "workers": 0,
                 "shuffle_buffer": 32, "held_out": 0.2, "max_children": 4},
        "optim": {"lr": 1e-3, "warmup_steps": 2, "max_steps": 6},
        "checkpoint": {"every_n_steps": 0, "keep": 3},
        "validation": {"batch_size": 8, "max_batches": 4},
        "text_cache": {"dir": str(Path(output_dir) / "text-cache")},
        "deepspeed": {"zero_optimization": {"stage": 0}, "gradient_clipping": 1.0},
        "output_dir": str(output_dir),
        "seed": 0,
        "eval_every": 0,
        "log_every": 1,
    }
    for key, value in train.items():
        if isinstance(value, dict) and isinstance(section.get(key), dict) and key not in ("model",):
            section[key] = {**section[key], **value}
        else:
            section[key] = value
    Path(path).write_text(OmegaConf.to_yaml(OmegaConf.create({"train": section})), encoding="utf-8")
    return Path(path)


def mine_recipe(source: str, out: Path, chunk_size: int = 8) -> str:
    """The text of a CPU mining recipe reading ``source`` (a ``{name, args}`` flow mapping) into ``out``."""
    return f"""mine:
  source: {source}
  parser: {{name: cpu_layout}}
  markers: {{name: shape_markers}}
  splitter: {{name: label_splitter}}
  regions: {{name: marker_regions}}
  cleaners: [{{name: clip_to_image}}, {{name: drop_degenerate}}, {{name: box_nms}}]
  writer: {{name: webdataset_corpus, args: {{out: '{out}'}}}}
  chunk_size: {chunk_size}
"""
