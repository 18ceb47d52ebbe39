"""Image classification tasks on disk: reading a user's task in either layout, and writing the offline modality task.

A task is read from one of two layouts:

* a folder of class folders, ``ROOT/<class>/**/*.png|jpg|...`` (one split, named ``test``), or split folders
  ``ROOT/train/<class>/...``, ``ROOT/test/<class>/...`` (also ``val``/``valid``/``validation``); classes are the
  class folder names in sorted order, ``_`` shown as a space;
* clip_benchmark's WebDataset layout: ``ROOT/classnames.txt`` (line i names class i), ``ROOT/{split}/nshards.txt``
  and ``ROOT/{split}/0.tar ...`` whose samples hold an image member and ``cls`` (the class index as text).

Either may carry ``ROOT/zeroshot_classification_templates.txt`` (one prompt template per line, ``{c}`` standing for
the class name). Images are decoded only when features are computed; an undecodable image is skipped and counted.
"""

from __future__ import annotations

import functools
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from panel2patch.errors import ImageDecodeError, Panel2PatchError
from panel2patch.images import IMAGE_EXTS, MAX_PIXELS, open_image

SPLIT_NAMES = ("train", "val", "valid", "validation", "test")
CLASSNAMES_FILE = "classnames.txt"
TEMPLATES_FILE = "zeroshot_classification_templates.txt"


class TaskError(Panel2PatchError):
    """A classification task cannot be read, written or scored as asked."""


@dataclass(frozen=True)
class Example:
    """One image of a task: ``id`` its place below the task root (``test/CT/0001.png``, ``test/0.tar/s0000001``),
    ``label`` its class index, ``read`` a function returning its encoded bytes."""

    id: str
    label: int
    read: Callable[[], bytes]

    def image(self, max_pixels: int = MAX_PIXELS):
        """The decoded RGB image; :class:`~panel2patch.errors.ImageError` when it cannot be read or decoded."""
        try:
            raw = self.read()
        except OSError as exc:
            raise ImageDecodeError(f"cannot read: {exc}") from None
        return open_image(raw, max_pixels)


@dataclass
class ClassificationTask:
    """A task read from ``root``: class names, prompt templates (None when it has none), examples per split and,
    per split, ``"id: reason"`` of the samples left out while reading (a WebDataset sample without image or class)."""

    name: str
    root: Path
    layout: str  # "folder" | "wds"
    classes: list[str]
    templates: list[str] | None
    splits: dict[str, list[Example]]
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def split(self, name: str) -> list[Example]:
        if name not in self.splits:
            raise TaskError(f"task {self.name!r} ({self.root}) has no split {name!r}; its splits: "
                            f"{', '.join(self.splits)}")
        return self.splits[name]


def read_task(path: str | Path, name: str | None = None) -> ClassificationTask:
    """The task stored at ``path`` in either layout (see the module docstring); ``name`` defaults to the folder name.
    A layout that cannot be read is a :class:`TaskError` saying what is wrong."""
    root = Path(path)
    if not root.is_dir():
        raise TaskError(f"task folder {root} does not exist or is not a folder (the offline modality task: "
                        f"panel2patch eval-task {root})")
    name = name or root.resolve().name
    try:
        templates = _templates(root / TEMPLATES_FILE)
        wds = (root / CLASSNAMES_FILE).exists() or any((d / "nshards.txt").exists() for d in _folders(root))
        classes, splits, skipped = _read_wds(root) if wds else (*_read_folders(root), {})
    except OSError as exc:  # a folder that cannot be listed
        raise TaskError(f"cannot read task folder {root}: {exc}") from None
    return ClassificationTask(name, root, "wds" if wds else "folder", classes, templates, splits, skipped)


def _folders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"cannot read {path}: {exc}") from None


def _templates(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    lines = [line.strip() for line in _text(path).splitlines()]
    bad = [i + 1 for i, line in enumerate(lines) if line and "{c}" not in line]
    if bad:
        raise TaskError(f"{path}: line {bad[0]} has no {{c}} placeholder for the class name")
    return [line for line in lines if line] or None


def _read_folders(root: Path) -> tuple[list[str], dict[str, list[Example]]]:
    folders = _folders(root)
    split_dirs = {d.name: d for d in folders if d.name.lower() in SPLIT_NAMES}
    if split_dirs and len(split_dirs) < len(folders):
        others = [d.name for d in folders if d.name not in split_dirs]
        raise TaskError(f"{root} mixes split folders ({', '.join(split_dirs)}) with other folders "
                        f"({', '.join(others)}): put every class folder inside a split folder")
    split_dirs = split_dirs or {"test": root}
    names = sorted({c.name for d in split_dirs.values() for c in _folders(d)})
    if not names:
        raise TaskError(f"{root} holds no class folders (ROOT/<class>/*.png) and is no clip_benchmark WebDataset "
                        f"({CLASSNAMES_FILE}, <split>/nshards.txt)")
    index = {n: i for i, n in enumerate(names)}
    splits: dict[str, list[Example]] = {}
    for split, folder in split_dirs.items():
        splits[split] = [
            Example(f.relative_to(root).as_posix(), index[c.name], f.read_bytes)
            for c in _folders(folder)
            for f in sorted(c.rglob("*"))
            if f.is_file() and not f.name.startswith(".") and f.suffix[1:].lower() in IMAGE_EXTS
        ]
    found = {e.label for examples in splits.values() for e in examples}
    empty = [n for n in names if index[n] not in found]
    if empty:
        raise TaskError(f"{root}: class folder {empty[0]!r} holds no images ({', '.join(IMAGE_EXTS)}) in any split; "
                        "add images or remove the folder")
    return [n.replace("_", " ") for n in names], splits


def _read_wds(root: Path) -> tuple[list[str], dict[str, list[Example]], dict[str, list[str]]]:
    if not (root / CLASSNAMES_FILE).is_file():
        raise TaskError(f"{root} has split folders with nshards.txt but no {CLASSNAMES_FILE} (one class name per "
                        "line, line i naming class i)")
    kind = root / "dataset_type.txt"
    if kind.exists() and _text(kind).strip().lower() not in ("", "classification"):
        raise TaskError(f"{root} is a {_text(kind).strip()!r} dataset; only classification tasks are read")
    classes = [line.strip() for line in _text(root / CLASSNAMES_FILE).splitlines()]
    while classes and not classes[-1]:
        classes.pop()
    if not classes or "" in classes:
        raise TaskError(f"{root / CLASSNAMES_FILE}: " + ("is empty" if not classes else
                                                         f"line {classes.index('') + 1} is blank"))
    if len(set(classes)) < len(classes):
        raise TaskError(f"{root / CLASSNAMES_FILE} names a class twice")
    splits, skipped = {}, {}
    for folder in _folders(root):
        if not (folder / "nshards.txt").exists():
            continue
        count = _text(folder / "nshards.txt").strip()
        if not count.isdigit() or int(count) < 1:
            raise TaskError(f"{folder / 'nshards.txt'} must hold a positive number of shards, not {count!r}")
        splits[folder.name], skipped[folder.name] = [], []
        for i in range(int(count)):
            _read_shard(root, folder / f"{i}.tar", len(classes), splits[folder.name], skipped[folder.name])
    if not splits:
        raise TaskError(f"{root} has {CLASSNAMES_FILE} but no split folder with nshards.txt and tar shards")
    return classes, splits, skipped


def _read_shard(root: Path, shard: Path, n_classes: int, examples: list[Example], skipped: list[str]) -> None:
    """Index one uncompressed tar shard: images are read later from their byte ranges, so nothing large is held."""
    from webdataset.tariterators import base_plus_ext

    if not shard.is_file():
        raise TaskError(f"shard {shard} is missing (nshards.txt counts it)")
    samples: dict[str, dict[str, Any]] = {}
    try:
        with tarfile.open(shard, "r:") as tar:
            for member in tar:
                key, ext = base_plus_ext(member.name) if member.isfile() else (None, None)
                if key is None or ext is None:
                    continue
                ext = ext.lower()
                if ext == "cls":
                    samples.setdefault(key, {})[ext] = tar.extractfile(member).read(64)
                elif ext in IMAGE_EXTS:
                    samples.setdefault(key, {}).setdefault("image", (member.offset_data, member.size))
            tar.fileobj.seek(tar.offset)  # tarfile stops without a word at a damaged header: the end must be zeros
            end = tar.fileobj.read(2 * tarfile.BLOCKSIZE)
    except (tarfile.TarError, OSError) as exc:
        raise TaskError(f"cannot read shard {shard} (an uncompressed tar): {exc}") from None
    if len(end) < 2 * tarfile.BLOCKSIZE or end.strip(b"\0"):
        raise TaskError(f"shard {shard} is damaged or truncated at byte {tar.offset}")
    where = shard.relative_to(root).as_posix()
    for key, sample in samples.items():
        text = sample.get("cls", b"").decode("ascii", "replace").strip()
        if "image" not in sample or "cls" not in sample:
            skipped.append(f"{where}/{key}: no {'image' if 'image' not in sample else 'cls'} member")
        elif not text.isdigit() or int(text) >= n_classes:
            skipped.append(f"{where}/{key}: class index {text!r} is not in 0..{n_classes - 1}")
        else:
            read = functools.partial(_read_range, shard, *sample["image"])
            examples.append(Example(f"{where}/{key}", int(text), read))


def _read_range(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


# ---------------------------------------------------------------- the offline modality task

#: Readable class names of the :data:`~panel2patch.plugins.demo.real_sources.REAL_SOURCES` modalities (the synthetic
#: phantom is no imaging modality and is left out).
MODALITY_CLASSES = {"histology": "histology", "phase": "phase-contrast microscopy", "fundus": "fundus photograph",
                    "ct": "CT", "mr": "MRI", "us": "ultrasound"}
MODALITY_TEMPLATES = ("a {c} image.", "a biomedical image showing {c}.", "a figure panel of {c}.",
                      "an example of {c}.")


def build_modality_task(out: str | Path, n_per_class: int = 50, seed: int = 0, size: int = 224,
                        fmt: str = "folder", progress: bool = True) -> Path:
    """Write a modality-classification task made from the pictures scikit-image and pydicom ship (no download):
    ``n_per_class`` random crops (zoom, flips, jitter) per modality in each of ``train`` and ``test``, ``size`` pixels
    square, the same for a seed. ``fmt`` is ``folder`` (``out/{split}/{class}/NNNN.png``) or ``wds``
    (clip_benchmark's layout). Both carry the templates file and ``task.json`` (classes, sources, licences, counts,
    seed). ``out`` must be new or empty. Returns ``out``."""
    from tqdm import tqdm

    from panel2patch.plugins.demo.real_sources import REAL_SOURCES, available_sources, photo_tile

    if fmt not in ("folder", "wds"):
        raise TaskError(f"task format {fmt!r}: use 'folder' or 'wds'")
    if n_per_class < 1 or size < 16:
        raise TaskError(f"n_per_class must be at least 1 and size at least 16 pixels, not {n_per_class} and {size}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TaskError(f"{out} exists and is not an empty folder: choose a new one")
    found = available_sources()
    sources = {label: [n for n in found if REAL_SOURCES[n].modality == key] for key, label in MODALITY_CLASSES.items()}
    # class order = sorted folder names, so both layouts give every class the same index
    classes = sorted((c for c in sources if sources[c]), key=lambda c: c.replace(" ", "_"))
    if len(classes) < 2:
        raise TaskError(f"only {len(classes)} imaging modality is bundled with the installed packages; need two")
    counts: dict[str, dict[str, int]] = {}
    with tqdm(total=2 * len(classes) * n_per_class, desc="modality task", unit="img", disable=not progress) as bar:
        for s, split in enumerate(("train", "test")):
            images = []
            for c, label in enumerate(classes):
                rng = np.random.default_rng([seed, s, c])  # one stream per split and class: different crops per split
                for k in range(n_per_class):
                    tile = photo_tile(sources[label][k % len(sources[label])], size, size, rng)
                    images.append((label, c, k, _png(tile)))
                    bar.update()
            counts[split] = {label: n_per_class for label in classes}
            (_write_folder if fmt == "folder" else _write_wds)(out / split, images)
    if fmt == "wds":
        (out / CLASSNAMES_FILE).write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
    (out / TEMPLATES_FILE).write_text("".join(f"{t}\n" for t in MODALITY_TEMPLATES), encoding="utf-8")
    info = {
        "name": "modality", "layout": fmt, "classes": classes, "templates": list(MODALITY_TEMPLATES),
        "sources": {label: [{"name": n, "provenance": REAL_SOURCES[n].provenance, "license": REAL_SOURCES[n].license,
                             "subject": REAL_SOURCES[n].subject} for n in sources[label]] for label in classes},
        "counts": counts, "n_per_class": n_per_class, "size": size, "seed": seed,
        "note": "train and test are different random crops of the same bundled pictures: a check that a model tells "
                "imaging modalities apart, not a held-out benchmark",
    }
    (out / "task.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def _png(image: Any) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _write_folder(folder: Path, images: list[tuple[str, int, int, bytes]]) -> None:
    for label, _, k, data in images:
        path = folder / label.replace(" ", "_") / f"{k:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _write_wds(folder: Path, images: list[tuple[str, int, int, bytes]], shard_size: int = 1000) -> None:
    import webdataset as wds

    folder.mkdir(parents=True, exist_ok=True)
    shards = [images[i:i + shard_size] for i in range(0, len(images), shard_size)]
    for s, shard in enumerate(shards):
        with wds.TarWriter(str(folder / f"{s}.tar"), encoder=False, mtime=0.0) as sink:
            for i, (_, c, _, data) in enumerate(shard):
                sink.write({"__key__": f"s{s * shard_size + i:07d}", "png": data, "cls": str(c).encode()})
    (folder / "nshards.txt").write_text(f"{len(shards)}\n", encoding="utf-8")
