"""Real medical and biological pictures for the ``real`` style: scikit-image's bundled data and pydicom's
CT, MR and ultrasound test slices, and photo tiles cropped, zoomed, flipped and colour-jittered from them.

Only files present in the installed wheels are used; nothing is downloaded (scikit-image's optional
``cells3d``, ``human_mitosis``, ``kidney``, ``lily``, ``skin`` and ``brain`` need a download and are
left out; pydicom's files are asked for with ``download=False``). A source whose file is missing or
cannot be decoded (a JPEG 2000 slice without a JPEG 2000 decoder) is skipped; when pydicom is not
installed at all, the style runs on the scikit-image pictures alone.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from panel2patch.errors import Panel2PatchError

from .plans import pick


@dataclass(frozen=True)
class RealSource:
    """A bundled picture: where it comes from, what it shows and the words captions use for it."""

    name: str  # key
    package: str  # "skimage" / "pydicom"
    file: str  # file name inside the package's data folder
    loader: str  # skimage.data function or pydicom test-file name
    modality: str  # histology / phase / fundus / ct / mr / us / phantom
    license: str
    subject: str  # caption phrase
    targets: tuple[str, ...]
    window: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # crop limits, fractions

    @property
    def provenance(self) -> str:
        return f"skimage.data.{self.loader}" if self.package == "skimage" else f"pydicom.data:{self.file}"


REAL_SOURCES: dict[str, RealSource] = {
    s.name: s
    for s in (
        RealSource("ihc", "skimage", "ihc.png", "immunohistochemistry", "histology",
                   "no known copyright restrictions (CMMI)", "FHL2 immunohistochemistry of colonic mucosa",
                   ("DAB-positive epithelial cells", "the gland lumen", "the lamina propria", "crypt bases",
                    "positive nuclei")),
        RealSource("cell", "skimage", "cell.png", "cell", "phase", "CC0", "phase-contrast images of suspended cells",
                   ("the cell membrane", "membrane blebs", "the nucleus", "cytoplasmic vesicles")),
        RealSource("retina", "skimage", "retina.jpg", "retina", "fundus", "CC0",
                   "colour fundus photographs", ("the optic disc", "retinal veins", "the macula",
                                                  "cotton-wool spots"), (0.16, 0.16, 0.84, 0.84)),
        RealSource("microaneurysms", "skimage", "microaneurysms.png", "microaneurysms", "fundus", "CC0",
                   "red-free fundus detail", ("microaneurysms", "a small haemorrhage", "capillaries")),
        RealSource("phantom", "skimage", "phantom.png", "shepp_logan_phantom", "phantom",
                   "synthetic (mathematical phantom)", "reconstructed slices of the head phantom",
                   ("the ventricles", "a small lesion", "the skull"), (0.06, 0.06, 0.94, 0.94)),
        RealSource("ct_spine", "pydicom", "CT_small.dcm", "CT_small.dcm", "ct", "pydicom test data (MIT)",
                   "axial CT of the thoracic spine", ("the vertebral body", "the spinal canal",
                                                      "paraspinal muscle", "a rib")),
        RealSource("mr_small", "pydicom", "MR_small.dcm", "MR_small.dcm", "mr", "pydicom test data (MIT)",
                   "T1-weighted MR detail", ("the lesion", "the cortex", "a vessel")),
        RealSource("mr_abdomen", "pydicom", "examples_overlay.dcm", "examples_overlay.dcm", "mr",
                   "pydicom test data (MIT)", "axial contrast-enhanced MRI of the upper abdomen",
                   ("the liver lesion", "the right kidney", "the aorta", "the spleen")),
        RealSource("ct_head", "pydicom", "693_J2KI.dcm", "693_J2KI.dcm", "ct", "pydicom test data (MIT)",
                   "non-contrast head CT", ("the lateral ventricle", "the skull", "a hypodense area")),
        RealSource("ct_skull_base", "pydicom", "J2K_pixelrep_mismatch.dcm", "J2K_pixelrep_mismatch.dcm", "ct",
                   "pydicom test data (MIT)", "head CT at the level of the skull base",
                   ("the mastoid air cells", "the sphenoid sinus", "the temporal bone")),
        RealSource("us_doppler", "pydicom", "examples_rgb_color.dcm", "examples_rgb_color.dcm", "us",
                   "pydicom test data (MIT)", "colour Doppler ultrasound of a lymph node",
                   ("the hilar vessels", "the cortex", "peripheral flow")),
    )
}

#: Modalities shown in grey (white arrows with dark outlines suit them).
GREY_MODALITIES = ("phase", "ct", "mr", "phantom")


def _skimage_path(src: RealSource) -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent / src.file


def _pydicom_path(src: RealSource) -> Path | None:
    try:
        from pydicom.data import get_testdata_file
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = get_testdata_file(src.loader, download=False)
        except Exception:  # noqa: BLE001 - a missing or odd test-data index means "not available"
            return None
    return Path(found) if found and Path(found).is_file() else None


def _window_dicom(ds, modality: str) -> np.ndarray:
    """8-bit grey (or RGB) pixels of a DICOM slice, windowed as stored or by percentiles."""
    arr = np.asarray(ds.pixel_array)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        return arr.astype(np.uint8)
    if arr.ndim == 3:
        arr = arr[0]
    arr = arr.astype(np.float64) * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if modality == "ct" and center is None:
        center, width = 40.0, 400.0  # soft-tissue window on Hounsfield units
    else:  # stored brain windows of lossy slices show their blocks: stretch by percentiles instead
        center = width = None
    if center is None:
        lo, hi = np.percentile(arr, (0.5, 99.5))
    else:
        lo, hi = center - width / 2, center + width / 2
    return np.clip((arr - lo) / max(hi - lo, 1e-6) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _load(src: RealSource) -> Image.Image | None:
    if src.package == "skimage":
        path = _skimage_path(src)
        if not path.is_file():
            return None
        with Image.open(path) as im:  # the file skimage.data.<loader>() reads, without importing skimage.io
            im = im.convert("RGB" if im.mode in ("RGB", "RGBA", "P") else "L")
            arr = np.asarray(im)
        if arr.ndim == 3 and (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all():
            arr = arr[..., 0]
    else:
        path = _pydicom_path(src)
        if path is None:
            return None
        import pydicom

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(str(path))
                arr = _window_dicom(ds, src.modality)
        except Exception:  # noqa: BLE001 - e.g. no JPEG 2000 decoder installed: the slice is left out
            return None
    return Image.fromarray(arr).convert("RGB" if arr.ndim == 3 else "L")


@functools.cache
def load_source(name: str) -> Image.Image | None:
    """The picture of source ``name`` (8-bit L or RGB), loaded once per process; None when not bundled."""
    return _load(REAL_SOURCES[name])


@functools.cache
def available_sources() -> tuple[str, ...]:
    """The :data:`REAL_SOURCES` present and decodable in the installed packages, in table order."""
    found = tuple(name for name in REAL_SOURCES if load_source(name) is not None)
    if not any(REAL_SOURCES[n].package == "skimage" for n in found):
        import skimage

        raise Panel2PatchError(
            f"the real demo style needs the pictures bundled with scikit-image (ihc.png, cell.png, retina.jpg); "
            f"none was found in scikit-image {skimage.__version__}: install scikit-image>=0.24 from its wheel"
        )
    return found


def clear_caches() -> None:
    load_source.cache_clear()
    available_sources.cache_clear()
    hed_channels.cache_clear()


@functools.cache
def hed_channels() -> tuple[Image.Image, Image.Image] | None:
    """Haematoxylin (nuclei) and DAB channels of the IHC picture, as 8-bit grey: stand-ins for a nuclear
    stain and an antibody channel of a fluorescence montage."""
    img = load_source("ihc")
    if img is None:
        return None
    from skimage.color import rgb2hed

    hed = rgb2hed(np.asarray(img))
    out = []
    for k in (0, 2):
        ch = hed[..., k]
        lo, hi = np.percentile(ch, (1.0, 99.7))
        out.append(Image.fromarray(np.clip((ch - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8), "L"))
    return out[0], out[1]


#: Colours a grey channel is shown in.
CHANNEL_COLOURS = {
    "grey": (255, 255, 255), "green": (40, 255, 40), "red": (255, 40, 40), "blue": (60, 110, 255),
    "magenta": (255, 40, 255), "cyan": (40, 230, 255), "yellow": (255, 230, 40),
}


def tint(grey: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """A grey picture shown in one colour (black to ``colour``)."""
    bands = [grey.point([int(v * c / 255 + 0.5) for v in range(256)]) for c in colour]
    return Image.merge("RGB", bands)


def heat_lut(grey: Image.Image, name: str) -> Image.Image:
    """A grey picture under a heat-like colour table (``hot`` or ``jet``-like ``rainbow``)."""
    g = np.arange(256, dtype=np.float32) / 255.0
    if name == "hot":
        table = np.stack([np.clip(3 * g, 0, 1), np.clip(3 * g - 1, 0, 1), np.clip(3 * g - 2, 0, 1)], 1)
    else:
        table = np.stack([np.clip(1.5 - abs(4 * g - 3), 0, 1), np.clip(1.5 - abs(4 * g - 2), 0, 1),
                          np.clip(1.5 - abs(4 * g - 1), 0, 1)], 1)
    lut = (table * 255).astype(np.uint8)
    return Image.fromarray(lut[np.asarray(grey)], "RGB")


def lut_colours(name: str, n: int) -> list[tuple[int, int, int]]:
    """``n`` colours of a colour table, low to high (for colour bars)."""
    ramp = Image.fromarray(np.linspace(0, 255, n).astype(np.uint8)[None, :], "L")
    return [tuple(int(v) for v in px) for px in np.asarray(heat_lut(ramp, name))[0]]


def jitter(img: Image.Image, rng: np.random.Generator, strength: float = 1.0) -> Image.Image:
    """Brightness, contrast and gamma jitter, and per-channel gains on colour pictures."""
    arr = np.asarray(img, dtype=np.float32) / 255.0
    gamma = float(np.exp(rng.normal(0, 0.18 * strength)))
    contrast = float(np.exp(rng.normal(0, 0.15 * strength)))
    bright = float(rng.normal(0, 0.04 * strength))
    arr = np.clip(arr, 0, 1) ** gamma
    arr = (arr - 0.5) * contrast + 0.5 + bright
    if arr.ndim == 3:
        arr = arr * np.exp(rng.normal(0, 0.05 * strength, size=3)).astype(np.float32)
    return Image.fromarray((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8), img.mode)


def oriented(img: Image.Image, rng: np.random.Generator, rotate: bool = True) -> Image.Image:
    """Random flips (and, for square-ish pictures, quarter turns)."""
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.3:
        img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if rotate and rng.random() < 0.25:
        img = img.transpose(Image.Transpose.ROTATE_90)
    return img


#: Largest enlargement of a source pixel (real figures enlarge small MR slices a lot).
MAX_ZOOM = 6.0


def crop_window(picture: Image.Image, src: RealSource | None, w: int, h: int, rng: np.random.Generator,
                zoom: float = 1.0) -> tuple[float, float, float, float]:
    """A window of aspect ``w/h`` inside ``picture``'s crop limits; ``zoom`` > 1 gives smaller windows."""
    W, H = picture.size
    lim = src.window if src is not None else (0.0, 0.0, 1.0, 1.0)
    lx0, ly0, lx1, ly1 = lim[0] * W, lim[1] * H, lim[2] * W, lim[3] * H
    aspect = w / h
    max_w = min(lx1 - lx0, (ly1 - ly0) * aspect)
    smallest = min(1.0, max(0.35, w / MAX_ZOOM / max_w))
    cw = max_w * min(1.0, rng.uniform(smallest, 1.0) / zoom)
    cw = min(max_w, max(cw, w / (MAX_ZOOM * 1.5)))
    ch = cw / aspect
    x0 = lx0 + rng.uniform(0, max(0.0, lx1 - lx0 - cw))
    y0 = ly0 + rng.uniform(0, max(0.0, ly1 - ly0 - ch))
    return (x0, y0, min(float(W), x0 + cw), min(float(H), y0 + ch))


def photo_tile(name: str, w: int, h: int, rng: np.random.Generator, colour: str | None = None,
               picture: Image.Image | None = None) -> Image.Image:
    """A ``w`` x ``h`` RGB tile of source ``name``: oriented, cropped, resized, jittered; grey sources
    shown in grey, in ``colour`` (a :data:`CHANNEL_COLOURS` key) or under a heat table (``hot``)."""
    src = REAL_SOURCES.get(name)
    base = picture if picture is not None else load_source(name)
    base = oriented(base, rng, rotate=src is not None and src.modality not in ("ct", "mr", "us"))
    window = crop_window(base, src if picture is None else None, w, h, rng)
    tile = base.resize((w, h), Image.Resampling.BICUBIC, box=window)
    tile = jitter(tile, rng, 0.7 if tile.mode == "RGB" else 1.0)
    if tile.mode == "L":
        if colour in ("hot", "rainbow"):
            return heat_lut(tile, colour)
        return tint(tile, CHANNEL_COLOURS[colour or "grey"])
    return tile


def noisy(img: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    """``img`` with Gaussian noise (standard deviation ``sigma`` grey levels)."""
    arr = np.asarray(img, dtype=np.float32)
    noise = rng.normal(0, sigma, size=arr.shape[:2]).astype(np.float32)
    arr = arr + (noise[..., None] if arr.ndim == 3 else noise)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), img.mode)


def soften(img: Image.Image, radius: float) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else img


def pick_source(rng: np.random.Generator, names, modalities=None) -> str:
    """One available source, optionally restricted to ``modalities`` (falls back to any)."""
    pool = [n for n in names if modalities is None or REAL_SOURCES[n].modality in modalities]
    return pick(rng, pool or list(names))
