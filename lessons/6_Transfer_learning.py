"""Transfer learning: reuse a pretrained network for your own classes, train a new head live."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from explain.errors import LensError
from explain.limits import MAX_EPOCHS
from explain.models import HEADS, anatomy_of, export_model
from explain.transfer import (
    ADVICE_TEXT,
    STRATEGIES,
    TrainConfig,
    Trainer,
    advise,
    augmentation_preview,
    imagenet_rows_by_name,
    plan_parameters,
    split_dataset,
)
from explain.ui.backbones import (
    add_own_backbone,
    add_weights_backbone,
    backbone_by_name,
    current_backbone,
    custom_backbones,
)
from explain.ui.classroom import lesson_panel
from explain.ui.errors import run_safely, show_error
from explain.ui.i18n import t
from explain.ui.jobs import heavy_job
from explain.ui.limits import epochs_limit, limits_caption, weights_limits
from explain.ui.plots import bar_chart
from explain.ui.session import cached
from explain.ui.transfer import confusion_heatmap, dataset_builder, prediction_grid, training_curves

st.title(t("Transfer learning"))
st.caption(
    t(
        "Reuse a network pretrained on ImageNet for your own classes with little data: as it is, as a frozen "
        "feature extractor with a new head, or fine-tuning its last blocks."
    )
)

lesson_panel("transfer_learning")

picked = current_backbone()
if picked is None:
    st.stop()
backbone = picked
if picked.source == "trained":
    st.info(t("Your own model is picked in the sidebar; training starts from its base network, {base}.", base=picked.base))
    backbone = run_safely(backbone_by_name, picked.base)
    if backbone is None:
        st.stop()

with st.expander(t("Open a model file you trained before")):
    up = st.file_uploader(t("CNN Lens model file (.pt)"), type=["pt", "pth"], key="tl_upload_model")
    limits_caption(weights_limits())
    if up is not None and st.session_state.get("tl_uploaded", (None,))[0] != up.file_id:
        opened = run_safely(add_weights_backbone, up.name, up.getvalue())
        st.session_state["tl_uploaded"] = (up.file_id, opened)
    if up is not None and st.session_state["tl_uploaded"][1] in custom_backbones():
        loaded = custom_backbones()[st.session_state["tl_uploaded"][1]]
        st.success(t("Loaded {name}: {n} classes ({classes}). Pick it in the sidebar.", name=loaded.name, n=loaded.num_classes, classes=", ".join(loaded.categories[:10])))

# --- 1. dataset -------------------------------------------------------------------------------
st.header(t("1. Your dataset"))
dataset = dataset_builder()
if dataset is None:
    st.stop()
counts = dataset.counts()
c1, c2 = st.columns([1, 2])
c1.dataframe(pd.DataFrame({t("class"): list(counts), t("images"): list(counts.values())}), hide_index=True)
c2.plotly_chart(bar_chart(list(counts.values()), list(counts), t("Images per class")), width="stretch", key="tl_counts")
if dataset.skipped:
    with st.expander(t("{n} files were skipped", n=len(dataset.skipped))):
        st.text("\n".join(dataset.skipped[:200]))
with st.expander(t("Look at the photos")):
    for label, cls in enumerate(dataset.classes):
        members = [img for img, lab in zip(dataset.images, dataset.labels) if lab == label][:8]
        st.markdown(t("Class: {name}", name=f"**{cls}**"))
        st.image(members, width=96)

val_fraction = st.slider(t("Share of each class kept for validation"), 0.1, 0.5, 0.2, 0.05, key="tl_val_frac")
splits = run_safely(split_dataset, dataset, val_fraction)
if splits is None:
    st.stop()
st.caption(
    t("{train} photos to learn from, {val} to check on", train=len(splits.train), val=len(splits.val))
    + (t(" (the folders gave the split)") if splits.given else t(" (stratified random split)"))
)

# --- 2. advisor -------------------------------------------------------------------------------
st.header(t("2. Which strategy?"))
similar = st.radio(
    t("Do your photos look like ImageNet photos (everyday objects, animals, scenes)?"),
    [True, False],
    format_func=lambda s: t("yes, similar") if s else t("no, different (drawings, medical images, hand signs, textures…)"),
    horizontal=True,
    key="tl_similar",
)
advice = advise(splits, similar, backbone.base or backbone.name)
size_word = t("large") if advice.scenario.startswith("large") else t("small")
sim_word = t("similar") if similar else t("different")
st.info(
    t("Scenario: **{size}** dataset ({n} photos in the smallest class), **{sim}** domain. Recommended: **{strategy}**.",
      size=size_word, n=advice.per_class, sim=sim_word, strategy=t(STRATEGIES[advice.strategy]))
    + "\n\n"
    + t(ADVICE_TEXT[advice.scenario])
)
if advice.imagenet_classes:
    st.caption(t("These classes already exist in ImageNet, so the pretrained classifier can be tried as it is: {names}", names=", ".join(advice.imagenet_classes)))

# --- 3. settings ------------------------------------------------------------------------------
st.header(t("3. Settings"))
names = list(STRATEGIES)
if st.session_state.get("tl_advice_seen") != advice.scenario:
    # a new scenario resets the choices to the advisor's, later edits are the user's
    st.session_state["tl_advice_seen"] = advice.scenario
    st.session_state["tl_strategy"] = advice.strategy
    st.session_state["tl_unfreeze"] = advice.unfreeze
    st.session_state["tl_augment"] = advice.augment
strategy = st.radio(t("Strategy"), names, format_func=lambda s: t(STRATEGIES[s]), key="tl_strategy")
blocks = len(anatomy_of(backbone.base or backbone.name, backbone.model).blocks)
s1, s2, s3 = st.columns(3)
head = s1.selectbox(t("New head"), list(HEADS), format_func=lambda h: t(HEADS[h]), key="tl_head", disabled=strategy == "classifier")
unfreeze = s2.slider(t("Blocks to unfreeze (from the last)"), 1, max(1, blocks), key="tl_unfreeze", disabled=strategy != "finetune" or blocks < 1)
epochs = s3.number_input(t("Epochs"), 1, MAX_EPOCHS, 10, key="tl_epochs", disabled=strategy == "classifier")
limits_caption(epochs_limit(), where=s3)
s4, s5, s6 = st.columns(3)
lr = s4.select_slider(t("Head learning rate"), [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], value=1e-3, key="tl_lr", disabled=strategy == "classifier")
backbone_lr = s5.select_slider(
    t("Backbone learning rate"), [1e-5, 3e-5, 1e-4, 3e-4, 1e-3], value=1e-4, key="tl_blr", disabled=strategy != "finetune",
    help=t("Smaller than the head's: the pretrained blocks should only be nudged, the new head learns from scratch."),
)
augment = s6.toggle(t("Augmentation"), key="tl_augment", disabled=strategy == "classifier",
                    help=t("RandomResizedCrop + RandomHorizontalFlip each epoch. Without it the frozen part runs once and training takes seconds."))
head_epochs = st.number_input(
    t("Epochs for the head alone before unfreezing"), 0, MAX_EPOCHS, 5, key="tl_head_epochs", disabled=strategy != "finetune",
    help=t("The course's recipe: train the new head on frozen features first, then fine-tune the blocks with it."),
)
imagenet_rows = imagenet_rows_by_name(splits.classes)
imagenet_init = st.toggle(
    t("Start the new head from ImageNet's own weights for these classes"), value=True, key="tl_imagenet_init",
    disabled=strategy == "classifier" or head != "linear" or imagenet_rows is None,
    help=t("Only when every class name is an ImageNet class (ants → ant) and the head is linear: the head then starts where the pretrained classifier already is, instead of at random."),
)
config = TrainConfig(
    strategy=strategy, head=head, unfreeze=int(unfreeze), epochs=int(epochs), head_epochs=int(head_epochs), lr=float(lr),
    backbone_lr=float(backbone_lr), augment=bool(augment), imagenet_init=bool(imagenet_init),
)
counts_plan = run_safely(plan_parameters, backbone, len(splits.classes), config)
if counts_plan is not None:
    trainable, frozen = counts_plan
    m1, m2 = st.columns(2)
    m1.metric(t("Trainable parameters"), f"{trainable:,}")
    m2.metric(t("Frozen parameters"), f"{frozen:,}")
if augment and strategy != "classifier":
    with st.expander(t("Augmentation preview: what the network sees of one photo in 8 epochs"), expanded=False):
        first = splits.train.images[0]
        st.image([first] + augmentation_preview(first, backbone.preprocess, 8), width=110,
                 caption=[t("original")] + [t("epoch {n}", n=i + 1) for i in range(8)])

# --- 4. training ------------------------------------------------------------------------------
st.header(t("4. Train"))
b1, b2 = st.columns(2)
# the click is kept in the session (not the button's one-run value), so a rerun of the app shell cannot lose it
b1.button(t("Train"), type="primary", key="tl_train", on_click=lambda: st.session_state.update(tl_start=True))
start = st.session_state.pop("tl_start", False)
b2.button(t("Stop"), key="tl_stop", help=t("Stops after the current step and keeps the model trained so far."))
progress_slot = st.empty()
chart_slot = st.empty()

if st.session_state.get("tl_running") and "tl_trainer" in st.session_state and not start:
    # the last run was interrupted (Stop or another click): keep what it learned so far
    st.session_state["tl_running"] = False
    try:
        st.session_state["tl_result"] = st.session_state["tl_trainer"].result()
    except LensError as exc:
        show_error(exc)
    st.session_state.pop("tl_trainer", None)

if start:
    st.session_state.pop("tl_result", None)
    trainer = run_safely(Trainer, backbone, splits, config)
    if trainer is not None:
        st.session_state["tl_trainer"] = trainer
        st.session_state["tl_running"] = True
        bar = progress_slot.progress(0.0, text=t("Starting…"))

        def show(step, state) -> None:
            if state.phase == "features":
                bar.progress(state.step / max(1, state.total), text=t("Running the frozen part once over the photos: batch {s} of {n}", s=state.step, n=state.total))
            elif state.phase == "train":
                bar.progress(state.step / max(1, state.total), text=t("Epoch {e} of {n} · step {s} of {m} · loss {loss:.3f}", e=state.epoch, n=state.epochs, s=state.step, m=state.total, loss=state.loss))
            else:
                chart_slot.plotly_chart(training_curves(state.history, state.epochs), width="stretch", key=f"tl_live_{id(trainer)}_{state.epoch}")

        try:
            with heavy_job(t("Transfer learning")):
                st.session_state["tl_result"] = trainer.train(show)
        except LensError as exc:
            show_error(exc)
        st.session_state["tl_running"] = False
        st.session_state.pop("tl_trainer", None)
        progress_slot.empty()

result = st.session_state.get("tl_result")
if result is None:
    st.info(t("Press Train to start."))
    st.stop()

# --- 5. results -------------------------------------------------------------------------------
st.header(t("5. Results"))
if list(result.backbone.categories) != list(splits.classes):
    st.warning(t("These results belong to a model trained on other classes; train again for this dataset."))
    st.stop()
if result.stopped:
    st.warning(t("Training was stopped after {n} epoch(s); the model below is the one trained so far.", n=len(result.history)))
r1, r2, r3 = st.columns(3)
r1.metric(t("Validation accuracy"), f"{result.val.accuracy * 100:.1f}%")
r2.metric(t("Training time"), f"{result.seconds:.1f} s")
r3.metric(t("Trainable / frozen"), f"{result.trainable_params:,} / {result.frozen_params:,}")
if result.history:
    chart_slot.empty()
    st.plotly_chart(training_curves(result.history), width="stretch", key="tl_curves")
if result.class_map:
    if result.config.strategy != "classifier":
        st.caption(t("The new head started from the pretrained classifier's weights for these ImageNet classes."))
    st.dataframe(pd.DataFrame({t("your class"): list(result.class_map), t("ImageNet class used"): list(result.class_map.values())}), hide_index=True)
cm1, cm2 = st.columns(2)
cm1.subheader(t("Confusion matrix (validation)"))
cm1.plotly_chart(confusion_heatmap(result.val.confusion, splits.classes), width="stretch", key="tl_confusion")
cm2.subheader(t("Accuracy per class"))
cm2.plotly_chart(
    bar_chart([v * 100 for v in result.val.per_class.values()], list(result.val.per_class), "", "", "%"), width="stretch", key="tl_perclass"
)

st.subheader(t("Validation photos: predicted class in green (right) or red (wrong)"))
only_wrong = st.toggle(t("Only the mistakes"), key="tl_only_wrong")
show_n = st.slider(t("Photos shown"), 6, 60, 24, 6, key="tl_grid_n")
rows = [i for i, (p, y) in enumerate(zip(result.val.predictions, result.val.labels)) if p != y or not only_wrong][:show_n]
if rows:
    prediction_grid(
        [splits.val.images[i] for i in rows], [result.val.predictions[i] for i in rows], [result.val.labels[i] for i in rows], splits.classes
    )
else:
    st.success(t("No mistakes on the validation photos."))

# --- 6. my model ------------------------------------------------------------------------------
st.header(t("6. My model"))
model_name = st.text_input(t("Name in the backbone list"), value=t("my model"), key="tl_model_name").strip() or t("my model")
own = replace(result.backbone, name=model_name)
add_own_backbone(model_name, own)
st.success(
    t("**{name}** is now in the sidebar's backbone list: look at its feature maps, its ideal images of your classes, attack it, or see its Grad-CAM.", name=model_name)
)
exported = cached("tl_export", (id(result), model_name), lambda: export_model(own), max_entries=1)
st.download_button(
    t("Download the model file"),
    data=exported,
    file_name="my_model.pt",
    mime="application/octet-stream",
    key="tl_download",
    help=t("Weights, class names, base network and preprocessing in one file; open it with `python -m explain classify --model my_model.pt`."),
)

