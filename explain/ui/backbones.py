"""Which network a page runs: registry backbones shared by all sessions, a session's own models, weights uploads."""

from __future__ import annotations

import streamlit as st

from explain.errors import LensError
from explain.limits import MAX_SESSION_MODELS
from explain.models import DEFAULT_BACKBONE, REGISTRY, Backbone, load_backbone, weight_status
from explain.ui.errors import run_safely, show_error
from explain.ui.i18n import t
from explain.ui.limits import limits_caption, weights_limits
from explain.ui.session import BoundedCache, session_cache

STATUS_BADGE = {"offline": "🟢 offline", "cached": "🔵 cached", "file": "🟣 file", "download": "⚪ download"}
OWN_BADGE = {"file": "🟣 file", "trained": "🟠 trained"}  # a session's own model: its name is the user's, the badge says what it is
WEIGHTS_NOTICE = "_weights_notice"  # the sidebar's note on missing weights, for the run that drew it


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_backbone(name: str) -> Backbone:
    """Registry backbones are shared by every session (read-only in inference)."""
    return load_backbone(name)


def is_shared(backbone: Backbone) -> bool:
    """A registry network with its published weights: what it computes may be shared between sessions (not a user's own model)."""
    return backbone.source not in ("file", "trained") and backbone.name in REGISTRY and backbone.base in ("", backbone.name)


def custom_backbones() -> BoundedCache:
    """This session's own models (fine-tuned or loaded from a file) by name, never shared between users."""
    return session_cache("custom_backbones", MAX_SESSION_MODELS)


def add_own_backbone(name: str, backbone: Backbone) -> None:
    """Keep a model of this session under `name`; past MAX_SESSION_MODELS the oldest one not in use is dropped."""
    # each model is a whole network in memory: a session cannot pile them up, but the picked one stays
    in_use = {st.session_state.get("backbone"), st.session_state.get("backbone_pending")}
    custom_backbones().put(name, backbone, keep=in_use)


def backbone_by_name(name: str) -> Backbone:
    """A registry backbone (cached) or one of this session's own models."""
    own = custom_backbones()
    if name in own:
        return own[name]
    return cached_backbone(name)


def current_backbone() -> Backbone | None:
    """The backbone chosen in the sidebar; None (with an st.error shown) when it cannot load."""
    name = st.session_state.get("backbone", DEFAULT_BACKBONE)
    try:
        with st.spinner(t("Loading {name}…", name=name)):
            return backbone_by_name(name)
    except LensError as exc:
        show_error(exc)
        # the page's error says it all (and what to do): the sidebar's note would say it a second time
        notice = st.session_state.pop(WEIGHTS_NOTICE, None)
        if notice is not None:
            notice.empty()
        return None


def weights_notice(name: str) -> None:
    """Under the sidebar's picker: a registry backbone whose weights are not here needs the internet to load.

    Drawn in a slot that current_backbone() empties when the page itself reports the failure, so a page says it once.
    """
    st.session_state.pop(WEIGHTS_NOTICE, None)
    if name not in REGISTRY or weight_status(name) != "download":
        return
    slot = st.empty()
    slot.caption(
        t(
            "The weights of this network are not on this machine. Without internet it "
            "cannot load: pick a backbone marked offline, or put the weights file into the torch hub cache."
        )
    )
    st.session_state[WEIGHTS_NOTICE] = slot


def backbone_choices() -> list[str]:
    """Names for a backbone picker: the registry, then this session's own models in the order they came."""
    return list(REGISTRY) + list(custom_backbones())


def backbone_label(name: str) -> str:
    """A picker's label for `name`: its title and where its weights come from."""
    own = custom_backbones()
    if name in own:
        kind = "file" if own[name].source == "file" else "trained"
        return f"{name} · {t(OWN_BADGE[kind])}"
    return f"{REGISTRY[name].title} · {t(STATUS_BADGE[weight_status(name)])}"


def weights_file_loader() -> None:
    """Upload a .pth/.pt state dict (or a CNN Lens model file); it becomes a backbone of this session only."""
    up = st.file_uploader(t("Weights file (.pth, .pt)"), type=["pth", "pt", "bin", "ckpt"], key="weights_upload")
    limits_caption(weights_limits())
    if up is None or st.session_state.get("weights_loaded") == up.file_id:
        return
    name = run_safely(add_weights_backbone, up.name, up.getvalue())
    if name is None:
        return
    st.session_state["weights_loaded"] = up.file_id
    st.session_state["backbone_pending"] = name  # the picker above is already drawn: apply on the rerun
    st.rerun()


def add_weights_backbone(filename: str, data: bytes) -> str:
    """Load uploaded weights into a backbone of this session; returns its name in the picker."""
    from explain.models import load_model_file

    backbone = load_model_file(data, filename)  # read from memory: nothing of the upload touches the server's disk
    name = f"{filename} ({backbone.base})"
    backbone.name = name
    add_own_backbone(name, backbone)
    return name
