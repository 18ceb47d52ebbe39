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


#: Figure styles of ``demo-data --style``: the original generated style and the realistic one.
STYLES = ("default", "real")


def figure_maker(style: str):
    """``make(seed, index) -> DemoFigure`` of ``style`` (one of :data:`STYLES`)."""
    if style == "default":
        return make_figure
    if style == "real":
        from .real_figure import make_real_figure

        return make_real_figure
    raise Panel2PatchError(f"demo-data: unknown --style {style!r}; choose one of {', '.join(STYLES)}")


def write_demo(out: str | os.PathLike[str], n: int, seed: int, progress: bool = True,
               style: str = "default") -> dict[str, Any]:
    """Write ``n`` demo figures of ``style`` into ``out`` (layout in :mod:`panel2patch.plugins.demo`); returns
    demo.json."""
    import skimage
    from tqdm import tqdm

    if n < 1:
        raise Panel2PatchError(f"demo-data: --n must be at least 1, got {n}")
    if seed < 0:
        raise Panel2PatchError(f"demo-data: --seed must be >= 0, got {seed}")
    make = figure_maker(style)
    out = Path(out)
    _prepare(out)
    counts: dict[str, Any] = {"figures": 0, "panels": {}, "labelled_panels": 0, "markers": {}, "regions": 0,
                              "layouts": {}}
    used: set[str] = set()
    provenances: set[str] = set()
    with open(out / "captions.jsonl", "w", encoding="utf-8") as captions:
        for index in tqdm(range(n), desc="demo-data", unit="fig", disable=not progress):
            demo = make(seed, index)
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
                provenances.add(p.provenance)
                if p.provenance.startswith("skimage.data.") and style == "default":
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
    if style != "default":
        summary.update(_real_summary(provenances))
    (out / "demo.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return summary


def _real_summary(provenances: set[str]) -> dict[str, Any]:
    """The demo.json entries of the ``real`` style: its version and the bundled pictures it used."""
    from .real_draw import fonts_found
    from .real_figure import REAL_GENERATOR_VERSION
    from .real_sources import REAL_SOURCES

    by_provenance = {s.provenance: s for s in REAL_SOURCES.values()}
    used = [by_provenance[p] for p in sorted(provenances) if p in by_provenance]
    try:
        import pydicom

        pydicom_version = pydicom.__version__
    except ImportError:
        pydicom_version = None
    return {
        "style": "real",
        "generator_version": REAL_GENERATOR_VERSION,
        "pydicom_version": pydicom_version,
        "fonts": fonts_found(),
        "skimage_images": {s.loader: {"file": s.file, "license": s.license} for s in used if s.package == "skimage"},
        "pydicom_images": {s.file: {"modality": s.modality, "license": s.license} for s in used
                           if s.package == "pydicom"},
    }
