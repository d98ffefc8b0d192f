"""The sidebar every page shares: language, presenter mode, backbone picker with weight status, device in use."""

from __future__ import annotations

import streamlit as st
import torch

from explain.models import DEFAULT_BACKBONE, REGISTRY, default_device, weight_status
from explain.ui.backbones import backbone_choices, backbone_label, weights_file_loader
from explain.ui.classroom import classroom_controls, url_state
from explain.ui.i18n import t


def sidebar() -> None:
    """The shared sidebar: language, backbone picker with weight status, device in use."""
    with st.sidebar:
        classroom_controls()
        choices = backbone_choices()
        if "backbone_pending" in st.session_state:
            st.session_state["backbone"] = st.session_state.pop("backbone_pending")
        url_state("backbone", "backbone", DEFAULT_BACKBONE, options=choices)
        st.selectbox(t("Backbone"), choices, key="backbone", format_func=backbone_label)
        name = st.session_state["backbone"]
        if name in REGISTRY and weight_status(name) == "download":
            st.caption(
                t(
                    "The weights of this network are not on this machine. Without internet it "
                    "cannot load: pick a backbone marked offline, or put the weights file into the torch hub cache."
                )
            )
        with st.expander(t("Load a weights file")):
            weights_file_loader()
        device = default_device()
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else t("CPU")
        st.caption(t("Device: {device}", device=label))
