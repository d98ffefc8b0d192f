"""Whatever bytes a student uploads, the decoder answers with an image or the project's error."""

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from explain.errors import LensError
from explain.images import decode_image


def _png(size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _check(data: bytes) -> None:
    try:
        out = decode_image(data, name="upload")
    except LensError as exc:
        assert str(exc)
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_give_an_image_or_a_lens_error(data):
    _check(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=200), st.binary(min_size=1, max_size=64))
def test_corrupted_png_gives_an_image_or_a_lens_error(position, junk):
    data = bytearray(_png((16, 16)))
    position = min(position, len(data) - 1)
    data[position : position + len(junk)] = junk
    _check(bytes(data))


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=400))
def test_truncated_png_gives_an_image_or_a_lens_error(cut):
    _check(_png((32, 32))[:cut])
