"""Grad-CAM: where the network looked to decide on one class."""

import io

import numpy as np
import streamlit as st

from explain.cam import CAM_METHODS, heatmap, overlay_cam
from explain.classify import predict_probs, top_classes
from explain.images import encode_png, prepare
from explain.ui.cam import METHOD_HELP, SLOW_METHODS, cached_cam, cam_controls, slow_cam
from explain.ui.classroom import forget_choice, lesson_panel
from explain.ui.errors import run_safely
from explain.ui.i18n import t
from explain.ui.pickers import backbone_and_photo, class_picker
from explain.ui.session import image_key
from explain.ui.trust import sweep_panel, trust_panel

st.title(t("Grad-CAM"))
st.caption(
    t(
        "Feature maps show what a layer sees; a class activation map shows where the network looked "
        "to decide on one class."
    )
)

lesson_panel("grad_cam")

backbone, label, image = backbone_and_photo()
prepared = run_safely(prepare, image, backbone.preprocess)
if prepared is None:
    st.stop()

scores = top_classes(backbone, predict_probs(backbone, prepared.tensor)[0], 5)
# a new photo (or model) starts from its own top-1 class; only the first view keeps a shared link's class
owner = (backbone.name, image_key(image))
if st.session_state.get("gc_target_owner") not in (None, owner):
    forget_choice("class", "gc_target")
st.session_state["gc_target_owner"] = owner
st.markdown(
    t("Top classes: {top}", top=", ".join(f"**{s.label}** {s.prob * 100:.1f}%" for s in scores[:3]))
)
target = class_picker(backbone, t("Target class"), key="gc_target", default=scores[0].index, url="class")
settings = cam_controls(backbone, "gc")
st.caption(t(METHOD_HELP[settings.method]))

if settings.method in SLOW_METHODS:  # a long job: a button, progress and Stop
    result = slow_cam(backbone, prepared.tensor, [target], settings, key="gc_slow")
else:
    result = run_safely(cached_cam, backbone, prepared.tensor, [target], settings)
if result is None:
    st.stop()
cam_map = result.maps[0]
overlay = overlay_cam(prepared.cropped, cam_map, settings.alpha, settings.cmap)
side = prepared.cropped.shape[0]
c1, c2, c3 = st.columns(3)
c1.image(prepared.cropped, caption=t("What the network sees ({s}×{s})", s=side), width="stretch")
c2.image(overlay, caption=t("{method} for {cls} ({p:.1f}%)", method=t(CAM_METHODS[result.method]), cls=result.target_label[0], p=result.target_prob[0] * 100), width="stretch")
c3.image(heatmap(cam_map, cmap=settings.cmap), caption=t("The map itself (layer {layer}, {h}×{w} before upsampling)", layer=result.layer, h=result.raw.shape[1], w=result.raw.shape[2]), width="stretch")

buffer = io.BytesIO()
np.save(buffer, cam_map.astype(np.float32))
d1, d2 = st.columns(2)
stem = f"{label}_{result.method}_{result.target_index[0]}"
d1.download_button(t("Download the overlay (PNG)"), encode_png(overlay), file_name=f"{stem}.png", mime="image/png", key="gc_dl_png")
d2.download_button(t("Download the map (NumPy .npy)"), buffer.getvalue(), file_name=f"{stem}.npy", mime="application/octet-stream", key="gc_dl_npy")

st.subheader(t("Can I trust this map?"))
trust_panel(backbone, prepared.tensor, prepared.cropped, result.target_index[0], settings, key="gc_trust")
st.subheader(t("Every layer's map"))
sweep_panel(backbone, prepared.tensor, result.target_index[0], settings, key="gc_sweep")

with st.expander(t("How is this map made?")):
    st.markdown(
        t(
            "**Grad-CAM** runs the photo through the network, then asks: if this channel of the chosen "
            "layer were a little stronger, how much would the class score rise? That gradient, averaged "
            "over the map, is the channel's weight. The weighted sum of the channels, with negative values "
            "cut to zero (ReLU), is upsampled to the photo. **Grad-CAM++** weights each location separately. "
            "**Saliency** and **SmoothGrad** skip the layers and take the gradient for every pixel. "
            "The lesson above says how the other methods differ and where each is known to fail."
        )
    )
