"""Ideal images: from noise to the picture a network is sure about, for a class or a channel."""

import itertools
from dataclasses import replace

import streamlit as st

from explain.errors import LensError
from explain.images import encode_png
from explain.limits import MAX_IDEAL_BATCH, MAX_IDEAL_GALLERY, MAX_IDEAL_STEPS
from explain.models import REGISTRY, weight_status
from explain.synthesis import PRESETS, channel_layers, channel_target, ideal_image, second_opinion
from explain.synthesis import Target as IdealTarget
from explain.ui.backbones import backbone_by_name, current_backbone
from explain.ui.classroom import lesson_panel, url_state
from explain.ui.errors import run_safely
from explain.ui.i18n import t
from explain.ui.ideal import curves
from explain.ui.jobs import heavy_job
from explain.ui.limits import copies_limit, gallery_limit, limits_caption, steps_limit
from explain.ui.pickers import class_picker
from explain.ui.session import cached

PRESET_TITLES = {"course": "Course recipe (pixels + TV)", "clear": "Clear (FFT + robustness)"}
_ids = itertools.count()

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
state.setdefault("ideal_gallery", [])

# A link from Feature maps (?layer=…&channel=… or the session keys) opens a channel pre-selected.
if "ideal_mode" not in state and ("layer" in st.query_params or "ideal_layer" in state):
    state["ideal_mode"] = "channel"

layers = cached("ideal_layer_cache", backbone.name, lambda: list(channel_layers(backbone)), max_entries=4)
layer_names = [li.name for li in layers]
layer_by_name = {li.name: li for li in layers}

mode = st.radio(
    t("What should the image show?"), ["class", "channel"], key="ideal_mode", horizontal=True,
    format_func=lambda m: t({"class": "A class", "channel": "A channel of a layer"}[m]),
)
if mode == "class":
    class_index = class_picker(backbone, t("Class (type to search)"), key="ideal_class", url="class")
    target = IdealTarget("class", int(class_index))
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
base = PRESETS[preset_name]
with st.expander(t("Advanced settings")):
    k = f"ideal_{preset_name}_"  # each preset keeps its own knob values
    a1, a2, a3, a4 = st.columns(4)
    steps = a1.number_input(t("Steps"), 1, MAX_IDEAL_STEPS, base.steps, key=k + "steps")
    lr = a2.number_input(t("Learning rate"), 0.0005, 1.0, base.lr, format="%.4f", key=k + "lr")
    size = a3.select_slider(t("Image size"), [64, 96, 128, 160, 192, 224, 256, 320], base.size, key=k + "size")
    seed = a4.number_input(t("Seed"), 0, 10**6, base.seed, key=k + "seed")
    b1, b2, b3, b4 = st.columns(4)
    tv = b1.number_input(t("TV weight"), 0.0, 100.0, base.tv, format="%.3f", key=k + "tv", help=t("Total variation: how much neighbouring pixels must agree."))
    l2 = b2.number_input(t("L2 weight"), 0.0, 100.0, base.l2, format="%.3f", key=k + "l2")
    blur = b3.number_input(t("Blur weight"), 0.0, 100.0, base.blur, format="%.3f", key=k + "blur")
    batch = b4.number_input(t("Augmented copies per step"), 1, MAX_IDEAL_BATCH, base.batch, key=k + "batch")
    r1, r2, r3, r4 = st.columns(4)
    jitter = r1.number_input(t("Jitter (pixels)"), 0, 64, base.jitter, key=k + "jitter")
    scale = r2.slider(t("Random scale"), 0.5, 2.0, base.scale, step=0.05, key=k + "scale")
    rotate = r3.number_input(t("Random rotation (± degrees)"), 0.0, 90.0, base.rotate, key=k + "rotate")
    net_size = r4.number_input(t("Network input side (0 = as is)"), 0, 512, base.net_size, key=k + "net_size")
    preview_every = st.slider(t("Preview every N steps"), 1, 50, 8, key="ideal_preview_every")
    limits_caption(steps_limit(MAX_IDEAL_STEPS), copies_limit(), gallery_limit())
settings = replace(
    base, steps=int(steps), lr=float(lr), size=int(size), seed=int(seed), tv=float(tv), l2=float(l2), blur=float(blur),
    batch=int(batch), jitter=int(jitter), scale=tuple(scale), rotate=float(rotate), net_size=int(net_size),
)


def request_stop() -> None:
    # Only a running job can be stopped; a stray click while idle must not stop the next job.
    if "ideal_job" in state:
        state["ideal_stop"] = True


b1, b2, b3 = st.columns(3)
run_clicked = b1.button(t("Make the image"), key="ideal_run", type="primary", width="stretch")
compare_clicked = b2.button(
    t("Compare both recipes"), key="ideal_compare", width="stretch",
    help=t("The same target with the course recipe and the clear one, side by side."),
)
b3.button(t("Stop"), key="ideal_stop_btn", on_click=request_stop, width="stretch")
if run_clicked or compare_clicked:
    presets = ["course", "clear"] if compare_clicked else [preset_name]
    # The other recipe gets the same budget (steps, size, seed) so the two pictures are comparable.
    runs = [(p, settings if p == preset_name else replace(PRESETS[p], steps=settings.steps, size=settings.size, seed=settings.seed))
            for p in presets]
    state["ideal_job"] = {"runs": runs, "target": target, "started": False, "partial": None, "compare": compare_clicked}


def second_network_name() -> str | None:
    """An offline ImageNet network other than the one being optimised: the held-out judge."""
    for name in ("efficientnet_lite1", "efficientnet_lite0", "efficientnet_lite2"):
        if name != backbone.name and name in REGISTRY and weight_status(name) == "offline":
            return name
    return None


def gallery_entry(preset: str, target: IdealTarget, image, history, seconds, steps_done, steps, stopped, prob, rank) -> dict:
    entry = {
        "id": f"{len(state['ideal_gallery'])}-{next(_ids)}", "image": image, "preset": preset, "backbone": backbone.name,
        "target": target.describe(backbone), "kind": target.kind, "prob": prob, "rank": rank, "history": history,
        "seconds": seconds, "steps_done": steps_done, "steps": steps, "stopped": stopped, "second": None,
    }
    judge = second_network_name()
    if target.kind == "class" and judge and backbone.num_classes == 1000:
        try:
            other = backbone_by_name(judge)
            entry["second"] = (judge, *second_opinion(other, image, target.index))
        except LensError:
            pass
    return entry


def keep_in_gallery(entry: dict) -> None:
    gallery = state["ideal_gallery"]
    gallery.append(entry)
    del gallery[:-MAX_IDEAL_GALLERY]  # bounded memory per session: the oldest images go first


def run_job(job: dict) -> None:
    job["started"] = True
    target_now: IdealTarget = job["target"]
    progress = st.progress(0.0, text=t("Starting…"))
    live1, live2 = st.columns([1, 2])
    preview, chart = live1.empty(), live2.empty()
    made = []
    for preset, run_settings in job["runs"]:
        title = t(PRESET_TITLES[preset])

        history: dict[str, list[float]] = {}

        def show(step: int, s, preset=preset, title=title, history=history) -> None:
            history.setdefault("prob", []).append(s.prob if s.prob is not None else float("nan"))
            history.setdefault("activation", []).append(s.activation)
            for name, value in s.losses.items():
                history.setdefault(name, []).append(value)
            if step % int(state.get("ideal_preview_every", 8)) and step != s.steps:
                return
            job["partial"] = {"preset": preset, "image": s.image, "step": step, "steps": s.steps, "prob": s.prob,
                              "history": {k: list(v) for k, v in history.items()}}
            progress.progress(step / s.steps, text=t("{title}: step {step} of {steps}", title=title, step=step, steps=s.steps))
            what = t("target {p:.1f}%", p=s.prob * 100) if s.prob is not None else t("activation {a:.3f}", a=s.activation)
            preview.image(s.image, caption=f"{title} · {t('step')} {step} · {what}", width="stretch")
            chart.plotly_chart(curves(history), key=f"ideal_live_{preset}_{step}", width="stretch")

        with heavy_job(t("Ideal images")):
            result = run_safely(
                ideal_image, backbone, target_now, run_settings, callback=show, should_stop=lambda: bool(state.get("ideal_stop"))
            )
        if result is None:
            break
        entry = gallery_entry(preset, target_now, result.image, result.history, result.seconds, result.steps_done,
                              run_settings.steps, result.stopped, result.prob, result.rank)
        keep_in_gallery(entry)
        made.append(entry["id"])
        job["partial"] = None
        if result.stopped:
            break
    for placeholder in (progress, preview, chart):
        placeholder.empty()  # the result section below shows the finished images and curves
    if job["compare"] and len(made) == 2:
        state["ideal_pair"] = made
    state["ideal_last"] = made[-1] if made else state.get("ideal_last")
    state.pop("ideal_job", None)
    state["ideal_stop"] = False


def keep_interrupted(job: dict) -> None:
    """A run cut short by a click (the Stop button reruns the page): keep the last preview as a stopped image."""
    partial = job.get("partial")
    if partial is not None:
        entry = gallery_entry(partial["preset"], job["target"], partial["image"], partial.get("history", {}), 0.0, partial["step"],
                              partial["steps"], True, partial["prob"], None)
        keep_in_gallery(entry)
        state["ideal_last"] = entry["id"]
    state.pop("ideal_job", None)
    state["ideal_stop"] = False


job = state.get("ideal_job")
if job is not None:
    if job["started"]:
        keep_interrupted(job)
    else:
        run_job(job)


def describe(entry: dict) -> str:
    parts = [t(PRESET_TITLES[entry["preset"]])]
    if entry["prob"] is not None:
        parts.append(t("{net}: {p:.1f}%", net=entry["backbone"], p=entry["prob"] * 100))
    if entry["second"] is not None:
        judge, rank, prob = entry["second"]
        parts.append(t("{net} (never used): rank {r}, {p:.1f}%", net=judge, r=rank, p=prob * 100))
    if entry["stopped"]:
        parts.append(t("stopped at step {s} of {n}", s=entry["steps_done"], n=entry["steps"]))
    elif entry["seconds"]:
        parts.append(t("{n} steps in {s:.1f} s", n=entry["steps_done"], s=entry["seconds"]))
    return " · ".join(parts)


gallery = state["ideal_gallery"]
by_id = {e["id"]: e for e in gallery}
last = by_id.get(state.get("ideal_last"))
if last is not None:
    st.subheader(t("Result: {target}", target=last["target"]))
    if last["stopped"]:
        st.warning(t("Stopped at step {s} of {n}: this is the image so far.", s=last["steps_done"], n=last["steps"]))
    r1, r2 = st.columns([1, 2])
    r1.image(last["image"], caption=describe(last), width="stretch")
    if last["history"]:
        r2.plotly_chart(curves(last["history"]), key="ideal_result_curves", width="stretch")

pair = [by_id[i] for i in state.get("ideal_pair", []) if i in by_id]
if len(pair) == 2:
    st.subheader(t("The two recipes, same target: {target}", target=pair[0]["target"]))
    p1, p2 = st.columns(2)
    for col, entry in zip((p1, p2), pair):
        col.image(entry["image"], caption=describe(entry), width="stretch")
    st.caption(
        t(
            "Both images convince the network they were made for. Only the robust one is also recognised by a second "
            "network that never took part: pixel noise found a weakness of one network, not the look of the class."
        )
    )

if gallery:
    st.subheader(t("This session's images"))
    columns = st.columns(4)
    for i, entry in enumerate(reversed(gallery)):
        col = columns[i % 4]
        col.image(entry["image"], caption=f"{entry['target']} · {describe(entry)}", width="stretch")
        name = f"ideal_{entry['target'].split(' (')[0].replace(' ', '_')}_{entry['preset']}_{entry['id']}.png"
        col.download_button(t("Download PNG"), encode_png(entry["image"]), file_name=name, mime="image/png", key=f"ideal_dl_{entry['id']}")
    if st.button(t("Clear the gallery"), key="ideal_clear"):
        for key in ("ideal_gallery", "ideal_pair", "ideal_last"):
            state.pop(key, None)
        st.rerun()
else:
    st.info(t("Choose a target and a recipe, then make the image."))
