"""The server's caps, stated under the widgets they bound (the numbers come from explain/limits.py)."""

from __future__ import annotations

import streamlit as st

from explain import limits as L
from explain.ui.i18n import t


def image_limits() -> str:
    return t("images up to {mp} megapixels and {mb} MB", mp=L.MAX_IMAGE_PIXELS // 1_000_000, mb=L.MAX_IMAGE_MB)


def steps_limit(cap: int) -> str:
    return t("up to {n} steps", n=cap)


def epochs_limit() -> str:
    return t("up to {n} epochs", n=L.MAX_EPOCHS)


def copies_limit() -> str:
    return t("up to {n} augmented copies per step", n=L.MAX_IDEAL_BATCH)


def gallery_limit() -> str:
    return t("the last {n} images are kept", n=L.MAX_IDEAL_GALLERY)


def samples_limit() -> str:
    return t("up to {n} noisy copies", n=L.MAX_SMOOTHGRAD_SAMPLES)


def dataset_limits() -> str:
    return t(
        "uploads up to {mb} MB, photos up to {img} MB, at most {n} images in all, a zip with at most {entries} entries",
        mb=L.MAX_UPLOAD_MB, img=L.MAX_IMAGE_MB, n=L.MAX_DATASET_IMAGES, entries=L.ZIP_MAX_ENTRIES,
    )


def weights_limits() -> str:
    return t(
        "weights files up to {mb} MB; {n} own models per session (a new one replaces the oldest)",
        mb=L.MAX_UPLOAD_MB, n=L.MAX_SESSION_MODELS,
    )


def limits_caption(*items: str, where=None) -> None:
    """One caption "Limits on this server: a; b." under the widget it follows (`where`: a column, default the page)."""
    (where or st).caption(t("Limits on this server: {items}.", items="; ".join(items)))
