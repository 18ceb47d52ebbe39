"""Decoding figure images safely into RGB, whatever mode, orientation or size they come in."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

from .errors import ImageDecodeError, ImageTooLargeError

#: Default pixel limit (width x height); larger images are rejected as likely decompression bombs.
MAX_PIXELS = 64_000_000

#: File extensions of the image formats figures come in, as WebDataset member names use them.
IMAGE_EXTS = ("png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp", "gif")

_EXT_BY_FORMAT = {"JPEG": "jpg", "PNG": "png", "TIFF": "tif", "GIF": "gif", "BMP": "bmp", "WEBP": "webp"}


def open_image(data: bytes | str | Path, max_pixels: int = MAX_PIXELS):
    """Decode ``data`` (bytes or a path) to an RGB ``PIL.Image`` with EXIF orientation applied.

    Raises :class:`ImageDecodeError` for anything PIL cannot decode fully (empty, truncated, not an
    image) and :class:`ImageTooLargeError` above ``max_pixels``. Alpha is composited on white; 16-bit,
    CMYK, palette and grayscale images are converted.
    """
    from PIL import Image, ImageOps

    raw = Path(data).read_bytes() if isinstance(data, (str, Path)) else data
    if not raw:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings(), pixel_limit(None):  # max_pixels replaces PIL's own limit
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
            w, h = img.size
            if w * h > max_pixels:
                raise ImageTooLargeError(f"{w}x{h} = {w * h} pixels exceeds the limit of {max_pixels}")
            Image.MAX_IMAGE_PIXELS = max_pixels  # frames decoded from here on are held to it too
            img.load()
    except ImageTooLargeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(str(exc)) from None
    except Image.UnidentifiedImageError:
        raise ImageDecodeError(f"not an image format PIL recognises ({len(raw)} bytes)") from None
    except Exception as exc:  # PIL raises many types for bad data: report them as one
        raise ImageDecodeError(f"cannot decode image: {type(exc).__name__}: {exc}") from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not lose the image
        pass
    return to_rgb(img)


@contextlib.contextmanager
def pixel_limit(limit: int | None):
    """PIL's decompression-bomb limit set to ``limit`` (None: off) inside the block, restored after it."""
    from PIL import Image

    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, limit
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def to_rgb(img):
    """RGB copy of any PIL image; transparency becomes white."""
    from PIL import Image

    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype("uint8"), "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def stored_form(raw: bytes, decoded) -> tuple[bytes, str]:
    """What a corpus stores for an input: its own bytes when stock tools show the decoded frame's pixels (8-bit RGB,
    grey or opaque-palette JPEG/PNG, no EXIF rotation); else ``decoded`` as PNG (16-bit, alpha, CMYK, rotated)."""
    from PIL import Image

    try:
        with pixel_limit(None), Image.open(io.BytesIO(raw)) as img:  # decoded already, within the run's limit
            plain = img.mode in ("RGB", "L") or (img.mode == "P" and "transparency" not in img.info)
            ext, same = _EXT_BY_FORMAT.get(img.format or "", "bin"), plain and img.getexif().get(0x0112, 1) == 1
    except Exception:
        ext, same = "bin", False
    if ext in ("jpg", "png") and same:
        return raw, ext
    buf = io.BytesIO()
    decoded.save(buf, format="PNG")
    return buf.getvalue(), "png"
