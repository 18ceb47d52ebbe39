"""``panel2patch export-pairs``: flat image-text pairs of one level, for tools that know only pairs.

Each output sample is a crop (or the whole figure) with one text, in WebDataset shards that stock
open_clip trains on (``--dataset-type webdataset``): ``KEY.jpg|png``, ``KEY.txt``, ``KEY.json`` (figure
id, panel / region id and the box in figure pixels). A region with several texts gives one pair per text.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from panel2patch.components import Command
from panel2patch.corpus import find_shards, read_corpus
from panel2patch.data import Box, Figure
from panel2patch.errors import ImageError, Panel2PatchError
from panel2patch.hookspecs import hookimpl
from panel2patch.images import MAX_PIXELS
from panel2patch.run import versions


def pairs(figure: Figure, level: str) -> Iterator[tuple[str, Box | None, str, dict[str, Any]]]:
    """(suffix, box or None for the whole figure, text, metadata) for each pair of ``level``."""
    if level == "figure":
        if figure.caption:
            yield "fig", None, figure.caption, {"figure_id": figure.id}
    elif level == "panel":
        for panel in figure.panels:
            if panel.subcaption:
                yield panel.id, panel.box, panel.subcaption, {"figure_id": figure.id, "panel_id": panel.id, "label": panel.label}
    elif level == "region":
        for region in figure.regions:
            for n, text in enumerate(region.texts):
                meta = {"figure_id": figure.id, "panel_id": region.panel_id, "region_id": region.id}
                yield f"{region.id}-{n}", region.box, text, meta
    else:
        raise Panel2PatchError(f"unknown level {level!r}; choose figure, panel or region")


def crop_window(box: Box, width: int, height: int) -> tuple[int, int, int, int] | None:
    """``box`` rounded to pixels and clipped to the image; None when nothing of it is inside (no black crops)."""
    x0, y0 = max(0, round(box[0])), max(0, round(box[1]))
    x1, y1 = min(width, round(box[2])), min(height, round(box[3]))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def export_pairs(corpus: str, out: str, level: str, shard_size: int = 1000, progress: bool = True,
                 max_pixels: int = MAX_PIXELS) -> dict[str, Any]:
    """Write the pairs of ``level`` and ``export.json`` (what was written and what was left out, with reasons).

    Boxes are clipped to the image; a pair whose box lies outside it is skipped. A corpus member that cannot be read
    (bad JSON, damaged shard, an image that does not decode or does not match its JSON's size) is skipped whole."""
    import webdataset as wds
    from tqdm import tqdm

    find_shards(corpus)  # a clear error for a folder that is no corpus, before any output is made
    if Path(out).resolve().is_relative_to(Path(corpus).resolve()):
        raise Panel2PatchError(f"the output folder {out} is inside the corpus {corpus}: export-pairs would read its own "
                               "shards as corpus members; write it elsewhere")
    Path(out).mkdir(parents=True, exist_ok=True)
    count, outside, skipped = 0, 0, []
    with wds.ShardWriter(str(Path(out) / f"{level}-%05d.tar"), maxcount=shard_size, verbose=0) as sink:
        for record in tqdm(read_corpus(corpus, skipped=skipped), desc=f"export {level} pairs", unit="fig",
                           disable=not progress, file=sys.stderr):
            key, figure, data, ext = record.key, record.figure, record.image, record.image_ext
            todo = list(pairs(figure, level))
            try:
                image = record.decoded(max_pixels) if todo else None
            except ImageError as exc:
                skipped.append(f"{record.where}: {exc.detail}")
                continue
            for suffix, box, text, meta in todo:
                window = None if box is None else crop_window(box, image.width, image.height)
                if box is not None and window is None:
                    outside += 1
                    continue
                out_ext = ext if window is None else "png" if ext == "png" else "jpg"
                meta["box"] = list(box) if box else None
                sink.write({"__key__": f"{key}_{suffix}", out_ext: data if window is None else encoded(image.crop(window), out_ext),
                            "txt": text.encode("utf-8"), "json": json.dumps(meta).encode("utf-8")})
                count += 1
    if outside:
        print(f"export-pairs: skipped {outside} {level} pairs whose box lies outside its image", file=sys.stderr)
    for problem in skipped[:5]:
        print(f"export-pairs: skipped {problem}", file=sys.stderr)
    summary = {"corpus": str(corpus), "level": level, "pairs": count, "pairs_outside_image": outside,
               "unreadable_members": len(skipped), "skipped": skipped, "versions": versions("webdataset")}
    Path(out, "export.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def encoded(crop, ext: str) -> bytes:
    buf = io.BytesIO()
    crop.save(buf, format="PNG" if ext == "png" else "JPEG", quality=95)
    return buf.getvalue()


class ExportPairsCommand(Command):
    help = "export flat image-text pairs of one level as WebDataset shards"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("corpus")
        parser.add_argument("out")
        parser.add_argument("--level", choices=("figure", "panel", "region"), default="panel")
        parser.add_argument("--shard-size", type=int, default=1000)
        parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                            help="largest image decoded (the corpus's mine.max_pixels, if it was raised)")

    def run(self, args: argparse.Namespace) -> int:
        if args.shard_size < 1 or args.max_pixels < 1:
            raise Panel2PatchError("--shard-size and --max-pixels must be positive")
        summary = export_pairs(args.corpus, args.out, args.level, args.shard_size, max_pixels=args.max_pixels)
        left_out = f" ({summary['unreadable_members']} unreadable corpus members left out)" if summary["skipped"] else ""
        print(f"wrote {summary['pairs']} {args.level} pairs to {args.out}{left_out}")
        return 0


@hookimpl
def register_commands(register):
    register("export-pairs", ExportPairsCommand)
