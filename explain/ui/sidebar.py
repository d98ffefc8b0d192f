"""The sidebar every page shares: language, presenter mode, backbone picker with weight status, device in use."""

from __future__ import annotations

import streamlit as st
import torch

from explain.models import DEFAULT_BACKBONE, default_device
from explain.ui.backbones import backbone_choices, backbone_label, weights_file_loader, weights_notice
from explain.ui.classroom import classroom_controls, url_state
from explain.ui.i18n import t

# Streamlit's sidebar is 300 px wide whatever the text size: the picker's value (an input, it cannot wrap) lost its
# weight badge ("MobileNetV3-Large · ⚪ 다운로드 필요"), and in presenter mode even "EfficientNet-Lite0 · (". In rem, the
# width grows with presenter mode's larger text; a collapsed sidebar keeps Streamlit's own rules.
#
# No CSS transitions anywhere in the app: during a job every progress message started Streamlit's fades (stale
# elements, the status widget, the progress bar), which the browser animates frame by frame on the same cores the
# job runs on. An attack's 3 s in Chromium cost 1.2-1.5 CPU-s of browser work with them, 0.63-0.71 without
# (/proc, 4 attacks each); two torch threads lose far more than that when one core is taken. Spinners (keyframe
# animations) still turn; stale elements still dim, at once instead of fading.
SIDEBAR_CSS = """
<style>
section[data-testid="stSidebar"][data-collapsed="false"] { min-width: min(21.5rem, 100vw); }
.stApp *, .stApp *::before, .stApp *::after { transition: none !important; }
</style>
"""


def sidebar() -> None:
    """The shared sidebar: language, backbone picker with weight status, device in use."""
    with st.sidebar:
        st.html(SIDEBAR_CSS)
        classroom_controls()
        choices = backbone_choices()
        if "backbone_pending" in st.session_state:
            st.session_state["backbone"] = st.session_state.pop("backbone_pending")
        url_state("backbone", "backbone", DEFAULT_BACKBONE, options=choices)
        st.selectbox(t("Backbone"), choices, key="backbone", format_func=backbone_label)
        weights_notice(st.session_state["backbone"])
        with st.expander(t("Load a weights file")):
            weights_file_loader()
        device = default_device()
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else t("CPU")
        st.caption(t("Device: {device}", device=label))
