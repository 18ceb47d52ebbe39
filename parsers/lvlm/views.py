"""Image views sent to a Qwen2.5-VL-style model and the exact mapping of their pixels to the original figure.

A :class:`View` is a region of the original image (the whole image or a crop) resized to a size that Qwen2.5-VL's
own resize (:func:`smart_resize`) leaves unchanged. Images are resized here, on the client, so every backend (vllm,
an HTTP server, transformers) sees the same pixels and a box answered in the view's pixels maps back with one affine
transform. Boxes are ``(x0, y0, x1, y1)`` float pixel edges, origin top-left, as in :mod:`panel2patch.data`.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from panel2patch.data import Box

from .errors import UnresizableImageError

if TYPE_CHECKING:
    from PIL import Image

#: Qwen2.5-VL: 14-pixel patches merged 2x2, so both sides of an input are multiples of 28.
FACTOR = 28
#: qwen-vl-utils' pixel limits (4 and 16,384 merged patches).
MIN_PIXELS = 4 * 28 * 28
MAX_PIXELS = 16384 * 28 * 28
#: The largest aspect ratio the model accepts.
MAX_RATIO = 200


def smart_resize(height: int, width: int, factor: int = FACTOR, min_pixels: int = MIN_PIXELS,
                 max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """``(height, width)`` of the model input for a ``height`` x ``width`` image, by Qwen2.5-VL's rule.

    Both sides become multiples of ``factor``, each rounded to the nearest multiple (Python's ``round``); if the pixel
    count then exceeds ``max_pixels`` both sides are scaled down by one factor and floored (never below ``factor``),
    if it falls short of ``min_pixels`` they are scaled up and ceiled. This is the rule transformers' Qwen2-VL image
    processor applies (and vllm through it); qwen-vl-utils differs only for a side of at most ``factor / 2`` pixels,
    which it raises to ``factor`` before checking the limits. Raises :class:`UnresizableImageError` (a ``ValueError``)
    for a side that is not positive or an aspect ratio above :data:`MAX_RATIO`.
    """
    if not (height > 0 and width > 0):
        raise UnresizableImageError(f"image size {width}x{height} is not positive")
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_RATIO:
        raise UnresizableImageError(f"aspect ratio {ratio:.1f} of a {width}x{height} image exceeds the model's limit "
                                    f"of {MAX_RATIO}; crop the image before sending it")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class View:
    """What the model was shown: the region ``crop`` of the original ``image_size`` (``(width, height)``) image, in
    original pixels, resized to ``size`` (``(width, height)``, the pixels the model's boxes are in). ``kind`` is
    ``"full"``, ``"scale"`` (the whole image at another resolution) or ``"crop"``; ``name`` is unique among the views
    of one image. The mappings are affine and exact up to float rounding."""

    name: str
    kind: str
    crop: Box
    size: tuple[int, int]
    image_size: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """Original pixels per view pixel, ``(x, y)``."""
        return ((self.crop[2] - self.crop[0]) / self.size[0], (self.crop[3] - self.crop[1]) / self.size[1])

    def to_original(self, box: Sequence[float]) -> Box:
        """``box`` in view pixels mapped to original-image pixels (not clipped)."""
        cx0, cy0, cx1, cy1 = self.crop
        vw, vh = self.size
        return (cx0 + box[0] * (cx1 - cx0) / vw, cy0 + box[1] * (cy1 - cy0) / vh,
                cx0 + box[2] * (cx1 - cx0) / vw, cy0 + box[3] * (cy1 - cy0) / vh)

    def to_view(self, box: Sequence[float]) -> Box:
        """``box`` in original-image pixels mapped to view pixels (not clipped): the inverse of :meth:`to_original`."""
        cx0, cy0, cx1, cy1 = self.crop
        vw, vh = self.size
        return ((box[0] - cx0) * vw / (cx1 - cx0), (box[1] - cy0) * vh / (cy1 - cy0),
                (box[2] - cx0) * vw / (cx1 - cx0), (box[3] - cy0) * vh / (cy1 - cy0))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "crop": list(self.crop), "size": list(self.size),
                "image_size": list(self.image_size)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> View:
        return cls(str(data["name"]), str(data["kind"]), tuple(float(v) for v in data["crop"]),
                   tuple(int(v) for v in data["size"]), tuple(int(v) for v in data["image_size"]))


def make_views(image: Image.Image, max_pixels: int = MAX_PIXELS, min_pixels: int = MIN_PIXELS, crops: int = 0,
               scales: int = 0, seed: int | str = 0, scale_range: tuple[float, float] = (0.5, 1.0),
               crop_range: tuple[float, float] = (0.5, 0.8), factor: int = FACTOR) -> list[tuple[View, Image.Image]]:
    """The views of ``image`` with their RGB images, each exactly its view's ``size`` (bicubic resize).

    First the full figure at its :func:`smart_resize` size; then ``scales`` views of the whole figure with both sides
    scaled by a factor drawn from ``scale_range`` (relative to the full view, then put through :func:`smart_resize`);
    then ``crops`` views of integer-pixel crops whose sides are fractions drawn from ``crop_range`` of the image's, at
    a random position, at their own :func:`smart_resize` size. Draws come from ``seed`` (scale and crop draws from
    separate streams, so adding crops leaves the scale views unchanged); the same image and arguments give the same
    views. A scale view whose size repeats an earlier view's, and a crop that cannot be sent (aspect ratio), are left
    out, so fewer views than asked may come back. The full view's image is ``image`` itself when no resize is needed.
    Raises :class:`UnresizableImageError` when the full figure cannot be sent.
    """
    from PIL import Image

    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    limits = {"factor": factor, "min_pixels": min_pixels, "max_pixels": max_pixels}
    full_h, full_w = _sendable_size(height, width, limits)
    whole = (0.0, 0.0, float(width), float(height))
    views = [(View("full", "full", whole, (full_w, full_h), (width, height)), whole)]
    rng = random.Random(f"{seed}:scale")
    for i in range(scales):
        s = rng.uniform(*scale_range)
        try:
            h, w = _sendable_size(max(1, round(full_h * s)), max(1, round(full_w * s)), limits)
        except UnresizableImageError:
            continue
        if all(v.size != (w, h) for v, _ in views):
            views.append((View(f"scale{i + 1}", "scale", whole, (w, h), (width, height)), whole))
    rng = random.Random(f"{seed}:crop")
    for i in range(crops):
        cw = min(width, max(1, round(width * rng.uniform(*crop_range))))
        ch = min(height, max(1, round(height * rng.uniform(*crop_range))))
        x0, y0 = rng.randint(0, width - cw), rng.randint(0, height - ch)
        try:
            h, w = _sendable_size(ch, cw, limits)
        except UnresizableImageError:
            continue
        box = (float(x0), float(y0), float(x0 + cw), float(y0 + ch))
        views.append((View(f"crop{i + 1}", "crop", box, (w, h), (width, height)), box))
    out = []
    for view, box in views:
        if view.size == (width, height) and box == whole:
            out.append((view, image))
        else:
            out.append((view, image.resize(view.size, Image.Resampling.BICUBIC, box=box)))
    return out


def crop_view(image: Image.Image, box: Box, name: str = "crop", max_pixels: int = MAX_PIXELS,
              min_pixels: int = MIN_PIXELS, factor: int = FACTOR) -> tuple[View, Image.Image]:
    """One view of the region ``box`` of ``image`` (original pixels, rounded outwards to whole pixels and clipped):
    the crop at its own :func:`smart_resize` size, whose boxes map straight back to figure pixels. Raises
    :class:`UnresizableImageError` for a crop with no sendable size (empty, or too thin)."""
    from PIL import Image

    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    x0, y0 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    x1, y1 = min(width, math.ceil(box[2])), min(height, math.ceil(box[3]))
    h, w = _sendable_size(y1 - y0, x1 - x0, {"factor": factor, "min_pixels": min_pixels, "max_pixels": max_pixels})
    crop = (float(x0), float(y0), float(x1), float(y1))
    return View(name, "crop", crop, (w, h), (width, height)), image.resize((w, h), Image.Resampling.BICUBIC, box=crop)


def _sendable_size(height: int, width: int, limits: dict[str, int]) -> tuple[int, int]:
    """:func:`smart_resize` of the size, checked to be a size the model's own resize leaves unchanged (limits far
    from the image's shape can make the rule land outside them)."""
    h, w = smart_resize(height, width, **limits)
    try:
        kept = smart_resize(h, w, **limits) == (h, w)
    except UnresizableImageError as exc:
        kept, why = False, f": {exc.detail}"
    else:
        why = ""
    if not kept:
        raise UnresizableImageError(f"a {width}x{height} image resizes to {w}x{h}, which the model's own resize does "
                                    f"not keep under {limits}{why}")
    return h, w


def image_sha256(image: Image.Image) -> str:
    """A sha256 of the image's RGB pixels and size: the same for the same pixels whatever the encoder, metadata or
    Pillow/zlib version, so it keys answers across machines."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return _pixel_sha(rgb, rgb.tobytes())


def view_bytes(view_image: Image.Image) -> tuple[bytes, str]:
    """``(png, sha)``: the view's RGB pixels as a PNG without metadata (what an HTTP backend sends) and
    :func:`image_sha256` of them (the image key of the answer cache). The sha covers the pixels, not the PNG bytes,
    whose compression may differ between zlib versions."""
    from PIL import Image

    rgb = view_image if view_image.mode == "RGB" else view_image.convert("RGB")
    raw = rgb.tobytes()
    buf = io.BytesIO()
    Image.frombytes("RGB", rgb.size, raw).save(buf, format="PNG", compress_level=6)  # a fresh image: no metadata
    return buf.getvalue(), _pixel_sha(rgb, raw)


def _pixel_sha(rgb: Image.Image, raw: bytes) -> str:
    digest = hashlib.sha256(f"rgb8:{rgb.size[0]}x{rgb.size[1]}:".encode())
    digest.update(raw)
    return digest.hexdigest()
