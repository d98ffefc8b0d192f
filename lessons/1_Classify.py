"""Classify: a photo, every preprocessing step, and the top-5 classes."""

import pandas as pd
import streamlit as st

from explain.classify import predict_probs, top_classes
from explain.images import INTERPOLATIONS, prepare
from explain.images import normalized_stats as tensor_stats
from explain.ui.cam import cam_panel
from explain.ui.classroom import lesson_panel, presenter_mode
from explain.ui.errors import run_safely
from explain.ui.i18n import t
from explain.ui.pickers import backbone_and_photo
from explain.ui.plots import topk_bar, true_scale_widths

st.title(t("Classify"))
st.caption(t("What does the network think this photo shows?"))
lesson_panel("classify")

backbone, label, image = backbone_and_photo()
pp = backbone.preprocess
names = list(INTERPOLATIONS)
interpolation = pp.interpolation if presenter_mode() else st.selectbox(
    t("Resize interpolation (cv2.resize)"), names, index=names.index(pp.interpolation), key="classify_interp",
    help=t("nearest copies pixels, linear/cubic blend neighbours, area averages (best for shrinking), lanczos is the sharpest."),
)
prepared = run_safely(prepare, image, pp, interpolation)
if prepared is None:
    st.stop()

st.subheader(t("Preprocessing, step by step"))
h, w = image.shape[:2]
rh, rw = prepared.resized.shape[:2]
widths = true_scale_widths([w, rw, prepared.cropped.shape[1]])  # the three pictures at their true relative sizes
c1, c2, c3 = st.columns(widths)
shrunk = t(" (drawn smaller)") if widths[0] < w else ""
c1.image(image, caption=t("1. Original {w}×{h}", w=w, h=h) + shrunk, width="stretch")
c2.image(prepared.resized, caption=t("2. Shorter side to {s} px ({m}): {w}×{h}", s=pp.resize_size, m=interpolation, w=rw, h=rh), width="stretch")
c3.image(prepared.cropped, caption=t("3. Centre crop {s}×{s}", s=pp.input_size), width="stretch")
st.markdown(t("4. Normalised tensor: (pixel/255 − mean) / std, mean = {mean}, std = {std}", mean=pp.mean, std=pp.std))
headers = {"channel": t("channel"), "mean": t("mean"), "std": t("std"), "min": t("min"), "max": t("max")}
st.dataframe(pd.DataFrame(tensor_stats(prepared.tensor, pp)).round(3).rename(columns=headers), hide_index=True)

probs = predict_probs(backbone, prepared.tensor)[0]
scores = top_classes(backbone, probs, 5)
st.subheader(t("Top-5 classes"))
st.plotly_chart(topk_bar(scores), width="stretch", key="classify_top5")
best = scores[0]
st.success(t("The network says: **{label}** ({p:.1f}%)", label=best.label, p=best.prob * 100))
st.session_state["last_prediction"] = {"image": label, "backbone": backbone.name, "top": [s.index for s in scores]}

with st.expander(t("Why? Where the network looked for each of the top-3 classes"), expanded=True):
    cam_panel(backbone, prepared.tensor, [s.index for s in scores[:3]], key="classify_cam")
