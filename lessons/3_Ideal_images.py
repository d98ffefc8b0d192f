"""Ideal images: from noise to the picture a network is sure about, for a class or a channel."""

from dataclasses import replace

import streamlit as st

from explain.featuremaps import probe_layers
from explain.synthesis import PRESETS, Target, channel_target, compare_runs, ideal_image, result_so_far
from explain.ui.backbones import current_backbone
from explain.ui.classroom import kept_value, lesson_panel, url_state
from explain.ui.errors import run_safely
from explain.ui.i18n import t
from explain.ui.ideal import PRESET_TITLES, keep_in_gallery, live_view, settings_panel, show_results
from explain.ui.jobs import run_job, stop_button
from explain.ui.pickers import class_picker

st.title(t("Ideal images"))
st.caption(
    t(
        "Start from noise and change the picture by gradient steps until the network is sure it sees the target. "
        "Pixels + TV fools this network; an FFT image made robust to small moves, zooms and turns also convinces another one."
    )
)

lesson_panel("ideal_images")

backbone = current_backbone()
if backbone is None:
    st.stop()
state = st.session_state

# A link from Feature maps (?layer=…&channel=… or the session keys) opens a channel pre-selected.
if "ideal_mode" not in state and ("layer" in st.query_params or "ideal_layer" in state):
    state["ideal_mode"] = "channel"

layers = probe_layers(backbone).layers
layer_names = [li.name for li in layers]
layer_by_name = {li.name: li for li in layers}

kept_value("ideal_mode", "class", ("class", "channel"))
mode = st.radio(
    t("What should the image show?"), ["class", "channel"], key="ideal_mode", horizontal=True,
    format_func=lambda m: t({"class": "A class", "channel": "A channel of a layer"}[m]),
)
if mode == "class":
    class_index = class_picker(backbone, t("Class (type to search)"), key="ideal_class", url="class")
    target = Target("class", int(class_index))
else:
    url_state("layer", "ideal_layer", layer_names[len(layer_names) // 2])
    if state.get("ideal_layer") not in layer_names:
        if state.get("ideal_layer"):
            st.warning(t("Layer '{layer}' has no feature map of its own in this network; pick a layer from the list.", layer=state["ideal_layer"]))
        state["ideal_layer"] = layer_names[len(layer_names) // 2]
    c1, c2, c3 = st.columns([3, 1, 1])
    layer = c1.selectbox(
        t("Layer"), layer_names, key="ideal_layer",
        format_func=lambda n: f"{n} · {layer_by_name[n].type} · {'×'.join(map(str, layer_by_name[n].shape))}",
    )
    channels = layer_by_name[layer].shape[0]
    url_state("channel", "ideal_channel", 0, cast=int)
    if not 0 <= int(state.get("ideal_channel", 0)) < channels:
        state["ideal_channel"] = 0
    channel = c2.number_input(t("Channel"), 0, channels - 1, key="ideal_channel")
    neuron = c3.toggle(t("Centre neuron only"), key="ideal_neuron", help=t("Excite only the neuron in the middle of the map, not the whole channel."))
    target = run_safely(channel_target, backbone, layer, int(channel), neuron)
    if target is None:
        st.stop()

url_state("preset", "ideal_preset", "clear", options=list(PRESETS))
preset_name = st.radio(
    t("Recipe"), list(PRESETS), key="ideal_preset", horizontal=True,
    format_func=lambda p: t(PRESET_TITLES[p]),
)
settings = settings_panel(preset_name)

# The job and its results rerun alone: a click on Make, Compare or Stop does not re-send the settings above, so the
# browser redraws a few elements, not the whole page, while the job needs the cores.
@st.fragment
def make_and_show() -> None:
    b1, b2, b3 = st.columns(3)
    run_clicked = b1.button(t("Make the image"), key="ideal_run", type="primary", width="stretch")
    compare_clicked = b2.button(
        t("Compare both recipes"), key="ideal_compare", width="stretch",
        help=t("The same target with the course recipe and the clear one, side by side."),
    )
    stop_button("ideal", b3, width="stretch")
    runs = compare_runs(preset_name, settings) if compare_clicked else [(preset_name, settings)] if run_clicked else None

    def make_images(job, runs=runs, target=target) -> dict:
        """Each recipe in turn; every finished image joins the gallery at once, so a later stop keeps it."""
        made: list[str] = []
        for name, run_settings in runs:
            job.keep({"preset": name, "settings": run_settings, "target": target, "made": made, "compare": len(runs) == 2})
            result = ideal_image(backbone, target, run_settings, lambda p, name=name: job.callback(replace(p, phase=name)), job.should_stop)
            made.append(keep_in_gallery(backbone, name, result))
            if result.stopped:
                break
        return {"made": made, "pair": len(runs) == 2 and len(made) == 2}

    def keep_the_image_so_far(kept: dict | None, last) -> dict | None:
        """A run a click cut short: its last preview becomes a stopped image."""
        if kept is None:
            return None
        made = list(kept["made"])
        if last is not None and last.preview is not None:
            made.append(keep_in_gallery(backbone, kept["preset"], result_so_far(backbone, kept["target"], kept["settings"], last)))
        return {"made": made, "pair": False}

    outcome = run_job(
        "ideal", t("Ideal images"), make_images if runs else None, live_view(int(state.get("ideal_preview_every", 8))),
        salvage=keep_the_image_so_far,
    )
    if outcome is not None and outcome.result is not None:
        if outcome.result["made"]:
            state["ideal_last"] = outcome.result["made"][-1]
        if outcome.result["pair"]:
            state["ideal_pair"] = outcome.result["made"]
    if outcome is not None and outcome.interrupted and not (outcome.result or {}).get("made"):
        st.info(t("Stopped before the first step: there is no image to keep yet."))
    show_results(state.get("ideal_last"), state.get("ideal_pair", []))


make_and_show()
