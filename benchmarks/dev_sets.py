"""Load the real development sets as :class:`panel2patch.data.Figure` ground truth (benchmarks only).

The EXSCLAIM / Nature Communications set (``exsclaim_ncomms``) is five compound figures with
hand-made panel boxes and panel letters in ``annotations.json``; its boxes include axes, legends and
the panel letter, in original-image pixels (origin top-left). The image files carry PNG data under a
``.jpg`` name; :func:`panel2patch.images.open_image` reads them by content, not by name.

Usage (writes one ``<figure id>.json`` per figure in the corpus schema, for ``panel2patch score``)::

    python benchmarks/dev_sets.py --data ../shared/data/dev OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from panel2patch.data import Figure, Panel

#: Default location of the development data: ``shared/data/dev`` beside the repository.
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
EXSCLAIM = "exsclaim_ncomms"


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
    root = Path(data) / EXSCLAIM
    path = root / "annotations.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass --data pointing at the folder holding {EXSCLAIM}/")
    doc = json.loads(path.read_text(encoding="utf-8"))
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
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding exsclaim_ncomms/")
    args = ap.parse_args(argv)
    figures = load_exsclaim(args.data)
    for path in write_truth(figures, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
