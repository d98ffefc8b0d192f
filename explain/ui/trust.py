"""The "Can I trust this map?" panel and the layer sweep, for any Backbone (ImageNet or "my model").

Both are long jobs: they run through the one job runner (progress bar, Stop, queued notice) on a click,
and their results stay in the session for the same model, photo, class and choices.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from explain.cam import CAM_METHODS, LAYER_METHODS, heatmap, overlay_cam
from explain.jobs import Progress
from explain.models import Backbone
from explain.trust import TrustReport, layer_sweep, trust_report
from explain.ui.cam import SLOW_METHODS, CamSettings, model_key, pixels_digest
from explain.ui.i18n import t
from explain.ui.jobs import JobView, run_job


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def headline(report: TrustReport, k: int) -> str:
    """One sentence a student can check: how much of the photo must go before the class is half gone."""
    m = report.methods[k]
    half = report.target_prob / 2
    return t(
        "**{method}** removes the {label} in {ours} of the pixels; a random map needs {random}.",
        method=t(CAM_METHODS[m.method]), label=report.target_label,
        ours=_pct(m.deletion.fraction_at(half)), random=_pct(report.random_deletion.fraction_at(half)),
    )


def _curves(report: TrustReport) -> go.Figure:
    fig = go.Figure()
    for m in report.methods:
        fig.add_scatter(x=m.deletion.fractions, y=m.deletion.probs, mode="lines", name=t(CAM_METHODS[m.method]))
    fig.add_scatter(x=report.random_deletion.fractions, y=report.random_deletion.probs, mode="lines",
                    name=t("random map"), line={"dash": "dash", "color": "gray"})
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title=t("Deletion: the class probability as pixels go"),
                      xaxis_title=t("share of pixels removed (most relevant first)"), yaxis_title=t("probability"))
    return fig


def _table(report: TrustReport) -> list[dict]:
    rows = []
    for m in report.methods:
        last = m.randomisation[-1] if m.randomisation else None
        rows.append({
            t("Method"): t(CAM_METHODS[m.method]),
            t("Deletion AUC ↓"): _num(m.deletion.auc),
            t("Insertion AUC ↑"): _num(m.insertion.auc),
            t("ROAD ↓"): _num(float(np.mean(m.road.probs))) if m.road else "–",
            t("Inverted map's deletion AUC"): _num(m.inverted_deletion.auc),
            t("Rank correlation, all blocks random"): _num(last.spearman if last else None),
            t("Rank correlation with another class"): _num(m.class_sensitivity.spearman if m.class_sensitivity else None),
            t("Seconds"): f"{m.seconds:.1f}",
        })
    rows.append({
        t("Method"): t("random map"), t("Deletion AUC ↓"): _num(report.random_deletion.auc),
        t("Insertion AUC ↑"): _num(report.random_insertion.auc),
        t("ROAD ↓"): _num(float(np.mean(report.random_road.probs))) if report.random_road else "–",
    })
    return rows


def _draw_report(report: TrustReport, base: np.ndarray, settings: CamSettings) -> None:
    if report.stopped:
        st.warning(t("Stopped: only the methods finished so far are shown."))
    for k in range(len(report.methods)):
        st.markdown(headline(report, k))
    st.dataframe(_table(report), hide_index=True, width="stretch")
    st.plotly_chart(_curves(report), width="stretch")
    for m in report.methods:
        if m.randomisation:
            st.markdown(t("**{method}** while the network is re-initialised from the top, block by block:", method=t(CAM_METHODS[m.method])))
            cols = st.columns(len(m.randomisation) + 1)
            cols[0].image(heatmap(m.cam_map, cmap=settings.cmap), caption=t("trained"), width="stretch")
            for col, step in zip(cols[1:], m.randomisation):
                col.image(heatmap(step.cam_map, cmap=settings.cmap), width="stretch",
                          caption=f"−{step.block} ρ {_num(step.spearman)} SSIM {_num(step.ssim)}")
        if m.class_sensitivity:
            c1, c2 = st.columns(2)
            c1.image(overlay_cam(base, m.cam_map, settings.alpha, settings.cmap), caption=report.target_label, width="stretch")
            c2.image(overlay_cam(base, m.class_sensitivity.cam_map, settings.alpha, settings.cmap), width="stretch",
                     caption=t("{label} (a random class) · rank correlation {rho}", label=m.class_sensitivity.other_label,
                               rho=_num(m.class_sensitivity.spearman)))


def _caption(progress: Progress) -> str:
    return t("Checking: {phase} ({s} of {n})", phase=progress.phase, s=progress.step, n=progress.total)


def trust_panel(backbone: Backbone, x01: torch.Tensor, base: np.ndarray, target: int, settings: CamSettings, key: str = "trust") -> None:
    """Deletion / insertion / ROAD against a random map, cascading randomisation and class sensitivity, on a click."""
    st.markdown(t("Scores for the class **{label}**: lower deletion and ROAD, higher insertion than the random map mean the map points at what the network uses.", label=backbone.categories[target]))
    c1, c2, c3 = st.columns([3, 1, 1])
    default = [settings.method] if settings.method not in SLOW_METHODS else ["gradcam"]
    methods = c1.multiselect(t("Methods to check"), list(CAM_METHODS), default=default, format_func=lambda m: t(CAM_METHODS[m]), key=f"{key}_methods")
    road = c2.toggle(t("ROAD"), value=True, key=f"{key}_road",
                     help=t("Remove and debias: removed pixels are filled in from their neighbours (one linear solve per point, about a second per method)."))
    sanity = c3.toggle(t("Sanity checks"), value=True, key=f"{key}_sanity", help=t("Model randomisation and another class: ten more maps per method."))
    if any(m in SLOW_METHODS for m in methods):
        st.caption(t("Score-CAM, Ablation-CAM, occlusion and integrated gradients make hundreds of forward passes per map: minutes on a CPU."))
    layer = settings.layer if settings.method in LAYER_METHODS else None
    state_key = (*model_key(backbone), pixels_digest(x01), target, tuple(methods), layer, road, sanity, settings.samples)
    start = st.button(t("Check the maps"), key=f"{key}_start", disabled=not methods)
    work = None
    if start:
        def work(job):
            return trust_report(backbone, x01, target, methods, layer, road=road, randomisation=sanity, class_sensitivity=sanity,
                                cam_options={"samples": settings.samples}, callback=job.callback, should_stop=job.should_stop)
    outcome = run_job(f"{key}_job", t("Can I trust this map?"), work, JobView(caption=_caption))
    if outcome is not None and outcome.result is not None:
        st.session_state[f"{key}_result"] = (state_key, outcome.result)
    kept = st.session_state.get(f"{key}_result")
    if kept and kept[0] == state_key:
        _draw_report(kept[1], base, settings)


def sweep_panel(backbone: Backbone, x01: torch.Tensor, target: int, settings: CamSettings, key: str = "sweep") -> None:
    """Every main layer's map for the class in one strip, each with its deletion AUC."""
    method = settings.method if settings.method in LAYER_METHODS and settings.method != "guided_gradcam" else "gradcam"
    state_key = (*model_key(backbone), pixels_digest(x01), target, method)
    start = st.button(t("Sweep the layers with {method}", method=t(CAM_METHODS[method])), key=f"{key}_start")
    work = (lambda job: layer_sweep(backbone, x01, target, method)) if start else None
    outcome = run_job(f"{key}_job", t("Layer sweep"), work)
    if outcome is not None and outcome.result is not None:
        st.session_state[f"{key}_result"] = (state_key, outcome.result)
    kept = st.session_state.get(f"{key}_result")
    if kept and kept[0] == state_key:
        scores = kept[1]
        best = min(scores, key=lambda s: s.deletion_auc)
        st.caption(t("Deletion AUC under each map (lower = the map finds what the network uses); best: {layer}.", layer=best.layer))
        per_row = 7
        for s in range(0, len(scores), per_row):
            cols = st.columns(per_row)
            for col, score in zip(cols, scores[s : s + per_row]):
                col.image(heatmap(score.cam_map, cmap=settings.cmap), caption=f"{score.layer} · {score.deletion_auc:.3f}", width="stretch")
