"""What every class-map method shares: the method table, the result, target resolution, layers, scaling."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from explain.errors import LensError
from explain.featuremaps import probe_layers
from explain.hooks import LayerInfo
from explain.jobs import ProgressLog, StopSignal, stop_requested
from explain.models import Backbone

CAM_METHODS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcampp": "Grad-CAM++",
    "xgradcam": "XGrad-CAM",
    "layercam": "Layer-CAM",
    "hirescam": "HiRes-CAM",
    "scorecam": "Score-CAM",
    "ablationcam": "Ablation-CAM",
    "eigencam": "Eigen-CAM",
    "counterfactual": "Counterfactual (against the class)",
    "saliency": "Gradient saliency",
    "smoothgrad": "SmoothGrad",
    "integrated_gradients": "Integrated gradients",
    "occlusion": "Occlusion",
    "guided_backprop": "Guided backprop",
    "guided_gradcam": "Guided Grad-CAM",
}
DEFAULT_CAM_METHOD = "gradcam"
# methods that weight one layer's channels by gradients (one forward, one short backward)
GRADIENT_LAYER_METHODS = ("gradcam", "gradcampp", "xgradcam", "layercam", "hirescam", "counterfactual")
# methods that weight a layer's channels by forward passes only (batched), or by its activations alone
FORWARD_LAYER_METHODS = ("scorecam", "ablationcam", "eigencam")
# every method that looks at a layer (the others look at the input pixels); guided Grad-CAM uses both
LAYER_METHODS = (*GRADIENT_LAYER_METHODS, *FORWARD_LAYER_METHODS, "guided_gradcam")
PIXEL_METHODS = ("saliency", "smoothgrad", "integrated_gradients", "occlusion", "guided_backprop")
CLASS_AGNOSTIC = ("eigencam",)  # the same map whatever class is asked for: it fails class sensitivity by design
INPUT_LAYER = "input"

ClassRef = int | str  # a class given by index or by (part of) its name


@dataclass(frozen=True)
class CamResult:
    """Maps for (image, target) pairs, image by image, each image's targets in the order given."""

    method: str
    layer: str  # the layer the map was taken from ("a+b" when averaged over layers); "input" for pixel methods
    maps: np.ndarray  # (M, H, W) float32 in [0, 1] at the network's input resolution
    raw: np.ndarray  # (M, h, w) float32 before normalising (layer resolution; input size for several layers)
    image_index: tuple[int, ...]
    target_index: tuple[int, ...]
    target_label: tuple[str, ...]
    target_prob: tuple[float, ...]  # softmax probability of the target class on the clean image
    stopped: bool = False  # asked to stop: the maps hold only the passes done (channels, patch places, samples)

    def __len__(self) -> int:
        return len(self.target_index)

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.layer.split("+"))

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


def layer_list(backbone: Backbone, layer: str | Sequence[str] | None) -> list[str]:
    """One layer or several ("a+b", "a,b" or a list): the maps of several layers are averaged."""
    if layer is None:
        return [default_layer(backbone)]
    names = [n.strip() for n in layer.replace(",", "+").split("+")] if isinstance(layer, str) else [str(n) for n in layer]
    names = list(dict.fromkeys(n for n in names if n))
    if not names:
        raise LensError("Give at least one layer name.")
    return names


def _one(backbone: Backbone, t) -> int:
    return backbone.class_index(int(t) if isinstance(t, np.integer) else t)


def per_image_targets(backbone: Backbone, n: int, targets: ClassRef | Sequence | None) -> list[list[int] | None]:
    """Explicit targets resolved to indices, one list per image; None where the top classes decide."""
    if targets is None:
        return [None] * n
    if isinstance(targets, (int, str, np.integer)):
        return [[_one(backbone, targets)]] * n
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
            out.append([_one(backbone, t)])
        else:
            chosen = [_one(backbone, c) for c in t]
            if not chosen:
                raise LensError("An image was given an empty list of targets.")
            out.append(chosen)
    return out


def target_pairs(per_image: list[list[int] | None], probs: torch.Tensor, top_k: int) -> list[tuple[int, int]]:
    """(image, class) pairs: the given classes, or each image's top_k classes."""
    pairs = []
    for i, chosen in enumerate(per_image):
        if chosen is None:
            k = max(1, min(int(top_k), probs.shape[1]))
            chosen = [int(c) for c in torch.topk(probs[i], k).indices]
        pairs += [(i, c) for c in chosen]
    return pairs


class Meter:
    """A map's forward passes as a long job (explain/jobs.py): counts the units done (channels, patch places,
    samples, steps), reports them and says when to stop. The methods add their units as they learn them."""

    def __init__(self, callback=None, should_stop: StopSignal = None, phase: str = ""):
        self.log = ProgressLog(0, callback)
        self.should_stop = should_stop
        self.phase = phase
        self.done = 0
        self.stopped = False

    def plan(self, units: int) -> None:
        """More units to come (a layer's channels once its output is known, an image's patch places)."""
        self.log.total += units

    def advance(self, units: int) -> bool:
        """units more are done; True when the job should stop now (and from then on)."""
        self.done += units
        self.log.report(self.done, self.phase)
        self.stopped = self.stopped or stop_requested(self.should_stop)
        return self.stopped


def rounds(pairs: list[tuple[int, int]]) -> list[list[int]]:
    """Group pair positions so that each image appears at most once per group.

    Images in eval mode do not influence each other, so one backward pass of the summed scores
    of a group gives every image in it the gradient of its own target.
    """
    groups: list[list[int]] = []
    seen: dict[int, int] = {}
    for k, (i, _) in enumerate(pairs):
        r = seen.get(i, 0)
        seen[i] = r + 1
        if r == len(groups):
            groups.append([])
        groups[r].append(k)
    return groups


def min_max(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map (M, H, W) to [0, 1] exactly like pytorch-grad-cam (x - min) / (1e-7 + max)."""
    flat = maps.flatten(1)
    maps = maps - flat.min(1).values[:, None, None]
    return maps / (1e-7 + maps.flatten(1).max(1).values[:, None, None])


def layer_maps_to_input(raws: list[torch.Tensor], size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer maps (one (M, h, w) per layer, ReLU applied) to [0, 1] maps at the input size, averaged over layers.

    Returns (maps, raw): raw is the one layer's map, or the average at input size for several layers.
    Follows pytorch-grad-cam: each layer scaled to [0, 1] and upsampled (bilinear), then averaged and scaled.
    """
    ups = [F.interpolate(min_max(r.float())[:, None], size=size, mode="bilinear", align_corners=False)[:, 0].clamp(min=0) for r in raws]
    mean = torch.stack(ups).mean(0)
    return min_max(mean), (raws[0] if len(raws) == 1 else mean)


def clip_saliency(raw: torch.Tensor) -> torch.Tensor:
    """Pixel attributions (M, H, W) to [0, 1]: a few extreme pixels would leave the rest dark, so the 99th percentile is 1."""
    top = upper_quantile(raw.flatten(1).float(), 0.99).clamp(min=1e-12)
    return (raw / top[:, None, None]).clamp(0, 1)


def upper_quantile(flat: torch.Tensor, q: float) -> torch.Tensor:
    """torch.quantile(flat, q, dim=1) (linear interpolation), bit for bit, from the top values only (a partial
    sort: for q = 0.99 of a 224 px map, 1 % of it) instead of sorting every row."""
    n = flat.shape[1]
    if q < 0.5 or not bool(torch.isfinite(flat).all()):
        return torch.quantile(flat, q, dim=1)
    rank = float(np.float32(q)) * (n - 1)  # as torch.quantile: q in the tensor's float32, the rank in double
    below, above = math.floor(rank), math.ceil(rank)
    top = torch.topk(flat, n - below, dim=1, sorted=True).values  # descending: sorted[below] is the last
    return top[:, -1].lerp(top[:, n - 1 - above], torch.tensor(rank - below, dtype=flat.dtype))


def class_probs(backbone: Backbone, x01: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Softmax probabilities (N, classes) of clean images, in chunks."""
    bs = max(1, batch_size)
    with torch.no_grad():
        return torch.cat([backbone.logits(x01[s : s + bs]).float().softmax(1) for s in range(0, x01.shape[0], bs)])
