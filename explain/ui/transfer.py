"""Widgets and figures of the transfer-learning page: dataset builder, live training, the report of a run."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from explain.errors import LensError
from explain.jobs import Progress
from explain.models import Backbone
from explain.transfer import (
    ADVICE_TEXT,
    DEMO_SETS,
    DEMO_TITLES,
    REASONS,
    STRATEGIES,
    ImageSet,
    Plan,
    Splits,
    TrainResult,
    dataset_from_uploads,
    dataset_from_zip,
    demo_dataset,
    epoch_history,
    plan_training,
    split_dataset,
)
from explain.ui.backbones import add_weights_backbone, custom_backbones, is_shared
from explain.ui.classroom import kept_value
from explain.ui.errors import run_safely, show_error
from explain.ui.i18n import t
from explain.ui.jobs import JobView
from explain.ui.limits import dataset_limits, image_limits, limits_caption, weights_limits
from explain.ui.livechart import Line, Panel
from explain.ui.plots import bar_chart
from explain.ui.session import cached

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]
DATASETS_KEPT = 3  # e.g. the demo set, a zip and per-class uploads, to switch between without decoding again


def training_curves(history: Mapping[str, Sequence[float]], epochs: int | None = None) -> go.Figure:
    """Loss and accuracy per epoch, training and validation, side by side (history: epoch_history's metrics)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(t("Loss"), t("Accuracy (%)")))
    x = list(history.get("epoch", ()))
    styles = {"train": dict(color="#4C78A8"), "val": dict(color="#F58518")}
    fig.add_trace(go.Scatter(x=x, y=list(history.get("train_loss", ())), name=t("training"), line=styles["train"], legendgroup="train"), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=list(history.get("val_loss", ())), name=t("validation"), line=styles["val"], legendgroup="val"), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=[a * 100 for a in history.get("train_acc", ())], line=styles["train"], legendgroup="train", showlegend=False), 1, 2)
    fig.add_trace(go.Scatter(x=x, y=[a * 100 for a in history.get("val_acc", ())], line=styles["val"], legendgroup="val", showlegend=False), 1, 2)
    if epochs:
        fig.update_xaxes(range=[0.8, max(epochs, 1) + 0.2])
    fig.update_xaxes(title_text=t("epoch"))
    fig.update_yaxes(range=[0, 101], row=1, col=2)
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=30), legend=dict(orientation="h", y=-0.25))
    return fig


def live_training_curves(history: Mapping[str, Sequence[float]]) -> tuple[Panel, Panel]:
    """`training_curves` for a running job (explain/ui/livechart.py): loss and accuracy per epoch, side by side."""
    x = list(history.get("epoch", ()))
    train, val = t("training"), t("validation")
    loss = Panel((Line(train, list(history.get("train_loss", ())), x, "#4C78A8"), Line(val, list(history.get("val_loss", ())), x, "#F58518")),
                 title=t("Loss"), x_label=t("epoch"))
    acc = Panel((Line(train, [a * 100 for a in history.get("train_acc", ())], x, "#4C78A8"),
                 Line(val, [a * 100 for a in history.get("val_acc", ())], x, "#F58518")),
                title=t("Accuracy (%)"), x_label=t("epoch"), y_range=(0.0, 101.0))
    return loss, acc


def training_view() -> JobView:
    """How a training run is drawn: the bar follows the phase (caching, then steps), the curves each epoch."""

    def caption(p: Progress) -> str:
        if p.phase == "features":
            return t("Running the frozen part once over the photos: batch {s} of {n}", s=p.step, n=p.total)
        m = p.metrics
        if p.phase == "train":
            return t("Epoch {e} of {n} · step {s} of {m} · loss {loss:.3f}", e=int(m["epoch"]), n=int(m["epochs"]), s=p.step, m=p.total, loss=m["loss"])
        return t("Epoch {e} done · validation accuracy {a:.1f}%", e=int(m["epoch"]), a=m["val_acc"] * 100)

    def chart(p: Progress) -> tuple[Panel, Panel] | None:
        return live_training_curves(p.history) if p.phase == "epoch" else None

    return JobView(caption=caption, chart=chart)


def short_count(n: int) -> str:
    """A parameter count that fits a metric: exact below a million (3,843), else three digits (1.02 M, 138 M)."""
    return f"{n:,}" if n < 1_000_000 else f"{n / 1e6:.3g} M"


def training_report(result: TrainResult, splits: Splits) -> None:
    """What a run achieved on the validation photos: accuracy, curves, confusion, accuracy per class, the photos."""
    if result.stopped:
        st.warning(t("Training was stopped after {n} epoch(s); the model below is the one trained so far.", n=len(result.history)))
    r1, r2, r3 = st.columns(3)
    r1.metric(t("Validation accuracy"), f"{result.val.accuracy * 100:.1f}%")
    r2.metric(t("Training time"), f"{result.seconds:.1f} s")
    # both exact counts side by side do not fit a third of the page (presenter mode cut them to "1,020,162 / 2,353,…")
    r3.metric(
        t("Trainable parameters"),
        short_count(result.trainable_params),
        delta=t("{n} frozen", n=short_count(result.frozen_params)),
        delta_color="off",
        delta_arrow="off",
        help=t("{trainable:,} trainable and {frozen:,} frozen parameters.", trainable=result.trainable_params, frozen=result.frozen_params),
    )
    if result.history:
        st.plotly_chart(training_curves(epoch_history(result.history)), width="stretch", key="tl_curves")
    if result.class_map:
        if result.config.strategy != "classifier":
            st.caption(t("The new head started from the pretrained classifier's weights for these ImageNet classes."))
        st.dataframe(pd.DataFrame({t("your class"): list(result.class_map), t("ImageNet class used"): list(result.class_map.values())}), hide_index=True)
    cm1, cm2 = st.columns(2)
    cm1.subheader(t("Confusion matrix (validation)"))
    cm1.plotly_chart(confusion_heatmap(result.val.confusion, splits.classes), width="stretch", key="tl_confusion")
    cm2.subheader(t("Accuracy per class"))
    cm2.plotly_chart(
        bar_chart([v * 100 for v in result.val.per_class.values()], list(result.val.per_class), "", "", "%"), width="stretch", key="tl_perclass"
    )
    st.subheader(t("Validation photos: predicted class in green (right) or red (wrong)"))
    only_wrong = st.toggle(t("Only the mistakes"), key="tl_only_wrong")
    show_n = st.slider(t("Photos shown"), 6, 60, 24, 6, key="tl_grid_n")
    wanted = [i for i, (p, y) in enumerate(zip(result.val.predictions, result.val.labels)) if p != y or not only_wrong]
    rows = _classes_mixed(wanted, result.val.labels)[:show_n]
    if rows:
        prediction_grid(
            [splits.val.images[i] for i in rows], [result.val.predictions[i] for i in rows], [result.val.labels[i] for i in rows], splits.classes
        )
    else:
        st.success(t("No mistakes on the validation photos."))


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


DEMO_PER_CLASS = 24  # the demo set's default size per class
VAL_FRACTION = 0.2  # the default share of each class kept for validation (when the folders give no split)


def demo_splits(name: str, per_class: int = DEMO_PER_CLASS, val_fraction: float = VAL_FRACTION) -> Splits:
    """The demo set as the page splits it by default (the server warms its plan before anyone opens the page)."""
    return split_dataset(demo_dataset(name, per_class), val_fraction)


def plan_key(backbone: Backbone, splits: Splits) -> tuple:
    return (backbone.name, backbone.preprocess, splits_fingerprint(splits))


def splits_fingerprint(splits: Splits) -> str:
    """What a plan depends on: the classes and every photo's pixels and label in each split (file names alone can repeat)."""
    h = hashlib.sha1(repr(splits.classes).encode())
    for part in (splits.train, splits.val):
        h.update(repr((len(part), list(part.labels))).encode())
        for img in part.images:
            h.update(repr(img.shape).encode())
            h.update(np.ascontiguousarray(img).data)
    return h.hexdigest()


def _signature(*parts) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def _decoded_once(source: str, signature: str, build):
    """Decode a dataset once per change of its inputs (reruns happen on every click)."""
    return cached("tl_datasets", (source, signature), build, DATASETS_KEPT)


def dataset_builder() -> ImageSet | None:
    """Build a dataset from a demo set, a zip with one folder per class, or per-class uploads and camera shots."""
    sources = {"demo": t("Demo set"), "zip": t("Zip file (one folder per class)"), "classes": t("Upload per class / camera")}
    kept_value("tl_source", "demo", sources)
    source = st.radio(t("Where do the photos come from?"), list(sources), format_func=sources.get, horizontal=True, key="tl_source")
    try:
        if source == "demo":
            c1, c2 = st.columns(2)
            name = c1.selectbox(t("Demo set"), list(DEMO_SETS), format_func=lambda n: t(DEMO_TITLES[n]), key="tl_demo")
            per_class = c2.slider(t("Images per class"), 8, 60, DEMO_PER_CLASS, key="tl_demo_n")
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


def _classes_mixed(rows: list[int], labels: Sequence[int]) -> list[int]:
    """Rows taken one class at a time in turn (a class's first photo, the next class's first, …), so a grid cut to its
    first photos shows every class, not the first class only."""
    by_class: dict[int, list[int]] = {}
    for i in rows:
        by_class.setdefault(labels[i], []).append(i)
    queues = [by_class[c] for c in sorted(by_class)]
    return [q[k] for k in range(max(map(len, queues), default=0)) for q in queues if k < len(q)]


def model_file_opener() -> None:
    """Open a model file trained before (a CNN Lens export): it joins the session's backbones."""
    with st.expander(t("Open a model file you trained before")):
        up = st.file_uploader(t("CNN Lens model file (.pt)"), type=["pt", "pth"], key="tl_upload_model")
        limits_caption(weights_limits())
        if up is not None and st.session_state.get("tl_uploaded", (None,))[0] != up.file_id:
            opened = run_safely(add_weights_backbone, up.name, up.getvalue())
            st.session_state["tl_uploaded"] = (up.file_id, opened)
        if up is not None and st.session_state["tl_uploaded"][1] in custom_backbones():
            loaded = custom_backbones()[st.session_state["tl_uploaded"][1]]
            st.success(t("Loaded {name}: {n} classes ({classes}). Pick it in the sidebar.", name=loaded.name, n=loaded.num_classes, classes=", ".join(loaded.categories[:10])))


def dataset_overview(dataset: ImageSet) -> None:
    """Images per class (table and bars), the files that were skipped and why, a look at each class's photos."""
    counts = dataset.counts()
    c1, c2 = st.columns([1, 2])
    c1.dataframe(pd.DataFrame({t("class"): list(counts), t("images"): list(counts.values())}), hide_index=True)
    c2.plotly_chart(bar_chart(list(counts.values()), list(counts), t("Images per class")), width="stretch", key="tl_counts")
    if dataset.skipped:
        with st.expander(t("{n} files were skipped", n=len(dataset.skipped))):
            st.text("\n".join(dataset.skipped[:200]))
    with st.expander(t("Look at the photos")):
        for label, cls in enumerate(dataset.classes):
            members = [img for img, lab in zip(dataset.images, dataset.labels) if lab == label][:8]
            st.markdown(t("Class: {name}", name=f"**{cls}**"))
            st.image(members, width=96)


def advisor_panel(backbone: Backbone, splits: Splits) -> Plan | None:
    """The advisor's plan for this dataset (measured once per dataset and split) and why, in words; None after an error."""
    plan = run_safely(cached, "tl_plan", plan_key(backbone, splits), lambda: plan_training(backbone, splits), 2, shared=is_shared(backbone))
    if plan is None:
        return None
    advice = plan.advice
    size_word = t("large") if advice.scenario.startswith("large") else t("small")
    sim_word = t("similar") if plan.estimate.similar else t("different")
    reasons = "\n".join("- " + t(REASONS[r.key], **r.values) for r in plan.reasons)
    st.info(
        t("Scenario: **{size}** dataset ({n} photos in the smallest class), **{sim}** domain. Recommended: **{strategy}**.",
          size=size_word, n=advice.per_class, sim=sim_word, strategy=t(STRATEGIES[advice.strategy]))
        + "\n\n" + t(ADVICE_TEXT[advice.scenario]) + "\n\n" + t("Why the automatic choice does this:") + "\n" + reasons
    )
    if advice.imagenet_classes:
        st.caption(t("These classes already exist in ImageNet, so the pretrained classifier can be tried as it is: {names}",
                     names=", ".join(advice.imagenet_classes)))
    return plan
