"""Pages under hostile input: garbage links, bad uploads, a bug in a page. The page says so; no traceback reaches it."""

from __future__ import annotations

import io
import logging
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from explain import limits as L

from ..conftest import ROOT

TIMEOUT = 180
PAGES = {  # page: a widget its last section draws, so the page was run to its end
    "lessons/1_Classify.py": ("selectbox", "classify_interp"),
    "lessons/1_Network_overview.py": ("selectbox", "ov_pick"),
    "lessons/2_Feature_maps.py": ("selectbox", "fm_deep"),
    "lessons/3_Ideal_images.py": ("button", "ideal_run"),
    "lessons/4_Adversarial.py": ("button", "adv_run"),
    "lessons/5_Grad-CAM.py": ("download_button", "gc_dl_png"),
    "lessons/6_Transfer_learning.py": ("button", "tl_train"),
}
GARBAGE = {
    "numbers": {"class": "99999", "channel": "-1", "layer": "blocks.99", "sample": "42", "backbone": "1000",
                "preset": "0", "method": "-5", "lang": "1", "presenter": "2", "channels": "999", "y": "-3", "x": "100000"},
    "names": {"class": "not-a-class", "channel": "abc", "layer": "../../etc/passwd", "sample": "../../etc/passwd",
              "backbone": "<script>alert(1)</script>", "preset": "fastest", "method": "deepdream", "lang": "xx",
              "presenter": "maybe", "channels": "many", "y": "1e9", "x": "../x"},
}


def open_app(page: str, **params: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.run()
    at.switch_page(page).run()
    return at


def _widget(at: AppTest, key: str):
    for kind in ("selectbox", "number_input", "radio"):
        for widget in at.get(kind):
            if widget.key == key:
                return widget
    return None


@pytest.mark.parametrize("garbage", list(GARBAGE))
@pytest.mark.parametrize("page", PAGES, ids=lambda p: Path(p).stem)
def test_a_garbage_link_opens_the_page_with_defaults(page, garbage):
    at = open_app(page, **GARBAGE[garbage])
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]  # sane defaults, nothing to complain about
    kind, key = PAGES[page]
    assert any(w.key == key for w in at.get(kind)), f"{page} stopped before {key}"
    assert at.sidebar.selectbox[0].value == "efficientnet_lite0"
    assert at.query_params.get("lang") == "en" and at.title[0].value.isascii()
    for key in ("ideal_class", "adv_target", "gc_target"):
        widget = _widget(at, key)
        if widget is not None:
            assert 0 <= widget.value < 1000
    for key in ("fm_channel", "ideal_channel", "fm_y", "fm_x"):
        widget = _widget(at, key)
        if widget is not None:
            assert widget.min <= widget.value <= widget.max
    for key, allowed in (("ideal_preset", {"course", "clear"}), ("adv_method", {"fgsm", "pgd", "mifgsm"}),
                         ("gc_method", {"gradcam", "gradcampp", "saliency", "smoothgrad"})):
        widget = _widget(at, key)
        if widget is not None:
            assert widget.value in allowed
    if page.endswith("Network_overview.py"):
        assert at.slider(key="ov_channels").value == 6 and at.query_params["channels"] == "6"
    if page.endswith(("Classify.py", "Network_overview.py", "Feature_maps.py", "Grad-CAM.py", "Adversarial.py")):
        assert at.selectbox(key="image_sample").value == "chelsea"


def test_a_layer_link_into_ideal_images_falls_back_to_a_real_layer():
    from explain.featuremaps import probe_layers
    from explain.ui.backbones import cached_backbone

    at = open_app("lessons/3_Ideal_images.py", layer="no.such.layer", channel="99999")
    assert not at.exception
    assert at.radio(key="ideal_mode").value == "channel"
    names = [li.name for li in probe_layers(cached_backbone("efficientnet_lite0")).layers]
    assert at.selectbox(key="ideal_layer").value in names
    assert any("no.such.layer" in w.value for w in at.warning)  # the user learns the link's layer is not there
    assert at.number_input(key="ideal_channel").value == 0


# ---------------------------------------------------------------- a bug in a page


def test_a_bug_in_a_page_shows_a_short_message_and_logs_the_traceback(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug deep inside")

    monkeypatch.setattr("explain.classify.top_classes", broken)
    with caplog.at_level(logging.ERROR, logger="cnn_lens"):
        at = open_app("lessons/1_Classify.py")
    assert not at.exception
    (error,) = at.error
    assert "Something went wrong" in error.value and "simulated" not in error.value and "Traceback" not in error.value
    assert at.sidebar.selectbox[0].value == "efficientnet_lite0"  # the rest of the app is drawn
    logged = [r for r in caplog.records if r.name == "cnn_lens"]
    assert logged and logged[0].exc_info and "simulated bug deep inside" in str(logged[0].exc_info[1])
    monkeypatch.undo()
    at.run()  # the next click works again
    assert not at.exception and not at.error and "cat" in at.success[0].value


# ---------------------------------------------------------------- uploads the pages cannot take


def _photo_picker_page() -> None:
    from explain.ui.pickers import image_picker

    image_picker("image")


def _replace_photo(name: str, data: bytes) -> AppTest:
    """The shared photo picker on Upload: a good photo first, then this file in its place, as a user replaces a photo."""
    at = AppTest.from_function(_photo_picker_page, default_timeout=TIMEOUT).run()
    at.radio(key="image_source").set_value("upload").run()
    at.file_uploader(key="image_upload").set_value(("earlier.png", _png(), "image/png")).run()
    assert at.session_state["image"][0] == "earlier.png"
    at.file_uploader(key="image_upload").set_value((name, data, "application/octet-stream")).run()
    return at


def _png(size=(64, 48), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


def _header_only_png(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("empty.jpg", b"", "empty"),
        ("notes.jpg", b"Dear diary, this is text.", "not an image"),
        ("cut.png", _png()[:60], "damaged or truncated"),
        ("bomb.png", _header_only_png(20000, 20000), f"{L.MAX_IMAGE_PIXELS // 1_000_000} megapixels"),
        ("big.png", _header_only_png(8000, 6000), f"{L.MAX_IMAGE_PIXELS // 1_000_000} megapixels"),
    ],
    ids=["0-byte", "text-named-jpg", "truncated", "20000x20000", "48-megapixels"],
)
def test_a_bad_photo_upload_is_an_st_error_and_no_photo(name, data, words):
    at = _replace_photo(name, data)
    assert not at.exception
    (error,) = at.error
    assert words in error.value and name in error.value
    assert "image" not in at.session_state  # the page stops at "choose an image", not on the earlier photo


def test_a_good_photo_upload_replaces_the_earlier_one():
    at = _replace_photo("rgba.png", _png(mode="RGBA"))
    assert not at.exception and not at.error
    name, image = at.session_state["image"]
    assert name == "rgba.png" and image.shape == (48, 64, 3)


def _zip_upload_page(name: str, data: bytes) -> None:
    import streamlit as st

    from explain.ui.transfer import zip_dataset

    ds = zip_dataset(name, data)
    st.session_state["zip_ok"] = ds is not None


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data, words",
    [
        (b"PK\x03\x04 this zip was cut short", "not a readable zip"),
        (b"", "not a readable zip"),
        (_zip({"a/big.png": b"\0" * 3_000_000}), "compressed"),  # a zip bomb's entry is skipped; nothing is left
        (_zip({"../../escape/0.png": _png(), "/etc/0.png": _png()}), "unsafe path"),
        (_zip({"cats/notes.txt": b"hello", "dogs/list.csv": b"a,b"}), "No images"),
    ],
    ids=["truncated", "empty", "bomb", "traversal", "no-images"],
)
def test_a_bad_zip_on_transfer_learning_is_an_st_error(data, words):
    at = AppTest.from_function(_zip_upload_page, args=("class photos.zip", data), default_timeout=TIMEOUT).run()
    assert not at.exception and at.session_state["zip_ok"] is False
    (error,) = at.error
    assert words in error.value


def test_skipped_files_of_a_zip_are_listed_on_the_page():
    files = {f"{cls}/{i}.png": _png((40 + i, 40), "L" if cls == "cats" else "RGB") for cls in ("cats", "dogs") for i in range(6)}
    files |= {"cats/readme.txt": b"hello", "dogs/movie.mp4": b"\0\0\0 ftyp", "dogs/broken.png": b"\x89PNG not really"}
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("lessons/6_Transfer_learning.py").run()
    at.radio(key="tl_source").set_value("zip").run()
    at.file_uploader(key="tl_zip").set_value(("pets.zip", _zip(files), "application/zip")).run()
    assert not at.exception and not at.error
    skipped = next(ex for ex in at.expander if "files were skipped" in ex.label)
    assert skipped.label.startswith("3 ")
    listed = "\n".join(el.value for el in skipped.get("text"))
    assert "readme.txt: not an image file" in listed and "movie.mp4" in listed and "broken.png" in listed


# ---------------------------------------------------------------- weights files in the sidebar


def _weights_upload_page(name: str, data: bytes) -> None:
    import streamlit as st

    from explain.ui.backbones import add_weights_backbone
    from explain.ui.errors import run_safely
    from explain.ui.sidebar import sidebar

    st.session_state["added"] = run_safely(add_weights_backbone, name, data)  # what the sidebar's uploader calls
    sidebar()


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = "/tmp/cnn_lens_hostile_pages_marker"


def _evil_pickle() -> bytes:
    buf = io.BytesIO()
    pickle.dump({"conv_stem.weight": _Evil()}, buf)
    return buf.getvalue()


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def weights_cases(lite0):
    whole = _torch_bytes(lite0.model.state_dict())
    return {
        "evil": (_evil_pickle(), "never runs code"),
        "other-architecture": (_torch_bytes({"fc.weight": torch.zeros(3, 4), "layer9.bias": torch.zeros(2)}), "weights"),
        "truncated": (whole[: len(whole) // 3], "Could not read weights file"),
        "text": (b"these are not weights", "Could not read weights file"),
        "empty": (b"", "weights"),
    }


@pytest.mark.parametrize("case", ["evil", "other-architecture", "truncated", "text", "empty"])
def test_a_bad_weights_file_in_the_sidebar_is_an_st_error(weights_cases, case):
    if os.path.exists(MARKER):
        os.remove(MARKER)
    data, words = weights_cases[case]
    at = AppTest.from_function(_weights_upload_page, args=(f"{case}.pth", data), default_timeout=TIMEOUT).run()
    assert not at.exception
    (error,) = at.error
    assert words.lower() in error.value.lower(), error.value
    if case != "empty":
        assert f"'{case}.pth'" in error.value  # the user's own file name, never a server temp name
    assert "weights_only" not in error.value and "cnnlens-" not in error.value  # no PyTorch text that reads as advice
    assert at.session_state["added"] is None and not at.session_state["custom_backbones"]
    assert at.sidebar.selectbox[0].value == "efficientnet_lite0"
    assert not os.path.exists(MARKER)  # nothing in the file was run


def test_a_bad_weights_file_in_the_sidebar_is_explained_in_korean(weights_cases):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["lang"] = "ko"
    at.run()
    for case in ("evil", "truncated"):
        at.file_uploader(key="weights_upload").set_value((f"내 모델 {case}.pth", weights_cases[case][0], "application/octet-stream")).run()
        assert not at.exception
        (error,) = at.error
        assert f"'내 모델 {case}.pth'" in error.value and "Could not" not in error.value and "읽을 수 없습니다" in error.value


# ---------------------------------------------------------------- the caps, stated where they apply


def _captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def test_the_caps_are_stated_under_the_widgets_they_bound():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert f"{L.MAX_SESSION_MODELS} own models per session" in _captions(at)  # sidebar: weights file uploader
    at.switch_page("lessons/1_Classify.py").run()
    at.radio(key="image_source").set_value("upload").run()
    assert not at.exception
    assert f"Limits on this server: images up to {L.MAX_IMAGE_PIXELS // 10**6} megapixels and {L.MAX_IMAGE_MB} MB." in _captions(at)
    at.radio(key="image_source").set_value("sample").run()

    at.switch_page("lessons/3_Ideal_images.py").run()
    assert at.number_input(key="ideal_clear_steps").max == L.MAX_IDEAL_STEPS
    assert at.number_input(key="ideal_clear_batch").max == L.MAX_IDEAL_BATCH
    assert f"up to {L.MAX_IDEAL_STEPS} steps" in _captions(at)

    at.switch_page("lessons/4_Adversarial.py").run()
    assert at.number_input(key="adv_steps").max == L.MAX_ATTACK_STEPS
    assert f"up to {L.MAX_ATTACK_STEPS} steps" in _captions(at)

    at.switch_page("lessons/5_Grad-CAM.py").run()
    at.selectbox(key="gc_method").set_value("smoothgrad").run()
    assert at.slider(key="gc_samples").max == L.MAX_SMOOTHGRAD_SAMPLES
    assert f"up to {L.MAX_SMOOTHGRAD_SAMPLES} noisy copies" in _captions(at)

    at.switch_page("lessons/6_Transfer_learning.py").run()
    assert at.number_input(key="tl_epochs").max == L.MAX_EPOCHS == at.number_input(key="tl_head_epochs").max
    assert f"up to {L.MAX_EPOCHS} epochs" in _captions(at)
    at.radio(key="tl_source").set_value("zip").run()
    assert f"at most {L.MAX_DATASET_IMAGES} images in all" in _captions(at)
    assert not at.exception and not at.error
