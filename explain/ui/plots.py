"""Plotly figures shared by the pages."""

from __future__ import annotations

import plotly.graph_objects as go

from explain.classify import ClassScore


def topk_bar(scores: list[ClassScore], title: str = "", color: str = "#4C78A8") -> go.Figure:
    """Horizontal bars of class probabilities, most probable on top."""
    labels = [f"{s.label} ({s.index})" for s in scores][::-1]
    probs = [s.prob * 100 for s in scores][::-1]
    fig = go.Figure(
        go.Bar(x=probs, y=labels, orientation="h", marker_color=color, text=[f"{p:.1f}%" for p in probs], textposition="auto")
    )
    fig.update_layout(
        title=title or None,
        xaxis_title="%",
        xaxis_range=[0, 100],
        height=60 + 38 * len(scores),
        margin=dict(l=10, r=10, t=40 if title else 10, b=30),
    )
    return fig


def bar_chart(values, labels, title: str = "", xaxis: str = "", yaxis: str = "") -> go.Figure:
    fig = go.Figure(go.Bar(x=list(labels), y=list(values)))
    fig.update_xaxes(type="category")  # channel numbers are names, not quantities
    fig.update_layout(title=title or None, xaxis_title=xaxis, yaxis_title=yaxis, height=280, margin=dict(l=10, r=10, t=40 if title else 10, b=30))
    return fig
