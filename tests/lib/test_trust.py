"""Can I trust this map? Faithfulness curves, ROAD, the random baseline and the sanity checks, on real weights."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from explain.cam import compute_cam
from explain.errors import LensError
from explain.hooks import hook_count
from explain.images import prepare, resize, sample_image, to_tensor
from explain.models import Backbone
from explain.trust import (
    Curve,
    layer_sweep,
    main_layers,
    other_class,
    perturbation_curves,
    random_map,
    randomisation_blocks,
    rank_correlation,
    road_curve,
    trust_report,
)
from explain.trust.faithfulness import linear_impute
from explain.trust.impute import DIRECT_UNKNOWNS, NEIGHBOURS, solve_exact, solve_fast
from explain.trust.report import RANDOM_MAPS


@pytest.fixture(scope="module")
def cat_on_gravel() -> torch.Tensor:
    """Chelsea's cat pasted on the left of a gravel texture (224 x 224): the tabby is in one clear place."""
    canvas = resize(sample_image("gravel"), (224, 224), "area").copy()
    cat = resize(sample_image("chelsea")[:, :380], (112, 90), "area")
    canvas[60:150, 10:122] = cat
    return to_tensor(canvas)


def test_curve_area_and_the_share_where_it_halves():
    c = Curve((0.0, 0.5, 1.0), (0.8, 0.2, 0.0))
    assert c.auc == pytest.approx((0.8 + 0.2) / 4 + 0.2 / 4)
    assert c.fraction_at(0.4) == pytest.approx(0.5 * (0.8 - 0.4) / 0.6)
    assert Curve((0.0, 1.0), (0.9, 0.8)).fraction_at(0.1) is None


def test_gradcam_deletes_the_cat_faster_than_random_and_flat_or_random_maps_do_not(lite0, cat_on_gravel):
    x = cat_on_gravel
    grad = compute_cam(lite0, x, "tabby").maps[0]
    baselines = [random_map((224, 224), k) for k in range(RANDOM_MAPS)]
    flat = np.full((224, 224), 0.5, np.float32)
    other_random = random_map((224, 224), 99)
    curves = perturbation_curves(lite0, x, 281, [grad, flat, other_random, *baselines], ["deletion"] * (3 + RANDOM_MAPS))
    g, c, r, *base = [k.auc for k in curves]
    baseline = float(np.mean(base))
    with torch.no_grad():
        clean = float(torch.softmax(lite0.logits(x), 1)[0, 281])
    assert curves[0].probs[0] == pytest.approx(clean, abs=1e-4)
    assert g < 0.6 * baseline  # the map knows where the tabby is
    spread = max(base) - min(base)
    assert c >= baseline - max(spread, 0.02)  # a flat map is read in the random baseline's order: no better than random
    assert abs(r - baseline) <= max(2 * spread, 0.05)  # another random map: as bad as the baseline
    assert r > g and c > g
    ins = perturbation_curves(lite0, x, 281, [grad, baselines[0]], ["insertion", "insertion"])
    assert ins[0].auc > ins[1].auc
    with pytest.raises(LensError, match="size"):
        perturbation_curves(lite0, x, 281, [np.zeros((7, 7))], ["deletion"])


# the reference calls np.argwhere on a torch tensor, which NumPy 2 warns about (its code, not ours)
@pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")
def test_linear_imputation_matches_the_road_reference():
    """Our sparse system is the one of ROAD's authors (as shipped in pytorch-grad-cam), to rounding."""
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    rng = np.random.default_rng(0)
    image = rng.random((3, 40, 50))
    removed = rng.random((40, 50)) < 0.6
    removed[5:30, 10:40] = True
    ours = linear_impute(image, removed, 0.0, rng, exact=True)
    ref = NoisyLinearImputer(noise=0.0)(torch.from_numpy(image).float(), torch.from_numpy((~removed).astype(np.float32)))
    np.testing.assert_allclose(ours, ref.numpy(), atol=1e-5)
    np.testing.assert_array_equal(ours[:, ~removed], image[:, ~removed])
    fast = linear_impute(image, removed, 0.0, rng)
    np.testing.assert_allclose(fast, ref.numpy(), atol=1e-3)


@pytest.mark.parametrize("shape", [(96, 96), (97, 75)])
def test_fast_imputation_solves_the_same_system_as_the_exact_one(shape):
    """Multigrid CG against the sparse LU on blobs, scattered pixels and holes on the border, odd sizes too
    (large enough that every case has more unknowns than the fast solver hands to the exact one)."""
    rng = np.random.default_rng(1)
    h, w = shape
    image = rng.random((3, h, w))
    blob = random_map((h, w), 3, cells=4)
    cases = {
        "blob 30 %": blob > np.quantile(blob, 0.7),
        "blob 90 %": blob > np.quantile(blob, 0.1),
        "scattered 50 %": rng.random((h, w)) < 0.5,
        "border": np.pad(np.ones((h - 20, w - 20), bool), 10) ^ True,
    }
    for name, removed in cases.items():
        assert removed.sum() > DIRECT_UNKNOWNS, name
        exact = solve_exact(image, removed)
        fast = solve_fast(image, removed)
        assert fast is not None, name
        assert np.abs(fast - exact).max() < 1e-3, name
        # the exact solution really solves the system: every removed pixel is its neighbours' weighted mean
        filled = image.copy()
        filled[:, removed] = exact
        padded = np.pad(filled, ((0, 0), (1, 1), (1, 1)))
        weights = np.pad(np.ones((h, w)), 1)
        total = sum(wt * padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx, wt in NEIGHBOURS)
        norm = sum(wt * weights[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx, wt in NEIGHBOURS)
        np.testing.assert_allclose(filled[:, removed], (total / norm)[:, removed], atol=1e-9)
    # a first guess (the imputation of a smaller set, as road_curve passes) changes nothing but the time
    small, large = cases["blob 30 %"], cases["blob 90 %"]
    start = image.copy()
    start[:, small] = solve_exact(image, small)
    assert np.abs(solve_fast(image, large, start) - solve_exact(image, large)).max() < 1e-3


def test_fast_road_curve_matches_the_exact_one(lite0, cat_on_gravel):
    grad = compute_cam(lite0, cat_on_gravel, "tabby").maps[0]
    fractions = (0.3, 0.9, 0.6)  # out of order on purpose: the curve keeps the caller's order
    exact = road_curve(lite0, cat_on_gravel, 281, grad, fractions=fractions, exact=True)
    fast = road_curve(lite0, cat_on_gravel, 281, grad, fractions=fractions)
    assert fast.fractions == exact.fractions == fractions
    np.testing.assert_allclose(fast.probs, exact.probs, atol=1e-3)


def test_road_is_lower_for_gradcam_than_for_its_inverted_map(lite0, cat_on_gravel):
    grad = compute_cam(lite0, cat_on_gravel, "tabby").maps[0]
    ours = road_curve(lite0, cat_on_gravel, 281, grad, fractions=(0.2, 0.5))
    inverted = road_curve(lite0, cat_on_gravel, 281, 1 - grad, fractions=(0.2, 0.5))
    assert len(ours.probs) == 2 and np.mean(ours.probs) < np.mean(inverted.probs)


def test_trust_report_restores_the_model_and_checks_the_classes(lite0, cat_on_gravel):
    x = cat_on_gravel
    with torch.no_grad():
        before = lite0.logits(x).clone()
    state = {k: v.clone() for k, v in lite0.model.state_dict().items()}
    seen = []
    report = trust_report(lite0, x, "tabby", ["gradcam", "eigencam"], road=False, callback=seen.append)
    with torch.no_grad():
        after = lite0.logits(x)
    assert torch.equal(before, after)  # identical logits: the randomised network was a private copy
    assert all(torch.equal(v, lite0.model.state_dict()[k]) for k, v in state.items())
    assert hook_count(lite0.model) == 0
    assert report.target_index == 281 and not report.stopped
    assert seen and seen[-1].step == seen[-1].total
    grad, eigen = report.methods
    blocks = randomisation_blocks(lite0)
    assert blocks[0] == ("classifier",) and blocks[-1] == ("conv_stem", "bn1") and len(grad.randomisation) == len(blocks)
    assert [s.blocks_randomised for s in grad.randomisation] == list(range(1, len(blocks) + 1))
    # Grad-CAM depends on the weights: once everything is random the map has little to do with the trained one
    last = grad.randomisation[-1]
    assert last.spearman is None or last.spearman < 0.6
    # Eigen-CAM ignores the class (by design), Grad-CAM does not
    assert eigen.class_sensitivity.spearman == pytest.approx(1.0)
    assert grad.class_sensitivity.spearman < 0.9
    assert grad.class_sensitivity.other_class == other_class(1000, 281, 0) != 281
    # the upper layers' weights do not touch Eigen-CAM's layer below them: randomising the classifier leaves it be
    assert eigen.randomisation[0].spearman == pytest.approx(1.0)
    assert grad.deletion.auc < 0.6 * report.random_deletion.auc and grad.deletion.auc < grad.inverted_deletion.auc


def test_trust_report_stops_when_asked(lite0, cat_on_gravel):
    report = trust_report(lite0, cat_on_gravel, None, ["gradcam", "saliency"], road=False, should_stop=lambda: True)
    assert report.stopped and report.methods == ()


def test_layer_sweep_scores_every_main_layer(lite0, cat_on_gravel):
    names = main_layers(lite0)
    assert names[0] == "conv_stem" and names[-1] == "bn2"
    sweep = layer_sweep(lite0, cat_on_gravel, "tabby", steps=4)
    assert [s.layer for s in sweep] == names
    assert all(s.cam_map.shape == (224, 224) and 0 <= s.deletion_auc <= 1 for s in sweep)
    with pytest.raises(LensError, match="layer method"):
        layer_sweep(lite0, cat_on_gravel, method="saliency")


def test_trust_report_for_my_model(lite0):
    """A fine-tuned two-class model: everything runs on its own classes; the shared weights stay as they were."""
    model = copy.deepcopy(lite0.model)
    model.classifier = nn.Linear(model.classifier.in_features, 2)
    torch.manual_seed(0)
    mine = Backbone("my_model", model.eval(), ["ants", "bees"], lite0.preprocess, lite0.device, "trained", base="efficientnet_lite0")
    x = prepare(sample_image("chelsea"), mine.preprocess).tensor
    head = model.classifier.weight.clone()
    report = trust_report(mine, x, "bees", ["gradcam"], road=False, steps=4)
    assert report.target_label == "bees" and report.methods[0].class_sensitivity.other_label == "ants"
    assert torch.equal(model.classifier.weight, head)
    assert rank_correlation(np.zeros(4), np.arange(4.0)) is None
