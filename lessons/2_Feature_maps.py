"""Feature maps: every layer's output, channel by channel."""

import pandas as pd
import streamlit as st

from explain.featuremaps import (
    COLORMAPS,
    channel_grid,
    channel_image,
    channel_stats,
    channel_values,
    is_vector,
    overlay_channel,
    top_channels,
)
from explain.images import encode_png
from explain.ui.classroom import kept_value, lesson_panel, presenter_mode, url_batch, url_state
from explain.ui.errors import run_safely
from explain.ui.featuremaps import cached_recording, cached_summary
from explain.ui.i18n import t
from explain.ui.microscope import microscope_button
from explain.ui.neuron import neuron_panel
from explain.ui.pickers import backbone_and_photo
from explain.ui.plots import bar_chart
from explain.ui.svgbars import bars_html

st.title(t("Feature maps"))
st.caption(t("Early layers respond to edges and colours; deeper layers to textures, parts and whole objects."))
lesson_panel("feature_maps")

backbone, _, image = backbone_and_photo()
recorded = run_safely(cached_recording, backbone, image)
if recorded is None:
    st.stop()
prepared, recording = recorded

info_by_name = {li.name: li for li in recording.layers}
linked = info_by_name.get(st.query_params.get("layer", ""))
st.session_state.setdefault("fm_main", linked is None or linked.main)  # a shared link to an inner layer lists it
only_main = st.toggle(t("Main layers only"), key="fm_main", help=t("Hide the layers inside each block."))
layers = [li for li in recording.layers if li.main or not only_main]
names = [li.name for li in layers]


def layer_label(name: str) -> str:
    li = info_by_name[name]
    return f"{names.index(name) + 1}. {name} · {li.type} · {li.shape[0]}×{li.shape[1]}×{li.shape[2]}"


if not presenter_mode():
    with st.expander(t("All {n} layers in network order", n=len(layers))):
        st.dataframe(
            pd.DataFrame([{"#": i + 1, t("layer"): li.name, t("type"): li.type, t("output (C×H×W)"): "×".join(map(str, li.shape))} for i, li in enumerate(layers)]),
            hide_index=True,
        )


def map_grid(layer: str, fmap) -> str:
    """The grid of one layer's channels, each tile under its number; returns the colour map chosen."""
    c = fmap.shape[0]
    if presenter_mode():  # fewer knobs on a projector: the strongest channels, big tiles
        count, order_by, normalise, cmap = min(c, 32), "strongest", "channel", next(iter(COLORMAPS))
    else:
        col1, col2, col3 = st.columns(3)
        count = col1.slider(t("Channels in the grid"), 1, c, min(c, 64), key="fm_count")
        kept_value("fm_order", "strongest", ("strongest", "index"))
        kept_value("fm_norm", "channel", ("channel", "layer"))
        order_by = col2.radio(t("Order"), ["strongest", "index"], format_func=lambda o: t({"strongest": "strongest first", "index": "by index"}[o]), key="fm_order", horizontal=True)
        normalise = col3.radio(t("Scale"), ["channel", "layer"], format_func=lambda o: t({"channel": "each channel", "layer": "whole layer"}[o]), key="fm_norm", horizontal=True)
        cmap = st.selectbox(t("Colour map"), list(COLORMAPS), key="fm_cmap")
    channels = top_channels(fmap, count) if order_by == "strongest" else list(range(count))
    grid = channel_grid(fmap, channels, normalise=normalise, cmap=cmap)
    # PNG keeps the channel numbers sharp; OpenCV encodes it 5x faster than PIL, and PNG bytes marked PNG are sent as they are
    st.image(encode_png(grid.image), caption=t("{layer}: {n} of {c} channels (row by row: {first}…)", layer=layer, n=len(channels), c=c, first=channels[:6]), width="stretch", output_format="PNG")
    stats = channel_stats(fmap)
    top = top_channels(fmap, min(10, c))
    # redrawn on every layer switch: inline SVG, not a Plotly chart (explain.ui.svgbars)
    st.markdown(bars_html([stats.mean[i] for i in top], top, t("Top channels by mean activation"), t("channel"), t("mean")), unsafe_allow_html=True)
    return cmap


def vector_bars(layer: str, fmap) -> None:
    """A layer whose channels are single numbers (global pooling): bars, strongest first, not a grid of 1×1 squares."""
    c = fmap.shape[0]
    count = min(c, 24) if presenter_mode() else st.slider(t("Channels in the chart"), 1, c, min(c, 24), key="fm_bars")
    shown, values = channel_values(fmap, count)
    title = t("{layer}: one number per channel, strongest first", layer=layer)
    st.plotly_chart(bar_chart(values, shown, title, t("channel"), t("value")), width="stretch", key="fm_vector")
    st.caption(t("Each channel of this layer is one number, not a map: global pooling averaged each channel's map over all positions. The last layer of this kind is what the classifier reads."))


@st.fragment
def layer_panel() -> None:
    with url_batch():  # a layer switch changes layer, channel, y and x: one URL message, not six
        _layer_panel()


def _layer_panel() -> None:
    url_state("layer", "fm_layer", names[len(names) // 2], options=names)
    layer = st.selectbox(t("Layer"), names, key="fm_layer", format_func=layer_label)
    fmap = recording.maps[layer]
    c, vector = fmap.shape[0], is_vector(fmap)
    if vector:
        vector_bars(layer, fmap)
    else:
        cmap = map_grid(layer, fmap)

    stats = channel_stats(fmap)
    strongest = top_channels(fmap, 1)[0]
    st.subheader(t("One channel") if vector else t("One channel, enlarged"))
    if st.session_state.get("fm_channel_layer", layer) != layer:  # a new layer starts on its strongest channel
        st.session_state["fm_channel"] = strongest
    st.session_state["fm_channel_layer"] = layer
    url_state("channel", "fm_channel", strongest, options=range(c), cast=int)
    channel = int(st.number_input(t("Channel"), 0, c - 1, key="fm_channel"))
    if vector:
        st.caption(t("value {v:.3f} · rank {r} of {n}", v=stats.mean[channel], r=channel_values(fmap)[0].index(channel) + 1, n=c))
    else:
        alpha = 0.5 if presenter_mode() else st.slider(t("Overlay strength"), 0.0, 1.0, 0.5, key="fm_alpha")
        e1, e2 = st.columns(2)
        side = prepared.cropped.shape[0]
        e1.image(channel_image(fmap, channel, (side, side), cmap), caption=t("channel {c}", c=channel), width="stretch")
        e2.image(overlay_channel(prepared.cropped, fmap, channel, alpha, cmap), caption=t("channel {c} over the photo", c=channel), width="stretch")
        st.caption(
            t("mean {m:.3f} · max {x:.3f} · active {a:.0f}% of positions", m=stats.mean[channel], x=stats.max[channel], a=stats.active_fraction[channel] * 100)
        )
    b1, b2 = st.columns(2)
    if b1.button(t("Ideal image of this channel ✨"), key="fm_to_ideal", help=t("Open Ideal images with this layer and channel chosen.")):
        st.session_state.update(ideal_layer=layer, ideal_channel=channel, ideal_mode="channel")
        st.switch_page("lessons/3_Ideal_images.py")
    microscope_button(layer, channel, "fm_to_microscope", b2, indexed=info_by_name[layer].main)
    neuron_panel(backbone, image, prepared, layer, channel, fmap)


layer_panel()

st.subheader(t("Early vs deep"))
main_names = [li.name for li in recording.layers if li.main and not is_vector(li.shape)]  # maps, not single numbers
s1, s2 = st.columns(2)
early = s1.selectbox(t("Early layer"), main_names, index=min(1, len(main_names) - 1), key="fm_early")
deep = s2.selectbox(t("Deep layer"), main_names, index=max(0, len(main_names) - 2), key="fm_deep")
for col, name in ((s1, early), (s2, deep)):
    fmap = recording.maps[name]
    grid = channel_grid(fmap, top_channels(fmap, 16), tile=64)
    li = info_by_name[name]
    col.image(encode_png(grid.image), caption=t("{layer}: {h}×{w} maps, {c} channels (16 strongest)", layer=name, h=li.shape[1], w=li.shape[2], c=li.shape[0]), width="stretch", output_format="PNG")

with st.expander(t("Model summary (Keras style)")):
    model_summary = run_safely(cached_summary, backbone)
    if model_summary is not None:
        st.dataframe(
            pd.DataFrame(
                [
                    {t("layer"): r.name, t("type"): r.type, t("output shape"): str(r.output_shape[1:]), t("parameters"): r.params, t("trainable"): {"yes": t("yes"), "no": t("no"), "partly": t("partly")}.get(r.trainable, "")}
                    for r in model_summary.rows
                ]
            ),
            hide_index=True,
        )
        st.markdown(
            t(
                "Total parameters: **{total:,}** · trainable: **{trainable:,}** · frozen: **{frozen:,}**",
                total=model_summary.total_params,
                trainable=model_summary.trainable_params,
                frozen=model_summary.frozen_params,
            )
        )
