"""The caps of explain/limits.py: the library enforces each one with a message naming it, config.toml agrees."""

import io

import pytest
import torch

try:
    import tomllib
except ImportError:  # Python 3.10: Streamlit's own TOML reader
    import toml as tomllib
from PIL import Image

from explain import limits as L
from explain.errors import LensError

from .conftest import ROOT


def _config() -> dict:
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))


def test_upload_limit_in_config_matches_the_cap():
    assert _config()["server"]["maxUploadSize"] == L.MAX_UPLOAD_MB
    assert L.MAX_IMAGE_BYTES == L.MAX_IMAGE_MB * 1024 * 1024 <= L.MAX_UPLOAD_MB * 1024 * 1024


def test_no_error_details_reach_the_browser():
    value = _config()["client"]["showErrorDetails"]
    assert value == "none"
    import streamlit.config as config

    # the option's own documentation lists the values this Streamlit accepts
    assert f'"{value}"' in config._config_options_template["client.showErrorDetails"].description


def _ideal(**kw):
    from explain.synthesis import IdealSettings, check_settings

    check_settings(IdealSettings(**kw))


def _attack(**kw):
    from explain.adversarial import AttackSettings

    AttackSettings(**kw).checked()


def _train(**kw):
    from explain.transfer import TrainConfig

    TrainConfig(**kw).checked()


@pytest.mark.parametrize(
    "call, allowed, refused, shown",
    [
        (_ideal, {"steps": L.MAX_IDEAL_STEPS}, {"steps": L.MAX_IDEAL_STEPS + 1}, str(L.MAX_IDEAL_STEPS)),
        (_ideal, {"size": L.MAX_IDEAL_SIZE}, {"size": L.MAX_IDEAL_SIZE + 1}, str(L.MAX_IDEAL_SIZE)),
        (_ideal, {"size": L.MIN_IDEAL_SIZE}, {"size": L.MIN_IDEAL_SIZE - 1}, str(L.MIN_IDEAL_SIZE)),
        (_ideal, {"batch": L.MAX_IDEAL_BATCH}, {"batch": L.MAX_IDEAL_BATCH + 1}, str(L.MAX_IDEAL_BATCH)),
        (_attack, {"steps": L.MAX_ATTACK_STEPS}, {"steps": L.MAX_ATTACK_STEPS + 1}, str(L.MAX_ATTACK_STEPS)),
        (_train, {"epochs": L.MAX_EPOCHS}, {"epochs": L.MAX_EPOCHS + 1}, str(L.MAX_EPOCHS)),
        (_train, {"strategy": "finetune", "head_epochs": L.MAX_EPOCHS}, {"strategy": "finetune", "head_epochs": L.MAX_EPOCHS + 1}, str(L.MAX_EPOCHS)),
    ],
    ids=["ideal-steps", "ideal-size", "ideal-min-size", "ideal-batch", "attack-steps", "epochs", "head-epochs"],
)
def test_each_cap_is_enforced_at_its_value(call, allowed, refused, shown):
    call(**allowed)  # the cap itself is allowed
    with pytest.raises(LensError, match=shown):
        call(**refused)


def test_smoothgrad_samples_cap(lite0):
    from explain.cam import compute_cam

    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(LensError, match=str(L.MAX_SMOOTHGRAD_SAMPLES)):
        compute_cam(lite0, x, targets=1, method="smoothgrad", samples=L.MAX_SMOOTHGRAD_SAMPLES + 1)
    assert compute_cam(lite0, x, targets=1, method="smoothgrad", samples=1).maps.shape == (1, 32, 32)


def test_image_byte_cap_before_decoding():
    from explain.images import decode_image

    with pytest.raises(LensError, match=f"the limit is {L.MAX_IMAGE_MB} MB"):
        decode_image(b"\x89PNG" + bytes(L.MAX_IMAGE_BYTES), name="huge.png")


def test_dataset_image_cap_before_decoding(monkeypatch):
    from explain import transfer as T

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, format="PNG")
    files = {cls: [(f"{i}.png", buf.getvalue()) for i in range(6)] for cls in ("a", "b")}
    assert len(T.dataset_from_uploads(files)) == 12
    monkeypatch.setattr(T.datasets, "MAX_DATASET_IMAGES", 11)
    with pytest.raises(LensError, match="holds 12 images; the limit is 11"):
        T.dataset_from_uploads(files)


def _own_models_page(count: int) -> None:
    from dataclasses import replace

    import streamlit as st

    from explain.ui.backbones import add_own_backbone, cached_backbone

    base = cached_backbone("efficientnet_lite0")
    st.session_state["backbone"] = "mine 0"  # the one picked in the sidebar is never dropped
    for i in range(count):
        add_own_backbone(f"mine {i}", replace(base, name=f"mine {i}"))


def test_a_session_keeps_a_bounded_number_of_own_models():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_own_models_page, args=(L.MAX_SESSION_MODELS + 3,), default_timeout=120).run()
    assert not at.exception
    kept = list(at.session_state["custom_backbones"])
    n = L.MAX_SESSION_MODELS + 3
    assert len(kept) == L.MAX_SESSION_MODELS and "mine 0" in kept and f"mine {n - 1}" in kept


def test_cap_errors_read_in_korean(lite0, monkeypatch):
    import re

    from explain import transfer as T
    from explain.cam import compute_cam
    from explain.ui.errors import error_text

    monkeypatch.setattr(T.datasets, "ZIP_MAX_ENTRIES", 0)
    attempts = [
        lambda: _ideal(steps=L.MAX_IDEAL_STEPS + 1),
        lambda: _ideal(batch=L.MAX_IDEAL_BATCH + 1),
        lambda: _attack(steps=L.MAX_ATTACK_STEPS + 1),
        lambda: _train(epochs=L.MAX_EPOCHS + 1),
        lambda: compute_cam(lite0, torch.rand(1, 3, 32, 32), targets=1, method="smoothgrad", samples=10**6),
        lambda: T.dataset_from_zip(b"not a zip", "class photos.zip"),
        lambda: T.dataset_from_zip(_one_entry_zip(), "big.zip"),
    ]
    for call in attempts:
        with pytest.raises(LensError) as caught:
            call()
        korean = error_text(caught.value, "ko")
        assert re.search(r"[\uac00-\ud7a3]", korean), str(caught.value)
        assert all(n in korean for n in re.findall(r"\d+", str(caught.value))), korean  # the numbers are kept


def _one_entry_zip() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/0.png", b"x")
    return buf.getvalue()
