"""Image views for the LVLM engine: Qwen2.5-VL's resize rule, exact coordinate mapping, deterministic views, and the
pixel key of a view."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from panel2patch.errors import Panel2PatchError, Reject
from panel2patch.parsers.lvlm.views import (
    MAX_PIXELS,
    MIN_PIXELS,
    View,
    image_sha256,
    make_views,
    smart_resize,
    view_bytes,
)

LIMITS = [(MIN_PIXELS, MAX_PIXELS), (56 * 56, 28 * 28 * 1280), (256 * 28 * 28, 1280 * 28 * 28), (3136, 200_000)]


@pytest.fixture(scope="module")
def hf_smart_resize():
    module = pytest.importorskip("transformers.models.qwen2_vl.image_processing_qwen2_vl")
    return module.smart_resize


def _outcome(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return "ValueError"


def test_smart_resize_matches_transformers_on_a_grid(hf_smart_resize):
    sizes = [1, 2, 13, 14, 15, 27, 28, 29, 41, 42, 43, 55, 56, 57, 99, 100, 224, 333, 517, 1000, 1023, 1024, 2047,
             3583, 3584, 3585, 5000, 8191, 12000]
    checked = 0
    for min_pixels, max_pixels in LIMITS:
        for h in sizes:
            for w in sizes:
                ours = _outcome(smart_resize, h, w, min_pixels=min_pixels, max_pixels=max_pixels)
                theirs = _outcome(hf_smart_resize, h, w, min_pixels=min_pixels, max_pixels=max_pixels)
                assert ours == theirs, (h, w, min_pixels, max_pixels)
                checked += ours != "ValueError"
    assert checked > 2000  # most sizes are sendable, so the comparison is not of errors only


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 40_000), w=st.integers(1, 40_000), limits=st.sampled_from(LIMITS),
       factor=st.sampled_from([14, 28, 32]))
def test_smart_resize_matches_transformers_on_random_sizes(hf_smart_resize, h, w, limits, factor):
    kwargs = {"factor": factor, "min_pixels": limits[0], "max_pixels": limits[1]}
    assert _outcome(smart_resize, h, w, **kwargs) == _outcome(hf_smart_resize, h, w, **kwargs)


@settings(max_examples=300, deadline=None)
@given(h=st.integers(1, 20_000), ratio=st.floats(1 / 200, 200), limits=st.sampled_from(LIMITS))
def test_smart_resize_contract(h, ratio, limits):
    w = max(1, round(h * ratio))
    if max(h, w) / min(h, w) > 200:
        return
    rh, rw = smart_resize(h, w, min_pixels=limits[0], max_pixels=limits[1])
    assert rh % 28 == 0 and rw % 28 == 0 and rh >= 28 and rw >= 28
    if rh > 28 and rw > 28:  # neither side held at its floor
        assert rh * rw <= limits[1]
    assert rh * rw >= limits[0]
    if rh * rw <= limits[1] and max(rh, rw) / min(rh, rw) <= 200:  # a size the rule produced is one it keeps
        assert smart_resize(rh, rw, min_pixels=limits[0], max_pixels=limits[1]) == (rh, rw)
    if min(rh, rw) > 28 and min(h, w) > 28:  # the aspect ratio is kept up to rounding each side by < 1 factor
        assert abs(math.log((rw / rh) / (w / h))) < 2 * math.log(1 + 28 / (min(rh, rw) - 28))


def test_smart_resize_known_sizes():
    assert smart_resize(28, 28) == (56, 56)  # 784 < 3136 px: scaled up to the minimum
    assert smart_resize(1000, 1000) == (1008, 1008)  # nearest multiples
    assert smart_resize(1000, 1000, max_pixels=500_000) == (700, 700)  # 1000 / sqrt(2) = 707 -> floor to 700
    assert smart_resize(10, 1000) == (28, 560)  # rounds to 0 x 1008, below the minimum: ceil(5.6) x ceil(560)


@pytest.mark.parametrize("size", [(0, 100), (100, 0), (-5, 10), (10, 2001), (3000, 14)])
def test_smart_resize_rejects_unsendable_sizes(size):
    with pytest.raises(ValueError) as err:
        smart_resize(*size)
    assert isinstance(err.value, Reject) and isinstance(err.value, Panel2PatchError)
    assert err.value.reason == "lvlm_unresizable"
    assert ("aspect ratio" in str(err.value)) == (min(size) > 0)


boxes = st.tuples(*[st.floats(-1e4, 1e4, allow_nan=False)] * 4)


@settings(max_examples=300, deadline=None)
@given(box=boxes, x0=st.integers(0, 500), y0=st.integers(0, 500), cw=st.integers(1, 3000), ch=st.integers(1, 3000),
       vw=st.integers(1, 300).map(lambda n: n * 28), vh=st.integers(1, 300).map(lambda n: n * 28))
def test_view_mapping_round_trips(box, x0, y0, cw, ch, vw, vh):
    view = View("crop1", "crop", (x0, y0, x0 + cw, y0 + ch), (vw, vh), (x0 + cw + 10, y0 + ch + 10))
    there = view.to_original(box)
    back = view.to_view(there)
    assert back == pytest.approx(box, rel=1e-9, abs=1e-6)
    assert view.to_original(view.to_view(box)) == pytest.approx(box, rel=1e-9, abs=1e-6)
    # an independent statement of the mapping: linear in the view pixel, crop origin at view 0
    assert there[0] == pytest.approx(x0 + box[0] / vw * cw, rel=1e-9, abs=1e-6)
    assert there[3] == pytest.approx(y0 + box[3] / vh * ch, rel=1e-9, abs=1e-6)


def test_view_corners_map_to_the_crop_and_json_round_trips():
    view = View("crop2", "crop", (10.0, 20.0, 310.0, 170.0), (560, 280), (400, 300))
    assert view.to_original((0, 0, 560, 280)) == (10.0, 20.0, 310.0, 170.0)
    assert view.scale == (300 / 560, 150 / 280)
    assert View.from_json(view.to_json()) == view


def _figure(width=900, height=600, square=(300, 200, 420, 290)):
    """A grey figure with one red rectangle at ``square`` (original pixels)."""
    pixels = np.full((height, width, 3), 200, dtype=np.uint8)
    x0, y0, x1, y1 = square
    pixels[y0:y1, x0:x1] = (220, 0, 0)
    return Image.fromarray(pixels)


def _red_box(image):
    a = np.asarray(image).astype(int)
    mask = (a[..., 0] > 150) & (a[..., 1] < 100) & (a[..., 2] < 100)
    ys, xs = np.nonzero(mask)
    return (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_views_show_the_pixels_their_mapping_claims():
    square = (300, 200, 420, 290)
    image = _figure(square=square)
    contained = 0
    for seed in range(4):
        for view, pixels in make_views(image, max_pixels=120_000, crops=3, scales=2, seed=seed):
            assert pixels.size == view.size
            c = view.crop
            if not (c[0] <= square[0] and c[1] <= square[1] and c[2] >= square[2] and c[3] >= square[3]):
                continue
            contained += view.kind == "crop"
            found = view.to_original(_red_box(pixels))
            tolerance = 1.5 * max(view.scale) + 1  # bicubic bleeds about one view pixel
            assert found == pytest.approx(square, abs=tolerance), (view, found)
    assert contained >= 2


def test_make_views_is_deterministic_and_well_formed():
    image = _figure(1234, 777)
    first = make_views(image, max_pixels=300_000, crops=4, scales=2, seed=7)
    again = make_views(image, max_pixels=300_000, crops=4, scales=2, seed=7)
    other = make_views(image, max_pixels=300_000, crops=4, scales=2, seed=8)
    assert [v for v, _ in first] == [v for v, _ in again]
    assert [image_sha256(p) for _, p in first] == [image_sha256(p) for _, p in again]
    assert [v.crop for v, _ in first if v.kind == "crop"] != [v.crop for v, _ in other if v.kind == "crop"]
    full = first[0][0]
    assert full.kind == "full" and full.crop == (0, 0, 1234, 777) and full.image_size == (1234, 777)
    assert len({v.name for v, _ in first}) == len(first)
    assert sum(v.kind == "crop" for v, _ in first) == 4
    for view, pixels in first:
        w, h = view.size
        assert pixels.size == (w, h) and pixels.mode == "RGB"
        assert smart_resize(h, w, min_pixels=MIN_PIXELS, max_pixels=300_000) == (h, w)
        assert w * h <= 300_000
        x0, y0, x1, y1 = view.crop
        assert 0 <= x0 < x1 <= 1234 and 0 <= y0 < y1 <= 777
        assert all(float(c).is_integer() for c in view.crop)
        if view.kind == "crop":
            assert 0.5 * 1234 - 1 <= x1 - x0 <= 0.8 * 1234 + 1
    with_crops = [v for v, _ in make_views(image, max_pixels=300_000, crops=0, scales=2, seed=7)]
    assert with_crops == [v for v, _ in first if v.kind != "crop"]  # crops leave the scale draws unchanged


def test_make_views_keeps_a_fitting_image_and_converts_modes():
    image = _figure(560, 280).convert("L")
    views = make_views(image)
    assert len(views) == 1 and views[0][0].size == (560, 280) and views[0][1].mode == "RGB"
    rgb = Image.new("RGB", (560, 280), "white")
    assert make_views(rgb)[0][1] is rgb


def test_make_views_rejects_an_unsendable_figure(hf_smart_resize):
    with pytest.raises(Reject, match="aspect ratio"):
        make_views(Image.new("RGB", (4100, 20)))
    # 148:1 is allowed, but the rule rounds it to 5628x28 (201:1), which the model's own resize then refuses
    assert smart_resize(38, 5624) == (28, 5628)
    with pytest.raises(ValueError):
        hf_smart_resize(28, 5628)
    with pytest.raises(Reject, match="5628x28"):
        make_views(Image.new("RGB", (5624, 38)))


def test_processor_resize_is_an_identity_on_views():
    """The Qwen2-VL image processor, limited like the client, resizes no view: its patch grid is the view's size and
    its pixels equal those it makes with resizing switched off."""
    module = pytest.importorskip("transformers.models.qwen2_vl.image_processing_qwen2_vl")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (517, 911, 3), dtype=np.uint8))
    processor = module.Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=200_000)
    for view, pixels in make_views(image, max_pixels=200_000, crops=2, scales=1, seed=3):
        resized = processor(images=[pixels], return_tensors="pt")
        _, gh, gw = resized["image_grid_thw"][0].tolist()
        assert (gw * 14, gh * 14) == view.size
        unresized = processor(images=[pixels], do_resize=False, return_tensors="pt")
        assert bool((resized["pixel_values"] == unresized["pixel_values"]).all())
    _, gh, gw = processor(images=[image], return_tensors="pt")["image_grid_thw"][0].tolist()
    assert (gw * 14, gh * 14) == make_views(image, max_pixels=200_000)[0][0].size


def test_view_bytes_is_a_canonical_png_keyed_by_pixels():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (56, 84, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    png, sha = view_bytes(image)
    assert png.startswith(b"\x89PNG")
    decoded = Image.open(io.BytesIO(png))
    assert decoded.size == (84, 56) and decoded.mode == "RGB"
    assert np.array_equal(np.asarray(decoded), pixels)
    assert sha == image_sha256(image) == image_sha256(decoded)
    assert len(sha) == 64 and int(sha, 16) >= 0
    tagged = image.copy()
    tagged.info["icc_profile"] = b"not really a profile"
    tagged.info["dpi"] = (300, 300)
    assert view_bytes(tagged) == (png, sha)
    assert image_sha256(image.convert("RGBA")) == sha
    changed = pixels.copy()
    changed[3, 4, 1] ^= 1
    assert image_sha256(Image.fromarray(changed)) != sha
    flat = pixels.reshape(84, 56, 3)  # same bytes, other shape
    assert image_sha256(Image.fromarray(flat)) != sha
