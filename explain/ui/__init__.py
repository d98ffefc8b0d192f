"""Widgets shared by the pages: the sidebar, the image picker, cached models, error display.

The only package besides lessons/ (the pages) that imports streamlit. Pages stay thin: they call these
widgets and explain.* functions and draw the result objects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st
import torch

from explain.errors import LensError
from explain.images import SAMPLES, decode_image, sample_image
from explain.limits import MAX_SESSION_MODELS
from explain.models import DEFAULT_BACKBONE, REGISTRY, Backbone, default_device, load_backbone, weight_status
from explain.ui.classroom import classroom_controls, error_text, forget_url, url_state
from explain.ui.i18n import t
from explain.ui.limits import image_limits, limits_caption, weights_limits

STATUS_BADGE = {"offline": "🟢 offline", "cached": "🔵 cached", "file": "🟣 file", "download": "⚪ download"}


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_backbone(name: str) -> Backbone:
    """Registry backbones are shared by every session (read-only in inference)."""
    return load_backbone(name)


def custom_backbones() -> dict[str, Backbone]:
    """This session's own models (fine-tuned or loaded from a file), never shared between users."""
    return st.session_state.setdefault("custom_backbones", {})


def add_own_backbone(name: str, backbone: Backbone) -> None:
    """Keep a model of this session under `name`; past MAX_SESSION_MODELS the oldest one not in use is dropped."""
    own = custom_backbones()
    own[name] = backbone
    in_use = {name, st.session_state.get("backbone"), st.session_state.get("backbone_pending")}
    for old in [n for n in own if n not in in_use][: max(0, len(own) - MAX_SESSION_MODELS)]:
        del own[old]  # each model is a whole network in memory: a session cannot pile them up


def backbone_by_name(name: str) -> Backbone:
    """A registry backbone (cached) or one of this session's own models."""
    own = custom_backbones()
    if name in own:
        return own[name]
    return cached_backbone(name)


def current_backbone() -> Backbone | None:
    """The backbone chosen in the sidebar; None (with an st.error shown) when it cannot load."""
    name = st.session_state.get("backbone", DEFAULT_BACKBONE)
    try:
        with st.spinner(t("Loading {name}…", name=name)):
            return backbone_by_name(name)
    except LensError as exc:
        show_error(exc)
        return None


def backbone_choices() -> list[str]:
    return list(REGISTRY) + list(custom_backbones())


def backbone_label(name: str) -> str:
    if name in custom_backbones():
        badge = "🟣 file" if custom_backbones()[name].source == "file" else "🟠 my model"
        return f"{name} · {t(badge)}"
    return f"{REGISTRY[name].title} · {t(STATUS_BADGE[weight_status(name)])}"


def sidebar() -> None:
    """The shared sidebar: language, backbone picker with weight status, device in use."""
    with st.sidebar:
        classroom_controls()
        choices = backbone_choices()
        if "backbone_pending" in st.session_state:
            st.session_state["backbone"] = st.session_state.pop("backbone_pending")
        url_state("backbone", "backbone", DEFAULT_BACKBONE, options=choices)
        st.selectbox(t("Backbone"), choices, key="backbone", format_func=backbone_label)
        name = st.session_state["backbone"]
        if name in REGISTRY and weight_status(name) == "download":
            st.caption(
                t(
                    "The weights of this network are not on this machine. Without internet it "
                    "cannot load: pick a backbone marked offline, or put the weights file into the torch hub cache."
                )
            )
        with st.expander(t("Load a weights file")):
            weights_file_loader()
        device = default_device()
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else t("CPU")
        st.caption(t("Device: {device}", device=label))


def weights_file_loader() -> None:
    """Upload a .pth/.pt state dict (or a CNN Lens model file); it becomes a backbone of this session only."""
    up = st.file_uploader(t("Weights file (.pth, .pt)"), type=["pth", "pt", "bin", "ckpt"], key="weights_upload")
    limits_caption(weights_limits())
    if up is None or st.session_state.get("weights_loaded") == up.file_id:
        return
    name = run_safely(add_weights_backbone, up.name, up.getvalue())
    if name is None:
        return
    st.session_state["weights_loaded"] = up.file_id
    st.session_state["backbone_pending"] = name  # the picker above is already drawn: apply on the rerun
    st.rerun()


def add_weights_backbone(filename: str, data: bytes) -> str:
    """Load uploaded weights into a backbone of this session; returns its name in the picker."""
    import os
    import tempfile

    from explain.models import load_model

    fd, path = tempfile.mkstemp(suffix=".pth", prefix="cnnlens-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        backbone = load_model(path)
    finally:
        os.unlink(path)  # nothing of the upload stays on the server's disk
    name = f"{filename} ({backbone.base})"
    backbone.name = name
    add_own_backbone(name, backbone)
    return name


def show_error(exc: Exception) -> None:
    st.error(error_text(exc))


def run_safely(func: Callable[..., Any], *args, **kwargs) -> Any:
    """Call a library function; a LensError becomes st.error and None, the page keeps running."""
    try:
        return func(*args, **kwargs)
    except LensError as exc:
        show_error(exc)
        return None


def image_key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:16] + f"{image.shape}"


def keep_photo(key: str, name: str, data: bytes) -> bool:
    """Decode an uploaded photo into the session under `key`; a bad file shows st.error and leaves no photo."""
    try:
        st.session_state[key] = (name, decode_image(data, name=name))
        return True
    except LensError as exc:
        show_error(exc)
        st.session_state.pop(key, None)  # the page must not go on with the photo before
        return False


def image_picker(key: str = "image", allow_camera: bool = True) -> tuple[str, np.ndarray] | None:
    """Pick a photo from the samples, an upload, or the camera. Returns (label, RGB uint8) or None.

    The choice is kept in the session under `key`, so every page that uses the same key sees the same image.
    """
    sources = ["sample", "upload"] + (["camera"] if allow_camera else [])
    names = {"sample": t("Sample photo"), "upload": t("Upload"), "camera": t("Camera")}
    source = st.radio(t("Image source"), sources, format_func=names.get, horizontal=True, key=f"{key}_source")
    if key == "image" and source != "sample":
        forget_url("sample")
    if source == "sample":
        if key == "image":  # the shared picker's sample is part of a shareable link
            url_state("sample", f"{key}_sample", next(iter(SAMPLES)), options=SAMPLES)
        sample = st.selectbox(
            t("Sample"), list(SAMPLES), format_func=lambda s: t(SAMPLES[s]), key=f"{key}_sample"
        )
        st.session_state[key] = (sample, sample_image(sample))
    elif source == "upload":
        up = st.file_uploader(
            t("Image file"), type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"], key=f"{key}_upload"
        )
        limits_caption(image_limits())
        if up is not None:
            keep_photo(key, up.name, up.getvalue())
        else:
            st.session_state.pop(key, None)
    else:
        shot = st.camera_input(t("Take a photo"), key=f"{key}_camera")
        if shot is not None:
            keep_photo(key, "camera", shot.getvalue())
        else:
            st.session_state.pop(key, None)
    return st.session_state.get(key)


def backbone_and_photo(key: str = "image") -> tuple[Backbone, str, np.ndarray]:
    """The sidebar's backbone and a picked photo (label, RGB uint8); stops the page with a hint when either is missing."""
    backbone = current_backbone()
    picked = image_picker(key)
    if backbone is None or picked is None:
        st.info(t("Choose an image to start."))
        st.stop()
    label, image = picked
    return backbone, label, image


def class_picker(backbone: Backbone, label: str, key: str, default: int = 281, url: str | None = None) -> int:
    """Choose a class by typing part of its name (a searchable select box); url="class" keeps it in the link."""
    options = list(range(backbone.num_classes))
    index = default if default < len(options) else 0
    if url:
        url_state(url, key, index, options=range(len(options)), cast=int)
        return st.selectbox(label, options, format_func=lambda i: f"{backbone.categories[i]} ({i})", key=key)
    return st.selectbox(label, options, index=index, format_func=lambda i: f"{backbone.categories[i]} ({i})", key=key)


def cached_recording(backbone: Backbone, image: np.ndarray):
    """Every layer's maps for (backbone, image), recorded once per session and re-used on every layer switch."""
    from explain.featuremaps import record_image
    from explain.images import prepare

    key = (backbone.name, image_key(image))
    store = st.session_state.setdefault("recordings", {})
    if key not in store:
        prepared = prepare(image, backbone.preprocess)
        store.clear()  # one recording per session bounds memory
        store[key] = (prepared, record_image(backbone, prepared.tensor))
    return store[key]


def cached_summary(backbone: Backbone):
    """The Keras-style summary of a backbone, computed once per session and backbone."""
    from explain.models import summarize

    store = st.session_state.setdefault("summaries", {})
    if backbone.name not in store:
        store[backbone.name] = summarize(backbone)
    return store[backbone.name]
