"""Transfer learning: reuse a pretrained network for your own classes, train a new head live."""

from dataclasses import replace

import streamlit as st

from explain.limits import MAX_EPOCHS
from explain.models import HEADS, anatomy_of, export_model
from explain.transfer import (
    AUTO,
    STRATEGIES,
    STRATEGY_TITLES,
    TrainConfig,
    Trainer,
    augmentation_preview,
    imagenet_rows_by_name,
    plan_parameters,
    split_dataset,
)
from explain.ui.backbones import add_own_backbone, backbone_by_name, current_backbone
from explain.ui.classroom import kept_value, lesson_panel
from explain.ui.errors import run_safely
from explain.ui.i18n import t
from explain.ui.jobs import run_job, stop_button
from explain.ui.limits import epochs_limit, limits_caption
from explain.ui.session import cached
from explain.ui.transfer import (
    VAL_FRACTION,
    advisor_panel,
    dataset_builder,
    dataset_overview,
    model_file_opener,
    training_report,
    training_view,
)

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

model_file_opener()

# --- 1. dataset -------------------------------------------------------------------------------
st.header(t("1. Your dataset"))
dataset = dataset_builder()
if dataset is None:
    st.stop()
dataset_overview(dataset)

val_fraction = VAL_FRACTION  # the folders' own split is used as it is
if not dataset.split_given:
    val_fraction = st.slider(t("Share of each class kept for validation"), 0.1, 0.5, VAL_FRACTION, 0.05, key="tl_val_frac")
splits = run_safely(split_dataset, dataset, val_fraction)
if splits is None:
    st.stop()
st.caption(
    t("{train} photos to learn from, {val} to check on", train=len(splits.train), val=len(splits.val))
    + (t(" (the folders gave the split)") if splits.given else t(" (stratified random split)"))
)

# --- 2. advisor -------------------------------------------------------------------------------
st.header(t("2. Which strategy?"))
plan = advisor_panel(backbone, splits)
if plan is None:
    st.stop()
advice = plan.advice

BACKBONE_LRS = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3]

# --- 3. settings ------------------------------------------------------------------------------
st.header(t("3. Settings"))
names = [AUTO, *STRATEGIES]
if st.session_state.get("tl_advice_seen") != advice.scenario:
    # a new scenario resets the choices to the advisor's (kept_value's defaults below), later edits are the user's
    st.session_state["tl_advice_seen"] = advice.scenario
    for key in ("tl_strategy", "tl_unfreeze", "tl_augment", "tl_epochs", "tl_head_epochs", "tl_blr"):
        st.session_state.pop(key, None)
kept_value("tl_strategy", AUTO, names)
picked_strategy = st.radio(t("Strategy"), names, format_func=lambda s: t(STRATEGY_TITLES[s]), key="tl_strategy")
strategy = advice.strategy if picked_strategy == AUTO else picked_strategy  # the settings below show what auto will do
blocks = len(anatomy_of(backbone.base or backbone.name, backbone.model).blocks)
s1, s2, s3 = st.columns(3)
head = s1.selectbox(t("New head"), list(HEADS), format_func=lambda h: t(HEADS[h]), key="tl_head", disabled=strategy == "classifier")
kept_value("tl_unfreeze", min(plan.unfreeze, max(1, blocks)), range(1, max(1, blocks) + 1))
unfreeze = s2.slider(t("Blocks to unfreeze (from the last)"), 1, max(1, blocks), key="tl_unfreeze", disabled=strategy != "finetune" or blocks < 1)
kept_value("tl_epochs", plan.epochs)
epochs = s3.number_input(t("Epochs"), 1, MAX_EPOCHS, key="tl_epochs", disabled=strategy == "classifier")
limits_caption(epochs_limit(), where=s3)
s4, s5, s6 = st.columns(3)
lr = s4.select_slider(t("Head learning rate"), [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], value=1e-3, key="tl_lr", disabled=strategy == "classifier")
kept_value("tl_blr", plan.backbone_lr or 1e-4, BACKBONE_LRS)
backbone_lr = s5.select_slider(
    t("Backbone learning rate"), BACKBONE_LRS, key="tl_blr", disabled=strategy != "finetune",
    help=t("Smaller than the head's: the pretrained blocks should only be nudged, the new head learns from scratch."),
)
kept_value("tl_augment", False if picked_strategy == AUTO else advice.augment, (True, False))
augment = s6.toggle(t("Augmentation"), key="tl_augment", disabled=strategy == "classifier",
                    help=t("RandomResizedCrop + RandomHorizontalFlip each epoch. Without it the frozen part runs once and training takes seconds."))
kept_value("tl_head_epochs", plan.head_epochs if strategy == "finetune" else 5)
head_epochs = st.number_input(
    t("Epochs for the head alone before unfreezing"), 0, MAX_EPOCHS, key="tl_head_epochs", disabled=strategy != "finetune",
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
    input_size=plan.input_size if picked_strategy == AUTO else None, schedule=plan.schedule if picked_strategy == AUTO else "constant",
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
stop_button("tl", b2, help=t("Stops after the current step and keeps the model trained so far."))


def train(job):
    trainer = Trainer(backbone, splits, config)
    job.keep(trainer)  # a click that ends this run mid-way still gets the model trained so far
    return trainer.train(job.callback, job.should_stop)


if start:
    st.session_state.pop("tl_result", None)
outcome = run_job("tl", t("Transfer learning"), train if start else None, training_view(),
                  salvage=lambda trainer, last: trainer.result() if trainer is not None else None)
if outcome is not None and outcome.result is not None:
    st.session_state["tl_result"] = outcome.result

result = st.session_state.get("tl_result")
if result is None:
    st.info(t("Press Train to start."))
    st.stop()

# --- 5. results -------------------------------------------------------------------------------
st.header(t("5. Results"))
if list(result.backbone.categories) != list(splits.classes):
    st.warning(t("These results belong to a model trained on other classes; train again for this dataset."))
    st.stop()
training_report(result, splits)

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

