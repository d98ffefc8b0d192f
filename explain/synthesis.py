"""Ideal images: start from noise and change the picture by gradient steps until the network sees a target.

A picture is a *parameterisation* (raw pixels, or an FFT spectrum with decorrelated colours), a list of
small random *transforms* applied before every forward pass (padding, jitter, scale, rotation), and an
*objective* (a class, the mean of one channel, one neuron) plus weighted *regularisers* (TV, L2, blur).
`ideal_image` composes them in one loop. The course recipe is pixels + TV; the clear recipe is the one
feature-visualisation research uses (Olah et al. 2017, Lucid/Lucent): FFT + decorrelated colour + robustness
transforms, which gives pictures that a second network also recognises.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from explain.errors import LensError
from explain.hooks import hooked
from explain.images import to_image
from explain.limits import MAX_IDEAL_BATCH, MAX_IDEAL_SIZE, MAX_IDEAL_STEPS, MIN_IDEAL_SIZE
from explain.models import Backbone

METHODS = ("pixels", "fft")
OBJECTIVES = ("logprob", "logit", "margin")

# Square root of the ImageNet colour covariance (from Lucid): a unit step in this basis is a natural colour change.
_COLOR_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_MATRIX = _COLOR_SVD_SQRT / _COLOR_SVD_SQRT.norm(dim=0).max()


# --- parameterisations ---------------------------------------------------------------------------
@dataclass
class ImageParam:
    """Trainable tensors and the function that turns them into an image (1, 3, H, W) in [0, 1]."""

    params: list[torch.Tensor]
    render: Callable[[], torch.Tensor]
    clamp: Callable[[], None] = lambda: None  # keeps raw pixels in range after each step


def pixel_param(size: int, generator: torch.Generator, device: torch.device, noise: float = 0.1) -> ImageParam:
    """Raw pixels starting as grey noise (the course recipe); values are kept in [0, 1] by clamping."""
    init = 0.5 + noise * torch.randn(1, 3, size, size, generator=generator)
    pixels = init.clamp(0, 1).to(device).requires_grad_(True)

    def clamp() -> None:
        with torch.no_grad():
            pixels.clamp_(0, 1)

    return ImageParam([pixels], lambda: pixels, clamp)


def _rfft2d_freqs(h: int, w: int) -> torch.Tensor:
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


def fft_param(
    size: int,
    generator: torch.Generator,
    device: torch.device,
    decorrelate: bool = True,
    decay_power: float = 1.0,
    sd: float = 0.01,
) -> ImageParam:
    """An image described by its Fourier spectrum, scaled so low frequencies move first (1/f like photos).

    decorrelate: the 3 channels are coordinates in a decorrelated colour basis, not R, G, B.
    """
    freqs = _rfft2d_freqs(size, size)
    scale = (1.0 / torch.clamp(freqs, min=1.0 / size) ** decay_power).to(device)[None, None]
    spectrum = (sd * torch.randn(1, 3, *freqs.shape, 2, generator=generator)).to(device).requires_grad_(True)
    colors = _COLOR_MATRIX.to(device)

    def render() -> torch.Tensor:
        image = torch.fft.irfftn(torch.view_as_complex(spectrum) * scale, s=(size, size), norm="ortho") / 4.0
        if decorrelate:
            image = torch.einsum("nchw,dc->ndhw", image, colors)
        return torch.sigmoid(image)

    return ImageParam([spectrum], render)


def make_param(method: str, size: int, generator: torch.Generator, device: torch.device) -> ImageParam:
    """The parameterisation called `method` ("pixels" or "fft")."""
    if method == "pixels":
        return pixel_param(size, generator, device)
    if method == "fft":
        return fft_param(size, generator, device)
    raise LensError(f"Unknown method '{method}'. Choose one of: {', '.join(METHODS)}.")


# --- transforms ----------------------------------------------------------------------------------
Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def pad(width: int, mode: str = "reflect") -> Transform:
    """Pad every side, so the border is not a special place that the image can exploit."""

    def apply(x: torch.Tensor, _g: torch.Generator) -> torch.Tensor:
        return F.pad(x, [width] * 4, mode=mode) if width > 0 else x

    return apply


def jitter(d: int) -> Transform:
    """Shift each copy by up to d pixels in x and y (a random crop d pixels smaller)."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if d <= 0:
            return x
        h, w = x.shape[-2:]
        offsets = torch.randint(0, d + 1, (x.shape[0], 2), generator=g).tolist()
        return torch.stack([x[i, :, oy : oy + h - d, ox : ox + w - d] for i, (oy, ox) in enumerate(offsets)])

    return apply


def _affine(x: torch.Tensor, scale: torch.Tensor, angle_rad: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(angle_rad) / scale, torch.sin(angle_rad) / scale
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_scale(low: float, high: float) -> Transform:
    """Zoom each copy by a random factor in [low, high] (the size in pixels stays the same)."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if low == high == 1.0:
            return x
        n = x.shape[0]
        return _affine(x, _uniform(n, low, high, g), torch.zeros(n))

    return apply


def random_rotate(degrees: float) -> Transform:
    """Rotate each copy by a random angle in [-degrees, degrees]."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if degrees <= 0:
            return x
        n = x.shape[0]
        return _affine(x, torch.ones(n), _uniform(n, -degrees, degrees, g) * math.pi / 180)

    return apply


def random_scale_rotate(low: float, high: float, degrees: float) -> Transform:
    """random_scale and random_rotate in one resampling (one interpolation blurs less than two)."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if low == high == 1.0 and degrees <= 0:
            return x
        n = x.shape[0]
        return _affine(x, _uniform(n, low, high, g), _uniform(n, -degrees, degrees, g) * math.pi / 180)

    return apply


def compose(transforms: list[Transform]) -> Transform:
    """Apply the transforms in order."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for transform in transforms:
            x = transform(x, g)
        return x

    return apply


# --- regularisers --------------------------------------------------------------------------------
def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (0 for a flat image), per image."""
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(dim=(-3, -2, -1))
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(dim=(-3, -2, -1))
    return dx + dy


def l2_norm(image: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the pixels from mid-grey."""
    return ((image - 0.5) ** 2).mean(dim=(-3, -2, -1))


def gaussian_blur(image: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding."""
    radius = max(1, int(round(2 * sigma)))
    xs = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-(xs**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = image.shape[1]
    x = F.pad(image, [radius, radius, 0, 0], mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.pad(x, [0, 0, radius, radius], mode="reflect")
    return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def blur_penalty(image: torch.Tensor) -> torch.Tensor:
    """How far the image is from a blurred copy of itself (pulls towards smooth images)."""
    return ((image - gaussian_blur(image).detach()) ** 2).mean(dim=(-3, -2, -1))


# --- objectives ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """What the image should excite: a class, the mean of one channel, or the neuron at a channel's centre."""

    kind: str  # "class" | "channel" | "neuron"
    index: int  # class index, or channel index
    layer: str = ""  # for channel and neuron

    def describe(self, backbone: Backbone) -> str:
        if self.kind == "class":
            return f"{backbone.categories[self.index]} ({self.index})"
        where = "centre neuron of " if self.kind == "neuron" else ""
        return f"{where}{self.layer} channel {self.index}"


def class_target(backbone: Backbone, name_or_index: str | int) -> Target:
    """A class given by name (or part of it) or by index."""
    return Target("class", backbone.class_index(name_or_index))


def channel_target(backbone: Backbone, layer: str, channel: int, neuron: bool = False) -> Target:
    """One channel of a layer (its mean over all positions, or only the centre neuron)."""
    modules = dict(backbone.model.named_modules())
    if layer not in modules or not layer:
        raise LensError(f"Unknown layer '{layer}'. Pick a layer name from the model's layer list (python -m explain features IMAGE).")
    size = backbone.preprocess.input_size
    with torch.no_grad(), hooked(backbone.model, [layer]) as outs:
        backbone.logits(torch.zeros(1, 3, size, size, device=backbone.device))
    out = outs.get(layer)
    if out is None or out.ndim != 4:
        raise LensError(f"Layer '{layer}' has no feature map (N, C, H, W) output. Pick a convolutional layer.")
    channels = out.shape[1]
    if not 0 <= int(channel) < channels:
        raise LensError(f"Channel {channel} is out of range: layer '{layer}' has channels 0..{channels - 1}.")
    return Target("neuron" if neuron else "channel", int(channel), layer)


def objective_scores(target: Target, logits: torch.Tensor, maps: dict, objective: str) -> torch.Tensor:
    """One score per image of the batch; the optimiser makes it larger.

    objective (class targets): "logit" the raw class score; "logprob" log softmax, which also pushes the
    other classes down; "margin" the logit minus the mean of the other logits.
    """
    if target.kind == "class":
        if objective == "logit":
            return logits[:, target.index]
        if objective == "logprob":
            return logits.log_softmax(1)[:, target.index]
        if objective == "margin":
            others = (logits.sum(1) - logits[:, target.index]) / (logits.shape[1] - 1)
            return logits[:, target.index] - others
        raise LensError(f"Unknown objective '{objective}'. Choose one of: {', '.join(OBJECTIVES)}.")
    fmap = maps[target.layer][:, target.index]
    if target.kind == "neuron":
        h, w = fmap.shape[-2:]
        return fmap[:, h // 2, w // 2]
    return fmap.mean(dim=(-2, -1))


# --- settings, state, result ---------------------------------------------------------------------
@dataclass(frozen=True)
class IdealSettings:
    """Every knob of the loop. Two presets: PRESETS["course"] and PRESETS["clear"]."""

    method: str = "fft"  # "pixels" | "fft"
    steps: int = 64
    lr: float = 0.05
    size: int = 224  # side of the image, pixels
    seed: int = 0
    objective: str = "logprob"  # for class targets, see objective_scores
    tv: float = 0.0  # weight of total variation
    l2: float = 0.0  # weight of the L2 penalty
    blur: float = 0.0  # weight of the blur penalty
    batch: int = 1  # augmented copies per step (their gradients are averaged)
    pad: int = 0
    jitter: int = 0
    scale: tuple[float, float] = (1.0, 1.0)
    rotate: float = 0.0  # degrees, each way
    net_size: int = 0  # side the network sees after the transforms (0 = as they come)

    def transforms(self) -> Transform:
        """The random transforms these settings ask for, in the usual order."""
        return compose(
            [pad(self.pad), jitter(self.jitter), random_scale_rotate(self.scale[0], self.scale[1], self.rotate),
             jitter(self.jitter // 2)]
        )


PRESETS: dict[str, IdealSettings] = {
    # The course: raw pixels from noise, plain gradient steps on the class, TV keeps neighbours alike.
    # TV is a per-pixel mean and Adam scales steps per pixel, so it needs a weight of this order to show.
    "course": IdealSettings(method="pixels", steps=120, lr=0.01, tv=10.0, objective="logprob"),
    # Feature-visualisation practice: FFT + decorrelated colour, and robustness to small moves, zooms and turns.
    # The raw logit keeps strengthening the class's features after the probability saturates, which is what
    # makes a second network agree (log-prob stops at p = 1); 120 steps fit ~10 s on 2 CPU cores at 224 px.
    "clear": IdealSettings(
        method="fft", steps=120, lr=0.08, batch=1, pad=16, jitter=16, scale=(0.8, 1.2), rotate=15.0, objective="logit",
    ),
}
DEFAULT_PRESET = "clear"


def preset(name: str, **overrides) -> IdealSettings:
    """A preset with some knobs changed; None values keep the preset's."""
    if name not in PRESETS:
        raise LensError(f"Unknown preset '{name}'. Choose one of: {', '.join(PRESETS)}.")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def check_settings(settings: IdealSettings) -> None:
    """Raise LensError for knobs that cannot work."""
    if settings.method not in METHODS:
        raise LensError(f"Unknown method '{settings.method}'. Choose one of: {', '.join(METHODS)}.")
    if settings.objective not in OBJECTIVES:
        raise LensError(f"Unknown objective '{settings.objective}'. Choose one of: {', '.join(OBJECTIVES)}.")
    if not 1 <= settings.steps <= MAX_IDEAL_STEPS:
        raise LensError(f"Steps must be from 1 to {MAX_IDEAL_STEPS} (the limit on this server); got {settings.steps}.")
    if not MIN_IDEAL_SIZE <= settings.size <= MAX_IDEAL_SIZE:
        raise LensError(f"Image size {settings.size} is out of range: choose {MIN_IDEAL_SIZE}..{MAX_IDEAL_SIZE} pixels.")
    if settings.lr <= 0:
        raise LensError("The learning rate must be positive.")
    if min(settings.tv, settings.l2, settings.blur) < 0:
        raise LensError("Regulariser weights (TV, L2, blur) cannot be negative.")
    if not 1 <= settings.batch <= MAX_IDEAL_BATCH:
        raise LensError(f"The batch of augmented copies must be from 1 to {MAX_IDEAL_BATCH}.")
    if settings.jitter + settings.jitter // 2 >= settings.size + 2 * settings.pad - 8:
        raise LensError("Jitter is too large for this image size.")
    if not 0 < settings.scale[0] <= settings.scale[1]:
        raise LensError("The scale range must be positive and low ≤ high.")


@dataclass(frozen=True)
class IdealState:
    """What the callback sees after each step."""

    step: int  # steps done, 1..steps
    steps: int
    image_tensor: torch.Tensor  # (1, 3, H, W) in [0, 1], detached
    prob: float | None  # target class probability (mean over the augmented copies); None for channels
    activation: float  # the objective's raw score (logit, log-prob or channel mean)
    losses: dict[str, float]  # every weighted term and their total

    @property
    def image(self) -> np.ndarray:
        """The current image as RGB uint8."""
        return to_image(self.image_tensor)


@dataclass(frozen=True)
class IdealResult:
    """The image, the history of every term, and how long it took."""

    image: np.ndarray  # RGB uint8 (size, size, 3)
    target: Target
    target_name: str
    prob: float | None  # the network's probability of the target class for the final uint8 image, unaugmented
    rank: int | None  # 1 = the network's top class
    activation: float  # objective score of the final image
    history: dict[str, list[float]] = field(default_factory=dict)  # "prob", "activation", each loss term, "total"
    seconds: float = 0.0
    steps_done: int = 0
    stopped: bool = False
    settings: IdealSettings = field(default_factory=IdealSettings)


StopSignal = Callable[[], bool] | threading.Event | None


def _stop_requested(should_stop: StopSignal) -> bool:
    if should_stop is None:
        return False
    if isinstance(should_stop, threading.Event):
        return should_stop.is_set()
    return bool(should_stop())


# --- the loop ------------------------------------------------------------------------------------
def ideal_image(
    backbone: Backbone,
    target: Target,
    settings: IdealSettings | None = None,
    callback: Callable[[int, IdealState], None] | None = None,
    should_stop: StopSignal = None,
) -> IdealResult:
    """Optimise an image so the backbone sees `target`, step by step.

    callback(step, state) runs after each step; should_stop (a function or a threading.Event) is checked
    after each step and ends the loop early, keeping the image made so far.
    """
    settings = settings or PRESETS[DEFAULT_PRESET]
    check_settings(settings)
    start = time.perf_counter()
    device = backbone.device
    model = backbone.model
    generator = torch.Generator().manual_seed(int(settings.seed))
    param = make_param(settings.method, settings.size, generator, device)
    optimizer = torch.optim.Adam(param.params, lr=settings.lr)
    transform = settings.transforms()
    layers = [target.layer] if target.kind != "class" else []
    history: dict[str, list[float]] = {"prob": [], "activation": []}
    steps_done, stopped = 0, False

    with hooked(model, layers, keep_grad=True) as maps:
        for step in range(1, settings.steps + 1):
            image = param.render()
            x = transform(image.expand(settings.batch, -1, -1, -1), generator)
            if settings.net_size and x.shape[-1] != settings.net_size:
                x = F.interpolate(x, size=(settings.net_size, settings.net_size), mode="bilinear", align_corners=False, antialias=False)
            logits = backbone.logits(x)
            score = objective_scores(target, logits, maps, settings.objective)
            terms = {"objective": -score.mean()}
            for name, weight, penalty in (("tv", settings.tv, total_variation), ("l2", settings.l2, l2_norm), ("blur", settings.blur, blur_penalty)):
                if weight > 0:
                    terms[name] = weight * penalty(image).mean()
            total = sum(terms.values())
            grads = torch.autograd.grad(total, param.params)  # never touches the shared model's .grad
            for p, g in zip(param.params, grads):
                p.grad = g
            optimizer.step()
            param.clamp()
            steps_done = step

            prob = float(logits.detach().softmax(1)[:, target.index].mean()) if target.kind == "class" else None
            losses = {k: float(v.detach()) for k, v in terms.items()} | {"total": float(total.detach())}
            history["prob"].append(prob if prob is not None else float("nan"))
            history["activation"].append(float(score.detach().mean()))
            for k, v in losses.items():
                history.setdefault(k, []).append(v)
            if callback is not None:
                state = IdealState(step, settings.steps, image.detach(), prob, history["activation"][-1], losses)
                callback(step, state)
            if _stop_requested(should_stop):
                stopped = step < settings.steps
                break

        with torch.no_grad():
            final = to_image(param.render())
            x = torch.from_numpy(final).permute(2, 0, 1)[None].float().div(255).to(device)
            logits = backbone.logits(x)
            activation = float(objective_scores(target, logits, maps, settings.objective)[0])
    probs = logits.softmax(1)[0].cpu()
    prob = rank = None
    if target.kind == "class":
        prob = float(probs[target.index])
        rank = int((probs > probs[target.index]).sum()) + 1
    return IdealResult(
        image=final,
        target=target,
        target_name=target.describe(backbone),
        prob=prob,
        rank=rank,
        activation=activation,
        history=history,
        seconds=time.perf_counter() - start,
        steps_done=steps_done,
        stopped=stopped,
        settings=settings,
    )


def second_opinion(backbone: Backbone, image: np.ndarray, target_index: int) -> tuple[int, float]:
    """(rank, probability) of a class for an image, through the backbone's own preprocessing (1 = top class)."""
    from explain.classify import predict_probs
    from explain.images import prepare

    probs = predict_probs(backbone, prepare(image, backbone.preprocess).tensor)[0]
    return int((probs > probs[target_index]).sum()) + 1, float(probs[target_index])



def channel_layers(backbone: Backbone) -> list:
    """Every layer with a feature-map output (LayerInfo, in network order), found with one grey image."""
    from explain.hooks import record_feature_maps

    size = backbone.preprocess.input_size
    grey = torch.full((1, 3, size, size), 0.5, device=backbone.device)
    return record_feature_maps(backbone.model, backbone.normalize(grey)).layers
