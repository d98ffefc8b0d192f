"""The Network overview page's picture: one clickable figure of the whole network, kept per session."""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explain.images import encode_png
from explain.models import Backbone
from explain.overview import NetworkOverview, network_overview
from explain.ui.featuremaps import cached_recording
from explain.ui.i18n import t
from explain.ui.microscope import microscope_button
from explain.ui.session import cached, image_key

OVERVIEWS_KEPT = 2
FEATURE_MAPS_PAGE = "lessons/2_Feature_maps.py"
LABEL_SPACE = 120  # pixels above the picture for the rotated layer names
CLASSES_WIDTH = 230  # pixels right of the picture for the top classes


def cached_overview(backbone: Backbone, image: np.ndarray, channels: int) -> NetworkOverview:
    """The overview of (backbone, photo): the Feature maps page's recording of every layer, re-used, then composed once."""
    prepared, recording = cached_recording(backbone, image)
    key = (backbone.name, image_key(image), channels)
    return cached("overviews", key, lambda: network_overview(recording, prepared.cropped, backbone.categories, channels), OVERVIEWS_KEPT)


def thumbnails(overview: NetworkOverview) -> list[tuple[str, int]]:
    """(layer, channel) of every thumbnail, column by column: the order of the figure's clickable points."""
    return [(col.layer, ch) for col in overview.columns for ch in col.channels]


def overview_figure(overview: NetworkOverview, height: int = 460) -> go.Figure:
    """The picture with a clickable point on every thumbnail, the layer names above and the top classes beside it."""
    h, w = overview.image.shape[:2]
    uri = "data:image/png;base64," + base64.b64encode(encode_png(overview.image)).decode("ascii")
    fig = go.Figure(go.Image(source=uri, x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    xs, ys, text = [], [], []
    for ci, col in enumerate(overview.columns):
        for row, (channel, mean) in enumerate(zip(col.channels, col.means)):
            top, left, th, tw = overview.tile_box(ci, row)
            xs.append(left + tw / 2)
            ys.append(top + th / 2)
            text.append(t("{layer} · channel {c} · mean {m:.3f}", layer=col.layer, c=channel, m=mean))
    fig.add_trace(
        go.Scatter(
            x=xs, y=ys, mode="markers", text=text, hovertemplate="%{text}<br>" + t("Click: open in Feature maps") + "<extra></extra>",
            marker=dict(symbol="square", size=22, color="rgba(0,0,0,0)", line=dict(width=0)),
            selected=dict(marker=dict(color="rgba(255,80,40,0.35)")), unselected=dict(marker=dict(opacity=1)),
        )
    )
    for ci, col in enumerate(overview.columns):
        _, left, _, tw = overview.tile_box(ci, 0)
        fig.add_annotation(
            x=left + tw / 2, y=-6, text=f"{col.layer} · {'×'.join(map(str, col.shape))}", textangle=-60, showarrow=False,
            xanchor="left", yanchor="bottom", font=dict(size=10),
        )
    fig.add_annotation(x=overview.photo_width / 2, y=-6, text=t("input"), showarrow=False, yanchor="bottom", font=dict(size=11))
    lines = [f"<b>{t('Top classes')}</b>"] + [f"{r.prob * 100:5.1f}%  {r.label}" for r in overview.top]
    fig.add_annotation(x=w + 12, y=0, text="<br>".join(lines), showarrow=False, xanchor="left", yanchor="top", align="left", font=dict(size=12))
    fig.update_xaxes(visible=False, range=[0, w + CLASSES_WIDTH])
    fig.update_yaxes(visible=False, range=[h, -LABEL_SPACE], scaleanchor="x")
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=0, b=0), dragmode=False, showlegend=False, clickmode="event+select")
    return fig


def open_in_feature_maps(layer: str, channel: int) -> None:
    """Switch to Feature maps with this layer and channel chosen; the URL names them (a shareable link)."""
    st.session_state.update(fm_layer=layer, fm_channel=int(channel), fm_channel_layer=layer, fm_main=True)
    st.session_state.get("_url_last", {}).update(fm_layer=layer, fm_channel=int(channel))
    params = {k: st.query_params[k] for k in ("lang", "backbone", "sample") if k in st.query_params}
    st.switch_page(FEATURE_MAPS_PAGE, query_params=params | {"layer": layer, "channel": str(int(channel))})


def overview_chart(overview: NetworkOverview, height: int = 460) -> None:
    """Draw the figure; a click on a thumbnail (or the picker below it, for the keyboard) opens it in Feature maps."""
    points = thumbnails(overview)
    event = st.plotly_chart(
        overview_figure(overview, height), key="ov_chart", on_select="rerun", selection_mode="points", width="stretch",
        config={"displayModeBar": False},
    )
    picked = [p.get("point_index") for p in (event.selection.points if event else []) if p.get("curve_number") == 1]
    if picked and picked[0] is not None and 0 <= picked[0] < len(points):
        open_in_feature_maps(*points[picked[0]])
    st.caption(t("Click a thumbnail to open that layer and channel in Feature maps; the link then names them."))
    c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    choice = c1.selectbox(
        t("Or pick a thumbnail"), range(len(points)), key="ov_pick",
        format_func=lambda i: t("{layer} · channel {c}", layer=points[i][0], c=points[i][1]),
    )
    if c2.button(t("Open in Feature maps 🧩"), key="ov_open"):
        open_in_feature_maps(*points[choice])
    microscope_button(*points[choice], key="ov_microscope", where=c3)
