"""Strategy "auto": the advisor measures how far the photos are from ImageNet and plans the whole run (and says why)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from explain.hooks import attached
from explain.images import Preprocess, prepare
from explain.models import Backbone, anatomy_of
from explain.transfer.advisor import LARGE_PER_CLASS, STRATEGIES, Advice, advise
from explain.transfer.datasets import ImageSet, Splits
from explain.transfer.trainer import TrainConfig

AUTO = "auto"
STRATEGY_TITLES: dict[str, str] = {"auto": "Automatic (advisor)", **STRATEGIES}  # the choices a user has, auto first
AUTO_TITLE = STRATEGY_TITLES[AUTO]
# The domain's distance from ImageNet, as the advisor measures it: how well the frozen features separate the classes
# untrained (leave-one-out nearest class mean on a sample of 16 photos per class). EfficientNet-Lite0 measured
# (features, then the classifier's mean top-1 probability): hymenoptera 0.97 / 0.74, sign-language digits 0.78 / 0.17,
# the demo textures 1.00 / 0.21, the demo photo patches 0.98 / 0.27. The classifier's confidence would call the
# textures "far" though a frozen backbone already tells them apart: it measures "is it an ImageNet class", not
# "do ImageNet features describe it", so it is reported but does not decide.
SIMILAR_PROBE = 0.9
SAMPLE_PER_CLASS = 16
# small photos are blown up about this much (then up to a multiple of 32). Sign-language digits (100 px), a frozen
# Lite0 + new head, on 20 % held out: 85.4 % at 128 px, 89.5 % at 160, 91.6 % at 224, for 1x, 1.6x, 2.9x the work
MAX_UPSCALE = 1.5
# fine-tuning a far domain on a CPU, measured on the sign-language digits (20 % held out, 1 thread, CPU seconds of the
# training alone): the last 2 blocks at 160 px, 2 + 6 epochs, cosine: 99.5 % in 84 s; the last block only at 192 px,
# 3 + 10 epochs: 97.0 % in 55-65 s (constant or cosine)
FINETUNE_EPOCHS = 6
FINETUNE_HEAD_EPOCHS = 2
FINETUNE_BACKBONE_LR = 1e-3  # the head's rate: few epochs, and the cosine brings both down


@dataclass(frozen=True)
class DomainEstimate:
    """How far the photos are from ImageNet, measured on a sample with the pretrained network."""

    confidence: float  # mean top-1 probability the pretrained ImageNet classifier gives the photos
    probe_accuracy: float  # leave-one-out nearest-class-mean accuracy of the frozen features (cosine), untrained
    images: int  # photos in the sample

    @property
    def similar(self) -> bool:
        return self.probe_accuracy >= SIMILAR_PROBE


# the sentences of the advisor's reasoning (English keys of the translations; the values fill the fields)
REASONS: dict[str, str] = {
    "small": "{n} photos in the smallest class: a small dataset (large from {large} per class).",
    "large": "{n} photos in the smallest class: a large dataset (large from {large} per class).",
    "similar": "Without any training, the pretrained network's features put {probe}% of {sample} of your photos closest to their "
    "own class's mean (at least {threshold}%): ImageNet features already describe them well.",
    "different": "Without any training, the pretrained network's features put {probe}% of {sample} of your photos closest to "
    "their own class's mean (under {threshold}%): the photos are far from what ImageNet taught it.",
    "confidence": "Its ImageNet classifier is on average {confidence}% sure of one ImageNet class for them.",
    "finetune": "So: fine-tune the last {unfreeze} block(s) for {epochs} epochs after {head} epochs of the head alone. The frozen "
    "part runs once per photo and is kept, so each epoch runs only the unfrozen blocks and the head.",
    "extract": "So: keep the whole backbone frozen and train a new head for {epochs} epochs on features computed once per photo.",
    "input_size": "The photos are about {side} pixels: the network sees them whole at {size} pixels (its own input is {own}), "
    "blown up about {upscale:g} times.",
}


@dataclass(frozen=True)
class Reason:
    """One sentence of the advisor's reasoning: which of REASONS, and its values."""

    key: str
    values: dict = field(default_factory=dict)

    @property
    def template(self) -> str:
        return REASONS[self.key]

    @property
    def text(self) -> str:
        return self.template.format(**self.values)


@dataclass(frozen=True)
class Plan:
    """The advisor's recipe for strategy "auto": what to train, how long, at which resolution, and why."""

    advice: Advice
    estimate: DomainEstimate
    unfreeze: int  # blocks "finetune" unfreezes, from the last
    epochs: int
    head_epochs: int
    backbone_lr: float | None
    input_size: int | None  # None: the backbone's own preprocessing
    schedule: str  # TrainConfig.schedule
    reasons: tuple[Reason, ...]

    @property
    def strategy(self) -> str:
        return self.advice.strategy

    def config(self, **changes) -> TrainConfig:
        """The TrainConfig of this plan; `changes` (seed, head, …) override single fields."""
        planned = TrainConfig(strategy=self.strategy, unfreeze=self.unfreeze, epochs=self.epochs, head_epochs=self.head_epochs,
                              backbone_lr=self.backbone_lr, augment=False, input_size=self.input_size, schedule=self.schedule)
        return replace(planned, **changes)

    def as_dict(self) -> dict:
        """The plan for JSON: scenario, measurements and the reasons in words."""
        return {
            "scenario": self.advice.scenario,
            "strategy": self.strategy,
            "unfreeze": self.unfreeze if self.strategy == "finetune" else 0,
            "epochs": self.epochs,
            "head_epochs": self.head_epochs,
            "input_size": self.input_size,
            "schedule": self.schedule,
            "imagenet_confidence": round(self.estimate.confidence, 4),
            "probe_accuracy": round(self.estimate.probe_accuracy, 4),
            "sample_images": self.estimate.images,
            "similar": self.estimate.similar,
            "reasons": [r.text for r in self.reasons],
        }


@torch.no_grad()
def estimate_domain(backbone: Backbone, ds: ImageSet | Splits, per_class: int = SAMPLE_PER_CLASS, seed: int = 0) -> DomainEstimate:
    """Run the pretrained network over a sample of the photos: how sure its ImageNet classifier is, how separable its features are."""
    train = ds.train if isinstance(ds, Splits) else ds
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for label in range(len(train.classes)):
        members = [i for i, y in enumerate(train.labels) if y == label]
        picked += sorted(rng.permutation(members)[:per_class].tolist())
    head = backbone.model.get_submodule(anatomy_of(backbone.base or backbone.name, backbone.model).head)
    feats, probs = [], []

    def keep(_module, inputs):
        feats.append(inputs[0].flatten(1).float().cpu())

    backbone.model.eval()
    with attached(pre=[(head, keep)]):
        for start in range(0, len(picked), backbone.micro_batch):
            chunk = picked[start : start + backbone.micro_batch]
            batch = torch.cat([prepare(train.images[i], backbone.preprocess).tensor for i in chunk])
            probs.append(backbone.logits(batch).float().softmax(1).cpu())
    if not probs:
        return DomainEstimate(float("nan"), float("nan"), 0)
    labels = torch.tensor([train.labels[i] for i in picked])
    confidence = float(torch.cat(probs).max(1).values.mean())
    return DomainEstimate(confidence, nearest_mean_accuracy(torch.cat(feats), labels), len(picked))


def nearest_mean_accuracy(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Leave-one-out accuracy of the nearest class mean (cosine): how well features separate the classes without training."""
    f = F.normalize(features.float(), dim=1)
    n_classes = int(labels.max()) + 1
    sums = torch.zeros(n_classes, f.shape[1]).index_add_(0, labels, f)
    counts = torch.bincount(labels, minlength=n_classes).float()
    scores = F.normalize(sums, dim=1) @ f.T  # (C, N): cosine to every class mean
    own = F.normalize(sums[labels] - f, dim=1)  # each photo's own class mean without the photo itself
    scores[labels, torch.arange(len(labels))] = (own * f).sum(1)
    scores[counts == 0] = -2
    return float((scores.argmax(0) == labels).float().mean())


def median_side(ds: ImageSet) -> int:
    """The median shorter side of the photos, in pixels."""
    return int(np.median([min(img.shape[:2]) for img in ds.images])) if len(ds) else 0


def planned_input_size(ds: ImageSet, preprocess: Preprocess) -> int | None:
    """Input size for small photos (blown up about MAX_UPSCALE times, whole photo, no crop); None: the network's own."""
    short = median_side(ds)
    if not short or short * MAX_UPSCALE >= preprocess.resize_size:
        return None
    return min(preprocess.input_size, max(64, 32 * math.ceil(MAX_UPSCALE * short / 32)))


def plan_training(backbone: Backbone, splits: Splits, estimate: DomainEstimate | None = None) -> Plan:
    """Strategy "auto": the advisor picks strategy, blocks, epochs and resolution from the dataset, and says why."""
    estimate = estimate or estimate_domain(backbone, splits)
    advice = advise(splits, estimate.similar, backbone.base or backbone.name, None if backbone.base else backbone.model)
    large = advice.scenario.startswith("large")
    values = {"n": advice.per_class, "large": LARGE_PER_CLASS, "sample": estimate.images,
              "confidence": round(estimate.confidence * 100, 1), "threshold": round(SIMILAR_PROBE * 100),
              "probe": round(estimate.probe_accuracy * 100, 1)}
    reasons = [Reason("large" if large else "small", values), Reason("similar" if estimate.similar else "different", values),
               Reason("confidence", values)]
    epochs, head_epochs, backbone_lr, unfreeze, schedule = TrainConfig.epochs, 0, None, advice.unfreeze, "constant"
    if advice.strategy == "finetune":
        epochs, head_epochs, backbone_lr, schedule = FINETUNE_EPOCHS, FINETUNE_HEAD_EPOCHS, FINETUNE_BACKBONE_LR, "cosine"
        reasons.append(Reason("finetune", {"unfreeze": unfreeze, "epochs": epochs, "head": head_epochs}))
    else:
        reasons.append(Reason("extract", {"epochs": epochs}))
    input_size = planned_input_size(splits.train, backbone.preprocess)
    if input_size is not None:
        reasons.append(Reason("input_size", {"side": median_side(splits.train), "size": input_size, "own": backbone.preprocess.input_size,
                                             "upscale": MAX_UPSCALE}))
    return Plan(advice, estimate, unfreeze, epochs, head_epochs, backbone_lr, input_size, schedule, tuple(reasons))
