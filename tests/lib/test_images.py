import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from explain.errors import LensError
from explain.images import (
    INTERPOLATIONS,
    SAMPLES,
    decode_image,
    encode_png,
    prepare,
    resize,
    sample_image,
    to_image,
    to_tensor,
)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo(chelsea) -> Image.Image:
    return Image.fromarray(chelsea).resize((90, 60))


@pytest.mark.parametrize("fmt,kw", [("JPEG", {"quality": 95}), ("PNG", {}), ("WEBP", {"lossless": True}), ("BMP", {}), ("TIFF", {})])
def test_formats_decode_to_rgb(photo, fmt, kw):
    out = decode_image(_encode(photo, fmt, **kw), name=f"x.{fmt.lower()}")
    assert out.dtype == np.uint8 and out.shape == (60, 90, 3)
    tol = 12 if fmt == "JPEG" else 0
    assert np.abs(out.astype(int) - np.asarray(photo, dtype=int)).mean() <= tol


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1", "I;16", "I", "F"])
def test_modes_become_rgb_uint8(photo, mode):
    if mode == "I;16":  # a real 16-bit image uses the whole 0..65535 range
        img = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    elif mode in ("I", "F"):
        img = photo.convert("L").convert(mode)
    else:
        img = photo.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode in ("I", "F") else "PNG")
    out = decode_image(_encode(img, fmt))
    assert out.dtype == np.uint8 and out.shape == (60, 90, 3)
    assert out.std() > 5  # the picture survived, not a blank


def test_sixteen_bit_keeps_brightness():
    arr = np.full((8, 8), 65535 // 2, dtype=np.uint16)
    out = decode_image(_encode(Image.fromarray(arr), "PNG"))
    assert abs(int(out[0, 0, 0]) - 127) <= 1


def test_transparent_pixels_go_on_white():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # fully transparent black
    out = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (out == 255).all()


def test_gif_first_frame(photo):
    frames = [photo.convert("P"), Image.new("RGB", photo.size, (255, 0, 0)).convert("P")]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    out = decode_image(data)
    assert out.shape == (60, 90, 3)
    assert not (out[..., 0] > 200).all()  # not the red second frame


def test_exif_orientation_is_applied(photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = decode_image(_encode(photo, "JPEG", exif=exif.tobytes()))
    assert out.shape == (90, 60, 3)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_pixel_limit_refuses_before_decoding():
    with pytest.raises(LensError, match="megapixels"):
        decode_image(_png_header_only(20000, 20000), name="bomb.png")
    with pytest.raises(LensError, match="megapixels"):
        decode_image(_encode(Image.new("RGB", (100, 100)), "PNG"), max_pixels=5000)


@pytest.mark.parametrize(
    "data,match",
    [(b"", "empty"), (b"hello, this is text not a jpeg", "not an image"), (None, "damaged or truncated")],
)
def test_bad_bytes_raise_lens_error(photo, data, match):
    if data is None:
        data = _encode(photo, "PNG")[:200]
    with pytest.raises(LensError, match=match):
        decode_image(data, name="bad.jpg")


@pytest.mark.parametrize("name", list(INTERPOLATIONS))
def test_resize_every_interpolation(chelsea, name):
    out = resize(chelsea, (64, 48), name)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8


def test_resize_rejects_unknown_interpolation(chelsea):
    with pytest.raises(LensError, match="interpolation"):
        resize(chelsea, (10, 10), "bilinear-ish")


def test_nearest_and_cubic_differ(chelsea):
    assert not np.array_equal(resize(chelsea, (50, 33), "nearest"), resize(chelsea, (50, 33), "cubic"))


def test_tensor_round_trip_and_png_round_trip(chelsea):
    t = to_tensor(chelsea)
    assert t.shape == (1, 3, 300, 451) and 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    assert np.array_equal(to_image(t), chelsea)
    assert np.array_equal(decode_image(encode_png(chelsea)), chelsea)


def test_prepare_matches_preprocess(lite0, chelsea):
    p = prepare(chelsea, lite0.preprocess)
    assert min(p.resized.shape[:2]) == 256
    assert p.cropped.shape == (224, 224, 3)
    assert p.tensor.shape == (1, 3, 224, 224) and p.tensor.dtype == torch.float32


def test_every_sample_loads():
    for name in SAMPLES:
        img = sample_image(name)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
