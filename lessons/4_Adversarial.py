"""Adversarial lab: nudge a photo's pixels until the network says another class; judged on the saved PNG."""

import streamlit as st

from explain.adversarial import (
    ATTACKS,
    MAX_LEAK,
    MAX_VIEWS,
    AttackSettings,
    attack_images,
    default_target,
    perturbation_image,
)
from explain.classify import classify_images, second_network_verdicts
from explain.limits import MAX_ATTACK_STEPS
from explain.ui.adversarial import attack_view, robustness_panel
from explain.ui.backbones import backbone_by_name, backbone_choices, backbone_label
from explain.ui.cam import cam_gallery
from explain.ui.classroom import kept_value, lesson_panel, url_state
from explain.ui.errors import run_safely
from explain.ui.i18n import t
from explain.ui.jobs import run_job, stop_button
from explain.ui.limits import limits_caption, steps_limit
from explain.ui.pickers import backbone_and_photo, class_picker
from explain.ui.plots import topk_bar
from explain.ui.session import image_key

st.title(t("Adversarial lab"))
st.caption(
    t(
        "Change every pixel by at most a couple of grey levels, in the direction the gradient says, "
        "until the network calls the photo something else. You will not see the difference; the network does."
    )
)

lesson_panel("adversarial")

backbone, label, image = backbone_and_photo()
(clean_top,) = run_safely(classify_images, backbone, [image], 5) or [None]
if clean_top is None:
    st.stop()
st.markdown(t("The network now says: **{label}** ({p:.1f}%)", label=clean_top[0].label, p=clean_top[0].prob * 100))

c1, c2 = st.columns(2)
kept_value("adv_mode", "targeted", ("targeted", "untargeted"))
mode = c1.radio(
    t("Goal"), ["targeted", "untargeted"], horizontal=True, key="adv_mode",
    format_func=lambda m: t({"targeted": "reach a class I choose", "untargeted": "any other class"}[m]),
)
target = class_picker(
    backbone, t("Target class (type to search)"), key="adv_target", default=default_target(clean_top[0].index), url="class"
) if mode == "targeted" else None
url_state("method", "adv_method", "pgd", options=list(ATTACKS))
method = c2.selectbox(t("Method"), list(ATTACKS), format_func=lambda m: t(ATTACKS[m]), key="adv_method")

c3, c4 = st.columns(2)
eps = c3.slider(t("ε: the most any pixel may change (grey levels, /255)"), 1, 16, 2, key="adv_eps")
steps = c4.number_input(
    t("Steps"), 1, MAX_ATTACK_STEPS, AttackSettings.steps, key="adv_steps", disabled=method == "fgsm", help=t("FGSM always takes one step.")
)
limits_caption(steps_limit(MAX_ATTACK_STEPS), where=c4)
with st.expander(t("More settings")):
    a1, a2, a3 = st.columns(3)
    kept_value("adv_norm", "linf", ("linf", "l2"))
    norm = a1.radio(
        t("Budget"), ["linf", "l2"], key="adv_norm", horizontal=True, disabled=method != "pgd",
        format_func=lambda n: {"linf": t("L∞ (per pixel)"), "l2": t("L2 (whole image)")}[n],
    )
    l2_eps = a1.number_input(t("L2 budget (grey levels; 255 = norm 1.0)"), 1.0, 20000.0, 765.0, key="adv_l2eps", disabled=norm != "l2" or method != "pgd")
    step_size = a2.number_input(t("Step size (grey levels, 0 = automatic)"), 0.0, 64.0, 0.0, key="adv_alpha")
    confidence = a2.slider(t("Keep going until the goal has this probability"), 0.0, 0.99, 0.0, key="adv_conf")
    tv_weight = a3.slider(t("Smoothness penalty (TV)"), 0.0, 2.0, 0.0, key="adv_tv", help=t("Penalises neighbouring pixels that change differently: smoother, less visible noise. 1 weighs smoothness as much as the attack."))
    random_start = a3.checkbox(t("Random start (PGD)"), value=True, key="adv_rs")
    leak = a3.slider(
        t("Gradient leak through switched-off ReLUs"), 0.0, MAX_LEAK, AttackSettings.leak, step=0.01, key="adv_leak",
        help=t("A switched-off ReLU passes no gradient, so the attack cannot see which units it could switch on. Letting this share through on the first step (down to 0 on the last) reaches targets in fewer steps. The network's answers are unchanged; 0 follows the plain gradient."),
    )
    views = a1.slider(
        t("Views of the PNG per step"), 0, MAX_VIEWS, AttackSettings.views, key="adv_views",
        help=t("Each step looks at the image as other programs may: the crop shifted by a pixel or two (first the shifts that hold least so far), slightly resized. More views hold up better elsewhere and take longer; 0 attacks only this app's exact crop."),
    )
    jpeg = a2.checkbox(t("Also survive JPEG (quality 90)"), value=False, key="adv_jpeg", help=t("Chat apps re-save photos as JPEG; some views go through JPEG during the attack."))

use_l2 = method == "pgd" and norm == "l2"
settings = AttackSettings(
    method=method,
    eps=float(l2_eps if use_l2 else eps),
    steps=int(steps),
    step_size=step_size or None,
    norm="l2" if use_l2 else "linf",
    random_start=random_start,
    confidence=float(confidence),
    tv_weight=float(tv_weight),
    leak=float(leak),
    views=int(views),
    jpeg=bool(jpeg),
)
run_key = (backbone.name, image_key(image), target, settings)


# The attack, its result and the checks after it rerun alone: a click on Attack (or Stop, or the second network)
# does not re-send the settings above, so the browser redraws a few elements, not the whole page, while the
# attack needs the cores.
@st.fragment
def attack_and_result() -> None:
    b1, b2 = st.columns([3, 1])
    start = b1.button(t("Attack"), type="primary", key="adv_run", width="stretch")
    stop_button("adv", b2, width="stretch")
    outcome = run_job(
        "adv", t("Adversarial lab"),
        (lambda job: attack_images(backbone, [image], settings, target=target, callback=job.callback, should_stop=job.should_stop)) if start else None,
        attack_view(targeted=target is not None),
    )
    if outcome is not None and outcome.result:
        st.session_state["adv_result"] = (run_key, outcome.result[0])
        st.session_state["adv_stopped"] = outcome.result.stopped
        st.session_state.pop("adv_transfer", None)
    elif outcome is not None and outcome.interrupted:
        st.info(t("The attack was stopped before it finished; press Attack to run it again."))

    stored = st.session_state.get("adv_result")
    if stored is None:
        st.info(t("Choose a goal and press Attack."))
        return
    key, result = stored
    if key != run_key:
        st.caption(t("These results are for earlier settings or another photo; press Attack to update them."))
    if st.session_state.get("adv_stopped"):
        st.warning(t("Stopped at step {s}: these are the results of the perturbation found so far, judged on the saved PNG.", s=result.steps_used))

    goal_label = backbone.categories[result.goal] if result.goal < backbone.num_classes else str(result.goal)
    after = result.after[0]
    if result.success:
        st.success(t("Fooled. The saved PNG is classified as **{label}** ({p:.1f}%).", label=after.label, p=after.prob * 100))
    elif result.targeted:
        st.warning(t("Not fooled: the saved PNG is classified as **{label}**, not {goal}. Try a larger ε or more steps.", label=after.label, goal=goal_label))
    else:
        st.warning(t("Not fooled: the saved PNG is still classified as **{label}**. Try a larger ε or more steps.", label=after.label))

    shown, gain = perturbation_image(result.perturbation)
    i1, i2, i3 = st.columns(3)
    i1.image(result.clean, caption=t("Original (shorter side {s} px)", s=min(result.clean.shape[:2])), width="stretch")
    i2.image(shown, caption=t("Perturbation of the {s}×{s} crop, amplified ×{g:g} (grey = no change)", s=result.crop_box[2], g=gain), width="stretch")
    i3.image(result.adversarial, caption=t("Adversarial image (what you download)"), width="stretch")

    b1, b2 = st.columns(2)
    b1.plotly_chart(topk_bar(result.before, t("Before")), width="stretch", key="adv_before")
    b2.plotly_chart(topk_bar(result.after, t("After (saved PNG)"), color="#E45756"), width="stretch", key="adv_after")

    m = st.columns(6)
    m[0].metric(t("L∞"), f"{result.linf:g}/255")
    m[1].metric(t("L2"), f"{result.l2 / 255:.2f}", help=t("Euclidean norm of the perturbation on [0, 1] pixels."))
    m[2].metric(t("PSNR"), "∞" if result.psnr == float("inf") else f"{result.psnr:.1f} dB", help=t("Over the attacked crop; above ~40 dB people see no difference."))
    m[3].metric(t("SSIM"), f"{result.ssim:.4f}")
    m[4].metric(t("Steps"), result.steps_used)
    m[5].metric(t("Time"), f"{result.seconds:.2f} s")
    st.download_button(
        t("Download the adversarial PNG"), result.png, file_name=f"{label.rsplit('.', 1)[0]}_adversarial.png", mime="image/png", key="adv_download",
        help=t("Upload it on the Classify page: it still says what you see here."),
    )

    robustness_panel(result)

    # a toggle, not an expander: a closed expander's content still runs, and two Grad-CAMs after every attack cost ~0.5 s
    if st.toggle(t("Where did the network look, before and after? (Grad-CAM)"), key="adv_show_cam"):
        cam_gallery(
            backbone, [result.clean, result.adversarial], None, key="adv_cam",
            captions=[t("original photo"), t("adversarial PNG")], columns=2,
        )

    st.subheader(t("Does it fool another network?"))
    others = [name for name in backbone_choices() if name != backbone.name]
    second = st.selectbox(t("Second network"), others, format_func=backbone_label, key="adv_second")
    if st.button(t("Check with the second network"), key="adv_check"):
        other = run_safely(backbone_by_name, second)
        verdicts = run_safely(second_network_verdicts, other, [result.clean], [result.adversarial], [result.goal], result.targeted) if other else None
        if verdicts:
            st.session_state["adv_transfer"] = (key, second, verdicts[0])
    transfer = st.session_state.get("adv_transfer")
    if transfer is not None and transfer[0] == key:
        _, second_name, verdict = transfer
        other_before, other_after = verdict.before, verdict.after
        text = t("{net} says **{label}** ({p:.1f}%) about the adversarial PNG.", net=second_name, label=other_after[0].label, p=other_after[0].prob * 100)
        (st.success if verdict.fooled else st.info)(text + " " + (t("It is fooled too.") if verdict.fooled else t("It is not fooled.")))
        o1, o2 = st.columns(2)
        o1.plotly_chart(topk_bar(other_before, t("{net}: original", net=second_name)), width="stretch", key="adv_other_before")
        o2.plotly_chart(topk_bar(other_after, t("{net}: adversarial", net=second_name), color="#E45756"), width="stretch", key="adv_other_after")
        st.caption(t("Attacks made for one network often fool others less; MI-FGSM with input diversity transfers best."))


attack_and_result()
