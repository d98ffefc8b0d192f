"""`compute_cam`: one entry point for every method, for a batch of images and one or more classes per image."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from explain.cam import forward, pixels
from explain.cam.base import (
    CAM_METHODS,
    FORWARD_LAYER_METHODS,
    GRADIENT_LAYER_METHODS,
    INPUT_LAYER,
    CamResult,
    ClassRef,
    Meter,
    check_method,
    class_probs,
    clip_saliency,
    layer_list,
    layer_maps_to_input,
    per_image_targets,
    target_pairs,
)
from explain.cam.gradient import gradient_layer_cams
from explain.errors import LensError
from explain.jobs import Progress, StopSignal
from explain.limits import MAX_IG_STEPS, MAX_SMOOTHGRAD_SAMPLES
from explain.models import Backbone


def _check_images(x01: torch.Tensor) -> torch.Tensor:
    if x01.ndim == 3:
        x01 = x01.unsqueeze(0)
    if x01.ndim != 4 or x01.shape[1] != 3:
        raise LensError(f"Images must be a tensor (N, 3, H, W), got shape {tuple(x01.shape)}.")
    if x01.shape[0] == 0:
        raise LensError("No images given.")
    return x01


def _layer_method(backbone, x01, per_image, top_k, method, layers, batch_size, forward_batch, meter=None):
    """Raw maps per layer, the (image, class) pairs and the clean probabilities, chunk by chunk."""
    n = x01.shape[0]
    per_layer: list[list[torch.Tensor]] = [[] for _ in layers]
    pairs: list[tuple[int, int]] = []
    probs_list = []
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        chunk = x01[start:stop]
        if method in GRADIENT_LAYER_METHODS:
            cams, chunk_pairs, probs = gradient_layer_cams(backbone, chunk, per_image[start:stop], top_k, method, layers)
        else:
            probs = class_probs(backbone, chunk, batch_size)
            chunk_pairs = target_pairs(per_image[start:stop], probs, top_k)
            if method == "scorecam":
                cams = [forward.scorecam(backbone, chunk, chunk_pairs, name, forward_batch, meter) for name in layers]
            elif method == "ablationcam":
                cams = [forward.ablationcam(backbone, chunk, chunk_pairs, name, forward_batch, meter) for name in layers]
            else:
                cams = [forward.eigencam(backbone, chunk, chunk_pairs, name) for name in layers]
        for k, cam in enumerate(cams):
            per_layer[k].append(cam)
        pairs += [(i + start, c) for i, c in chunk_pairs]
        probs_list.append(probs)
    return [torch.cat(p) for p in per_layer], pairs, torch.cat(probs_list)


def compute_cam(
    backbone: Backbone,
    x01: torch.Tensor,
    targets: ClassRef | Sequence | None = None,
    method: str = "gradcam",
    layer: str | Sequence[str] | None = None,
    top_k: int = 1,
    samples: int = 16,
    noise: float = 0.15,
    seed: int = 0,
    batch_size: int = 16,
    steps: int = 32,
    patch: int | None = None,
    forward_batch: int | None = None,
    callback: Callable[[Progress], None] | None = None,
    should_stop: StopSignal = None,
) -> CamResult:
    """Class activation maps for a batch of [0, 1] images (N, 3, H, W).

    targets: None (the top_k classes of each image), one class name or index for every image,
    or a list with one entry per image, each a class, None, or a list of classes.
    layer: for the layer methods, a module name (default: the backbone's Grad-CAM layer), or several
    ("a+b" or a list): their maps are averaged.
    samples, noise: SmoothGrad's number of noisy copies and noise level (share of the pixel range).
    steps: integrated gradients' steps from a black image. patch: occlusion's square side (default: side / 7).
    forward_batch: copies per forward pass for Score-CAM, Ablation-CAM and occlusion.
    callback, should_stop: the long-job contract (explain/jobs.py) for the methods of many passes (Score-CAM,
    Ablation-CAM, occlusion, SmoothGrad, integrated gradients; step = channels, places, samples or steps done);
    a stopped result says so (`stopped`) and its maps hold only the passes done.
    """
    check_method(method)
    x01 = _check_images(x01).detach()
    n = x01.shape[0]
    batch_size = max(1, int(batch_size))
    forward_batch = max(1, int(forward_batch or 4 * backbone.micro_batch))
    per_image = per_image_targets(backbone, n, targets)
    size = tuple(x01.shape[2:])
    meter = Meter(callback, should_stop, CAM_METHODS[method])
    if method == "smoothgrad" and not 1 <= samples <= MAX_SMOOTHGRAD_SAMPLES:
        raise LensError(f"SmoothGrad takes 1 to {MAX_SMOOTHGRAD_SAMPLES} noisy samples (got {samples}).")
    if method == "integrated_gradients" and not 1 <= steps <= MAX_IG_STEPS:
        raise LensError(f"Integrated gradients take 1 to {MAX_IG_STEPS} steps (got {steps}).")
    if patch is not None and not 1 <= patch <= min(size):
        raise LensError(f"The occlusion patch must be 1 to {min(size)} pixels (got {patch}).")
    if method in (*GRADIENT_LAYER_METHODS, *FORWARD_LAYER_METHODS, "guided_gradcam"):
        layers = layer_list(backbone, layer)
        kind = "gradcam" if method == "guided_gradcam" else method
        raws, pairs, probs = _layer_method(backbone, x01, per_image, top_k, kind, layers, batch_size, forward_batch, meter)
        maps, raw = layer_maps_to_input(raws, size)
        layer_name = "+".join(layers)
        if method == "guided_gradcam":
            # Selvaraju et al. 2017: guided backprop's sharp pixels, kept where Grad-CAM finds the class
            grads = pixels.input_gradients(backbone, x01, pairs, 1, lambda x, _j: x, batch_size, guide=True)
            raw = (grads * maps[:, None]).abs().amax(1)
            maps = clip_saliency(raw)
    elif method in ("saliency", "guided_backprop"):
        # one forward pass gives the probabilities and the gradients' graph
        layer_name = INPUT_LAYER
        grads, pairs, probs = pixels.class_gradients(
            backbone, x01, per_image, top_k, batch_size, guide=method == "guided_backprop"
        )
        raw = grads.abs().amax(1)
        maps = clip_saliency(raw)
    else:
        probs = class_probs(backbone, x01, batch_size)
        pairs = target_pairs(per_image, probs, top_k)
        layer_name = INPUT_LAYER
        if method == "occlusion":
            side = patch or max(1, min(size) // 7)
            raw = pixels.occlusion(backbone, x01, pairs, side, max(1, side // 2), forward_batch, meter)
            pos = raw.clamp(min=0)
            maps = pos / pos.flatten(1).max(1).values.clamp(min=1e-12)[:, None, None]
        else:
            if method == "smoothgrad":
                copies, make = samples, pixels.noisy_copies(x01, noise, seed)
            else:
                copies, make = steps, pixels.path_copies(steps)
            grads = pixels.input_gradients(
                backbone, x01, pairs, copies, make, batch_size, meter=meter if copies > 1 else None
            )
            if method == "integrated_gradients":
                # attribution = (photo - black) x mean gradient on the path; its channel sum adds up to the score change
                raw = (grads * x01.to(grads.device)[[i for i, _ in pairs]]).sum(1).abs()
            else:
                raw = grads.abs().amax(1)
            maps = clip_saliency(raw)
    return CamResult(
        method=method,
        layer=layer_name,
        maps=maps.detach().float().cpu().numpy(),
        raw=raw.detach().float().cpu().numpy(),
        image_index=tuple(i for i, _ in pairs),
        target_index=tuple(c for _, c in pairs),
        target_label=tuple(backbone.categories[c] for _, c in pairs),
        target_prob=tuple(float(probs[i, c]) for i, c in pairs),
        stopped=meter.stopped,
    )


def layer_cams(
    backbone: Backbone, x01: torch.Tensor, target: ClassRef, layers: Sequence[str], method: str = "gradcam"
) -> list[CamResult]:
    """One image's map for one class at each of several layers, from one forward and backward (gradient methods)."""
    if method not in GRADIENT_LAYER_METHODS:
        return [compute_cam(backbone, x01, target, method=method, layer=name) for name in layers]
    x01 = _check_images(x01)[:1].detach()
    per_image = per_image_targets(backbone, 1, target)
    raws, pairs, probs = gradient_layer_cams(backbone, x01, per_image, 1, method, list(layers))
    size = tuple(x01.shape[2:])
    out = []
    for name, raw in zip(layers, raws):
        maps, _ = layer_maps_to_input([raw], size)
        c = pairs[0][1]
        out.append(CamResult(method, name, maps.float().cpu().numpy(), raw.float().cpu().numpy(), (0,), (c,),
                             (backbone.categories[c],), (float(probs[0, c]),)))
    return out



