"""Verbs that look at a network: models, summary, classify, features, cam."""

from __future__ import annotations

import argparse

from explain.cam import CAM_METHODS, DEFAULT_CAM_METHOD
from explain.cli import common
from explain.cli.common import add_model, per_image_outcome
from explain.errors import LensError
from explain.featuremaps import COLORMAPS, DEFAULT_COLORMAP, NORMALISATIONS
from explain.images import INTERPOLATIONS


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
    add_model(p)


def cmd_summary(args):
    from explain.models import summarize

    summary = summarize(common.load(args))
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
    add_model(p)
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--interpolation", default=None, help=f"{', '.join(INTERPOLATIONS)} (default: the model's)")


def cmd_classify(args):
    from explain.classify import classify_images

    if args.topk < 1:
        raise LensError("--topk must be 1 or more.")
    if args.interpolation is not None and args.interpolation not in INTERPOLATIONS:
        raise LensError(f"Unknown interpolation '{args.interpolation}'. Choose one of: {', '.join(INTERPOLATIONS)}.")
    backbone = common.load(args)
    records, images, slots = common.read_images(args.images, {"top": []})
    for slot, scores in zip(slots, classify_images(backbone, images, args.topk, args.interpolation)):
        records[slot]["top"] = common.scores(scores)
    lines = []
    for r in records:
        if "error" in r:
            lines.append(f"{r['file']}: ERROR {r['error']}")
        else:
            lines.append(r["file"])
            lines += [f"  {s['prob'] * 100:6.2f}%  {s['label']} ({s['index']})" for s in r["top"]]
    return per_image_outcome(records, lines)


# --- features -----------------------------------------------------------------------------
def args_features(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    add_model(p)
    p.add_argument("--layer", default=None, help="layer name (default: list the layers)")
    p.add_argument("--out", default=None, help="PNG file for the channel grid")
    p.add_argument("--channels", type=int, default=64, help="how many channels in the grid (strongest first); 0 = all")
    p.add_argument("--normalise", choices=list(NORMALISATIONS), default=NORMALISATIONS[0])
    p.add_argument("--cmap", default=DEFAULT_COLORMAP, help=f"{', '.join(COLORMAPS)} (default: {DEFAULT_COLORMAP})")


def cmd_features(args):
    from explain.featuremaps import channel_grid, channel_stats, record_image, top_channels
    from explain.images import prepare, read_image, save_png

    backbone = common.load(args)
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
    add_model(p)
    p.add_argument("--method", default=DEFAULT_CAM_METHOD, help=f"{', '.join(CAM_METHODS)} (default: {DEFAULT_CAM_METHOD})")
    p.add_argument("--target", default=None, help="class name or index (default: the top-1 class)")
    p.add_argument("--layer", default=None, help="layer for the layer methods; 'a+b' averages the maps of several (default: the model's Grad-CAM layer)")
    p.add_argument("--out", default=None, help="PNG file for the map over the photo")
    p.add_argument("--save-map", default=None, help=".npy file for the map itself (float32 in [0, 1], input size)")
    p.add_argument("--alpha", type=float, default=0.5, help="share of the map in the overlay (default 0.5)")
    p.add_argument("--cmap", default="jet")
    p.add_argument("--samples", type=int, default=16, help="SmoothGrad: noisy copies (default 16)")
    p.add_argument("--steps", type=int, default=32, help="integrated gradients: steps from a black image (default 32)")
    p.add_argument("--patch", type=int, default=None, help="occlusion: side of the grey patch in pixels (default: input side / 7)")


def cmd_cam(args):
    from pathlib import Path

    import numpy as np

    from explain.cam import check_method, compute_cam, overlay_cam
    from explain.images import prepare, read_image, save_png

    check_method(args.method)
    if args.save_map and not args.save_map.lower().endswith(".npy"):
        raise LensError("--save-map must name a .npy file.")
    backbone = common.load(args)
    image = read_image(args.image)
    prepared = prepare(image, backbone.preprocess)
    result = compute_cam(
        backbone, prepared.tensor, targets=args.target, method=args.method, layer=args.layer, samples=args.samples,
        steps=args.steps, patch=args.patch,
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


