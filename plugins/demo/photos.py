"""The bundled scikit-image pictures, their pseudo-colour tables, and photo panels cropped from them."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from panel2patch.data import Box
from panel2patch.errors import Panel2PatchError

from .plans import PanelPlan, Rect, pick


@dataclass(frozen=True)
class PhotoSource:
    """A bundled scikit-image picture: loader name, file in the wheel, licence and caption words."""

    function: str
    filename: str
    license: str
    subject: str
    targets: tuple[str, ...]
    window: tuple[float, float, float, float]  # crop limits, fractions of width/height


PHOTO_SOURCES: dict[str, PhotoSource] = {
    s.function: s
    for s in (
        PhotoSource("immunohistochemistry", "ihc.png", "no known copyright restrictions (CMMI)",
                    "FHL2 immunostaining of colonic glands",
                    ("DAB-positive epithelium", "the gland lumen", "the lamina propria", "a crypt"),
                    (0.0, 0.0, 1.0, 1.0)),
        PhotoSource("cell", "cell.png", "CC0", "Quantitative phase image of a suspended cell",
                    ("the cell membrane", "the nucleus", "a cytoplasmic vesicle"), (0.0, 0.0, 1.0, 1.0)),
        PhotoSource("retina", "retina.jpg", "CC0", "Colour fundus photograph of the left eye",
                    ("the optic disc", "a retinal vein", "the macula", "an arteriole"), (0.18, 0.18, 0.82, 0.82)),
        PhotoSource("microaneurysms", "microaneurysms.png", "CC0", "Fundus detail",
                    ("microaneurysms", "a small haemorrhage", "a capillary"), (0.0, 0.0, 1.0, 1.0)),
        PhotoSource("shepp_logan_phantom", "phantom.png", "synthetic (mathematical phantom)",
                    "Reconstructed CT slice of the head phantom",
                    ("the ventricle", "a small lesion", "the skull"), (0.08, 0.08, 0.92, 0.92)),
    )
}


def bundled_sources() -> dict[str, Path]:
    """The :data:`PHOTO_SOURCES` files present inside the installed scikit-image, by loader name.

    Only files shipped in the wheel count: scikit-image downloads the others on demand, which the demo
    never does.
    """
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    return {name: folder / s.filename for name, s in PHOTO_SOURCES.items() if (folder / s.filename).is_file()}


@functools.cache
def load_photo(name: str) -> Image.Image:
    """The bundled picture ``name`` as 8-bit RGB or L, loaded once per process."""
    import skimage
    import skimage.data

    available = bundled_sources()
    if name not in available:
        raise Panel2PatchError(
            f"scikit-image {skimage.__version__} does not ship "
            f"{PHOTO_SOURCES[name].filename}; the demo uses only bundled images "
            f"({', '.join(available) or 'none found'}); install scikit-image>=0.24"
        )
    arr = np.asarray(getattr(skimage.data, name)())
    if arr.dtype != np.uint8:
        arr = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).convert("RGB" if arr.ndim == 3 else "L")


_LUTS = {
    "gray": lambda g: (g, g, g),
    "green": lambda g: (0, g, 0),
    "magenta": lambda g: (g, 0, g),
    "hot": lambda g: (min(255, 3 * g), max(0, min(255, 3 * g - 255)), max(0, 3 * g - 510)),
}


def source_picture(name: str, rng: np.random.Generator) -> Image.Image:
    """The source picture, randomly flipped and (for grayscale sources) pseudo-coloured, as RGB."""
    img = load_photo(name)
    if img.mode == "L":
        lut = _LUTS[pick(rng, ("gray", "gray", "green", "magenta", "hot"))]
        table = [c for channel in range(3) for c in (lut(g)[channel] for g in range(256))]
        img = img.convert("RGB").point(table)
    for op in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM):
        if rng.random() < 0.5:
            img = img.transpose(op)
    return img


#: Largest enlargement of a source picture in a panel; beyond it photos turn to blur.
MAX_UPSCALE = 3.0


def _max_window(source: str, content: Rect) -> float:
    """Width (source pixels) of the largest window with the content's aspect ratio in ``source``."""
    src = PHOTO_SOURCES[source]
    W, H = load_photo(source).size
    return min((src.window[2] - src.window[0]) * W, (src.window[3] - src.window[1]) * H * content.w / content.h)


def fitting_sources(sources: list[str], content: Rect) -> list[str]:
    """The sources that fill ``content`` without enlarging more than :data:`MAX_UPSCALE` times."""
    fit = [s for s in sources if _max_window(s, content) * MAX_UPSCALE >= content.w]
    return fit or [max(sources, key=lambda s: _max_window(s, content))]


def render_photo(plan: PanelPlan, picture: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Box]:
    """Crop a window of the content's aspect ratio from ``picture``; returns the crop and its window."""
    src = PHOTO_SOURCES[plan.source]
    W, H = picture.size
    lx0, ly0, lx1, ly1 = src.window[0] * W, src.window[1] * H, src.window[2] * W, src.window[3] * H
    aspect = plan.content.w / plan.content.h
    max_w = min(lx1 - lx0, (ly1 - ly0) * aspect)
    smallest = min(1.0, max(0.45, plan.content.w / MAX_UPSCALE / max_w))
    cw = max_w * rng.uniform(smallest, 1.0)
    ch = cw / aspect
    x0 = lx0 + rng.uniform(0, lx1 - lx0 - cw)
    y0 = ly0 + rng.uniform(0, ly1 - ly0 - ch)
    window = (x0, y0, x0 + cw, y0 + ch)
    size = (plan.content.w, plan.content.h)
    return picture.resize(size, Image.Resampling.BICUBIC, box=window), window
