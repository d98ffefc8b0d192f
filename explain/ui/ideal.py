"""Widgets of the Ideal images page: the live view of a run, the curves, the session's gallery and its cards."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from explain.classify import class_rank
from explain.errors import LensError
from explain.images import encode_png
from explain.jobs import Progress
from explain.limits import MAX_IDEAL_BATCH, MAX_IDEAL_GALLERY, MAX_IDEAL_STEPS
from explain.models import Backbone
from explain.synthesis import PRESETS, IdealResult, IdealSettings, held_out_judge
from explain.ui.backbones import backbone_by_name
from explain.ui.i18n import t
from explain.ui.jobs import JobView
from explain.ui.limits import copies_limit, gallery_limit, limits_caption, steps_limit
from explain.ui.livechart import Line, Panel
from explain.ui.plots import upright_yaxis_title

PRESET_TITLES = {"course": "Course recipe (pixels + TV)", "clear": "Clear (FFT + robustness)"}
GALLERY = "ideal_gallery"  # the session's images, oldest first, at most MAX_IDEAL_GALLERY
_ids = itertools.count()

TERM_NAMES = {"objective": "objective (−score)", "tv": "TV", "l2": "L2", "blur": "blur", "total": "total loss"}


def curves(history: dict[str, list[float]], height: int = 300) -> go.Figure:
    """Target probability (left, %) and every loss term (right) against the step."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    probs = history.get("prob", [])
    steps = list(range(1, len(probs) + 1))
    if probs and not all(math.isnan(p) for p in probs):
        fig.add_trace(go.Scatter(x=steps, y=[p * 100 for p in probs], name=t("target probability %"), line=dict(width=3)), secondary_y=False)
        fig.update_yaxes(range=[0, 100], secondary_y=False)
        upright_yaxis_title(fig, "%")
    else:
        fig.add_trace(go.Scatter(x=steps, y=history.get("activation", []), name=t("channel activation"), line=dict(width=3)), secondary_y=False)
        upright_yaxis_title(fig, t("activation"))
    for key in TERM_NAMES:
        if key in history:
            fig.add_trace(go.Scatter(x=steps, y=history[key], name=t(TERM_NAMES[key]), line=dict(dash="dot")), secondary_y=True)
    upright_yaxis_title(fig, t("loss"), side="right")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=32, b=30), xaxis_title=t("step"), legend=dict(orientation="h", y=-0.25))
    return fig


def settings_panel(preset_name: str) -> IdealSettings:
    """The recipe's knobs under "Advanced settings" (each preset keeps its own values); the settings they give."""
    base = PRESETS[preset_name]
    with st.expander(t("Advanced settings")):
        k = f"ideal_{preset_name}_"  # each preset keeps its own knob values
        a1, a2, a3, a4 = st.columns(4)
        steps = a1.number_input(t("Steps"), 1, MAX_IDEAL_STEPS, base.steps, key=k + "steps")
        lr = a2.number_input(t("Learning rate"), 0.0005, 1.0, base.lr, format="%.4f", key=k + "lr")
        size = a3.select_slider(t("Image size"), [64, 96, 128, 160, 192, 224, 256, 320], base.size, key=k + "size")
        seed = a4.number_input(t("Seed"), 0, 10**6, base.seed, key=k + "seed")
        b1, b2, b3, b4 = st.columns(4)
        tv = b1.number_input(t("TV weight"), 0.0, 100.0, base.tv, format="%.3f", key=k + "tv", help=t("Total variation: how much neighbouring pixels must agree."))
        l2 = b2.number_input(t("L2 weight"), 0.0, 100.0, base.l2, format="%.3f", key=k + "l2")
        blur = b3.number_input(t("Blur weight"), 0.0, 100.0, base.blur, format="%.3f", key=k + "blur")
        batch = b4.number_input(t("Augmented copies per step"), 1, MAX_IDEAL_BATCH, base.batch, key=k + "batch")
        r1, r2, r3, r4 = st.columns(4)
        jitter = r1.number_input(t("Jitter (pixels)"), 0, 64, base.jitter, key=k + "jitter")
        scale = r2.slider(t("Random scale"), 0.5, 2.0, base.scale, step=0.05, key=k + "scale")
        rotate = r3.number_input(t("Random rotation (± degrees)"), 0.0, 90.0, base.rotate, key=k + "rotate")
        net_size = r4.number_input(t("Network input side (0 = as is)"), 0, 512, base.net_size, key=k + "net_size")
        st.slider(t("Preview every N steps"), 1, 50, 8, key="ideal_preview_every")  # read by the live view
        limits_caption(steps_limit(MAX_IDEAL_STEPS), copies_limit(), gallery_limit())
    return replace(
        base, steps=int(steps), lr=float(lr), size=int(size), seed=int(seed), tv=float(tv), l2=float(l2), blur=float(blur),
        batch=int(batch), jitter=int(jitter), scale=tuple(scale), rotate=float(rotate), net_size=int(net_size),
    )


def live_curves(history) -> Panel:
    """The same curves as `curves` for a running job: target probability (left, %) and the loss terms (right)."""
    probs = list(history.get("prob", ()))
    if probs and not all(math.isnan(p) for p in probs):
        main, label, span = Line(t("target probability %"), [p * 100 for p in probs]), "%", (0.0, 100.0)
    else:
        main, label, span = Line(t("channel activation"), list(history.get("activation", ()))), t("activation"), None
    terms = [Line(t(TERM_NAMES[k]), list(history[k]), dashed=True, right=True) for k in TERM_NAMES if k in history]
    return Panel((main, *terms), x_label=t("step"), y_label=label, y2_label=t("loss"), y_range=span)


def live_view(every: int) -> JobView:
    """How a running optimisation is drawn: the bar says which recipe and step, the preview and curves follow."""

    def caption(p: Progress) -> str:
        return t("{title}: step {step} of {steps}", title=t(PRESET_TITLES[p.phase]), step=p.step, steps=p.total)

    def preview(p: Progress):
        prob = p.metrics.get("prob", float("nan"))
        what = t("activation {a:.3f}", a=p.metrics.get("activation", 0.0)) if math.isnan(prob) else t("target {p:.1f}%", p=prob * 100)
        return p.preview, f"{t(PRESET_TITLES[p.phase])} · {t('step')} {p.step} · {what}"

    return JobView(caption=caption, preview=preview, chart=lambda p: live_curves(p.history), every=every)


def keep_in_gallery(backbone: Backbone, preset: str, result: IdealResult) -> str:
    """Add a result to the session's gallery (the oldest go first past the cap) with the held-out judge's verdict."""
    entry = {
        "id": f"{len(st.session_state.get(GALLERY, []))}-{next(_ids)}", "image": result.image, "preset": preset,
        "backbone": backbone.name, "target": result.target_name, "kind": result.target.kind, "prob": result.prob,
        "rank": result.rank, "history": result.history, "seconds": result.seconds, "steps_done": result.steps_done,
        "steps": result.settings.steps, "stopped": result.stopped, "second": None,
    }
    judge = held_out_judge(backbone, result.target)
    if judge is not None:
        try:
            entry["second"] = (judge, *class_rank(backbone_by_name(judge), result.image, result.target.index))
        except LensError:
            pass  # the judge could not load: the card simply has no second opinion
    gallery = st.session_state.setdefault(GALLERY, [])
    gallery.append(entry)
    del gallery[:-MAX_IDEAL_GALLERY]
    return entry["id"]


def describe(entry: dict) -> str:
    parts = [t(PRESET_TITLES[entry["preset"]])]
    if entry["prob"] is not None:
        parts.append(t("{net}: {p:.1f}%", net=entry["backbone"], p=entry["prob"] * 100))
    if entry["second"] is not None:
        judge, rank, prob = entry["second"]
        parts.append(t("{net} (never used): rank {r}, {p:.1f}%", net=judge, r=rank, p=prob * 100))
    if entry["stopped"]:
        parts.append(t("stopped at step {s} of {n}", s=entry["steps_done"], n=entry["steps"]))
    elif entry["seconds"]:
        parts.append(t("{n} steps in {s:.1f} s", n=entry["steps_done"], s=entry["seconds"]))
    return " · ".join(parts)


def show_results(last_id: str | None, pair_ids: list[str]) -> None:
    """The last image with its curves, the two recipes side by side, and the gallery with downloads."""
    gallery = st.session_state.get(GALLERY, [])
    by_id = {e["id"]: e for e in gallery}
    last = by_id.get(last_id)
    if last is not None:
        st.subheader(t("Result: {target}", target=last["target"]))
        if last["stopped"]:
            st.warning(t("Stopped at step {s} of {n}: this is the image so far.", s=last["steps_done"], n=last["steps"]))
        r1, r2 = st.columns([1, 2])
        r1.image(last["image"], caption=describe(last), width="stretch")
        if last["history"]:
            r2.plotly_chart(curves(last["history"]), key="ideal_result_curves", width="stretch")
    pair = [by_id[i] for i in pair_ids if i in by_id]
    if len(pair) == 2:
        st.subheader(t("The two recipes, same target: {target}", target=pair[0]["target"]))
        for col, entry in zip(st.columns(2), pair):
            col.image(entry["image"], caption=describe(entry), width="stretch")
        st.caption(
            t(
                "Both images convince the network they were made for. Only the robust one is also recognised by a second "
                "network that never took part: pixel noise found a weakness of one network, not the look of the class."
            )
        )
    if not gallery:
        st.info(t("Choose a target and a recipe, then make the image."))
        return
    st.subheader(t("This session's images"))
    columns = st.columns(4)
    for i, entry in enumerate(reversed(gallery)):
        col = columns[i % 4]
        col.image(entry["image"], caption=f"{entry['target']} · {describe(entry)}", width="stretch")
        name = f"ideal_{entry['target'].split(' (')[0].replace(' ', '_')}_{entry['preset']}_{entry['id']}.png"
        col.download_button(t("Download PNG"), encode_png(entry["image"]), file_name=name, mime="image/png", key=f"ideal_dl_{entry['id']}")
    if st.button(t("Clear the gallery"), key="ideal_clear"):
        for key in (GALLERY, "ideal_pair", "ideal_last"):
            st.session_state.pop(key, None)
        st.rerun()
