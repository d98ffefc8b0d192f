"""One neuron, explained (Feature maps): pick a position in the enlarged channel; see what it sees and how it was computed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from explain.images import Prepared
from explain.models import Backbone
from explain.neuron import NeuronArithmetic, explain_neuron, term_grids
from explain.receptive import NetworkTrace, draw_box, effective_field_image, effective_receptive_field, trace_network
from explain.ui.backbones import is_shared
from explain.ui.classroom import forget_choice, url_state
from explain.ui.errors import run_safely
from explain.ui.featuremaps import recording_key
from explain.ui.i18n import t
from explain.ui.session import cached, image_key

TRACES_KEPT = 1  # every module's input and output of one photo: as large as a recording, kept once
FIELDS_KEPT = 8
POINTWISE_ROWS = 12  # a 1×1 convolution's strongest contributors listed one by one
CHANNEL_GRIDS = 3  # a convolution over many channels: the input channels that add the most, shown as grids
TOLERANCE = 1e-4


def trace_photo(backbone: Backbone, prepared: Prepared) -> NetworkTrace:
    return trace_network(backbone.model, backbone.normalize(prepared.tensor.to(backbone.device)))


def cached_trace(backbone: Backbone, image: np.ndarray, prepared: Prepared) -> NetworkTrace:
    """Every module's input and output for (backbone, photo): one more forward pass, once per session and photo."""
    build = lambda: trace_photo(backbone, prepared)  # noqa: E731
    return cached("traces", recording_key(backbone, image), build, TRACES_KEPT, shared=is_shared(backbone))


def _cached_field(backbone: Backbone, image: np.ndarray, prepared: Prepared, neuron: tuple[str, int, int, int]):
    x = backbone.normalize(prepared.tensor.to(backbone.device))
    return cached("fields", (backbone.name, image_key(image), neuron), lambda: effective_receptive_field(backbone.model, x, *neuron), FIELDS_KEPT)


POSITION_MARKERS = 16  # clickable squares per side at most: a 112×112 map drawn as 12,544 markers took the browser seconds


def _block_side(h: int, w: int) -> int:
    """Positions per clickable square's side (1: every position its own square)."""
    return max(1, -(-max(h, w) // POSITION_MARKERS))


def _block_peak(channel_map: np.ndarray, y: float, x: float) -> tuple[int, int]:
    """The strongest position of the block whose square was clicked at (y, x)."""
    k = _block_side(*channel_map.shape)
    by, bx = int(y) // k * k, int(x) // k * k
    block = channel_map[by : by + k, bx : bx + k]
    dy, dx = np.unravel_index(int(block.argmax()), block.shape)
    return by + int(dy), bx + int(dx)


def _position_map(channel_map: np.ndarray, y: int, x: int) -> go.Figure:
    """The channel's values as clickable squares, the chosen position ringed.

    A map larger than POSITION_MARKERS per side is drawn as one square per k×k block at the block's centre, coloured by
    its strongest value (a click picks that strongest position, see `_block_peak`; the number inputs reach every one):
    the browser draws ~1,000 markers instead of up to 12,544.
    """
    h, w = channel_map.shape
    k = _block_side(h, w)
    ys, xs, values = [], [], []
    for by in range(0, h, k):
        for bx in range(0, w, k):
            ys.append(min(h - 1, by + (k - 1) / 2))
            xs.append(min(w - 1, bx + (k - 1) / 2))
            values.append(float(channel_map[by : by + k, bx : bx + k].max()))
    size = max(3, int(300 / max(h, w) * k) - 1)
    fig = go.Figure(
        go.Scatter(
            x=xs, y=ys, mode="markers", customdata=values,
            marker=dict(symbol="square", size=size, color=values, colorscale="Viridis", line=dict(width=0)),
            hovertemplate="y %{y} · x %{x}<br>" + t("value") + " %{customdata:.4f}<extra></extra>",
            unselected=dict(marker=dict(opacity=1)),
        )
    )
    fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers", hoverinfo="skip", marker=dict(symbol="square-open", size=size + 6, color="#ff4020", line=dict(width=2))))
    fig.update_xaxes(range=[-0.5, w - 0.5], showgrid=False, zeroline=False, title="x")
    fig.update_yaxes(range=[h - 0.5, -0.5], showgrid=False, zeroline=False, scaleanchor="x", title="y")
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=10, b=10), showlegend=False, dragmode=False, clickmode="event+select")
    return fig


def _choose_position(layer: str, channel: int, channel_map: np.ndarray) -> tuple[int, int]:
    """The position from the URL, a click on the map, or the two number inputs; a new channel starts at its peak."""
    h, w = channel_map.shape
    if st.session_state.get("fm_pos_for", (layer, channel)) != (layer, channel):  # a new layer or channel starts at its peak
        forget_choice("y", "fm_y")
        forget_choice("x", "fm_x")
    st.session_state["fm_pos_for"] = (layer, channel)
    peak_y, peak_x = np.unravel_index(int(channel_map.argmax()), channel_map.shape)
    url_state("y", "fm_y", int(peak_y), options=range(h), cast=int)
    url_state("x", "fm_x", int(peak_x), options=range(w), cast=int)
    if h * w > 1:
        y, x = st.session_state["fm_y"], st.session_state["fm_x"]
        event = st.plotly_chart(
            _position_map(channel_map, y, x), key=f"fm_pos_map_{layer}_{channel}_{y}_{x}", on_select="rerun",
            selection_mode="points", width="stretch", config={"displayModeBar": False},
        )
        points = [p for p in (event.selection.points if event else []) if p.get("curve_number") == 0]
        clicked = _block_peak(channel_map, points[0]["y"], points[0]["x"]) if points else None
        if clicked is not None and clicked != (y, x):
            st.session_state["fm_y"], st.session_state["fm_x"] = clicked
            st.rerun(scope="fragment")  # redraw the map with the new position ringed
    c1, c2 = st.columns(2)
    y = int(c1.number_input(t("Row y"), 0, h - 1, key="fm_y"))
    x = int(c2.number_input(t("Column x"), 0, w - 1, key="fm_x"))
    return y, x


def neuron_panel(backbone: Backbone, image: np.ndarray, prepared: Prepared, layer: str, channel: int, fmap: torch.Tensor) -> None:
    """Pick a neuron of the enlarged channel; draw its receptive field, its effective receptive field and its arithmetic."""
    st.subheader(t("One neuron, explained"))
    st.caption(t("Click a position in the map (or type its row and column): the neuron there, its view of the photo and its arithmetic."))
    trace = run_safely(cached_trace, backbone, image, prepared)
    if trace is None:
        return
    channel_map = fmap[channel].numpy()
    left, right = st.columns([2, 3])
    with left:
        y, x = _choose_position(layer, channel, channel_map)
    arithmetic = run_safely(explain_neuron, trace, layer, channel, y, x)
    field = run_safely(_cached_field, backbone, image, prepared, (layer, channel, y, x))
    if arithmetic is None or field is None:
        return
    box = arithmetic.receptive_field
    with right:
        r1, r2 = st.columns(2)
        if box is not None:
            r1.image(draw_box(prepared.cropped, box), width="stretch", caption=t(
                "receptive field: {w}×{h} pixels (x {x0}..{x1}, y {y0}..{y1})", w=box[2] - box[0], h=box[3] - box[1], x0=box[0], x1=box[2] - 1, y0=box[1], y1=box[3] - 1))
        if field.empty:
            r2.info(t("This neuron's gradient is zero everywhere (its activation is flat here, e.g. ReLU6 at 0 or 6): no pixel change would move it."))
        else:
            b = field.box90
            r2.image(effective_field_image(prepared.cropped, field, box), width="stretch", caption=t(
                "effective receptive field: 90% of the gradient's mass lies in {w}×{h} pixels (white)", w=b[2] - b[0], h=b[3] - b[1]))
    st.caption(t("The red box is computed from every layer's kernel, stride, padding and dilation: no pixel outside it can change this neuron. The gradient shows how much each pixel inside does: most of it comes from the centre."))
    arithmetic_panel(arithmetic)


STEP_NAMES = {"bias": "bias", "batch norm": "batch norm", "+ shortcut": "+ shortcut", "input": "input"}  # activations keep their names


def _fmt(v: float) -> str:
    return f"{v:.4f}"


def _grids(arithmetic: NeuronArithmetic) -> None:
    inputs, weights, products = term_grids(arithmetic)
    order = np.argsort(-np.abs(products.reshape(len(products), -1).sum(1)), kind="stable")[:CHANNEL_GRIDS]
    first = arithmetic.terms[0].channel if arithmetic.terms else 0
    for ci in order:
        st.markdown(t("input channel {c}: window × kernel = products (sum {s})", c=first + int(ci), s=_fmt(float(products[ci].sum()))))
        cols = st.columns(3)
        for col, grid, name in zip(cols, (inputs[ci], weights[ci], products[ci]), (t("input window"), t("kernel"), t("products"))):
            col.caption(name)
            col.table(pd.DataFrame(grid).map(_fmt), hide_index=True, hide_header=True)
    if len(products) > CHANNEL_GRIDS:
        rest = float(products.sum() - sum(products[ci].sum() for ci in order))
        st.caption(t("… and {n} more input channels add {s}", n=len(products) - len(order), s=_fmt(rest)))


def arithmetic_panel(a: NeuronArithmetic) -> None:
    """The terms, their sum and the steps after it, ending at the value the network recorded.

    Small static tables (st.table), not interactive dataframes: the panel is redrawn on every layer switch, and each
    dataframe is a canvas grid the browser mounts anew.
    """
    kinds = {
        "conv": t("A regular convolution: every input channel's {k} window times its kernel, all summed.", k="×".join(map(str, a.kernel))),
        "depthwise": t("A depthwise convolution: it sees one input channel only, through a {k} window.", k="×".join(map(str, a.kernel))),
        "pointwise": t("A 1×1 convolution: a weighted sum over the {n} channels at this one position, largest contributions first.", n=a.window[0]),
        "grouped": t("A grouped convolution: it sees {n} of the input channels.", n=a.window[0]),
        "avgpool": t("Average pooling: the mean of {n} values of one channel.", n=a.window[1] * a.window[2]),
        "maxpool": t("Max pooling: the largest of {n} values of one channel.", n=a.window[1] * a.window[2]),
        "elementwise": t("An element-wise layer: it changes this one number only."),
        "unexplained": t("CNN Lens does not spell out the arithmetic of a {type} layer.", type=a.source_type),
    }
    st.markdown(f"**{t('Arithmetic')}** · " + kinds[a.kind] + (f" (`{a.source}`, {a.source_type})" if a.source and a.source != a.layer else ""))
    if a.kind == "unexplained":
        return
    if a.kind in ("conv", "depthwise", "grouped") and len(a.terms) == a.window[0] * a.window[1] * a.window[2] > 0:
        _grids(a)
    elif a.terms:
        rows = a.terms[:POINTWISE_ROWS]
        st.table(pd.DataFrame([
            {t("input"): f"[{r.channel}, {r.y}, {r.x}]", t("value"): _fmt(r.input), t("weight"): _fmt(r.weight), t("product"): _fmt(r.product)} for r in rows
        ]), hide_index=True)
        if len(a.terms) > len(rows):
            rest = sum(r.product for r in a.terms[len(rows):])
            st.caption(t("… and {n} more terms add {s}", n=len(a.terms) - len(rows), s=_fmt(rest)))
    if a.terms or a.kind in ("avgpool", "maxpool"):
        st.markdown(t("{reduce} of the terms = **{s}**", reduce=t({"sum": "sum", "max": "largest", "mean": "mean"}[a.reduce]), s=_fmt(a.products_sum)))
    if a.steps:
        st.table(pd.DataFrame([{t("step"): t(STEP_NAMES[s.name]) if s.name in STEP_NAMES else s.name, t("numbers"): s.detail, t("value"): _fmt(s.value)} for s in a.steps]), hide_index=True)
    ok = abs(a.result - a.value) <= TOLERANCE * max(1.0, abs(a.value))
    line = t("Result **{r}**; the network recorded **{v}** at this neuron.", r=f"{a.result:.6f}", v=f"{a.value:.6f}")
    (st.success if ok else st.warning)(("✅ " if ok else "⚠️ ") + line)
