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


def upright_yaxis_title(fig: go.Figure, text: str, side: str = "left") -> go.Figure:
    """Write a y-axis title horizontally above its axis (side "left" or "right"): rotated Hangul reads sideways."""
    if text:
        right = side == "right"
        fig.add_annotation(
            text=text, xref="paper", yref="paper", x=1 if right else 0, y=1, xanchor="right" if right else "left",
            yanchor="bottom", showarrow=False, font=dict(size=12, color="#7a7f89"), yshift=4,
        )
    return fig


def bar_chart(values, labels, title: str = "", xaxis: str = "", yaxis: str = "") -> go.Figure:
    """Vertical bars, one per label in the given order (channel numbers and class names are names, not quantities)."""
    fig = go.Figure(go.Bar(x=[str(label) for label in labels], y=list(values)))
    fig.update_xaxes(type="category")
    if xaxis and yaxis:
        fig.update_traces(hovertemplate=f"{xaxis} %{{x}}<br>{yaxis} %{{y:.3f}}<extra></extra>")
    top = (40 if title else 10) + (22 if yaxis else 0)
    fig.update_layout(title=title or None, xaxis_title=xaxis, height=280 + top - 40, margin=dict(l=10, r=10, t=top, b=30))
    return upright_yaxis_title(fig, yaxis)


def true_scale_widths(widths: list[int], largest: float = 3.0) -> list[float]:
    """Column weights that draw pictures side by side at their true relative sizes.

    largest: a picture wider than this many times the narrowest is drawn at that width (a phone photo would
    otherwise shrink a 224 px network input to a stamp); compare a weight with its width to tell.
    """
    cap = largest * min(widths)
    return [float(min(w, cap)) for w in widths]
