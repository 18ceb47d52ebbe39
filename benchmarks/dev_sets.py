"""Load the real development sets as :class:`panel2patch.data.Figure` ground truth (benchmarks only).

The EXSCLAIM / Nature Communications set (``exsclaim_ncomms``) is five compound figures with
hand-made panel boxes and panel letters in ``annotations.json``; its boxes include axes, legends and
the panel letter, in original-image pixels (origin top-left). The image files carry PNG data under a
``.jpg`` name; :func:`panel2patch.images.open_image` reads them by content, not by name.

The EMBO Press set (``embo_2025``) is twelve 2-16 MP research figures with panel boxes, printed labels
and label boxes, every arrow, arrowhead, box and circle (``pointer`` tells arrows that point at an image
feature from timeline, axis, flow and diagram arrows), captions and per-panel reference sub-captions.
Its ground truth keeps the pointer arrows and arrowheads as ``markers``; :func:`load_embo_markers`
returns every annotated marker with its flags.

Usage (writes ``OUT_DIR/<set>/<figure id>.json`` per figure in the corpus schema, for ``panel2patch score``)::

    python benchmarks/dev_sets.py --data ../shared/data/dev OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from panel2patch.data import Figure, Marker, Panel

#: Default location of the development data: ``shared/data/dev`` beside the repository.
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
EXSCLAIM = "exsclaim_ncomms"
EMBO = "embo_2025"


@dataclass
class DevFigure:
    """One reference figure: the image path and its ground truth (panels with ``label`` and ``box``)."""

    image: Path
    truth: Figure


def load_exsclaim(data: Path = DEFAULT_DATA) -> list[DevFigure]:
    """Read ``<data>/exsclaim_ncomms/annotations.json`` into figures, in file order.

    Each panel's ``box`` is the annotation's ``bbox_xyxy`` (pixels, top-left origin) and ``label`` its
    panel letter; the figure id is the image file stem. Raises ``FileNotFoundError`` naming the path when
    the set is missing.
    """
    root, doc = _annotations(data, EXSCLAIM)
    out = []
    for entry in doc["figures"]:
        image = root / entry["image"]
        fig_id = image.stem
        panels = [
            Panel(id=f"p{j}", box=tuple(float(v) for v in p["bbox_xyxy"]), label=p.get("label"), provenance="reference")
            for j, p in enumerate(entry["panels"])
        ]
        truth = Figure(
            id=fig_id,
            width=int(entry["width"]),
            height=int(entry["height"]),
            caption=entry.get("caption", ""),
            source=entry.get("article_doi", EXSCLAIM),
            panels=panels,
        )
        out.append(DevFigure(image=image, truth=truth))
    return out


def _annotations(data: Path, name: str) -> tuple[Path, dict]:
    root = Path(data) / name
    path = root / "annotations.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass --data pointing at the folder holding {name}/")
    return root, json.loads(path.read_text(encoding="utf-8"))


def load_embo(data: Path = DEFAULT_DATA) -> list[DevFigure]:
    """Read ``<data>/embo_2025/annotations.json``: panels (label, box, label box), the caption and the
    pointer arrows/arrowheads as markers (kind, box, tip, panel). The figure id is the image file stem."""
    root, doc = _annotations(data, EMBO)
    out = []
    for entry in doc["figures"]:
        image = root / entry["image"]
        panels = [
            Panel(id=f"p{j}", box=tuple(float(v) for v in p["bbox_xyxy"]), label=p.get("label"),
                  label_box=tuple(float(v) for v in p["label_box"]) if p.get("label_box") else None,
                  provenance="reference")
            for j, p in enumerate(entry["panels"])
        ]
        by_label = {p.label: p.id for p in panels}
        markers = [
            Marker(id=f"m{j}", kind=m["kind"], box=tuple(float(v) for v in m["box"]),
                   panel_id=by_label.get(m.get("panel")),
                   tip=tuple(float(v) for v in m["tip"]) if m.get("tip") else None)
            for j, m in enumerate(entry.get("markers", []))
            if m.get("pointer") and m["kind"] in ("arrow", "arrowhead")
        ]
        truth = Figure(id=image.stem, width=int(entry["width"]), height=int(entry["height"]),
                       caption=entry.get("caption", ""), source=entry.get("article_doi", EMBO),
                       panels=panels, markers=markers)
        out.append(DevFigure(image=image, truth=truth))
    return out


def load_embo_markers(data: Path = DEFAULT_DATA) -> dict[str, list[dict]]:
    """Every annotated marker of ``embo_2025`` per figure id, as in the file (``kind``, ``box``, ``tip``,
    ``pointer``, ``role``, ``panel``, ``note``)."""
    root, doc = _annotations(data, EMBO)
    return {(root / e["image"]).stem: list(e.get("markers", [])) for e in doc["figures"]}


def load_real(data: Path = DEFAULT_DATA) -> dict[str, list[DevFigure]]:
    """Every real development set found under ``data``, by name (a missing set is left out)."""
    sets = {}
    for name, loader in ((EMBO, load_embo), (EXSCLAIM, load_exsclaim)):
        if (Path(data) / name / "annotations.json").is_file():
            sets[name] = loader(data)
    return sets


def write_truth(figures: list[DevFigure], out_dir: Path) -> list[Path]:
    """Write each figure's ground truth as ``<out_dir>/<figure id>.json`` (corpus schema)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fig in figures:
        path = out_dir / f"{fig.truth.id}.json"
        path.write_text(json.dumps(fig.truth.to_json(), indent=1), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for the <figure id>.json ground-truth files")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding exsclaim_ncomms/ and embo_2025/")
    args = ap.parse_args(argv)
    for name, figures in load_real(args.data).items():
        for path in write_truth(figures, args.out / name):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
