"""The rest of issue 8's hostile corpus, built here: odd images, odd zips and folders (test_images, test_transfer have the others)."""

from __future__ import annotations

import io
import unicodedata
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from explain import limits as L
from explain import transfer as T
from explain.errors import LensError
from explain.images import decode_image


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png(size=(8, 8), color=(10, 200, 30)) -> bytes:
    return _encode(Image.new("RGB", size, color), "PNG")


def _zip(files: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return buf.getvalue()


# ---------------------------------------------------------------- images


def test_exif_rotated_photo_is_shown_upright():
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:5, :5] = (255, 0, 0)  # red mark in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera says: turn 90° clockwise to show it
    out = decode_image(_encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif.tobytes()))
    assert out.shape == (40, 20, 3)
    assert out[:5, -5:, 0].mean() > 200 and out[:5, :5, 0].mean() < 60  # turned clockwise: the mark is top-right


def test_sixteen_bit_colour_png_keeps_its_colours():
    rgb16 = np.zeros((6, 6, 3), np.uint16)
    rgb16[..., 0] = 65535  # pure red, full 16-bit range
    rgb16[..., 2] = 32768
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    assert ok
    out = decode_image(buf.tobytes(), name="deep.png")
    assert out.dtype == np.uint8 and out.shape == (6, 6, 3)
    assert out[0, 0, 0] >= 250 and out[0, 0, 1] <= 5 and 120 <= out[0, 0, 2] <= 135


def test_palette_image_with_a_transparent_colour_goes_on_white():
    img = Image.new("P", (6, 6), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 1  # the red index is see-through
    out = decode_image(_encode(img, "PNG", transparency=1))
    assert (out == 255).all()


def test_animated_webp_gives_its_first_frame():
    frames = [Image.new("RGB", (16, 16), (0, 0, 255)), Image.new("RGB", (16, 16), (255, 0, 0))]
    data = _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    out = decode_image(data, name="anim.webp")
    assert out[..., 2].mean() > 200 and out[..., 0].mean() < 50


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.95])
def test_truncated_jpeg_is_a_lens_error(chelsea, cut):
    data = _encode(Image.fromarray(chelsea), "JPEG", quality=90)
    with pytest.raises(LensError, match="damaged or truncated|not an image"):
        decode_image(data[: int(len(data) * cut)], name="cut.jpg")


# ---------------------------------------------------------------- zips and folders


def test_thousands_of_tiny_files_are_refused_by_count_before_decoding():
    tiny = _png((1, 1))
    per_class = L.MAX_DATASET_IMAGES // 2 + 1
    data = _zip({f"{cls}/{i}.png": tiny for cls in ("a", "b") for i in range(per_class)})
    with pytest.raises(LensError, match=f"holds {2 * per_class} images; the limit is {L.MAX_DATASET_IMAGES}"):
        T.dataset_from_zip(data, "many.zip")
    entries = _zip({f"junk/{i}": b"" for i in range(L.ZIP_MAX_ENTRIES + 1)})
    with pytest.raises(LensError, match=f"entries; the limit is {L.ZIP_MAX_ENTRIES}"):
        T.dataset_from_zip(entries, "entries.zip")


def test_a_thousand_tiny_photos_and_a_thousand_tiny_non_images():
    files = {f"{cls}/{i}.png": _png((2, 2), color) for cls, color in (("red", (255, 0, 0)), ("blue", (0, 0, 255))) for i in range(500)}
    files |= {f"red/notes{i}.txt": b"x" for i in range(1000)}
    ds = T.dataset_from_zip(_zip(files), "tiny.zip")
    assert ds.classes == ("blue", "red") and len(ds) == 1000 and ds.counts() == {"blue": 500, "red": 500}
    assert len(ds.skipped) == 1000 and all("not an image file" in s for s in ds.skipped)


def test_nested_folders_belong_to_their_top_class_and_subset_folders_split():
    files = {f"photos/cats/{where}/{i}.png": _png() for where in ("indoor", "outdoor/garden") for i in range(3)}
    files |= {f"photos/dogs/{i}.png": _png() for i in range(6)}
    ds = T.dataset_from_zip(_zip(files))
    assert ds.classes == ("cats", "dogs") and ds.counts() == {"cats": 6, "dogs": 6}
    split = {f"{subset}/{cls}/{i}.png": _png() for subset in ("train", "val") for cls in ("cats", "dogs") for i in range(5)}
    sp = T.split_dataset(T.dataset_from_zip(_zip(split)))
    assert sp.given and len(sp.train) == 10 and len(sp.val) == 10


def test_one_class_only_and_a_class_with_one_image_say_what_to_add():
    one_class = T.dataset_from_zip(_zip({f"cats/{i}.png": _png() for i in range(8)}))
    with pytest.raises(LensError, match="at least 2 classes"):
        T.split_dataset(one_class)
    lonely = T.dataset_from_zip(_zip({**{f"cats/{i}.png": _png() for i in range(8)}, "dogs/only.png": _png()}))
    assert lonely.counts() == {"cats": 8, "dogs": 1}
    with pytest.raises(LensError, match="'dogs' has only 1 image"):
        T.split_dataset(lonely)


def test_korean_folder_names_on_disk(tmp_path):
    for cls in ("고양이", unicodedata.normalize("NFD", "강아지")):  # macOS writes decomposed Hangul
        (tmp_path / cls).mkdir()
        for i in range(5):
            (tmp_path / cls / f"사진{i}.png").write_bytes(_png())
    ds = T.dataset_from_folder(tmp_path)
    assert ds.classes == ("강아지", "고양이") and len(ds) == 10


def test_links_in_a_folder_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(_png())
    root = tmp_path / "data"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            (root / cls / f"{i}.png").write_bytes(_png())
    (root / "a" / "link.png").symlink_to(outside / "secret.png")
    (root / "b" / "more").symlink_to(outside, target_is_directory=True)
    ds = T.dataset_from_folder(root)
    assert len(ds) == 10 and not any("secret" in n for n in ds.names)
    assert any("link.png: a link" in s for s in ds.skipped)
