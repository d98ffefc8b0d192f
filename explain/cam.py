"""Where the network looked: Grad-CAM, Grad-CAM++, gradient saliency and SmoothGrad.

Every method answers "which pixels raised the score of this class?" for a batch of images and
one or more target classes per image. Grad-CAM and Grad-CAM++ weight the channels of one
convolutional layer by the class score's gradient; the saliency methods take the gradient with
respect to the pixels themselves. Maps follow pytorch-grad-cam's conventions (ReLU on the
weighted sum, min-max per map, bilinear upsampling to the input size) so results compare 1:1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from explain.errors import LensError
from explain.featuremaps import COLORMAPS, colorize, probe_layers
from explain.hooks import LayerInfo, hooked
from explain.limits import MAX_SMOOTHGRAD_SAMPLES
from explain.models import Backbone

CAM_METHODS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcampp": "Grad-CAM++",
    "saliency": "Gradient saliency",
    "smoothgrad": "SmoothGrad",
}
DEFAULT_CAM_METHOD = "gradcam"
LAYER_METHODS = ("gradcam", "gradcampp")  # the others look at the input pixels, not a layer
INPUT_LAYER = "input"

ClassRef = int | str  # a class given by index or by (part of) its name


@dataclass(frozen=True)
class CamResult:
    """Maps for (image, target) pairs, image by image, each image's targets in the order given."""

    method: str
    layer: str  # the layer the map was taken from; "input" for the saliency methods
    maps: np.ndarray  # (M, H, W) float32 in [0, 1] at the network's input resolution
    raw: np.ndarray  # (M, h, w) float32 before normalising and upsampling (layer resolution)
    image_index: tuple[int, ...]
    target_index: tuple[int, ...]
    target_label: tuple[str, ...]
    target_prob: tuple[float, ...]  # softmax probability of the target class on the clean image

    def __len__(self) -> int:
        return len(self.target_index)

    def map_of(self, image: int = 0, target: int | None = None) -> np.ndarray:
        """The map of one image for one target class index (its first target when None)."""
        for k, (i, c) in enumerate(zip(self.image_index, self.target_index)):
            if i == image and (target is None or c == target):
                return self.maps[k]
        raise LensError(f"No map for image {image} and class {target}.")


def check_method(method: str) -> str:
    if method not in CAM_METHODS:
        raise LensError(f"Unknown method '{method}'. Choose one of: {', '.join(CAM_METHODS)}.")
    return method


def map_layers(backbone: Backbone, size: int | None = None) -> list[LayerInfo]:
    """Every layer whose output is a spatial map (N, C, H, W) with H·W > 1, in execution order."""
    return [li for li in probe_layers(backbone, size).layers if li.shape[1] * li.shape[2] > 1]


def default_layer(backbone: Backbone) -> str:
    """The backbone's own Grad-CAM layer, or else the last layer that still has a spatial map."""
    if backbone.cam_layer and backbone.cam_layer in dict(backbone.model.named_modules()):
        return backbone.cam_layer
    layers = map_layers(backbone)
    if not layers:
        raise LensError("This model has no layer with a spatial map, so there is nothing to show a class map on.")
    return layers[-1].name


def _per_image_targets(
    backbone: Backbone, n: int, targets: ClassRef | Sequence | None
) -> list[list[int] | None]:
    """Explicit targets resolved to indices, one list per image; None where the top classes decide."""
    if targets is None:
        return [None] * n
    if isinstance(targets, (int, str, np.integer)):
        return [[backbone.class_index(int(targets) if isinstance(targets, np.integer) else targets)]] * n
    targets = list(targets)
    if len(targets) != n:
        raise LensError(
            f"Give one target per image: {len(targets)} targets for {n} images "
            "(a single class name or index applies to every image; a list inside the list gives several per image)."
        )
    out: list[list[int] | None] = []
    for t in targets:
        if t is None:
            out.append(None)
        elif isinstance(t, (int, str, np.integer)):
            out.append([backbone.class_index(int(t) if isinstance(t, np.integer) else t)])
        else:
            chosen = [backbone.class_index(int(c) if isinstance(c, np.integer) else c) for c in t]
            if not chosen:
                raise LensError("An image was given an empty list of targets.")
            out.append(chosen)
    return out


def _pairs(per_image: list[list[int] | None], probs: torch.Tensor, top_k: int) -> list[tuple[int, int]]:
    pairs = []
    for i, chosen in enumerate(per_image):
        if chosen is None:
            k = max(1, min(int(top_k), probs.shape[1]))
            chosen = [int(c) for c in torch.topk(probs[i], k).indices]
        pairs += [(i, c) for c in chosen]
    return pairs


def _rounds(pairs: list[tuple[int, int]]) -> list[list[int]]:
    """Group pair positions so that each image appears at most once per group.

    Images in eval mode do not influence each other, so one backward pass of the summed scores
    of a group gives every image in it the gradient of its own target.
    """
    rounds: list[list[int]] = []
    seen: dict[int, int] = {}
    for k, (i, _) in enumerate(pairs):
        r = seen.get(i, 0)
        seen[i] = r + 1
        if r == len(rounds):
            rounds.append([])
        rounds[r].append(k)
    return rounds


def _min_max(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map (M, H, W) to [0, 1] exactly like pytorch-grad-cam (x - min) / (1e-7 + max)."""
    flat = maps.flatten(1)
    maps = maps - flat.min(1).values[:, None, None]
    return maps / (1e-7 + maps.flatten(1).max(1).values[:, None, None])


def _cam_weights(method: str, act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Channel weights (M, C) from activations and gradients (M, C, h, w)."""
    if method == "gradcam":
        return grad.mean((2, 3))
    # Grad-CAM++ (Chattopadhyay et al. 2018, eq. 19) with the exp(score) trick: only powers of the gradient
    g2 = grad * grad
    g3 = g2 * grad
    act_sum = act.sum((2, 3), keepdim=True)
    alpha = g2 / (2 * g2 + act_sum * g3 + 1e-6)
    alpha = torch.where(grad != 0, alpha, torch.zeros_like(alpha))
    return (grad.clamp(min=0) * alpha).sum((2, 3))


def _layer_cams(
    backbone: Backbone, x01: torch.Tensor, per_image: list, top_k: int, method: str, layer: str
) -> tuple[torch.Tensor, list[tuple[int, int]], torch.Tensor]:
    """Grad-CAM(++) maps at layer resolution for one chunk: one forward, one short backward per round."""
    x = x01.to(backbone.device).detach().requires_grad_(True)  # so the layer output needs a gradient even in a frozen model
    with torch.enable_grad(), hooked(backbone.model, [layer], keep_grad=True) as outs:
        logits = backbone.logits(x)
        act = outs.get(layer)
        if act is None:
            raise LensError(f"Layer '{layer}' is not used when the model runs. Pick another layer.")
        if act.ndim != 4:
            raise LensError(
                f"Layer '{layer}' gives an output of shape {tuple(act.shape)}, not a spatial map. "
                "Pick a convolutional layer (output channels × height × width)."
            )
        probs = logits.detach().float().softmax(1)
        pairs = _pairs(per_image, probs, top_k)
        cams = torch.empty(len(pairs), act.shape[2], act.shape[3], device=act.device)
        rounds = _rounds(pairs)
        for r, members in enumerate(rounds):
            rows = torch.tensor([pairs[k][0] for k in members], device=logits.device)
            cols = torch.tensor([pairs[k][1] for k in members], device=logits.device)
            # the gradient stops at the layer: nothing below it is back-propagated
            (grad,) = torch.autograd.grad(logits[rows, cols].sum(), act, retain_graph=r < len(rounds) - 1)
            a, g = act.detach()[rows].float(), grad[rows].float()
            weights = _cam_weights(method, a, g)
            cams[members] = (weights[:, :, None, None] * a).sum(1).clamp(min=0)
    return cams, pairs, probs


def _input_gradients(
    backbone: Backbone, x01: torch.Tensor, pairs: list[tuple[int, int]], samples: int, noise: float,
    seed: int, batch_size: int,
) -> torch.Tensor:
    """Mean gradient of each pair's class score with respect to the pixels, over noisy copies when samples > 0."""
    x01 = x01.to(backbone.device).detach()
    n = x01.shape[0]
    grads = torch.zeros(len(pairs), *x01.shape[1:], device=x01.device)
    rounds = _rounds(pairs)
    copies = max(1, samples)
    per_pass = max(1, batch_size // max(n, 1))
    gen = torch.Generator().manual_seed(seed)
    sigma = noise * float(x01.max() - x01.min()) if samples > 0 else 0.0
    done = 0
    while done < copies:
        c = min(per_pass, copies - done)
        batch = x01.repeat(c, 1, 1, 1)
        if sigma > 0:
            batch = batch + torch.randn(batch.shape, generator=gen).mul_(sigma).to(batch.device)
        batch.requires_grad_(True)
        with torch.enable_grad():
            logits = backbone.logits(batch)
            for r, members in enumerate(rounds):
                rows = torch.tensor([copy * n + pairs[k][0] for copy in range(c) for k in members], device=logits.device)
                cols = torch.tensor([pairs[k][1] for _ in range(c) for k in members], device=logits.device)
                (g,) = torch.autograd.grad(logits[rows, cols].sum(), batch, retain_graph=r < len(rounds) - 1)
                g = g.view(c, n, *g.shape[1:]).sum(0)
                grads[members] += g[[pairs[k][0] for k in members]]
        done += c
    return grads / copies


def compute_cam(
    backbone: Backbone,
    x01: torch.Tensor,
    targets: ClassRef | Sequence | None = None,
    method: str = "gradcam",
    layer: str | None = None,
    top_k: int = 1,
    samples: int = 16,
    noise: float = 0.15,
    seed: int = 0,
    batch_size: int = 16,
) -> CamResult:
    """Class activation maps for a batch of [0, 1] images (N, 3, H, W).

    targets: None (the top_k classes of each image), one class name or index for every image,
    or a list with one entry per image, each a class, None, or a list of classes.
    layer: for Grad-CAM(++), a module name (default: the backbone's Grad-CAM layer).
    samples, noise: SmoothGrad's number of noisy copies and noise level (share of the pixel range).
    """
    check_method(method)
    if x01.ndim == 3:
        x01 = x01.unsqueeze(0)
    if x01.ndim != 4 or x01.shape[1] != 3:
        raise LensError(f"Images must be a tensor (N, 3, H, W), got shape {tuple(x01.shape)}.")
    n = x01.shape[0]
    if n == 0:
        raise LensError("No images given.")
    per_image = _per_image_targets(backbone, n, targets)
    size = tuple(x01.shape[2:])
    if method in LAYER_METHODS:
        layer = layer or default_layer(backbone)
        raws, pairs, probs_list = [], [], []
        for start in range(0, n, max(1, batch_size)):
            stop = min(n, start + max(1, batch_size))
            cams, chunk_pairs, probs = _layer_cams(backbone, x01[start:stop], per_image[start:stop], top_k, method, layer)
            raws.append(cams)
            pairs += [(i + start, c) for i, c in chunk_pairs]
            probs_list.append(probs)
        raw = torch.cat(raws)
        probs = torch.cat(probs_list)
        up = F.interpolate(_min_max(raw)[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        maps = _min_max(up.clamp(min=0))
    else:
        if method == "smoothgrad" and not 1 <= samples <= MAX_SMOOTHGRAD_SAMPLES:
            raise LensError(f"SmoothGrad takes 1 to {MAX_SMOOTHGRAD_SAMPLES} noisy samples (got {samples}).")
        with torch.no_grad():
            probs = torch.cat(
                [backbone.logits(x01[s : s + batch_size]).float().softmax(1) for s in range(0, n, max(1, batch_size))]
            )
        pairs = _pairs(per_image, probs, top_k)
        grads = _input_gradients(
            backbone, x01, pairs, samples if method == "smoothgrad" else 0, noise, seed, batch_size
        )
        raw = grads.abs().amax(1)
        # a few extreme pixels would leave the rest dark: clip at the 99th percentile, like most saliency viewers
        top = torch.quantile(raw.flatten(1).float(), 0.99, dim=1).clamp(min=1e-12)
        maps = (raw / top[:, None, None]).clamp(0, 1)
        layer = INPUT_LAYER
    return CamResult(
        method=method,
        layer=layer,
        maps=maps.detach().float().cpu().numpy(),
        raw=raw.detach().float().cpu().numpy(),
        image_index=tuple(i for i, _ in pairs),
        target_index=tuple(c for _, c in pairs),
        target_label=tuple(backbone.categories[c] for _, c in pairs),
        target_prob=tuple(float(probs[i, c]) for i, c in pairs),
    )


def heatmap(cam_map: np.ndarray, size: tuple[int, int] | None = None, cmap: str = "jet") -> np.ndarray:
    """A [0, 1] map as a coloured RGB uint8 image, resized (bilinear) to size=(width, height)."""
    m = np.asarray(cam_map, dtype=np.float32)
    if size is not None and (m.shape[1], m.shape[0]) != tuple(size):
        m = cv2.resize(m, (int(size[0]), int(size[1])), interpolation=cv2.INTER_LINEAR)
    return colorize(np.clip(m, 0, 1), cmap)


def overlay_cam(image: np.ndarray, cam_map: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """The map coloured with an OpenCV colour map and blended over an RGB uint8 image (alpha = map's share)."""
    if cmap not in COLORMAPS:
        raise LensError(f"Unknown colour map '{cmap}'. Choose one of: {', '.join(COLORMAPS)}.")
    if not 0.0 <= alpha <= 1.0:
        raise LensError("alpha must be between 0 and 1.")
    h, w = image.shape[:2]
    heat = heatmap(cam_map, (w, h), cmap).astype(np.float32)
    return np.clip(image.astype(np.float32) * (1 - alpha) + heat * alpha + 0.5, 0, 255).astype(np.uint8)


def mass_inside(cam_map: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Share of the map's total value inside a box (x0, y0, x1, y1) given as fractions of width and height."""
    m = np.asarray(cam_map, dtype=np.float64)
    h, w = m.shape
    x0, y0, x1, y1 = box
    inside = m[int(round(y0 * h)) : int(round(y1 * h)), int(round(x0 * w)) : int(round(x1 * w))].sum()
    return float(inside / max(m.sum(), 1e-12))
