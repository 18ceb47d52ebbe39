"""Safe decoding: every PIL mode becomes RGB in the displayed orientation; bad files raise typed errors."""

import io

import numpy as np
import pytest
from PIL import Image

from panel2patch.errors import ImageDecodeError, ImageTooLargeError
from panel2patch.images import open_image, stored_form


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    "img, fmt",
    [
        (Image.new("L", (30, 20), 77), "PNG"),
        (Image.new("1", (30, 20), 1), "PNG"),
        (Image.new("P", (30, 20), 3), "GIF"),
        (Image.new("RGBA", (30, 20), (255, 0, 0, 0)), "PNG"),
        (Image.new("LA", (30, 20), (10, 128)), "PNG"),
        (Image.new("CMYK", (30, 20), (0, 255, 255, 0)), "JPEG"),
        (Image.fromarray(np.arange(600, dtype=np.uint16).reshape(20, 30) * 100), "PNG"),
        (Image.new("I", (30, 20), 70000), "TIFF"),
        (Image.new("F", (30, 20), 0.5), "TIFF"),
        (Image.new("RGB", (1, 1), (5, 5, 5)), "PNG"),
        (Image.new("RGB", (20000, 50), (5, 5, 5)), "PNG"),
        (Image.new("RGB", (30, 20), (0, 0, 0)), "WEBP"),
    ],
)
def test_every_mode_decodes_to_rgb(img, fmt):
    out = open_image(encode(img, fmt))
    assert out.mode == "RGB" and out.size == img.size


def test_transparency_becomes_white():
    out = open_image(encode(Image.new("RGBA", (4, 4), (255, 0, 0, 0))))
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_keeps_contrast():
    arr = np.zeros((10, 10), dtype=np.uint16)
    arr[:, 5:] = 4000
    out = np.asarray(open_image(encode(Image.fromarray(arr))))
    assert out[0, 0, 0] == 0 and out[0, 9, 0] == 255


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6
    out = open_image(encode(Image.new("RGB", (40, 10)), "JPEG", exif=exif))
    assert out.size == (10, 40)


@pytest.mark.parametrize("data", [b"", b"GIF89a", b"hello world", encode(Image.new("RGB", (50, 50)))[:40]])
def test_bad_bytes_raise_decode_error(data):
    with pytest.raises(ImageDecodeError):
        open_image(data)


def test_pixel_limit_raises_too_large():
    with pytest.raises(ImageTooLargeError, match="exceeds the limit of 1000"):
        open_image(encode(Image.new("RGB", (50, 50))), max_pixels=1000)


def test_a_pixel_limit_above_pils_own_applies_and_pils_limit_is_left_as_it_was():
    from PIL import Image as PILImage

    pil_limit = PILImage.MAX_IMAGE_PIXELS
    big = encode(Image.new("1", (10_000, 9_500)))  # 95 MP: above PIL's 89 MP warning threshold
    assert open_image(big, max_pixels=100_000_000).size == (10_000, 9_500)
    with pytest.raises(ImageTooLargeError, match="10000x9500 = 95000000 pixels exceeds the limit of 90000000"):
        open_image(big, max_pixels=90_000_000)
    assert PILImage.MAX_IMAGE_PIXELS == pil_limit


def test_path_input(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(encode(Image.new("RGB", (3, 3))))
    assert open_image(path).size == (3, 3)


def _with_orientation(fmt: str, orientation: int) -> bytes:
    img = Image.new("RGB", (4, 2), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format=fmt, exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("fmt, ext", [("PNG", "png"), ("JPEG", "jpg")])
def test_stored_form_keeps_original_bytes_stock_tools_read(fmt, ext):
    raw = _with_orientation(fmt, 1)
    assert stored_form(raw, open_image(raw)) == (raw, ext)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_stored_form_is_the_decoded_frame_when_exif_rotates_it(fmt):
    raw = _with_orientation(fmt, 6)  # rotate 90: the decoded frame is 2 x 4
    data, ext = stored_form(raw, open_image(raw))
    assert ext == "png" and data != raw and Image.open(io.BytesIO(data)).size == (2, 4)


def test_stored_form_re_encodes_formats_stock_tools_may_not_read():
    raw = encode(Image.new("RGB", (3, 3)), "TIFF")
    data, ext = stored_form(raw, open_image(raw))
    assert ext == "png" and Image.open(io.BytesIO(data)).format == "PNG"


@pytest.mark.parametrize("mode, make", [
    ("I;16", lambda: Image.fromarray(np.array([[0, 1000], [30000, 65535]], dtype=np.uint16))),
    ("RGBA", lambda: Image.new("RGBA", (2, 2), (255, 0, 0, 0))),
    ("LA", lambda: Image.new("LA", (2, 2), (10, 0))),
])
def test_stored_form_re_encodes_what_stock_readers_would_show_differently(mode, make):
    raw = encode(make(), "PNG")
    decoded = open_image(raw)
    data, ext = stored_form(raw, decoded)
    stored = Image.open(io.BytesIO(data))
    assert ext == "png" and stored.mode == "RGB" and stored.tobytes() == decoded.tobytes()


@pytest.mark.parametrize("mode", ["L", "P"])
def test_stored_form_keeps_grey_and_opaque_palette_pngs(mode):
    raw = encode(Image.new("RGB", (3, 3), (40, 80, 120)).convert(mode), "PNG")
    assert stored_form(raw, open_image(raw)) == (raw, "png")
