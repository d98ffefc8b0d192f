"""Widgets of the Ideal images page: the live curves of the optimisation and one gallery card."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explain.ui.i18n import t

TERM_NAMES = {"objective": "objective (−score)", "tv": "TV", "l2": "L2", "blur": "blur", "total": "total loss"}


def curves(history: dict[str, list[float]], height: int = 300) -> go.Figure:
    """Target probability (left, %) and every loss term (right) against the step."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    probs = history.get("prob", [])
    steps = list(range(1, len(probs) + 1))
    if probs and not all(math.isnan(p) for p in probs):
        fig.add_trace(go.Scatter(x=steps, y=[p * 100 for p in probs], name=t("target probability %"), line=dict(width=3)), secondary_y=False)
        fig.update_yaxes(title_text="%", range=[0, 100], secondary_y=False)
    else:
        fig.add_trace(go.Scatter(x=steps, y=history.get("activation", []), name=t("channel activation"), line=dict(width=3)), secondary_y=False)
        fig.update_yaxes(title_text=t("activation"), secondary_y=False)
    for key in TERM_NAMES:
        if key in history:
            fig.add_trace(go.Scatter(x=steps, y=history[key], name=t(TERM_NAMES[key]), line=dict(dash="dot")), secondary_y=True)
    fig.update_yaxes(title_text=t("loss"), secondary_y=True)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=30), xaxis_title=t("step"), legend=dict(orientation="h", y=-0.25))
    return fig
