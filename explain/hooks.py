"""Recording layer outputs with forward hooks; every hook is removed, also when the forward raises."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from explain.errors import LensError


@dataclass(frozen=True)
class LayerInfo:
    """A layer whose output is a feature map (N, C, H, W)."""

    name: str
    type: str
    shape: tuple[int, ...]  # (C, H, W)
    main: bool  # True when no enclosing block is itself listed (the short list)


@contextmanager
def attached(
    forward: Iterable[tuple[nn.Module, Callable]] = (), pre: Iterable[tuple[nn.Module, Callable]] = ()
) -> Iterator[None]:
    """Register forward hooks and forward pre-hooks (module, function) for the block; all removed on exit, also on errors.

    The one place in CNN Lens that registers hooks: every other helper goes through it. The hooks fire only for
    forward passes of the thread that registered them: a registry network is shared by every session of the server
    (each a thread), and another student's forward pass must neither fill this recording nor be changed by its hooks.
    """
    owner = threading.get_ident()

    def own(fn: Callable) -> Callable:
        def hook(*args):
            return fn(*args) if threading.get_ident() == owner else None

        return hook

    handles = []
    try:
        for module, fn in pre:
            handles.append(module.register_forward_pre_hook(own(fn)))
        for module, fn in forward:
            handles.append(module.register_forward_hook(own(fn)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def hooked(model: nn.Module, names: Iterable[str] | None = None, keep_grad: bool = False) -> Iterator[dict]:
    """Record outputs of the named modules (all modules when None) while the block runs.

    Yields a dict name -> output tensor, filled in call order. A module called several
    times keeps its last output. keep_grad=True keeps the graph (for objectives, Grad-CAM).
    """
    modules = dict(model.named_modules())
    wanted = [n for n in modules if n] if names is None else list(names)
    unknown = [n for n in wanted if n not in modules]
    if unknown:
        raise LensError(f"Unknown layer '{unknown[0]}'. Pick a layer name from the model's layer list.")
    outputs: dict[str, torch.Tensor] = {}

    def make_hook(name: str):
        def hook(_module, _inputs, out):
            if isinstance(out, torch.Tensor):
                outputs.pop(name, None)  # re-insert so the order is the last call's
                outputs[name] = out if keep_grad else out.detach()

        return hook

    with attached(forward=[(modules[name], make_hook(name)) for name in wanted]):
        yield outputs


def hook_count(model: nn.Module) -> int:
    """Number of forward hooks attached anywhere in the model (0 after recording)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@dataclass(frozen=True)
class Recording:
    """Every feature map of one forward pass: the layer list and each layer's output (C, H, W) on the CPU."""

    layers: list[LayerInfo]
    maps: dict[str, torch.Tensor]
    logits: torch.Tensor
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # (C, H, W) of every module with a 4-D output

    def layer(self, name: str) -> LayerInfo:
        for info in self.layers:
            if info.name == name:
                return info
        raise LensError(f"Unknown layer '{name}'. Pick one of the {len(self.layers)} recorded layers.")


def record_feature_maps(model: nn.Module, x: torch.Tensor) -> Recording:
    """One forward pass recording every layer with a 4-D output, in execution order, without duplicates.

    Modules that hand back their own input (Identity, no-op dropout) are skipped. Containers that
    return exactly the tensor of one of their members would show the same map twice; of each such
    group the shallowest module that is not a plain Sequential/ModuleList is kept (``blocks.6.0``
    rather than ``blocks``, ``bn1`` rather than ``bn1.act``). Only the first image of x is kept.
    """
    modules = dict(model.named_modules())
    outs: dict[str, torch.Tensor] = {}
    identity: set[str] = set()

    def make_hook(name: str):
        def hook(_module, inputs, out):
            if isinstance(out, torch.Tensor):
                if inputs and out is inputs[0]:
                    identity.add(name)
                outs.pop(name, None)
                outs[name] = out

        return hook

    with attached(forward=[(module, make_hook(name)) for name, module in modules.items() if name]), torch.no_grad():
        logits = model(x)

    groups: dict[int, list[str]] = {}
    for name, out in outs.items():
        if out.ndim == 4 and name not in identity:
            groups.setdefault(id(out), []).append(name)

    def preference(name: str) -> tuple[int, int]:
        structural = isinstance(modules[name], (nn.Sequential, nn.ModuleList))
        return (1 if structural else 0, name.count("."))

    chosen = {min(names, key=preference) for names in groups.values()}
    order = [n for n in outs if n in chosen]
    listed = set(order)
    layers = []
    for name in order:
        parts = name.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts))}
        shape = tuple(outs[name].shape[1:])
        layers.append(LayerInfo(name, type(modules[name]).__name__, shape, not (ancestors & listed)))
    maps = {name: outs[name][0].detach().float().cpu() for name in order}
    shapes = {name: tuple(out.shape[1:]) for name, out in outs.items() if out.ndim == 4}
    return Recording(layers, maps, logits.detach().cpu(), shapes)
