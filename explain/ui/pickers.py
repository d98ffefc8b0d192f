"""Choosing what a page works on: a photo (sample, upload, camera), the sidebar's backbone with it, a class."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explain.errors import LensError
from explain.images import SAMPLES, decode_image, sample_image
from explain.models import Backbone
from explain.ui.backbones import current_backbone
from explain.ui.classroom import forget_url, kept_value, url_state
from explain.ui.errors import show_error
from explain.ui.i18n import t
from explain.ui.limits import image_limits, limits_caption


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
    kept_value(f"{key}_source", "sample", sources)
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
    """The sidebar's backbone and a picked photo (label, RGB uint8); stops the page when either is missing.

    A backbone that cannot load has said why already (st.error): the hint to choose an image is only for a missing photo.
    """
    backbone = current_backbone()
    picked = image_picker(key)
    if picked is None:
        st.info(t("Choose an image to start."))
    if backbone is None or picked is None:
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
