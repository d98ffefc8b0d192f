"""Channel microscope: the photos of a whole set that excite one channel most, cut to what the channel can see."""

import streamlit as st

from explain.microscope import query_channel
from explain.ui.backbones import current_backbone
from explain.ui.classroom import lesson_panel, presenter_mode
from explain.ui.errors import run_safely
from explain.ui.i18n import t
from explain.ui.microscope import (
    channel_index,
    channel_picker,
    histogram_figure,
    ideal_panel,
    photo_set_picker,
    top_count,
    top_grid,
)

st.title(t("Channel microscope"))
st.caption(t("What does one channel look for? The photos of a whole set that excite it most, each cut to the part of the photo the channel can see."))
lesson_panel("channel_microscope")

backbone = current_backbone()
if backbone is None:
    st.stop()
picked = photo_set_picker()
if picked is None:
    st.info(t("Choose the photos to look through."))
    st.stop()
photos, label = picked
index = channel_index(backbone, photos, label)
if index is None:
    st.stop()
st.caption(t("{n} photos of {set}, indexed for {model}: {layers} main layers, each photo's maximum of every channel.",
             n=len(index), set=label, model=backbone.name, layers=len(index.layers)))

layer, channel = channel_picker(index)
k = top_count()
context = False if presenter_mode() else st.toggle(t("Show each patch in its photo"), key="mic_context")
query = run_safely(query_channel, index, layer, channel, k)
if query is None:
    st.stop()

st.subheader(t("The {k} photos that excite {layer} channel {c} most", k=len(query.top), layer=layer, c=channel))
top_grid(index, query, context, columns=3)
st.caption(t("Each patch is the channel's receptive field around the photo's strongest position: the exact box of input pixels "
             "(of the {s}×{s} network input) that can reach that neuron. Early layers see a few pixels, deep ones most of the photo.",
             s=query.input_size))

left, right = st.columns(2)
with left:
    st.subheader(t("How often it fires"))
    st.plotly_chart(histogram_figure(query), width="stretch", key="mic_hist")
    st.caption(t("Each photo's strongest response of this channel; the median photo reaches {m:.3f}. A channel that fires for "
                 "few photos is choosy: its top patches show what it looks for.", m=query.median))
with right:
    st.subheader(t("Its ideal image"))
    ideal_panel(backbone, layer, channel)
