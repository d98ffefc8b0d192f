"""The shared sidebar under AppTest: a backbone that cannot load is reported once, a session's own model is labelled
by what it is (issue 15 items 7 and 8; the browser journeys are in tests/browser/test_sidebar_journeys.py)."""

from __future__ import annotations

import dataclasses
import socket

import pytest
import torch
from streamlit.testing.v1 import AppTest

from ..conftest import ROOT

TIMEOUT = 180
SIDEBAR_NOTE = "The weights of this network are not on this machine"


@pytest.fixture
def vgg16_unreachable(monkeypatch, tmp_path):
    """vgg16 with an empty torch hub cache and a weights URL on a loopback port nobody listens on (refused at once)."""
    import explain.models.files as files
    from explain.models import REGISTRY

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(files, "_download_failures", {}, raising=False)
    spec = REGISTRY["vgg16"]
    monkeypatch.setitem(REGISTRY, "vgg16", dataclasses.replace(spec, weights_url=f"http://127.0.0.1:{port}/{spec.cache_file.name}"))


def test_a_backbone_that_cannot_load_is_reported_once_and_no_photo_is_asked_for(vgg16_unreachable):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["backbone"] = "vgg16"
    at.run()
    assert [c.value for c in at.sidebar.caption if SIDEBAR_NOTE in c.value]  # Home loads nothing: the sidebar says it
    at.switch_page("lessons/1_Classify.py").run()
    assert not at.exception
    assert [e.value for e in at.error if "Weights for 'vgg16'" in e.value] and len(at.error) == 1
    assert not [i.value for i in at.info if "Choose an image" in i.value]  # a sample is selected
    assert not [c.value for c in at.sidebar.caption if SIDEBAR_NOTE in c.value]  # said once, on the page


def _own_model_labels() -> None:
    from types import SimpleNamespace

    import streamlit as st

    from explain.ui.backbones import add_own_backbone, backbone_label

    add_own_backbone("my model", SimpleNamespace(source="trained"))
    add_own_backbone("weights.pth (resnet18)", SimpleNamespace(source="file"))
    st.write(backbone_label("my model"))
    st.write(backbone_label("weights.pth (resnet18)"))


def test_a_model_trained_here_is_labelled_trained_not_its_name_twice():
    at = AppTest.from_function(_own_model_labels, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [m.value for m in at.markdown] == ["my model · 🟠 trained", "weights.pth (resnet18) · 🟣 file"]
