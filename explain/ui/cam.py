"""Class-map widgets shared by the Classify, Grad-CAM, adversarial and transfer pages.

`cam_panel` shows, for one image, the map of each target class side by side; `cam_gallery`
shows one map per image for a list of images (e.g. a model's right and wrong validation images).
Both work for any Backbone (ImageNet or a fine-tuned model with its own classes) and keep their
results in the session, so a rerun (a moved slider) does not recompute them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from explain.cam import CAM_METHODS, LAYER_METHODS, CamResult, compute_cam, default_layer, map_layers, overlay_cam
from explain.featuremaps import COLORMAPS
from explain.images import prepare, to_image
from explain.limits import MAX_SMOOTHGRAD_SAMPLES
from explain.models import Backbone
from explain.ui.classroom import url_state
from explain.ui.errors import run_safely
from explain.ui.i18n import t
from explain.ui.jobs import JobView, heavy_job, run_job, stop_button
from explain.ui.limits import limits_caption, samples_limit
from explain.ui.session import cached, session_cache

SLOW_METHODS = ("scorecam", "ablationcam", "occlusion", "integrated_gradients")  # hundreds of forward passes per map
MAPS_KEPT = 24  # class maps: small, and a moved slider or a page switch comes back to them
LAYER_LISTS_KEPT = 4

METHOD_HELP = {
    "gradcam": "Grad-CAM: the channels of one layer, weighted by how much they raise the class score (mean gradient).",
    "gradcampp": "Grad-CAM++: like Grad-CAM, with weights that count every positive location; better when a class appears several times.",
    "xgradcam": "XGrad-CAM: like Grad-CAM, each channel's gradient weighted by where the channel is active.",
    "layercam": "Layer-CAM: every location keeps its own positive gradient, so even early layers give sharp maps.",
    "hirescam": "HiRes-CAM: gradient times activation at every location, nothing averaged away: the map shows exactly what the layer adds to the score.",
    "scorecam": "Score-CAM: no gradients; each channel masks the photo and the class score of the masked photo is its weight. One forward pass per channel: slow.",
    "ablationcam": "Ablation-CAM: no gradients; each channel is switched off in turn and the score it loses is its weight.",
    "eigencam": "Eigen-CAM: the main pattern (first principal component) of the layer: the same map whatever class you ask for.",
    "counterfactual": "Counterfactual: Grad-CAM with the gradient's sign flipped: where the evidence against the class is (empty when nothing argues against it).",
    "saliency": "Gradient saliency: how much each pixel changes the class score. Sharp but noisy.",
    "smoothgrad": "SmoothGrad: gradient saliency averaged over noisy copies of the photo, so the noise cancels out.",
    "integrated_gradients": "Integrated gradients: gradients summed along a path from a black image to the photo; black pixels get no credit.",
    "occlusion": "Occlusion: a grey patch slides over the photo; where it makes the score drop, the network looked.",
    "guided_backprop": "Guided backprop: only positive gradients flow back; crisp edges, but nearly the same for every class.",
    "guided_gradcam": "Guided Grad-CAM: guided backprop's sharp edges, kept only where Grad-CAM finds the class.",
}


@dataclass(frozen=True)
class CamSettings:
    """What to compute and how to draw it."""

    method: str = "gradcam"
    layer: str | None = None  # None: the backbone's default Grad-CAM layer
    alpha: float = 0.5
    cmap: str = "jet"
    samples: int = 16


def model_key(backbone: Backbone) -> tuple[str, int, float]:
    # the head's last parameter changes with any training step, so a model trained in place is not served old maps
    last = next(iter(reversed(list(backbone.model.parameters()))), None)
    return backbone.name, id(backbone.model), float(last.detach().float().sum()) if last is not None else 0.0


def _layers(backbone: Backbone) -> tuple[list, str]:
    return cached("cam_layers", model_key(backbone), lambda: (map_layers(backbone), default_layer(backbone)), LAYER_LISTS_KEPT)


def layer_choices(backbone: Backbone, only_main: bool = True) -> tuple[list[str], str]:
    """Layers with a spatial map (recorded once per model and session) and the default one, always listed."""
    layers, default = _layers(backbone)
    names = [li.name for li in layers if li.main or not only_main]
    if default not in names:
        names.append(default)  # e.g. resnet's "layer4" is listed under its last block's name
    return names, default


def cam_controls(backbone: Backbone, key: str, show_layer: bool = True) -> CamSettings:
    """Method, layer, overlay strength and colour map pickers; returns the chosen settings."""
    c1, c2, c3 = st.columns(3)
    url_state("method", f"{key}_method", "gradcam", options=list(CAM_METHODS))
    method = c1.selectbox(
        t("Method"), list(CAM_METHODS), format_func=lambda m: t(CAM_METHODS[m]), key=f"{key}_method",
        help=t(METHOD_HELP[st.session_state.get(f"{key}_method", "gradcam")]),
    )
    layer = None
    if show_layer and method in LAYER_METHODS:
        choices = run_safely(layer_choices, backbone, not st.session_state.get(f"{key}_all_layers", False))
        if choices:
            names, default = choices
            state_key = f"{key}_layer"
            current = st.session_state.get(state_key)
            if current not in names and current in layer_choices(backbone, False)[0]:
                names = [*names, current]  # an inner layer picked under "All layers" stays listed when it is turned off
            if current not in names:  # first draw, or a layer this model does not have
                st.session_state.pop(state_key, None)
                current = default
            # `index` is what the browser's box shows when the widget is drawn anew (after a run without it, e.g. while
            # the photo was being replaced): it must be the value the server uses, or box and map disagree
            layer = c2.selectbox(t("Layer"), names, index=names.index(current), key=state_key, help=t("Deeper layers: coarser maps that know more about the class."))
            c2.toggle(t("All layers"), key=f"{key}_all_layers")
            more = c2.multiselect(t("Average with the layers"), [n for n in names if n != layer], key=f"{key}_more_layers",
                                  help=t("The maps of several layers, each scaled to 0…1, averaged: coarse where deep, sharp where early."))
            if more:
                layer = "+".join([layer, *more])
    samples = 16
    if method == "smoothgrad":
        samples = c2.slider(t("Noisy copies"), 2, MAX_SMOOTHGRAD_SAMPLES, 16, key=f"{key}_samples")
        limits_caption(samples_limit(), where=c2)
    alpha = c3.slider(t("Overlay strength"), 0.0, 1.0, 0.5, 0.05, key=f"{key}_alpha")
    cmaps = ["jet"] + [c for c in COLORMAPS if c not in ("gray", "jet")]  # jet first: "red = evidence"
    cmap = c3.selectbox(t("Colour map"), cmaps, key=f"{key}_cmap")
    return CamSettings(method, layer, alpha, cmap, samples)


def _as_input(backbone: Backbone, image: np.ndarray | torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """(picture to draw on, [0, 1] tensor (1, 3, H, W)) from a photo (prepared the model's way) or a tensor."""
    if isinstance(image, torch.Tensor):
        x = image.detach().float().cpu()
        x = x.unsqueeze(0) if x.ndim == 3 else x[:1]
        return to_image(x), x
    prepared = prepare(image, backbone.preprocess)
    return prepared.cropped, prepared.tensor


def pixels_digest(x: torch.Tensor) -> str:
    return hashlib.sha1(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def _cam_key(backbone: Backbone, x01: torch.Tensor, targets, settings: CamSettings, top_k: int) -> tuple:
    return (
        *model_key(backbone), pixels_digest(x01), repr(targets), top_k, settings.method,
        settings.layer if settings.method in LAYER_METHODS else None, settings.samples if settings.method == "smoothgrad" else 0,
    )


def cached_cam(backbone: Backbone, x01: torch.Tensor, targets, settings: CamSettings, top_k: int = 1) -> CamResult:
    """compute_cam, remembered in this session for the same model, pixels, targets and method."""
    key = _cam_key(backbone, x01, targets, settings, top_k)

    def build() -> CamResult:
        def run() -> CamResult:
            return compute_cam(backbone, x01, targets, method=settings.method, layer=settings.layer, top_k=top_k, samples=settings.samples)

        if settings.method not in SLOW_METHODS:
            return run()
        with heavy_job(t(CAM_METHODS[settings.method])), st.spinner(t("Hundreds of forward passes: this takes a while on a CPU…")):
            return run()

    return cached("cam_cache", key, build, MAPS_KEPT)


def slow_cam(backbone: Backbone, x01: torch.Tensor, targets, settings: CamSettings, key: str, top_k: int = 1) -> CamResult | None:
    """A map of many forward passes (Score-CAM, Ablation-CAM, occlusion, integrated gradients) as a long job:
    a button starts it, the job runner shows its progress and Stop; a finished map joins the session's map cache,
    a stopped one (only the passes done) is shown with a warning until the next run. None: no map to show yet."""
    cache_key = _cam_key(backbone, x01, targets, settings, top_k)
    store = session_cache("cam_cache", MAPS_KEPT)
    if cache_key in store:
        return store.use(cache_key)
    name = t(CAM_METHODS[settings.method])
    b1, b2 = st.columns([3, 1])
    start = b1.button(t("Compute the {method} map", method=name), key=f"{key}_start", type="primary")
    stop_button(key, b2, help=t("Stops after the current batch of passes and shows the map made of them."))
    work = None
    if start:
        def work(job):
            return compute_cam(backbone, x01, targets, method=settings.method, layer=settings.layer, top_k=top_k,
                               samples=settings.samples, callback=job.callback, should_stop=job.should_stop)
    caption = JobView(caption=lambda p: t("{method}: {s} of {n} passes done", method=name, s=p.step, n=p.total))
    outcome = run_job(key, name, work, caption)
    if outcome is not None and outcome.result is not None:
        if not outcome.result.stopped:
            store.make_room()
            store.put(cache_key, outcome.result)
            st.session_state.pop(f"{key}_partial", None)
            return outcome.result
        st.session_state[f"{key}_partial"] = (cache_key, outcome.result)
    partial = st.session_state.get(f"{key}_partial")
    if partial and partial[0] == cache_key:
        st.warning(t("Stopped: this map is made of the passes done so far. Press the button for the whole map."))
        return partial[1]
    if outcome is not None and outcome.interrupted:
        st.info(t("The map was stopped before it finished; press the button to compute it again."))
    else:
        st.info(t("{method} makes hundreds of forward passes: press the button to compute the map (minutes on a CPU).", method=name))
    return None


def _caption(result: CamResult, k: int) -> str:
    return t(
        "{label} ({index}) · probability {p:.1f}%",
        label=result.target_label[k],
        index=result.target_index[k],
        p=result.target_prob[k] * 100,
    )


def cam_panel(
    backbone: Backbone,
    image: np.ndarray | torch.Tensor,
    targets: Sequence[int | str] | int | str | None = None,
    key: str = "cam",
    settings: CamSettings | None = None,
    top_k: int = 3,
    title: str | None = None,
) -> CamResult | None:
    """One image (RGB photo, or a [0, 1] tensor already at the model's input size), one map per target side by side.

    targets: classes (names or indices); None = the image's top_k classes. settings: None shows the
    controls (method, layer, overlay) under `key`; pass one CamSettings to share controls between panels.
    """
    if settings is None:
        settings = cam_controls(backbone, key)
    base, x = _as_input(backbone, image)
    chosen = None if targets is None else [targets] if isinstance(targets, (int, str)) else [list(targets)]
    result = run_safely(cached_cam, backbone, x, chosen, settings, top_k)
    if result is None:
        return None
    if title:
        st.markdown(title)
    cols = st.columns(len(result))
    for k, col in enumerate(cols):
        col.image(overlay_cam(base, result.maps[k], settings.alpha, settings.cmap), caption=_caption(result, k), width="stretch")
    st.caption(t("{method} on layer {layer}: red = where the evidence for the class is.", method=t(CAM_METHODS[result.method]), layer=result.layer))
    return result


def cam_gallery(
    backbone: Backbone,
    images: Sequence[np.ndarray | torch.Tensor],
    targets: Sequence[int | str | None] | None = None,
    key: str = "cam_gallery",
    settings: CamSettings | None = None,
    captions: Sequence[str] | None = None,
    columns: int = 4,
) -> CamResult | None:
    """Several images, one map each (its given target, or its top-1 class), in a grid; computed as one batch.

    Images are photos (prepared the model's way) or [0, 1] tensors at the model's input size.
    """
    if not images:
        return None
    if settings is None:
        settings = cam_controls(backbone, key)
    pairs = [_as_input(backbone, im) for im in images]
    sizes = {tuple(x.shape[2:]) for _, x in pairs}
    if len(sizes) > 1:
        st.error(t("All images of a gallery must have the same size."))
        return None
    batch = torch.cat([x for _, x in pairs])
    per_image = None if targets is None else list(targets)
    result = run_safely(cached_cam, backbone, batch, per_image, settings)
    if result is None:
        return None
    cols = st.columns(max(1, columns))
    for k in range(len(result)):
        i = result.image_index[k]
        text = (captions[i] + " · " if captions else "") + _caption(result, k)
        cols[k % len(cols)].image(overlay_cam(pairs[i][0], result.maps[k], settings.alpha, settings.cmap), caption=text, width="stretch")
    return result
