"""Transfer learning on real weights (EfficientNet-Lite0) and the built-in demo sets (scikit-image photos)."""

from __future__ import annotations

import io
import stat
import unicodedata
import zipfile

import numpy as np
import pytest
import torch

from explain import transfer as T
from explain.classify import classify_images
from explain.errors import LensError
from explain.images import encode_png, sample_image
from explain.models import (
    REGISTRY,
    Backbone,
    anatomy_of,
    build_architecture,
    imagenet_categories,
    load_model,
    save_model,
    with_preprocess,
)
from explain.transfer import datasets

from ..shared import demo_pngs


@pytest.fixture(scope="module")
def small(lite0) -> Backbone:
    """Lite0 on 128-pixel inputs: three times less work than 224, and the demo textures stay easy."""
    return with_preprocess(lite0, input_size=128, resize_size=128)


@pytest.fixture(scope="module")
def splits() -> T.Splits:
    return T.split_dataset(T.demo_dataset("textures", per_class=10, size=96, seed=1), val_fraction=0.3)


@pytest.fixture(scope="module")
def extract_run(small, splits):
    trainer = T.Trainer(small, splits, T.TrainConfig("extract", epochs=6, lr=3e-3))
    before = trainer.result().val.accuracy  # the new head, untrained
    return before, trainer.train()


class _LegacyNameInfo(zipfile.ZipInfo):
    """What Windows' built-in zip writes for Korean names: cp949 bytes and no UTF-8 flag."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("cp437"), self.flag_bits & ~0x800


def _png_zip(files: dict[str, bytes], utf8: bool = True) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            if utf8:
                info = zipfile.ZipInfo(name)
            else:
                info = _LegacyNameInfo(unicodedata.normalize("NFC", name).encode("cp949").decode("cp437"))
            zf.writestr(info, data)
    return buf.getvalue()


# --- training ---------------------------------------------------------------------------------------
def test_feature_extractor_learns_far_above_chance(extract_run, splits):
    before, result = extract_run
    chance = 1 / len(splits.classes)
    assert result.val.accuracy >= 0.9
    assert result.val.accuracy >= before + 0.25
    assert result.val.accuracy > chance + 0.5
    assert len(result.history) == 6 and not result.stopped
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.val.confusion.sum() == len(splits.val)
    assert set(result.val.per_class) == set(splits.classes)
    assert result.trainable_params == 1280 * 3 + 3
    b = result.backbone
    assert (b.source, b.base, b.cam_layer, b.categories) == ("trained", "efficientnet_lite0", "bn2", list(splits.classes))


def test_trained_model_classifies_through_the_shared_pipeline(extract_run, splits):
    _, result = extract_run
    scores = classify_images(result.backbone, list(splits.val.images), k=1)
    predicted = [s[0].index for s in scores]
    assert predicted == list(result.val.predictions)


def test_finetune_changes_only_unfrozen_blocks(small, splits):
    reference = {k: v.clone() for k, v in small.model.state_dict().items()}
    config = T.TrainConfig("finetune", head="mlp", unfreeze=1, epochs=1, head_epochs=2, batch_size=8)
    planned = T.Trainer(small, splits, config)
    assert T.plan_parameters(small, 3, config) == (planned.trainable_params, planned.frozen_params)
    result = T.train_model(small, splits, config)
    after = result.backbone.model.state_dict()
    trainable_prefixes = ("blocks.6.", "conv_head.", "bn2.", "classifier.")
    changed = [k for k in reference if not k.startswith("classifier.") and not torch.equal(reference[k], after[k])]
    assert changed, "fine-tuning changed nothing"
    assert all(k.startswith(trainable_prefixes) for k in changed), changed
    # BatchNorm statistics stay ImageNet's, even in the unfrozen blocks (the backbone runs in eval mode)
    assert all(torch.equal(reference[k], after[k]) for k in reference if "running_" in k)
    # the shared registry backbone is untouched
    assert all(torch.equal(v, small.model.state_dict()[k]) for k, v in reference.items())
    assert result.trainable_params > 600_000 and result.frozen_params > 600_000
    assert [h.phase for h in result.history] == ["head", "head", "blocks"]


def test_split_forward_equals_whole_network(small, splits):
    trainer = T.Trainer(small, splits, T.TrainConfig("finetune", unfreeze=3))
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        whole = trainer.model(small.normalize(x))
        parts = trainer._trainable_forward(trainer._frozen_forward(x))
    assert torch.allclose(whole, parts, atol=1e-4)


def test_anatomy_of_resnet_and_mobilenet():
    resnet = build_architecture("resnet18").eval()
    a = anatomy_of("resnet18", resnet)
    assert a.blocks == (("layer1",), ("layer2",), ("layer3",), ("layer4",)) and a.head == "fc"
    mobile = anatomy_of("mobilenet_v2")
    assert len(mobile.blocks) == 19 and mobile.head == "classifier.1"
    vgg = anatomy_of("vgg16")
    assert len(vgg.blocks) == 5 and vgg.blocks[-1][-1] == "features.30" and vgg.head == "classifier.6"
    # the same cut through a resnet with random weights: frozen part + trainable part = the network
    bb = Backbone("resnet18", resnet, imagenet_categories(), REGISTRY["resnet18"].preprocess, torch.device("cpu"), "file", "resnet18")
    ds = T.split_dataset(T.demo_dataset("textures", per_class=5, size=32))
    trainer = T.Trainer(bb, ds, T.TrainConfig("finetune", unfreeze=2))
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(trainer.model(bb.normalize(x)), trainer._trainable_forward(trainer._frozen_forward(x)), atol=1e-4)


def test_stop_request_keeps_the_model_so_far(small, splits):
    steps = []
    result = T.train_model(
        small, splits, T.TrainConfig("extract", epochs=5, batch_size=4), callback=lambda p: steps.append(p.phase), should_stop=lambda: True
    )
    assert result.stopped and len(result.history) == 1
    assert steps.count("train") == 1 and steps[0] == "features" and steps[-1] == "epoch"


def test_augmentation_preview_and_crop():
    photo = sample_image("chelsea")
    crops = T.augmentation_preview(photo, REGISTRY["efficientnet_lite0"].preprocess, 4, seed=3)
    assert len(crops) == 4 and all(c.shape == (224, 224, 3) and c.dtype == np.uint8 for c in crops)
    assert not np.array_equal(crops[0], crops[1])
    assert np.array_equal(crops[0], T.augmentation_preview(photo, REGISTRY["efficientnet_lite0"].preprocess, 1, seed=3)[0])


def test_classifier_strategy_maps_classes_to_imagenet(small):
    ds = T.split_dataset(T.demo_dataset("photos", per_class=6, size=160))
    result = T.train_model(small, ds, T.TrainConfig("classifier"))
    assert result.trainable_params == 0 and result.history == ()
    assert len(set(result.class_map.values())) == 4
    assert result.val.accuracy >= 0.75
    assert result.class_map["cat"] in {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "lynx"}
    cats = imagenet_categories()
    rows = result.backbone.extra["head"]["imagenet_rows"]
    assert [cats[r] for r in rows] == list(result.class_map.values())


# --- export / import ---------------------------------------------------------------------------------
def test_export_import_gives_identical_predictions(extract_run, tmp_path):
    _, result = extract_run
    path = save_model(result.backbone, tmp_path / "mine.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "cnn-lens-model" and payload["classes"] == list(result.backbone.categories)
    again = load_model(str(path), device="cpu")
    assert again.source == "trained" and again.categories == result.backbone.categories and again.cam_layer == "bn2"
    assert again.preprocess == result.backbone.preprocess
    x = torch.rand(3, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(result.backbone.logits(x), again.logits(x))
    # a file that is no checkpoint at all is refused with the file's own name, never unpickled
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(LensError, match="Could not read weights file 'junk.pt'"):
        load_model(str(junk), device="cpu")


# --- datasets -------------------------------------------------------------------------------------
def test_zip_with_root_folder_korean_names_and_junk():
    pngs = demo_pngs()
    files = {f"my set/{cls}/{i}.png": d for cls, ds in pngs.items() for i, d in enumerate(ds)}
    files["my set/notes.txt"] = b"hello"
    files["my set/brick/readme.md"] = b"x"
    files["__MACOSX/my set/brick/._0.png"] = b"junk"
    ds = T.dataset_from_zip(_png_zip(files))
    assert ds.classes == ("brick", "grass", "gravel") and len(ds) == 15
    assert any("readme.md" in s for s in ds.skipped) and any("notes.txt" in s for s in ds.skipped)
    assert not any("MACOSX" in s for s in ds.skipped)
    korean = {f"{unicodedata.normalize('NFD', '벽돌')}/{i}.png": d for i, d in enumerate(pngs["brick"])}
    korean |= {f"잔디/{i}.png": d for i, d in enumerate(pngs["grass"])}
    assert T.dataset_from_zip(_png_zip(korean)).classes == ("벽돌", "잔디")
    assert T.dataset_from_zip(_png_zip(korean, utf8=False)).classes == ("벽돌", "잔디")


def test_zip_unsafe_entries_are_skipped():
    pngs = demo_pngs(per_class=5)
    files = {f"{cls}/{i}.png": d for cls, ds in pngs.items() for i, d in enumerate(ds)}
    files["../evil/0.png"] = pngs["brick"][0]
    files["/abs/0.png"] = pngs["brick"][0]
    buf = io.BytesIO(_png_zip(files))
    with zipfile.ZipFile(buf, "a") as zf:
        link = zipfile.ZipInfo("brick/link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    ds = T.dataset_from_zip(buf.getvalue())
    assert ds.classes == ("brick", "grass", "gravel") and len(ds) == 15
    reasons = " ".join(ds.skipped)
    assert "../evil/0.png: unsafe path" in reasons and "/abs/0.png: unsafe path" in reasons and "link.png: a link" in reasons


def test_a_zip_of_only_rejected_entries_says_how_many_and_which():
    pngs = demo_pngs(per_class=5)
    data = _png_zip({f"../escape/{i}.png": pngs["brick"][i % 5] for i in range(15)})
    with pytest.raises(LensError) as error:
        T.dataset_from_zip(data, "bad.zip")
    message = str(error.value)
    assert "Skipped 15 file(s)" in message and message.count("unsafe path") == 10 and "and 5 more" in message


def test_a_given_split_is_known_before_splitting():
    pngs = demo_pngs(per_class=6)
    files = {f"{'val' if i < 2 else 'train'}/{cls}/{i}.png": d for cls, ds in pngs.items() for i, d in enumerate(ds)}
    given = T.dataset_from_zip(_png_zip(files))
    plain = T.dataset_from_zip(_png_zip({f"{cls}/{i}.png": d for cls, ds in pngs.items() for i, d in enumerate(ds)}))
    assert given.split_given and T.split_dataset(given).given
    assert not plain.split_given and not T.split_dataset(plain).given


def test_zip_limits(monkeypatch):
    pngs = demo_pngs(per_class=5)
    data = _png_zip({f"{cls}/{i}.png": d for cls, ds in pngs.items() for i, d in enumerate(ds)})
    monkeypatch.setattr(datasets, "ZIP_MAX_TOTAL_BYTES", 1000)
    with pytest.raises(LensError, match="would unpack to"):
        T.dataset_from_zip(data)
    monkeypatch.setattr(datasets, "ZIP_MAX_ENTRIES", 3)
    with pytest.raises(LensError, match="entries; the limit is 3"):
        T.dataset_from_zip(data)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/big.png", b"\0" * 5_000_000)
    monkeypatch.setattr(datasets, "ZIP_MAX_ENTRIES", 100)
    monkeypatch.setattr(datasets, "ZIP_MAX_TOTAL_BYTES", 10**9)
    with pytest.raises(LensError, match="No images found.*compressed"):
        T.dataset_from_zip(bomb.getvalue())
    with pytest.raises(LensError, match="not a readable zip"):
        T.dataset_from_zip(b"PK\x03\x04 broken")


def test_bad_datasets_give_clear_messages(tmp_path):
    pngs = demo_pngs(per_class=6)
    one_class = T.dataset_from_uploads({"brick": [(f"{i}.png", d) for i, d in enumerate(pngs["brick"])]})
    with pytest.raises(LensError, match="at least 2 classes.*'brick'"):
        T.split_dataset(one_class)
    few = T.dataset_from_uploads({"brick": [(f"{i}.png", d) for i, d in enumerate(pngs["brick"])], "grass": [("g.png", pngs["grass"][0])] * 3})
    with pytest.raises(LensError, match="Class 'grass' has only 3 image"):
        T.split_dataset(few)
    broken = T.dataset_from_uploads({"a": [("x.png", b"not an image")] + [(f"{i}.png", d) for i, d in enumerate(pngs["brick"])]})
    assert len(broken) == 6 and "x.png" in broken.skipped[0]
    with pytest.raises(LensError, match="No images found"):
        T.dataset_from_uploads({"a": [("x.png", b"not an image")]})
    with pytest.raises(LensError, match="not a folder"):
        T.dataset_from_folder(tmp_path / "missing")
    (tmp_path / "loose.png").write_bytes(pngs["brick"][0])
    with pytest.raises(LensError, match="No images found"):
        T.dataset_from_folder(tmp_path)
    with pytest.raises(LensError, match="Unknown strategy"):
        T.TrainConfig("magic").checked()


def test_split_is_stratified_and_test_classes_checked():
    ds = T.demo_dataset("photos", per_class=10, size=32)
    sp = T.split_dataset(ds, val_fraction=0.2, seed=4)
    assert sp.val.counts() == dict.fromkeys(ds.classes, 2) and sp.train.counts() == dict.fromkeys(ds.classes, 8)
    assert not set(sp.val.names) & set(sp.train.names)
    other = T.demo_dataset("textures", per_class=5, size=32)
    with pytest.raises(LensError, match="classes the model was not trained on"):
        T.split_dataset(ds, test=other)


def test_advisor_four_scenarios(splits):
    assert T.advise(splits, similar=True).strategy == "extract"
    assert T.advise(splits, similar=False).strategy == "finetune"
    big = T.ImageSet(("a", "b"), (np.zeros((8, 8, 3), np.uint8),) * 1200, (0, 1) * 600, ("x",) * 1200)
    assert T.advise(big, similar=True).scenario == "large-similar"
    large_diff = T.advise(big, similar=False)
    assert large_diff.scenario == "large-different" and large_diff.unfreeze > T.advise(big, similar=True).unfreeze
    ants = T.ImageSet(("ants", "bees"), (), (), ())
    assert T.advise(ants, similar=True).imagenet_classes == ("ants", "bees")


# --- my model in the other lessons' functions ---------------------------------------------------
def test_my_model_works_with_feature_maps_and_grad_cam(extract_run, splits):
    from explain.cam import compute_cam
    from explain.featuremaps import record_image
    from explain.images import prepare

    _, result = extract_run
    mine = result.backbone
    x = prepare(splits.val.images[0], mine.preprocess).tensor
    recording = record_image(mine, x)
    assert "bn2" in recording.maps and recording.logits.shape == (1, len(splits.classes))
    cam = compute_cam(mine, x, targets=splits.classes[splits.val.labels[0]])
    assert cam.layer == "bn2" and cam.target_label == (splits.classes[splits.val.labels[0]],)
    assert cam.maps.shape[1:] == (mine.preprocess.input_size,) * 2 and cam.maps.max() > 0


# --- a new head that starts from ImageNet's own weights --------------------------------------------
def _views(photo: np.ndarray, n: int = 6) -> list[tuple[str, bytes]]:
    """n different crops (and mirror images) of one photo, as PNG uploads."""
    h, w = photo.shape[:2]
    out = []
    for i in range(n):
        top, left = (i * h) // (4 * n), (i * w) // (4 * n)
        crop = photo[top : top + (3 * h) // 4, left : left + (3 * w) // 4]
        out.append((f"{i}.png", encode_png(crop[:, ::-1] if i % 2 else crop)))
    return out


@pytest.fixture(scope="module")
def imagenet_named():
    ds = T.dataset_from_uploads({"tabby": _views(sample_image("chelsea")), "coffee mug": _views(sample_image("coffee"))})
    return T.split_dataset(ds, val_fraction=0.34)


def test_head_starts_from_imagenet_rows_when_every_class_name_matches(small, imagenet_named):
    cats = imagenet_categories()
    rows = [cats.index(c) for c in imagenet_named.classes]
    assert set(imagenet_named.classes) == {"tabby", "coffee mug"}
    assert T.imagenet_rows_by_name(imagenet_named.classes) == rows
    trainer = T.Trainer(small, imagenet_named, T.TrainConfig("extract", epochs=1))
    original = small.model.classifier
    assert torch.equal(trainer.head.weight.cpu(), original.weight[rows].detach().cpu())
    assert trainer.class_map == {"tabby": "tabby", "coffee mug": "coffee mug"}
    # before any training the model already knows these photos: it is ImageNet's own classifier, cut down
    assert trainer.result().val.accuracy == 1.0
    result = trainer.train()
    assert result.class_map == {"tabby": "tabby", "coffee mug": "coffee mug"}
    assert [s[0].label for s in classify_images(result.backbone, [sample_image("chelsea"), sample_image("coffee")], 1)] == ["tabby", "coffee mug"]


@pytest.mark.parametrize(
    "classes, config",
    [
        (("tabby", "coffee mug"), T.TrainConfig("extract", imagenet_init=False)),
        (("tabby", "coffee mug"), T.TrainConfig("extract", head="mlp")),
        (("tabby", "my robot"), T.TrainConfig("extract")),  # one name is not an ImageNet class: no partial start
        (("고양이", "컵"), T.TrainConfig("extract")),
    ],
)
def test_head_starts_at_random_otherwise(small, imagenet_named, classes, config):
    splits = T.Splits(classes, *(replace_classes(s, classes) for s in (imagenet_named.train, imagenet_named.val)), None, False)
    trainer = T.Trainer(small, splits, config)
    assert trainer.class_map == {}
    if config.head == "linear":
        assert not torch.equal(trainer.head.weight[0].cpu(), small.model.classifier.weight[281].detach().cpu())


def replace_classes(ds: T.ImageSet, classes: tuple[str, ...]) -> T.ImageSet:
    from dataclasses import replace

    return replace(ds, classes=classes)


# --- strategy "auto": the advisor measures the domain itself ---------------------------------------
def test_nearest_mean_accuracy_tells_separable_features_from_mixed_ones():
    from explain.transfer.auto import nearest_mean_accuracy

    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(10)
    centres = torch.randn(3, 16, generator=gen) * 5
    apart = centres[labels] + torch.randn(30, 16, generator=gen)
    assert nearest_mean_accuracy(apart, labels) == 1.0
    mixed = torch.randn(30, 16, generator=gen)  # the same distribution for every class
    assert nearest_mean_accuracy(mixed, labels) < 0.6
    # leave-one-out: a photo may not vote for its own class through its own features; features that share
    # nothing with their class (orthogonal) would score 1.0 against class means that include them, and score a tie here
    assert nearest_mean_accuracy(torch.eye(10), torch.tensor([0] * 5 + [1] * 5)) == 0.5


@pytest.fixture(scope="module")
def noise_splits() -> T.Splits:
    """Two classes of the same random noise at 48 px: no feature can tell them apart (a domain far from ImageNet)."""
    rng = np.random.default_rng(3)
    images = tuple(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(24))
    return T.split_dataset(T.ImageSet(("a", "b"), images, (0, 1) * 12, tuple(f"{i}.png" for i in range(24))), 0.25)


def test_advisor_measures_the_domain_and_plans_extract_or_finetune(small, splits, noise_splits):
    textures = T.plan_training(small, splits)
    assert textures.estimate.similar and textures.estimate.probe_accuracy >= 0.9 and 0 < textures.estimate.confidence <= 1
    assert textures.strategy == "extract" and textures.input_size is None  # 96 px photos, 128 px network: less than 1.5x
    noise = T.plan_training(small, noise_splits)
    assert not noise.estimate.similar and noise.estimate.probe_accuracy < 0.8
    assert (noise.strategy, noise.unfreeze) == ("finetune", 2) and noise.head_epochs > 0 and noise.backbone_lr
    assert noise.input_size == 96  # 48 px photos are blown up 1.5x (to a multiple of 32), not to the network's 128
    for plan in (textures, noise):
        info = plan.as_dict()
        assert info["strategy"] == plan.strategy and len(info["reasons"]) == len(plan.reasons) >= 3
        assert all(isinstance(r, str) and "{" not in r for r in info["reasons"])
    assert any("under 90%" in r for r in noise.as_dict()["reasons"])
    assert any("at least 90%" in r for r in textures.as_dict()["reasons"])
    config = noise.config(seed=2, epochs=1)
    assert (config.strategy, config.unfreeze, config.input_size, config.seed, config.epochs, config.augment) == ("finetune", 2, 96, 2, 1, False)
    assert (config.schedule, textures.config().schedule) == ("cosine", "constant")


def test_a_planned_input_size_trains_and_exports_at_that_size(small, noise_splits):
    config = T.TrainConfig("finetune", unfreeze=1, epochs=1, head_epochs=1, batch_size=8, input_size=64)
    trainer = T.Trainer(small, noise_splits, config)
    trainer.prepare_features()
    assert trainer._cache["train"].shape[-1] == 64 // 32  # lite0 divides by 32 before its last blocks
    result = trainer.train()
    pp = result.backbone.preprocess
    assert (pp.input_size, pp.resize_size) == (64, 64) and small.preprocess.input_size == 128
    assert T.evaluate(result.backbone, noise_splits.val).accuracy == result.val.accuracy
    with pytest.raises(LensError, match="input size"):
        T.TrainConfig(input_size=4000).checked()
