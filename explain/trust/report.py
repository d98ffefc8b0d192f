"""One image, several methods: every faithfulness score and sanity check in one long job (`trust_report`),
and the map of every main layer with its deletion score (`layer_sweep`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from explain.cam import LAYER_METHODS, ClassRef, check_method, compute_cam, layer_cams, map_layers
from explain.errors import LensError
from explain.jobs import Progress, ProgressLog, StopSignal, stop_requested
from explain.models import Backbone
from explain.trust.faithfulness import Curve, mean_curve, perturbation_curves, random_map, road_curve
from explain.trust.sanity import (
    ClassSensitivity,
    RandomisationStep,
    other_class,
    randomisation_blocks,
    randomised_copies,
    rank_correlation,
    ssim,
)

DEFAULT_TRUST_METHODS = ("gradcam", "gradcampp", "saliency", "smoothgrad")
RANDOM_MAPS = 3  # the random baseline's deletion and insertion curves are the mean over this many random maps


@dataclass(frozen=True)
class MethodTrust:
    """How far one method's map for one image can be trusted."""

    method: str
    layer: str
    cam_map: np.ndarray
    deletion: Curve  # most relevant pixels removed first: lower area = more faithful
    insertion: Curve  # most relevant pixels revealed first: higher area = more faithful
    inverted_deletion: Curve  # the map turned upside down: should be slower than the random map
    road: Curve | None  # ROAD, most relevant first: lower mean = more faithful
    randomisation: tuple[RandomisationStep, ...]
    class_sensitivity: ClassSensitivity | None
    seconds: float


@dataclass(frozen=True)
class TrustReport:
    """Every method's scores for one image and one class, with the random map's as the baseline."""

    target_index: int
    target_label: str
    target_prob: float
    random_deletion: Curve  # the mean over RANDOM_MAPS random maps
    random_insertion: Curve
    random_road: Curve | None
    methods: tuple[MethodTrust, ...]
    stopped: bool = False


def _target(backbone: Backbone, x01: torch.Tensor, target: ClassRef | None) -> tuple[int, float]:
    with torch.no_grad():
        probs = backbone.logits(x01).float().softmax(1)[0]
    index = int(probs.argmax()) if target is None else backbone.class_index(target)
    return index, float(probs[index])


def trust_report(
    backbone: Backbone,
    x01: torch.Tensor,
    target: ClassRef | None = None,
    methods: Sequence[str] = DEFAULT_TRUST_METHODS,
    layer: str | Sequence[str] | None = None,
    steps: int = 16,
    fill: str = "blur",
    road: bool = True,
    randomisation: bool = True,
    class_sensitivity: bool = True,
    seed: int = 0,
    cam_options: dict | None = None,
    callback: Callable[[Progress], None] | None = None,
    should_stop: StopSignal = None,
) -> TrustReport:
    """Deletion, insertion, ROAD, the random and inverted baselines, cascading randomisation and class sensitivity.

    x01: one [0, 1] image (1, 3, H, W). target: the class (default: the top-1). layer: for the layer methods.
    cam_options: extra compute_cam arguments (samples, steps, patch). Stopping keeps the methods finished so far.
    """
    methods = [check_method(m) for m in dict.fromkeys(methods)]
    if not methods:
        raise LensError("Choose at least one method to check.")
    if x01.ndim == 3:
        x01 = x01[None]
    x01 = x01[:1].detach()
    options = dict(cam_options or {})
    index, prob = _target(backbone, x01, target)
    blocks = randomisation_blocks(backbone) if randomisation else []
    per_method = 4 + (1 if class_sensitivity else 0)
    log = ProgressLog(len(methods) * (per_method + len(blocks)) + 2, callback)
    step = 0

    def cam(model: Backbone, method: str, cls: int) -> tuple[np.ndarray, str]:
        result = compute_cam(model, x01, cls, method=method, layer=layer if method in LAYER_METHODS else None, seed=seed, **options)
        return result.maps[0], result.layer

    size = tuple(x01.shape[2:])
    baselines = [random_map(size, seed + k) for k in range(RANDOM_MAPS)]
    curves = perturbation_curves(backbone, x01, index, baselines * 2, ["deletion"] * RANDOM_MAPS + ["insertion"] * RANDOM_MAPS, steps, fill, seed)
    rand_del, rand_ins = mean_curve(curves[:RANDOM_MAPS]), mean_curve(curves[RANDOM_MAPS:])
    rand_road = road_curve(backbone, x01, index, baselines[0], seed=seed) if road else None  # ROAD is costly: one map
    step += 2
    log.report(step, "random map", {"random deletion AUC": rand_del.auc})
    parts: dict[str, dict] = {}
    stopped = False
    for method in methods:
        if stop_requested(should_stop):
            stopped = True
            break
        t0 = time.perf_counter()
        cam_map, layer_name = cam(backbone, method, index)
        deletion, insertion, inverted = perturbation_curves(
            backbone, x01, index, [cam_map, cam_map, 1.0 - cam_map], ["deletion", "insertion", "deletion"], steps, fill, seed
        )
        step += 2
        log.report(step, f"{method}: deletion and insertion", {"deletion AUC": deletion.auc})
        road_result = road_curve(backbone, x01, index, cam_map, seed=seed) if road else None
        step += 1
        sens = None
        if class_sensitivity:
            other = other_class(backbone.num_classes, index, seed)
            other_map, _ = cam(backbone, method, other)
            sens = ClassSensitivity(other, backbone.categories[other], rank_correlation(cam_map, other_map), other_map)
            step += 1
        parts[method] = dict(method=method, layer=layer_name, cam_map=cam_map, deletion=deletion, insertion=insertion,
                             inverted_deletion=inverted, road=road_result, randomisation=[], class_sensitivity=sens,
                             seconds=time.perf_counter() - t0)
        step += 1
        log.report(step, f"{method}: ROAD and class sensitivity", {"deletion AUC": deletion.auc})
    if blocks and not stopped:
        for k, names, twin in randomised_copies(backbone, seed):
            if stop_requested(should_stop):
                stopped = True
                break
            for method, part in parts.items():
                t0 = time.perf_counter()
                random_cam, _ = cam(twin, method, index)
                part["randomisation"].append(
                    RandomisationStep(k, "+".join(names), rank_correlation(part["cam_map"], random_cam), ssim(part["cam_map"], random_cam), random_cam)
                )
                part["seconds"] += time.perf_counter() - t0
                step += 1
            log.report(step, f"randomised {k} of {len(blocks)} blocks", {})
    results = tuple(MethodTrust(**{**p, "randomisation": tuple(p["randomisation"])}) for p in parts.values())
    return TrustReport(index, backbone.categories[index], prob, rand_del, rand_ins, rand_road, results, stopped)


@dataclass(frozen=True)
class LayerScore:
    """One layer's map for the class and its deletion score."""

    layer: str
    cam_map: np.ndarray
    deletion_auc: float


def main_layers(backbone: Backbone) -> list[str]:
    """The layers of the short list (no layer inside another listed one) with a spatial map, input to output."""
    return [li.name for li in map_layers(backbone) if li.main]


def layer_sweep(
    backbone: Backbone, x01: torch.Tensor, target: ClassRef | None = None, method: str = "gradcam",
    layers: Sequence[str] | None = None, steps: int = 10, fill: str = "blur", seed: int = 0,
) -> tuple[LayerScore, ...]:
    """Every main layer's map for the class (one backward for the gradient methods) with its deletion AUC."""
    if x01.ndim == 3:
        x01 = x01[None]
    x01 = x01[:1].detach()
    check_method(method)
    if method not in LAYER_METHODS or method == "guided_gradcam":
        raise LensError(f"A layer sweep needs a layer method such as Grad-CAM, not '{method}'.")
    index, _ = _target(backbone, x01, target)
    names = list(layers) if layers else main_layers(backbone)
    results = layer_cams(backbone, x01, index, names, method)
    maps = [r.maps[0] for r in results]
    curves = perturbation_curves(backbone, x01, index, maps, ["deletion"] * len(maps), steps, fill, seed)
    return tuple(LayerScore(n, m, c.auc) for n, m, c in zip(names, maps, curves))
