"""Widgets and figures of the transfer-learning page: dataset builder, curves, confusion matrix, prediction grid."""

from __future__ import annotations

import hashlib

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from explain.errors import LensError
from explain.transfer import (
    DEMO_SETS,
    DEMO_TITLES,
    EpochStats,
    ImageSet,
    dataset_from_uploads,
    dataset_from_zip,
    demo_dataset,
)
from explain.ui.errors import show_error
from explain.ui.i18n import t
from explain.ui.limits import dataset_limits, image_limits, limits_caption
from explain.ui.session import cached

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]
DATASETS_KEPT = 3  # e.g. the demo set, a zip and per-class uploads, to switch between without decoding again


def training_curves(history: tuple[EpochStats, ...] | list[EpochStats], epochs: int | None = None) -> go.Figure:
    """Loss and accuracy per epoch, training and validation, side by side."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(t("Loss"), t("Accuracy (%)")))
    x = [h.epoch for h in history]
    styles = {"train": dict(color="#4C78A8"), "val": dict(color="#F58518")}
    fig.add_trace(go.Scatter(x=x, y=[h.train_loss for h in history], name=t("training"), line=styles["train"], legendgroup="train"), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=[h.val_loss for h in history], name=t("validation"), line=styles["val"], legendgroup="val"), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=[h.train_acc * 100 for h in history], line=styles["train"], legendgroup="train", showlegend=False), 1, 2)
    fig.add_trace(go.Scatter(x=x, y=[h.val_acc * 100 for h in history], line=styles["val"], legendgroup="val", showlegend=False), 1, 2)
    if epochs:
        fig.update_xaxes(range=[0.8, max(epochs, 1) + 0.2])
    fig.update_xaxes(title_text=t("epoch"))
    fig.update_yaxes(range=[0, 101], row=1, col=2)
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=30), legend=dict(orientation="h", y=-0.25))
    return fig


def confusion_heatmap(confusion: np.ndarray, classes: tuple[str, ...] | list[str]) -> go.Figure:
    """Rows: true class; columns: predicted class; counts written in the cells."""
    labels = list(classes)
    fig = go.Figure(
        go.Heatmap(
            z=confusion,
            x=labels,
            y=labels,
            colorscale="Blues",
            text=confusion,
            texttemplate="%{text}",
            hovertemplate=t("true {y}, predicted {x}: {z}").replace("{y}", "%{y}").replace("{x}", "%{x}").replace("{z}", "%{z}")
            + "<extra></extra>",
            showscale=False,
        )
    )
    fig.update_layout(
        xaxis_title=t("predicted class"),
        yaxis_title=t("true class"),
        yaxis_autorange="reversed",
        height=120 + 40 * len(labels),
        margin=dict(l=10, r=10, t=10, b=30),
    )
    return fig


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in "[]*_`\\$" else ch for ch in text)


def prediction_grid(images, predictions, labels, classes, columns: int = 6, key: str = "grid") -> None:
    """Validation photos titled with the predicted class: green when right, red when wrong."""
    for start in range(0, len(images), columns):
        cols = st.columns(columns)
        for col, img, pred, true in zip(cols, images[start : start + columns], predictions[start:], labels[start:]):
            color = "green" if pred == true else "red"
            col.markdown(f":{color}[**{_escape(classes[pred])}**]")
            col.image(img, width="stretch")
            if pred != true:
                col.caption(t("true: {label}", label=classes[true]))


def _signature(*parts) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def _decoded_once(source: str, signature: str, build):
    """Decode a dataset once per change of its inputs (reruns happen on every click)."""
    return cached("tl_datasets", (source, signature), build, DATASETS_KEPT)


def dataset_builder() -> ImageSet | None:
    """Build a dataset from a demo set, a zip with one folder per class, or per-class uploads and camera shots."""
    sources = {"demo": t("Demo set"), "zip": t("Zip file (one folder per class)"), "classes": t("Upload per class / camera")}
    source = st.radio(t("Where do the photos come from?"), list(sources), format_func=sources.get, horizontal=True, key="tl_source")
    try:
        if source == "demo":
            c1, c2 = st.columns(2)
            name = c1.selectbox(t("Demo set"), list(DEMO_SETS), format_func=lambda n: t(DEMO_TITLES[n]), key="tl_demo")
            per_class = c2.slider(t("Images per class"), 8, 60, 24, key="tl_demo_n")
            return _decoded_once("demo", _signature(name, per_class), lambda: demo_dataset(name, per_class))
        if source == "zip":
            up = st.file_uploader(t("Zip file"), type=["zip"], key="tl_zip")
            limits_caption(dataset_limits(), image_limits())
            if up is None:
                st.caption(t("Make a zip with one folder per class, for example cats/1.jpg, dogs/1.jpg (train/ and val/ folders also work)."))
                return None
            return zip_dataset(up.name, up.getvalue(), up.file_id)
        return _class_uploads()
    except LensError as exc:
        show_error(exc)
        return None


def zip_dataset(name: str, data: bytes, file_id: str = "") -> ImageSet | None:
    """The dataset in an uploaded zip (decoded once per upload); a bad zip shows st.error and gives None."""
    try:
        return _decoded_once("zip", _signature(file_id or name, len(data)), lambda: dataset_from_zip(data, name))
    except LensError as exc:
        show_error(exc)
        return None


def _class_uploads() -> ImageSet | None:
    count = st.number_input(t("Number of classes"), 2, 20, 2, key="tl_nclasses")
    shots: dict[str, list[bytes]] = st.session_state.setdefault("tl_camera", {})
    files: dict[str, list[tuple[str, bytes]]] = {}
    ids = []
    cols = st.columns(min(int(count), 4))
    for i in range(int(count)):
        col = cols[i % len(cols)]
        name = col.text_input(t("Class {n} name", n=i + 1), value=t("class {n}", n=i + 1), key=f"tl_cname_{i}").strip()
        ups = col.file_uploader(t("Photos of this class"), type=IMAGE_TYPES, accept_multiple_files=True, key=f"tl_cfiles_{i}")
        taken = shots.get(f"{i}", [])
        col.caption(t("{n} files, {m} camera photos", n=len(ups or []), m=len(taken)))
        entries = [(u.name, u.getvalue()) for u in ups or []] + [(f"camera_{j + 1}.jpg", b) for j, b in enumerate(taken)]
        if entries:
            files.setdefault(name or t("class {n}", n=i + 1), []).extend(entries)
        ids.append((name, [u.file_id for u in ups or []], len(taken)))
    limits_caption(dataset_limits(), image_limits())
    with st.expander(t("Add photos with the camera")):
        target = st.selectbox(t("Add to class"), list(range(int(count))), format_func=lambda i: st.session_state.get(f"tl_cname_{i}", str(i + 1)), key="tl_cam_class")
        shot = st.camera_input(t("Take a photo"), key="tl_cam")
        if shot is not None and st.button(t("Add this photo"), key="tl_cam_add"):
            shots.setdefault(f"{target}", []).append(shot.getvalue())
            st.rerun()
        if shots and st.button(t("Forget camera photos"), key="tl_cam_clear"):
            shots.clear()
            st.rerun()
    if not files:
        st.caption(t("Upload photos for each class (at least 5 per class), or take them with the camera."))
        return None
    return _decoded_once("classes", _signature(ids), lambda: dataset_from_uploads(files))
