"""The caps in the app: config.toml agrees with explain/limits.py, a session's own models are bounded, cap errors read in Korean."""

import io

import pytest
import torch

try:
    import tomllib
except ImportError:  # Python 3.10: Streamlit's own TOML reader
    import toml as tomllib

from explain import limits as L
from explain.errors import LensError

from ..conftest import ROOT
from ..shared import check_attack, check_ideal, check_train


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
        lambda: check_ideal(steps=L.MAX_IDEAL_STEPS + 1),
        lambda: check_ideal(batch=L.MAX_IDEAL_BATCH + 1),
        lambda: check_attack(steps=L.MAX_ATTACK_STEPS + 1),
        lambda: check_train(epochs=L.MAX_EPOCHS + 1),
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
