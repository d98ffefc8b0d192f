"""Network overview: the whole network for one photo, from the input to the class scores, in one picture."""

import streamlit as st

from explain.limits import MAX_OVERVIEW_CHANNELS
from explain.overview import DEFAULT_OVERVIEW_CHANNELS
from explain.ui.classroom import lesson_panel, presenter_mode, url_state
from explain.ui.errors import run_safely
from explain.ui.i18n import t
from explain.ui.overview import cached_overview, overview_chart
from explain.ui.pickers import backbone_and_photo

st.title(t("Network overview"))
st.caption(t("The whole network at a glance: the photo, each main layer's strongest channels, then the classes it scores highest."))
lesson_panel("network_overview")

backbone, _, image = backbone_and_photo()
if presenter_mode():  # fewer knobs on a projector, a taller picture
    channels, height = DEFAULT_OVERVIEW_CHANNELS, 620
else:
    url_state("channels", "ov_channels", DEFAULT_OVERVIEW_CHANNELS, options=range(1, MAX_OVERVIEW_CHANNELS + 1), cast=int)
    channels = st.slider(t("Channels per layer (strongest first)"), 1, MAX_OVERVIEW_CHANNELS, key="ov_channels")
    height = 460 if channels <= 8 else 700
overview = run_safely(cached_overview, backbone, image, channels)
if overview is None:
    st.stop()

overview_chart(overview, height)
st.caption(
    t(
        "{n} main layers of {model}, left to right in the order the photo flows through them. Each column shows the "
        "{k} channels with the highest mean activation, each scaled to its own range; a column of flat squares is a "
        "layer whose channels are single numbers (global pooling), coloured on one scale.",
        n=len(overview.columns), model=backbone.name, k=channels,
    )
)
