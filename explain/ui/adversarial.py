"""Widgets of the Adversarial lab: how a running attack is drawn, and how its PNG fares in other pipelines."""

from __future__ import annotations

import plotly.graph_objects as go

from explain.jobs import Progress
from explain.ui.i18n import t
from explain.ui.jobs import JobView
from explain.ui.livechart import Line, Panel


def attack_view(targeted: bool) -> JobView:
    """The bar says the step and the goal's probability; the chart follows that probability step by step."""
    goal = t("target") if targeted else t("original class")

    def caption(p: Progress) -> str:
        prob = p.metrics.get("goal_prob", 0.0) * 100
        return t("step {s}/{n}: {goal} probability {p:.1f}%", s=p.step, n=p.total, goal=goal, p=prob)

    def chart(p: Progress) -> Panel:
        line = Line(t("{goal} probability", goal=goal), [v * 100 for v in p.history.get("goal_prob", ())])
        return Panel((line,), x_label=t("step"), y_label="%", y_range=(0.0, 100.0))

    return JobView(caption=caption, chart=chart)


def family_labels() -> dict[str, str]:
    """The view families of explain.adversarial.views, in the chosen language."""
    return {
        "own": t("this app (centre crop)"),
        "torchvision": t("torchvision (Resize + CenterCrop)"),
        "shifts": t("crop shifted by up to 2 px"),
        "resize": t("resized ±4 px (OpenCV, PIL kernels)"),
        "jpeg90": t("re-saved as JPEG (quality 90)"),
    }


def robustness_panel(result) -> None:
    """How the saved PNG fares in other pipelines' views: one bar per family, and the counts in words."""
    import streamlit as st

    robust = result.robust
    if robust is None:
        return
    st.subheader(t("Does it hold in other pipelines?"))
    families = list(robust.views)
    shares = robust.share()
    labels = family_labels()
    names = [labels.get(f, f) for f in families]
    fig = go.Figure(
        go.Bar(
            x=[shares[f] * 100 for f in families], y=names, orientation="h",
            # a short bar has no room inside: its count goes beside it (a zero would otherwise leave the row blank)
            text=[f"{robust.fooled[f]}/{robust.views[f]}" for f in families],
            textposition=["inside" if shares[f] >= 0.2 else "outside" for f in families], cliponaxis=False,
            marker_color=["#54A24B" if shares[f] == 1 else "#F58518" if shares[f] > 0 else "#E45756" for f in families],
        )
    )
    fig.update_layout(
        height=60 + 34 * len(families), margin={"l": 10, "r": 10, "t": 10, "b": 30},
        xaxis_range=[0, 100], xaxis_title=t("views that give the goal (%)"), yaxis_autorange="reversed",
    )
    st.plotly_chart(fig, width="stretch", key="adv_robust")
    st.caption(
        t(
            "It fools the network in {s}/{n} shifted views and in {r}/{m} resized ones. "
            "Another program that opens the PNG may crop it a pixel further or resize it with another kernel: "
            "an attack made for one exact crop often fails there.",
            s=robust.fooled["shifts"], n=robust.views["shifts"], r=robust.fooled.get("resize", 0), m=robust.views.get("resize", 0),
        )
    )
