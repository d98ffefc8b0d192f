"""`python -m explain VERB …`: every feature from the shell; `--json` prints machine-readable results.

Each verb is two functions: ``args_<verb>(parser)`` adds its options and ``cmd_<verb>(args)``
returns ``(data, text)``: the JSON-able result and the human-readable one. A user's mistake
(LensError) exits 2 with one line on stderr; a verb that could do only part of its work (one
bad image of several) prints what it did and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from explain.errors import LensError


class PartialFailure(Exception):
    """Some inputs failed; the data for the rest is still printed."""

    def __init__(self, data, text: str, message: str):
        super().__init__(message)
        self.data, self.text = data, text


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="efficientnet_lite0", help="registry name or weights file (default: efficientnet_lite0)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")


def _device(text: str | None):
    """--device as a torch.device; a LensError for a name torch does not know or a GPU this machine lacks."""
    import torch

    if text is None:
        return None
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise LensError(f"Unknown device '{text}'. Use cpu or cuda.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LensError(f"--device {text}: this machine has no CUDA GPU. Use --device cpu.")
    if device.type not in ("cpu", "cuda"):
        raise LensError(f"Device '{text}' is not supported here. Use cpu or cuda.")
    return device


def _load(args):
    from explain.models import load_model

    return load_model(args.model, device=_device(args.device))


def _read_images(paths: list[str], fields: dict) -> tuple[list[dict], list, list[int]]:
    """Read every image; a record per path (with `fields`, or an "error"), the images, and the records they fill."""
    from explain.images import read_image

    records: list[dict] = []
    images, slots = [], []
    for path in paths:
        try:
            images.append(read_image(path))
            slots.append(len(records))
            records.append({"file": path, **fields})
        except LensError as exc:
            records.append({"file": path, "error": str(exc)})
    return records, images, slots


def _scores(scores) -> list[dict]:
    return [{"index": s.index, "label": s.label, "prob": round(s.prob, 6)} for s in scores]


# --- models -------------------------------------------------------------------------------
def args_models(p: argparse.ArgumentParser) -> None:
    pass


def cmd_models(args):
    from explain.models import DEFAULT_BACKBONE, REGISTRY, weight_status

    data = []
    for name, spec in REGISTRY.items():
        data.append(
            {
                "name": name,
                "title": spec.title,
                "status": weight_status(name),
                "family": spec.family,
                "input_size": spec.preprocess.input_size,
                "top1": spec.top1,
                "default": name == DEFAULT_BACKBONE,
            }
        )
    text = "\n".join(f"{d['name']:<20}{d['status']:<10}{d['title']}" + ("  (default)" if d["default"] else "") for d in data)
    return data, text


# --- summary ------------------------------------------------------------------------------
def args_summary(p: argparse.ArgumentParser) -> None:
    _add_model(p)


def cmd_summary(args):
    from explain.models import summarize

    summary = summarize(_load(args))
    data = {
        "model": args.model,
        "layers": [
            {"name": r.name, "type": r.type, "output_shape": list(r.output_shape), "params": r.params, "trainable": r.trainable}
            for r in summary.rows
        ],
        "total_params": summary.total_params,
        "trainable_params": summary.trainable_params,
        "frozen_params": summary.frozen_params,
    }
    return data, summary.as_text()


# --- classify -----------------------------------------------------------------------------
def args_classify(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    _add_model(p)
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--interpolation", default=None, help="nearest, linear, area, cubic or lanczos (default: the model's)")


def cmd_classify(args):
    from explain.classify import classify_images
    from explain.images import INTERPOLATIONS

    if args.topk < 1:
        raise LensError("--topk must be 1 or more.")
    if args.interpolation is not None and args.interpolation not in INTERPOLATIONS:
        raise LensError(f"Unknown interpolation '{args.interpolation}'. Choose one of: {', '.join(INTERPOLATIONS)}.")
    backbone = _load(args)
    records, images, slots = _read_images(args.images, {"top": []})
    for slot, scores in zip(slots, classify_images(backbone, images, args.topk, args.interpolation)):
        records[slot]["top"] = _scores(scores)
    lines = []
    for r in records:
        if "error" in r:
            lines.append(f"{r['file']}: ERROR {r['error']}")
        else:
            lines.append(r["file"])
            lines += [f"  {s['prob'] * 100:6.2f}%  {s['label']} ({s['index']})" for s in r["top"]]
    failed = [r for r in records if "error" in r]
    if failed:
        raise PartialFailure(records, "\n".join(lines), f"{len(failed)} of {len(records)} images failed: {failed[0]['error']}")
    return records, "\n".join(lines)


# --- features -----------------------------------------------------------------------------
def args_features(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    _add_model(p)
    p.add_argument("--layer", default=None, help="layer name (default: list the layers)")
    p.add_argument("--out", default=None, help="PNG file for the channel grid")
    p.add_argument("--channels", type=int, default=64, help="how many channels in the grid (strongest first); 0 = all")
    p.add_argument("--normalise", choices=["channel", "layer"], default="channel")
    p.add_argument("--cmap", default="viridis")


def cmd_features(args):
    from explain.featuremaps import channel_grid, channel_stats, record_image, top_channels
    from explain.images import prepare, read_image, save_png

    backbone = _load(args)
    image = read_image(args.image)
    recording = record_image(backbone, prepare(image, backbone.preprocess).tensor)
    layers = [{"name": li.name, "type": li.type, "shape": list(li.shape), "main": li.main} for li in recording.layers]
    if args.layer is None:
        text = "\n".join(f"{d['name']:<40}{d['type']:<28}{tuple(d['shape'])}" for d in layers)
        return {"file": args.image, "layers": layers}, text
    info = recording.layer(args.layer)
    fmap = recording.maps[info.name]
    count = fmap.shape[0] if args.channels <= 0 else min(args.channels, fmap.shape[0])
    order = top_channels(fmap, count)
    grid = channel_grid(fmap, order, normalise=args.normalise, cmap=args.cmap)
    out = None
    if args.out:
        out = str(save_png(grid.image, args.out))
    stats = channel_stats(fmap)
    data = {
        "file": args.image,
        "layer": info.name,
        "type": info.type,
        "shape": list(info.shape),
        "top_channels": [{"channel": c, "mean": round(float(stats.mean[c]), 6)} for c in order[:10]],
        "out": out,
    }
    text = f"{info.name} ({info.type}) {info.shape}; strongest channels: {order[:10]}" + (f"; grid saved to {out}" if out else "")
    return data, text


# --- cam ----------------------------------------------------------------------------------
def args_cam(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    _add_model(p)
    p.add_argument("--method", default="gradcam", help="gradcam, gradcampp, saliency or smoothgrad (default: gradcam)")
    p.add_argument("--target", default=None, help="class name or index (default: the top-1 class)")
    p.add_argument("--layer", default=None, help="layer for gradcam/gradcampp (default: the model's Grad-CAM layer)")
    p.add_argument("--out", default=None, help="PNG file for the map over the photo")
    p.add_argument("--save-map", default=None, help=".npy file for the map itself (float32 in [0, 1], input size)")
    p.add_argument("--alpha", type=float, default=0.5, help="share of the map in the overlay (default 0.5)")
    p.add_argument("--cmap", default="jet")
    p.add_argument("--samples", type=int, default=16, help="SmoothGrad: noisy copies (default 16)")


def cmd_cam(args):
    from pathlib import Path

    import numpy as np

    from explain.cam import check_method, compute_cam, overlay_cam
    from explain.images import prepare, read_image, save_png

    check_method(args.method)
    if args.save_map and not args.save_map.lower().endswith(".npy"):
        raise LensError("--save-map must name a .npy file.")
    backbone = _load(args)
    image = read_image(args.image)
    prepared = prepare(image, backbone.preprocess)
    result = compute_cam(
        backbone, prepared.tensor, targets=args.target, method=args.method, layer=args.layer, samples=args.samples
    )
    cam_map = result.maps[0]
    overlay = overlay_cam(prepared.cropped, cam_map, args.alpha, args.cmap)
    out = str(save_png(overlay, args.out)) if args.out else None
    saved_map = None
    if args.save_map:
        path = Path(args.save_map)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, cam_map.astype(np.float32))
        saved_map = str(path)
    data = {
        "file": args.image,
        "method": args.method,
        "layer": result.layer,
        "target_index": result.target_index[0],
        "target_label": result.target_label[0],
        "target_prob": round(result.target_prob[0], 6),
        "out": out,
        "map": saved_map,
        "map_shape": list(cam_map.shape),
    }
    text = (
        f"{args.image}: {args.method} on {result.layer} for '{result.target_label[0]}' ({result.target_index[0]}, "
        f"p={result.target_prob[0] * 100:.1f}%)" + (f"; overlay saved to {out}" if out else "")
        + (f"; map saved to {saved_map}" if saved_map else "")
    )
    return data, text


# --- ideal --------------------------------------------------------------------------------
def args_ideal(p: argparse.ArgumentParser) -> None:
    _add_model(p)
    p.add_argument("--target", default=None, help="class name (or part of it) or index; default: 281 (tabby) unless --layer")
    p.add_argument("--layer", default=None, help="visualise a channel of this layer instead of a class")
    p.add_argument("--channel", type=int, default=None, help="channel index for --layer")
    p.add_argument("--neuron", action="store_true", help="with --layer: only the neuron at the centre of the channel")
    p.add_argument("--method", choices=["pixels", "fft"], default=None,
                   help="pixels = the course recipe (pixels + TV); fft = the clear preset (default)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--size", type=int, default=None, help="image side in pixels (default 224)")
    p.add_argument("--tv", type=float, default=None, help="weight of the total-variation loss")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="PNG file for the image")


def cmd_ideal(args):
    from explain.images import save_png
    from explain.synthesis import DEFAULT_PRESET, channel_target, class_target, ideal_image, preset

    if (args.layer is None) != (args.channel is None):
        raise LensError("--layer and --channel go together: give both to visualise a channel.")
    if args.layer is not None and args.target is not None:
        raise LensError("Give either --target (a class) or --layer/--channel, not both.")
    name = {"pixels": "course", "fft": "clear", None: DEFAULT_PRESET}[args.method]
    settings = preset(name, steps=args.steps, size=args.size, tv=args.tv, lr=args.lr, seed=args.seed)
    backbone = _load(args)
    if args.layer is not None:
        target = channel_target(backbone, args.layer, args.channel, neuron=args.neuron)
    else:
        target = class_target(backbone, args.target if args.target is not None else 281)
    result = ideal_image(backbone, target, settings)
    out = str(save_png(result.image, args.out)) if args.out else None
    data = {
        "target_index": target.index,
        "target_name": backbone.categories[target.index] if target.kind == "class" else result.target_name,
        "prob": None if result.prob is None else round(result.prob, 6),
        "seconds": round(result.seconds, 3),
        "out": out,
    }
    if target.kind != "class":
        data.update(layer=target.layer, channel=target.index, activation=round(result.activation, 6))
    what = f"p = {result.prob * 100:.1f}%" if result.prob is not None else f"activation {result.activation:.3f}"
    text = f"{result.target_name}: {what} after {result.steps_done} steps, {result.seconds:.1f} s" + (f"; saved to {out}" if out else "")
    return data, text
# --- attack -------------------------------------------------------------------------------
def args_attack(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    _add_model(p)
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--target", default=None, help="class to reach: a name (or unique part of one) or an index")
    goal.add_argument("--untargeted", action="store_true", help="any class but the one the network sees now")
    p.add_argument("--eps", type=float, default=2.0, help="budget in grey levels, /255 of the pixel range (default 2)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--method", choices=["fgsm", "pgd", "mifgsm"], default="pgd")
    p.add_argument("--norm", choices=["linf", "l2"], default="linf", help="budget norm (l2 only with pgd)")
    p.add_argument("--step-size", type=float, default=None, help="levels per step, constant (default: cosine-annealed from eps to 1/4 level)")
    p.add_argument("--confidence", type=float, default=0.0, help="keep going until the goal has this probability")
    p.add_argument("--tv", type=float, default=0.0, help="total-variation penalty: smoother, less visible noise")
    p.add_argument(
        "--leak",
        type=float,
        default=None,
        help="share of the gradient let through switched-off ReLUs on the first step, annealed to 0 (default 0.1; 0 = the plain gradient)",
    )
    p.add_argument("--no-random-start", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=".", help="folder for the adversarial PNGs (default: current folder)")
    p.add_argument("--topk", type=int, default=5)


def cmd_attack(args):
    from pathlib import Path

    from explain.adversarial import AttackSettings, attack_images
    from explain.images import save_png

    if args.topk < 1:
        raise LensError("--topk must be 1 or more.")
    settings = AttackSettings(
        method=args.method,
        eps=args.eps,
        steps=args.steps,
        step_size=args.step_size,
        norm=args.norm,
        random_start=not args.no_random_start,
        confidence=args.confidence,
        tv_weight=args.tv,
        leak=AttackSettings.leak if args.leak is None else args.leak,
        seed=args.seed,
    ).checked()
    backbone = _load(args)
    target = None if args.untargeted else backbone.class_index(args.target)
    out_dir = Path(args.out_dir)
    records, images, slots = _read_images(args.images, {})
    used: set[str] = set()
    for slot, result in zip(slots, attack_images(backbone, images, settings, target=target, k=args.topk)):
        stem = Path(records[slot]["file"]).stem
        name = f"{stem}_adv.png"
        n = 1
        while name in used:  # two inputs with one stem must not overwrite each other
            n += 1
            name = f"{stem}_adv{n}.png"
        used.add(name)
        out = save_png(result.adversarial, out_dir / name)
        records[slot].update(
            {
                "out": str(out),
                "success": result.success,
                "target": target,
                "before": _scores(result.before),
                "after": _scores(result.after),
                "linf": result.linf,
                "l2": round(result.l2, 4),
                "psnr": None if result.psnr == float("inf") else round(result.psnr, 4),
                "ssim": round(result.ssim, 6),
                "seconds": round(result.seconds, 4),
                "steps": result.steps_used,
            }
        )
    lines = []
    for r in records:
        if "error" in r:
            lines.append(f"{r['file']}: ERROR {r['error']}")
            continue
        was, now = r["before"][0], r["after"][0]
        verdict = "fooled" if r["success"] else "NOT fooled"
        lines.append(
            f"{r['file']} -> {r['out']}: {verdict}; {was['label']} ({was['prob'] * 100:.1f}%) -> "
            f"{now['label']} ({now['prob'] * 100:.1f}%); Linf {r['linf']:g}/255, PSNR {r['psnr']} dB, "
            f"SSIM {r['ssim']:.4f}, {r['seconds']:.2f} s"
        )
    failed = [r for r in records if "error" in r]
    if failed:
        raise PartialFailure(records, "\n".join(lines), f"{len(failed)} of {len(records)} images failed: {failed[0]['error']}")
    return records, "\n".join(lines)


# --- finetune -----------------------------------------------------------------------------
def args_finetune(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA_DIR", help="folder with one sub-folder of images per class (or train/ val/ [test/] folders)")
    p.add_argument("--model", default="efficientnet_lite0", help="registry backbone to start from (default: efficientnet_lite0)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--strategy", choices=["classifier", "extract", "finetune"], default="extract",
                   help="classifier: pretrained as is; extract: frozen backbone + new head (default); finetune: also the last blocks")
    p.add_argument("--head", choices=["linear", "mlp"], default="linear", help="new head: linear, or mlp = Dense(64)+BatchNorm+Dropout+Dense")
    p.add_argument("--unfreeze", type=int, default=1, help="blocks to unfreeze with --strategy finetune, from the last (default: 1)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--head-epochs", type=int, default=5, help="finetune: epochs that train the new head alone first (default: 5)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="head learning rate (default: 0.001)")
    p.add_argument("--backbone-lr", type=float, default=None, help="learning rate of the unfrozen blocks (default: lr / 10)")
    p.add_argument("--no-imagenet-init", dest="imagenet_init", action="store_false",
                   help="start a linear head from random weights even when every class name is an ImageNet class "
                        "(default: such a head starts from the network's own weights for those classes)")
    p.add_argument("--augment", action="store_true", help="RandomResizedCrop + RandomHorizontalFlip (slower: no feature cache)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of each class kept for validation when DATA_DIR has no val/ folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-dir", default=None, help="folder of test images, one sub-folder per class (default: DATA_DIR/test if present)")
    p.add_argument("--out", default="my_model.pt", help="where to write the trained model (default: my_model.pt)")


def _rounded(value: float) -> float | None:
    return None if value != value else round(float(value), 4)  # NaN (a class absent from a set) is not JSON


def cmd_finetune(args):
    import time

    from explain.models import save_model
    from explain.transfer import TrainConfig, dataset_from_folder, evaluate, split_dataset, train_model

    start = time.perf_counter()
    test = dataset_from_folder(args.test_dir) if args.test_dir else None
    splits = split_dataset(dataset_from_folder(args.data), args.val_fraction, args.seed, test=test)
    config = TrainConfig(
        strategy=args.strategy, head=args.head, unfreeze=args.unfreeze, epochs=args.epochs, head_epochs=args.head_epochs, batch_size=args.batch_size,
        lr=args.lr, backbone_lr=args.backbone_lr, augment=args.augment, seed=args.seed, imagenet_init=args.imagenet_init,
    )
    result = train_model(_load(args), splits, config)
    test_eval = evaluate(result.backbone, splits.test) if splits.test is not None and len(splits.test) else None
    out = str(save_model(result.backbone, args.out))
    data = {
        "classes": list(splits.classes),
        "val_acc": _rounded(result.val.accuracy),
        "test_acc": _rounded(test_eval.accuracy) if test_eval else None,
        "per_class": {c: _rounded(a) for c, a in result.val.per_class.items()},
        "test_per_class": {c: _rounded(a) for c, a in test_eval.per_class.items()} if test_eval else None,
        "seconds": round(time.perf_counter() - start, 2),
        "train_seconds": round(result.seconds, 2),
        "out": out,
        "model": args.model,
        "strategy": args.strategy,
        "head": args.head if args.strategy != "classifier" else "imagenet",
        "unfreeze": args.unfreeze if args.strategy == "finetune" else 0,
        "epochs": len(result.history),
        "images": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test) if splits.test else 0},
        "split": "folders" if splits.given else f"stratified {args.val_fraction:g}",
        "trainable_params": result.trainable_params,
        "frozen_params": result.frozen_params,
        "history": [
            {"epoch": h.epoch, "phase": h.phase, "train_loss": round(h.train_loss, 4), "train_acc": round(h.train_acc, 4),
             "val_loss": round(h.val_loss, 4), "val_acc": round(h.val_acc, 4)}
            for h in result.history
        ],
        "class_map": result.class_map,
        "head_init": "imagenet" if result.class_map else "random",
        "skipped": list(splits.train.skipped),
    }
    lines = [
        f"{len(splits.classes)} classes: {', '.join(splits.classes)}  "
        f"({data['images']['train']} train / {data['images']['val']} val / {data['images']['test']} test images)",
        f"strategy {args.strategy}: {result.trainable_params:,} trainable, {result.frozen_params:,} frozen parameters",
    ]
    lines += [f"  epoch {h['epoch']:>3} {h['phase']:<6}  loss {h['train_loss']:.3f}  train {h['train_acc'] * 100:5.1f}%  val {h['val_acc'] * 100:5.1f}%" for h in data["history"]]
    lines += [f"  {c}: {m}" for c, m in result.class_map.items()]
    lines.append(f"validation accuracy {result.val.accuracy * 100:.1f}%" + (f", test accuracy {test_eval.accuracy * 100:.1f}%" if test_eval else ""))
    if data["skipped"]:
        lines.append(f"skipped {len(data['skipped'])} files, e.g. {data['skipped'][0]}")
    lines.append(f"saved {out} in {data['seconds']:.1f} s; use it with --model {out}")
    return data, "\n".join(lines)


VERBS: dict[str, tuple[str, Callable, Callable]] = {
    "models": ("list the backbones and where their weights come from", args_models, cmd_models),
    "summary": ("Keras-style summary of a backbone", args_summary, cmd_summary),
    "classify": ("top-k ImageNet classes of images", args_classify, cmd_classify),
    "features": ("feature maps of one layer as a channel grid", args_features, cmd_features),
    "cam": ("where the network looked: Grad-CAM, Grad-CAM++, saliency or SmoothGrad over the photo", args_cam, cmd_cam),
    "ideal": ("an ideal image of a class or a channel, made by gradient steps from noise", args_ideal, cmd_ideal),
    "attack": ("adversarial PNGs that make the network say another class", args_attack, cmd_attack),
    "finetune": ("train a new head (transfer learning) on a folder of class folders", args_finetune, cmd_finetune),
}


class _Parser(argparse.ArgumentParser):
    """argparse's own errors (a bad option or value) as one line too; the usage is in --help."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m explain", description="CNN Lens: see what a convolutional network does.")
    sub = parser.add_subparsers(dest="verb", required=True)
    for name, (help_text, add_args, _) in VERBS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    return parser


def _emit(args, data, text: str) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    elif text:
        print(text)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error (2), already printed
        return done.code if isinstance(done.code, int) else 2
    _, _, run = VERBS[args.verb]
    try:
        data, text = run(args)
    except PartialFailure as partial:
        _emit(args, partial.data, partial.text)
        print(f"error: {partial}", file=sys.stderr)
        return 1
    except LensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, never a traceback for a user
        print(f"error: unexpected {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        if os.environ.get("CNN_LENS_DEBUG"):
            raise
        return 1
    _emit(args, data, text)
    return 0

