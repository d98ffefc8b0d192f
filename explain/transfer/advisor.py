"""Which transfer strategy fits a dataset: the four scenarios (small/large × similar/different to ImageNet)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from explain.models import Backbone, anatomy_of, imagenet_categories
from explain.transfer.datasets import ImageSet, Splits

LARGE_PER_CLASS = 500  # from this many images per class, a dataset counts as "large"

STRATEGIES: dict[str, str] = {
    "classifier": "Pretrained as classifier (no training)",
    "extract": "Feature extractor: frozen backbone, new head",
    "finetune": "Fine-tune the last blocks and a new head",
}


@dataclass(frozen=True)
class Advice:
    """Which strategy fits the dataset: the four scenarios (small/large × similar/different)."""

    scenario: str  # "small-similar" | "small-different" | "large-similar" | "large-different"
    strategy: str
    unfreeze: int
    augment: bool
    reason: str  # a fixed English sentence per scenario (translatable)
    per_class: int  # images per class (the smallest class)
    imagenet_classes: tuple[str, ...] = ()  # ImageNet classes the user's class names already are


ADVICE_TEXT = {
    "small-similar": "Few images, and they look like ImageNet photos: the pretrained features already describe them well. "
    "Freeze the whole backbone and train only a new head; fine-tuning would mostly overfit.",
    "small-different": "Few images that look unlike ImageNet photos: the last blocks' features are too specific to ImageNet. "
    "Fine-tune only the last one or two blocks with a small learning rate and augmentation, keeping the general early filters frozen.",
    "large-similar": "Many images that look like ImageNet photos: there is enough data to adapt the last blocks without overfitting. "
    "Fine-tune the last blocks; a frozen feature extractor is a fast baseline.",
    "large-different": "Many images that look unlike ImageNet photos: adapt most of the network. "
    "Fine-tune many blocks (the pretrained weights are still a better start than random ones).",
}


def advise(ds: ImageSet | Splits, similar: bool, base: str = "efficientnet_lite0", model=None) -> Advice:
    """Recommend a strategy from the dataset size and whether the photos resemble ImageNet (the user's answer).
    model: the loaded network of `base`, when there is one (its blocks are counted without building another)."""
    train = ds.train if isinstance(ds, Splits) else ds
    counts = train.counts()
    per_class = min(counts.values()) if counts else 0
    large = per_class >= LARGE_PER_CLASS
    scenario = f"{'large' if large else 'small'}-{'similar' if similar else 'different'}"
    blocks = len(anatomy_of(base, model).blocks) or 1
    strategy, unfreeze, augment = {
        "small-similar": ("extract", 1, False),
        "small-different": ("finetune", min(2, blocks), True),
        "large-similar": ("finetune", min(2, blocks), True),
        "large-different": ("finetune", max(1, blocks - 1), True),
    }[scenario]
    known = tuple(c for c in train.classes if imagenet_match(c) is not None)
    return Advice(scenario, strategy, unfreeze, augment, ADVICE_TEXT[scenario], per_class, known)


def imagenet_rows_by_name(classes: Sequence[str]) -> list[int] | None:
    """One distinct ImageNet class per user class, matched by name; None unless every class has one."""
    rows = [imagenet_match(c) for c in classes]
    if any(r is None for r in rows) or len(set(rows)) != len(rows):
        return None
    return [int(r) for r in rows]


def is_imagenet_head(backbone: Backbone, head: nn.Linear) -> bool:
    return head.out_features == 1000 and list(backbone.categories) == list(imagenet_categories())


def imagenet_match(name: str) -> int | None:
    """The ImageNet class with exactly this name (or its singular), else None."""
    cats = [c.lower() for c in imagenet_categories()]
    low = name.lower().strip().replace("_", " ")
    for candidate in (low, low.removesuffix("s"), low.removesuffix("es")):
        if candidate in cats:
            return cats.index(candidate)
    return None


