"""Writing a demo set: images, captions index, ground-truth annotations and the demo.json summary."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from panel2patch import __version__
from panel2patch.errors import Panel2PatchError

from .figure import GENERATOR_VERSION, make_figure
from .photos import PHOTO_SOURCES


def _prepare(out: Path) -> None:
    """Create ``out`` with its sub-folders. A previous demo set there (it has demo.json) is replaced;
    a non-empty folder without demo.json is refused so that nothing else is overwritten."""
    if out.exists() and not out.is_dir():
        raise Panel2PatchError(f"demo-data: {out} exists and is not a directory; choose another OUT")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "demo.json").is_file():
            raise Panel2PatchError(
                f"demo-data: {out} is not empty and holds no demo.json; choose an empty or new directory"
            )
        for sub in ("images", "annotations"):
            shutil.rmtree(out / sub, ignore_errors=True)
        for name in ("captions.jsonl", "demo.json"):
            (out / name).unlink(missing_ok=True)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)


def write_demo(out: str | os.PathLike[str], n: int, seed: int, progress: bool = True) -> dict[str, Any]:
    """Write ``n`` demo figures into ``out`` (layout in :mod:`panel2patch.plugins.demo`); returns demo.json."""
    import skimage
    from tqdm import tqdm

    if n < 1:
        raise Panel2PatchError(f"demo-data: --n must be at least 1, got {n}")
    if seed < 0:
        raise Panel2PatchError(f"demo-data: --seed must be >= 0, got {seed}")
    out = Path(out)
    _prepare(out)
    counts: dict[str, Any] = {"figures": 0, "panels": {}, "labelled_panels": 0, "markers": {}, "regions": 0,
                              "layouts": {}}
    used: set[str] = set()
    with open(out / "captions.jsonl", "w", encoding="utf-8") as captions:
        for index in tqdm(range(n), desc="demo-data", unit="fig", disable=not progress):
            demo = make_figure(seed, index)
            fig = demo.figure
            (out / "images" / f"{fig.id}.png").write_bytes(demo.png())
            (out / "annotations" / f"{fig.id}.json").write_text(
                json.dumps(fig.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            captions.write(json.dumps({"id": fig.id, "image": f"images/{fig.id}.png", "caption": fig.caption},
                                      ensure_ascii=False) + "\n")
            counts["figures"] += 1
            counts["regions"] += len(fig.regions)
            layout = fig.components["generator"]["layout"]
            counts["layouts"][layout] = counts["layouts"].get(layout, 0) + 1
            for p in fig.panels:
                counts["panels"][p.kind] = counts["panels"].get(p.kind, 0) + 1
                counts["labelled_panels"] += p.label is not None
                if p.provenance.startswith("skimage.data."):
                    used.add(p.provenance.removeprefix("skimage.data."))
            for m in fig.markers:
                counts["markers"][m.kind] = counts["markers"].get(m.kind, 0) + 1
    summary = {
        "seed": seed,
        "n": n,
        "version": __version__,
        "generator_version": GENERATOR_VERSION,
        "scikit_image_version": skimage.__version__,
        "counts": counts,
        "skimage_images": {name: {"file": PHOTO_SOURCES[name].filename, "license": PHOTO_SOURCES[name].license}
                           for name in sorted(used)},
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return summary
