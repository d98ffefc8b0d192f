"""Grad-CAM family and saliency: real EfficientNet-Lite0 weights, real photos (scikit-image samples)."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from explain.cam import compute_cam, default_layer, heatmap, map_layers, mass_inside, overlay_cam
from explain.errors import LensError
from explain.hooks import hook_count
from explain.images import prepare, resize, sample_image, to_tensor
from explain.models import REGISTRY, Backbone, build_architecture, imagenet_categories, prepare_for_viewing

from ..conftest import CAT_CLASSES

# lite0 (session-wide EfficientNet-Lite0) comes from conftest.py: tests here must not change it


@pytest.fixture(scope="module")
def chelsea_full() -> np.ndarray:
    """The whole chelsea photo (not centre-cropped): cat on the left, background on the right."""
    return resize(sample_image("chelsea"), (336, 224), "area")


@pytest.fixture(scope="module")
def cat_on_gravel() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Chelsea's cat pasted at the centre-left of a gravel texture; returns (image, the cat's box as fractions)."""
    canvas = resize(sample_image("gravel"), (448, 224), "area").copy()
    cat = resize(sample_image("chelsea")[:, :380], (203, 160), "area")  # x < 380: the cat, not the room behind it
    y0, x0 = 32, 40
    canvas[y0 : y0 + cat.shape[0], x0 : x0 + cat.shape[1]] = cat
    return canvas, (x0 / 448, y0 / 224, (x0 + cat.shape[1]) / 448, (y0 + cat.shape[0]) / 224)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("method", ["gradcam", "gradcampp"])
def test_cat_map_lies_on_the_cat_in_chelsea(lite0, chelsea_full, method):
    result = compute_cam(lite0, to_tensor(chelsea_full), method=method)
    assert result.target_index[0] in CAT_CLASSES
    cam_map = result.maps[0]
    assert cam_map.shape == chelsea_full.shape[:2]
    hot = np.where(cam_map >= 0.5, cam_map, 0.0)
    # the cat fills x < 80 % of the photo; the right edge is the room behind it
    assert mass_inside(hot, (0.0, 0.0, 0.8, 1.0)) > 0.9
    assert mass_inside(cam_map, (0.85, 0.0, 1.0, 1.0)) < 0.5 * 0.15  # less than half its area share
    y, x = np.unravel_index(cam_map.argmax(), cam_map.shape)
    assert x < 0.8 * cam_map.shape[1]


# Every method but the counterfactual map (below) finds the cat. Measured shares on this picture: Grad-CAM,
# XGrad-CAM, HiRes-CAM 0.74, Grad-CAM++ 0.73, Layer-CAM 0.70, Ablation-CAM 0.67, integrated gradients 0.69,
# occlusion 0.64, saliency and SmoothGrad 0.60, Score-CAM 0.60 (on blocks.5: 192 channels instead of bn2's 1280,
# so 192 forward passes, not 1280), Eigen-CAM 0.95 (class-agnostic, but the cat is the picture's main pattern),
# guided backprop 0.82, guided Grad-CAM 0.93.
CAT_BOX_CASES = [
    ("gradcam", 0.6, {}), ("gradcampp", 0.6, {}), ("xgradcam", 0.6, {}), ("layercam", 0.6, {}), ("hirescam", 0.6, {}),
    ("scorecam", 0.5, {"layer": "blocks.5"}), ("ablationcam", 0.55, {}), ("eigencam", 0.6, {}),
    ("saliency", 0.45, {}), ("smoothgrad", 0.45, {"samples": 4}), ("integrated_gradients", 0.5, {"steps": 8}),
    ("occlusion", 0.5, {}), ("guided_backprop", 0.6, {}), ("guided_gradcam", 0.6, {}),
]


@pytest.mark.parametrize("method,least,options", CAT_BOX_CASES)
def test_cat_map_mass_is_inside_the_cat_box(lite0, cat_on_gravel, method, least, options):
    image, box = cat_on_gravel
    area = (box[2] - box[0]) * (box[3] - box[1])  # about a third of the picture
    result = compute_cam(lite0, to_tensor(image), targets="tabby", method=method, **options)
    assert result.target_index == (281,)
    assert result.maps.shape == (1, 224, 448) and np.isfinite(result.maps).all() and result.maps.max() > 0.99
    share = mass_inside(result.maps[0], box)
    assert share > least > area
    assert hook_count(lite0.model) == 0


def test_counterfactual_map_is_not_on_the_evidence_for_the_class(lite0, cat_on_gravel):
    """The counterfactual map shows what argues *against* tabby, so it must not sit on the cat like Grad-CAM's does.

    (Where it sits instead is the network's business: often nowhere, an all-zero map, when nothing argues against.)
    """
    image, box = cat_on_gravel
    x = to_tensor(image)
    against = compute_cam(lite0, x, targets="tabby", method="counterfactual").maps[0]
    assert against.min() >= 0 and np.isfinite(against).all()
    if against.max() > 0:
        assert mass_inside(against, box) < 0.5 * mass_inside(compute_cam(lite0, x, targets="tabby").maps[0], box)
    # for a class with evidence on both sides (a goldfish: none of it here), the two maps split the layer's grid:
    # where one is positive (the weighted sum S > 0) the other is zero (ReLU of -S), and each has some of it
    fish_for = compute_cam(lite0, x, targets="goldfish").raw[0]
    fish_against = compute_cam(lite0, x, targets="goldfish", method="counterfactual").raw[0]
    assert fish_for.max() > 0 and fish_against.max() > 0
    assert float((fish_for * fish_against).max()) == 0.0


@pytest.mark.parametrize("method", ["xgradcam", "layercam", "hirescam", "eigencam"])
def test_more_methods_match_pytorch_grad_cam(lite0, method):
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = {"xgradcam": pgc.XGradCAM, "layercam": pgc.LayerCAM, "hirescam": pgc.HiResCAM, "eigencam": pgc.EigenCAM}[method]
    x = torch.cat([prepare(sample_image(s), lite0.preprocess).tensor for s in ("chelsea", "coffee")])
    model = copy.deepcopy(lite0.model)
    ours = compute_cam(lite0, x, targets=[281, 967], method=method)
    with cls(model, [model.bn2]) as cam:
        ref = cam(lite0.normalize(x), [ClassifierOutputTarget(c) for c in (281, 967)])
    for k in range(2):
        assert _pearson(ours.maps[k], ref[k]) >= 0.99, (method, k)


def test_layers_averaged_like_pytorch_grad_cam(lite0):
    """Several layers: each layer's map scaled to [0, 1] at the input size, averaged, scaled again (pytorch-grad-cam's rule)."""
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x = prepare(sample_image("chelsea"), lite0.preprocess).tensor
    both = compute_cam(lite0, x, targets=281, layer="blocks.5+bn2")
    assert both.layer == "blocks.5+bn2" and both.maps.shape == (1, 224, 224)
    model = copy.deepcopy(lite0.model)
    with pgc.GradCAM(model, [model.blocks[5], model.bn2]) as cam:
        ref = cam(lite0.normalize(x), [ClassifierOutputTarget(281)])
    assert _pearson(both.maps[0], ref[0]) >= 0.99
    alone = compute_cam(lite0, x, targets=281, layer="bn2").maps[0]
    assert _pearson(both.maps[0], alone) < 0.999  # the second layer did change the map


def test_gradient_free_methods_batch_images_and_agree_with_one_at_a_time(lite0):
    x = torch.cat([prepare(sample_image(s), lite0.preprocess).tensor for s in ("chelsea", "coffee")])
    both = compute_cam(lite0, x, targets=[281, 967], method="ablationcam")
    alone = compute_cam(lite0, x[1:], targets=967, method="ablationcam")
    np.testing.assert_allclose(both.maps[1], alone.maps[0], atol=1e-3)
    assert hook_count(lite0.model) == 0


def test_guided_backprop_leaves_no_hooks_and_differs_from_the_plain_gradient(lite0):
    x = prepare(sample_image("coffee"), lite0.preprocess).tensor
    lite0.model.zero_grad(set_to_none=True)
    guided = compute_cam(lite0, x, targets="espresso", method="guided_backprop")
    plain = compute_cam(lite0, x, targets="espresso", method="saliency")
    assert hook_count(lite0.model) == 0
    assert all(p.grad is None for p in lite0.model.parameters())
    assert _pearson(guided.raw[0], plain.raw[0]) < 0.95  # the ReLU6 layers did change the backward pass
    again = compute_cam(lite0, x, targets="espresso", method="saliency")
    np.testing.assert_allclose(again.maps, plain.maps, atol=1e-6)  # and nothing of it stayed behind


def test_gradcam_matches_a_plain_backward_reference(lite0):
    """Our short backward (stopping at the layer) gives the same map as a full loss.backward() with hooks."""
    x = prepare(sample_image("coffee"), lite0.preprocess).tensor
    model = copy.deepcopy(lite0.model)
    store = {}

    def forward_hook(_m, _i, out):
        store["act"] = out
        out.register_hook(lambda g: store.__setitem__("grad", g))

    handle = model.bn2.register_forward_hook(forward_hook)
    try:
        logits = model(lite0.normalize(x))
        logits[0, 967].backward()  # espresso
    finally:
        handle.remove()
    act, grad = store["act"].detach()[0], store["grad"][0]
    ref = (grad.mean((1, 2))[:, None, None] * act).sum(0).clamp(min=0).numpy()
    ref = (ref - ref.min()) / (ref.max() - ref.min())
    ref = cv2.resize(ref.astype(np.float32), (224, 224))
    ours = compute_cam(lite0, x, targets=967, method="gradcam")
    assert ours.layer == "bn2"
    assert _pearson(ours.maps[0], ref) > 0.999


@pytest.mark.parametrize("sample, target", [("chelsea", 281), ("coffee", 967), ("astronaut", None), ("rocket", None)])
def test_matches_pytorch_grad_cam(lite0, sample, target):
    """The peer library (grad-cam, in requirements-dev) on the same weights and image: the maps agree."""
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x = prepare(sample_image(sample), lite0.preprocess).tensor
    model = copy.deepcopy(lite0.model)  # pytorch-grad-cam leaves .grad on every weight
    for method, cls in (("gradcam", pgc.GradCAM), ("gradcampp", pgc.GradCAMPlusPlus)):
        ours = compute_cam(lite0, x, targets=target, method=method)
        with cls(model, [model.bn2]) as cam:
            ref = cam(lite0.normalize(x), [ClassifierOutputTarget(ours.target_index[0])])
        assert _pearson(ours.maps[0], ref[0]) >= 0.99, (sample, method)


def test_batch_with_several_targets_equals_one_image_at_a_time(lite0):
    x = torch.cat([prepare(sample_image(s), lite0.preprocess).tensor for s in ("chelsea", "coffee")])
    both = compute_cam(lite0, x, targets=[["tabby", 282], 967], method="gradcampp")
    assert both.image_index == (0, 0, 1)
    assert both.target_index == (281, 282, 967)
    assert both.target_label == ("tabby", "tiger cat", "espresso")
    assert both.maps.shape == (3, 224, 224)
    alone = compute_cam(lite0, x[1:], targets=967, method="gradcampp")
    np.testing.assert_allclose(both.maps[2], alone.maps[0], atol=1e-3)
    # the two cat classes are different questions, so their maps differ
    assert np.abs(both.maps[0] - both.maps[1]).max() > 0.01


def test_top_k_targets_follow_the_prediction(lite0):
    x = prepare(sample_image("chelsea"), lite0.preprocess).tensor
    result = compute_cam(lite0, x, top_k=3)
    probs = torch.softmax(lite0.logits(x), 1)[0]
    assert list(result.target_index) == [int(i) for i in torch.topk(probs, 3).indices]
    assert result.target_prob[0] >= result.target_prob[1] >= result.target_prob[2]


def test_saliency_maps_are_pixel_sized_and_smoothgrad_is_repeatable(lite0):
    x = prepare(sample_image("coffee"), lite0.preprocess).tensor
    plain = compute_cam(lite0, x, targets="espresso", method="saliency")
    a = compute_cam(lite0, x, targets="espresso", method="smoothgrad", samples=2, seed=3)
    b = compute_cam(lite0, x, targets="espresso", method="smoothgrad", samples=2, seed=3)
    for res in (plain, a):
        assert res.layer == "input"
        assert res.maps.shape == res.raw.shape == (1, 224, 224)
        assert res.maps.min() >= 0.0 and res.maps.max() == 1.0
    np.testing.assert_allclose(a.maps, b.maps, atol=1e-6)
    assert np.abs(a.maps - plain.maps).mean() > 0.01  # the noise did change the map


def test_hooks_are_removed_also_on_error_and_no_weight_gradients_are_left(lite0):
    x = prepare(sample_image("chelsea"), lite0.preprocess).tensor
    lite0.model.zero_grad(set_to_none=True)  # other tests share this model; start from no gradients
    compute_cam(lite0, x, method="gradcam")
    assert hook_count(lite0.model) == 0
    with pytest.raises(LensError, match="not a spatial map"):
        compute_cam(lite0, x, method="gradcam", layer="classifier")  # raised inside the hooked forward
    assert hook_count(lite0.model) == 0
    with pytest.raises(LensError, match="Unknown layer"):
        compute_cam(lite0, x, layer="no.such.layer")
    assert hook_count(lite0.model) == 0
    assert all(p.grad is None for p in lite0.model.parameters())


def test_user_mistakes_are_lens_errors(lite0):
    x = prepare(sample_image("chelsea"), lite0.preprocess).tensor
    with pytest.raises(LensError, match="Unknown method"):
        compute_cam(lite0, x, method="cam++")
    with pytest.raises(LensError, match="out of range"):
        compute_cam(lite0, x, targets=1000)
    with pytest.raises(LensError, match="one target per image"):
        compute_cam(lite0, torch.cat([x, x]), targets=[1, 2, 3])
    with pytest.raises(LensError):
        compute_cam(lite0, x[:, :2])
    with pytest.raises(LensError, match="steps"):
        compute_cam(lite0, x, method="integrated_gradients", steps=0)
    with pytest.raises(LensError, match="patch"):
        compute_cam(lite0, x, method="occlusion", patch=1000)
    with pytest.raises(LensError, match="Unknown layer"):
        compute_cam(lite0, x, method="scorecam", layer="bn2+nope")


def test_fine_tuned_model_with_own_classes_and_frozen_body(lite0):
    """A "my model": two classes, frozen feature extractor, no cam_layer set: the default is found."""
    model = copy.deepcopy(lite0.model)
    for p in model.parameters():
        p.requires_grad_(False)
    model.classifier = nn.Linear(model.classifier.in_features, 2)
    torch.manual_seed(0)
    mine = Backbone("my_model", model.eval(), ["ants", "bees"], lite0.preprocess, lite0.device, "trained", base="efficientnet_lite0")
    assert default_layer(mine) == "bn2"
    x = prepare(sample_image("chelsea"), mine.preprocess).tensor
    result = compute_cam(mine, x, targets="bees")
    assert result.target_index == (1,) and result.target_label == ("bees",)
    assert result.maps[0].max() == pytest.approx(1.0, abs=1e-4) and result.maps[0].std() > 0.01
    assert hook_count(model) == 0


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_registry_entry_has_a_working_default_layer(name):
    """Random weights (no download): the named default layer exists, gives a 4-D map, and Grad-CAM runs on it."""
    torch.manual_seed(0)
    spec = REGISTRY[name]
    model = prepare_for_viewing(build_architecture(name))
    backbone = Backbone(name, model, imagenet_categories(), spec.preprocess, torch.device("cpu"), "random", name, spec.cam_layer)
    assert spec.cam_layer in dict(model.named_modules())
    assert default_layer(backbone) == spec.cam_layer
    size = max(160, spec.preprocess.input_size // 2) if name not in ("inception_v3", "xception") else 299
    result = compute_cam(backbone, torch.rand(1, 3, size, size), targets=0, method="gradcam")
    assert result.layer == spec.cam_layer
    assert result.raw.ndim == 3 and result.raw.shape[1] * result.raw.shape[2] > 1
    assert result.maps.shape == (1, size, size) and np.isfinite(result.maps).all()
    assert hook_count(model) == 0


def test_map_layers_lists_spatial_layers_in_order(lite0):
    layers = map_layers(lite0)
    names = [li.name for li in layers]
    assert names[0] == "conv_stem" and "bn2" in names
    assert all(li.shape[1] * li.shape[2] > 1 for li in layers)


def test_overlay_and_heatmap(lite0):
    image = sample_image("coffee")[:100, :150]
    cam_map = np.zeros((7, 7), np.float32)
    cam_map[3, 3] = 1.0
    heat = heatmap(cam_map, (150, 100))
    assert heat.shape == (100, 150, 3) and heat.dtype == np.uint8
    same = overlay_cam(image, cam_map, alpha=0.0)
    np.testing.assert_array_equal(same, image)
    full = overlay_cam(image, cam_map, alpha=1.0)
    np.testing.assert_array_equal(full, heat)
    with pytest.raises(LensError):
        overlay_cam(image, cam_map, cmap="rainbow-ish")


def test_slow_methods_report_progress_and_stop_with_what_they_have(lite0, chelsea):
    """The long-job contract: Score-CAM counts channels, occlusion patch places; a stop keeps the passes done."""
    x = prepare(chelsea, lite0.preprocess).tensor
    seen = []
    stopped = compute_cam(lite0, x, 281, method="scorecam", forward_batch=64, callback=seen.append, should_stop=lambda: len(seen) >= 2)
    assert stopped.stopped
    assert [p.step for p in seen] == [64, 128] and seen[-1].total == 1280 and seen[-1].phase == "Score-CAM"
    assert np.isfinite(stopped.maps).all() and stopped.maps.max() > 0  # 128 channels already make a map
    small = torch.nn.functional.interpolate(x, size=(96, 96), mode="area")
    seen.clear()
    full = compute_cam(lite0, small, 281, method="occlusion", patch=32, forward_batch=8, callback=seen.append)
    assert not full.stopped and seen[-1].step == seen[-1].total == 25  # 5 x 5 places of a 32 px patch at stride 16
    seen.clear()
    part = compute_cam(lite0, small, 281, method="occlusion", patch=32, forward_batch=8, callback=seen.append, should_stop=lambda: True)
    assert part.stopped and [p.step for p in seen] == [8]
    # the first 8 places cover the top rows only: the rest of the map is empty, the covered part as in the full run
    assert np.abs(part.raw[0, 64:]).max() == 0
    np.testing.assert_allclose(part.raw[0, :16], full.raw[0, :16], atol=1e-6)
    assert not compute_cam(lite0, small, 281, method="saliency", should_stop=lambda: True).stopped  # one pass: nothing to stop


class _ReferenceGuided(torch.autograd.Function):
    """Guided backprop's rule for ReLU6 written out: the gradient passes where 0 < input < 6 and it is positive
    (upper=False: the ReLU rule, which forgets the upper bound)."""

    @staticmethod
    def forward(ctx, x, upper=True):
        ctx.save_for_backward(x)
        ctx.upper = upper
        return x.clamp(0, 6)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        inside = (x > 0) & (x < 6) if ctx.upper else x > 0
        return grad.clamp(min=0) * inside, None


class _Reference(nn.Module):
    def __init__(self, upper: bool):
        super().__init__()
        self.upper = upper

    def forward(self, x):
        return _ReferenceGuided.apply(x, self.upper)


class _SmallNet(nn.Module):
    """Conv, BN, an activation whose output feeds two consumers (a residual), a second activation, a linear head."""

    def __init__(self, act: type[nn.Module]):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act1 = act()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.act2 = act()
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        y = self.act1(self.bn(self.conv1(x)))
        z = self.act2(self.conv2(y) + y)
        return self.head(z.mean((2, 3)))


def _small_backbone(act: type[nn.Module]) -> tuple[Backbone, torch.Tensor]:
    from explain.images import Preprocess

    torch.manual_seed(0)
    model = _SmallNet(act)
    with torch.no_grad():
        model.conv1.weight.mul_(8)  # large pre-activations: some above 6, so ReLU6's upper bound matters
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
    pre = Preprocess(input_size=24, resize_size=24, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    backbone = Backbone("small", model.eval(), ["a", "b", "c", "d"], pre, torch.device("cpu"), "trained")
    return backbone, torch.rand(2, 3, 24, 24)


def _guided_reference(backbone: Backbone, x: torch.Tensor, pairs, upper: bool) -> np.ndarray:
    model = copy.deepcopy(backbone.model)
    model.act1, model.act2 = _Reference(upper), _Reference(upper)
    out = []
    for i, c in pairs:
        xi = x[i : i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(backbone.normalize(xi))[0, c], xi)
        out.append(g[0].abs().amax(0).numpy())
    return np.stack(out)


def test_guided_backprop_through_relu6_follows_the_written_out_rule():
    """Guided backprop through ReLU6: a gradient only where 0 < input < 6 and positive, also for an activation
    whose output feeds two layers, and for two classes per image (two backward passes over one graph)."""
    backbone, x = _small_backbone(nn.ReLU6)
    pre = backbone.model.bn(backbone.model.conv1(backbone.normalize(x)))
    assert (pre > 6).float().mean() > 0.05 and (pre < 0).float().mean() > 0.05  # both bounds are crossed
    result = compute_cam(backbone, x, targets=[[0, 2], [1, 3]], method="guided_backprop", batch_size=2)
    pairs = list(zip(result.image_index, result.target_index))
    assert pairs == [(0, 0), (0, 2), (1, 1), (1, 3)]
    ref = _guided_reference(backbone, x, pairs, upper=True)
    np.testing.assert_allclose(result.raw, ref, rtol=1e-5, atol=1e-7)
    # and the rule matters: the plain gradient, and the ReLU rule that forgets the upper bound, are other maps
    plain = compute_cam(backbone, x, targets=[[0, 2], [1, 3]], method="saliency", batch_size=2)
    relu_rule = _guided_reference(backbone, x, pairs, upper=False)
    assert np.abs(plain.raw - ref).max() > 1e-2 * ref.max()
    assert np.abs(relu_rule - ref).max() > 1e-2 * ref.max()
    assert hook_count(backbone.model) == 0
    # the probabilities are the clean ones (the guiding changes only the backward pass)
    with torch.no_grad():
        probs = torch.softmax(backbone.logits(x), 1)
    assert result.target_prob == pytest.approx([float(probs[i, c]) for i, c in pairs], abs=1e-6)


class _Logits01(nn.Module):
    """Captum's view of a backbone: [0, 1] pixels in, logits out (as in bench/cam.py)."""

    def __init__(self, backbone: Backbone):
        super().__init__()
        self.backbone = backbone
        self.model = backbone.model

    def forward(self, x):
        return self.backbone.logits(x)


def test_guided_backprop_equals_captums_on_relu_and_captums_is_the_plain_gradient_on_relu6():
    """Why bench/cam.py finds r ≈ 0.28 against Captum on EfficientNet-Lite (ReLU6): Captum's GuidedBackprop
    changes only nn.ReLU modules. On a ReLU network both give the same map; on a ReLU6 network Captum's
    'guided' map is the plain gradient, ours is guided."""
    attr = pytest.importorskip("captum.attr")
    for act in (nn.ReLU, nn.ReLU6):
        backbone, x = _small_backbone(act)
        net = _Logits01(backbone)
        with pytest.warns(UserWarning):  # Captum warns that it sets backward hooks
            theirs = attr.GuidedBackprop(net).attribute(x.clone().requires_grad_(True), target=[1, 3])
        theirs = theirs.detach().abs().amax(1).numpy()
        ours = compute_cam(backbone, x, targets=[1, 3], method="guided_backprop").raw
        plain = compute_cam(backbone, x, targets=[1, 3], method="saliency").raw
        if act is nn.ReLU:
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
            assert np.abs(plain - ours).max() > 1e-2 * ours.max()
        else:
            np.testing.assert_allclose(theirs, plain, rtol=1e-5, atol=1e-7)
            assert np.abs(theirs - ours).max() > 1e-2 * ours.max()


@pytest.mark.parametrize("n", [1, 2, 37, 1000, 224 * 224, 213 * 160])
def test_upper_quantile_is_torch_quantile_bit_for_bit(n):
    """The saliency scaling's partial sort gives exactly torch.quantile's value, ties and tiny maps included."""
    from explain.cam.base import upper_quantile

    gen = torch.Generator().manual_seed(n)
    for flat in (torch.rand(3, n, generator=gen), (torch.randn(3, n, generator=gen).abs() ** 3 * 4).round()):
        for q in (0.99, 0.9, 0.75):
            assert torch.equal(upper_quantile(flat, q), torch.quantile(flat, q, dim=1)), (n, q)
