"""Widgets of the Adversarial lab: how a running attack is drawn."""

from __future__ import annotations

import plotly.graph_objects as go

from explain.jobs import Progress
from explain.ui.i18n import t
from explain.ui.jobs import JobView


def attack_view(targeted: bool) -> JobView:
    """The bar says the step and the goal's probability; the chart follows that probability step by step."""
    goal = t("target") if targeted else t("original class")

    def caption(p: Progress) -> str:
        prob = p.metrics.get("goal_prob", 0.0) * 100
        return t("step {s}/{n}: {goal} probability {p:.1f}%", s=p.step, n=p.total, goal=goal, p=prob)

    def chart(p: Progress) -> go.Figure:
        fig = go.Figure(go.Scatter(y=[v * 100 for v in p.history.get("goal_prob", ())], mode="lines+markers"))
        fig.update_layout(height=220, margin={"l": 10, "r": 10, "t": 10, "b": 30}, xaxis_title=t("step"), yaxis_title="%", yaxis_range=[0, 100])
        return fig

    return JobView(caption=caption, chart=chart)
