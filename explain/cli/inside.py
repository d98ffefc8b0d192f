"""Verbs that look inside one forward pass: overview (the whole network), neuron (one value, explained)."""

from __future__ import annotations

import argparse

from explain.cli import common
from explain.cli.common import add_model
from explain.errors import LensError
from explain.limits import MAX_OVERVIEW_CHANNELS
from explain.overview import DEFAULT_OVERVIEW_CHANNELS


# --- overview -----------------------------------------------------------------------------
def args_overview(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    add_model(p)
    p.add_argument("--channels", type=int, default=DEFAULT_OVERVIEW_CHANNELS, help=f"strongest channels per layer, 1..{MAX_OVERVIEW_CHANNELS}")
    p.add_argument("--top", type=int, default=5, help="how many classes (default 5)")
    p.add_argument("--out", default=None, help="PNG file for the picture (photo, layer columns)")


def cmd_overview(args):
    from explain.featuremaps import record_image
    from explain.images import prepare, read_image, save_png
    from explain.overview import network_overview

    if args.top < 1:
        raise LensError("--top must be 1 or more.")
    backbone = common.load(args)
    prepared = prepare(read_image(args.image), backbone.preprocess)
    recording = record_image(backbone, prepared.tensor)
    overview = network_overview(recording, prepared.cropped, backbone.categories, channels=args.channels, top_k=args.top)
    out = str(save_png(overview.image, args.out)) if args.out else None
    data = {
        "file": args.image,
        "model": backbone.name,
        "layers": [
            {"name": c.layer, "type": c.type, "shape": list(c.shape), "channels": list(c.channels), "means": [round(m, 6) for m in c.means]}
            for c in overview.columns
        ],
        "top": [{"index": r.index, "label": r.label, "prob": round(r.prob, 6)} for r in overview.top],
        "out": out,
    }
    lines = [f"{c.layer:<24}{c.type:<26}{'×'.join(map(str, c.shape)):<14} strongest: {list(c.channels)}" for c in overview.columns]
    lines += [f"  {r.prob * 100:6.2f}%  {r.label} ({r.index})" for r in overview.top]
    if out:
        lines.append(f"picture saved to {out}")
    return data, "\n".join(lines)


# --- neuron -------------------------------------------------------------------------------
def args_neuron(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    add_model(p)
    p.add_argument("--layer", required=True, help="layer name (see `features IMAGE` for the list)")
    p.add_argument("--channel", type=int, default=None, help="channel (default: the layer's strongest)")
    p.add_argument("--y", type=int, default=None, help="row in the layer's map (default: where the channel is largest)")
    p.add_argument("--x", type=int, default=None, help="column in the layer's map (default: where the channel is largest)")
    p.add_argument("--terms", type=int, default=0, help="list at most this many terms (0 = all)")


def cmd_neuron(args):
    import numpy as np

    from explain.featuremaps import top_channels
    from explain.images import prepare, read_image
    from explain.neuron import explain_neuron, neuron_json
    from explain.receptive import effective_receptive_field, trace_network

    if args.terms < 0:
        raise LensError("--terms must be 0 (all) or more.")
    backbone = common.load(args)
    prepared = prepare(read_image(args.image), backbone.preprocess)
    x = backbone.normalize(prepared.tensor.to(backbone.device))
    trace = trace_network(backbone.model, x)
    if args.layer not in trace.outputs or trace.outputs[args.layer].ndim != 4:
        raise LensError(f"Unknown layer '{args.layer}' (or one without a feature map). List the layers with `python -m explain features IMAGE`.")
    fmap = trace.outputs[args.layer][0].float().cpu()
    channel = top_channels(fmap, 1)[0] if args.channel is None else args.channel
    if not 0 <= channel < fmap.shape[0]:
        raise LensError(f"Channel {channel} does not exist: layer '{args.layer}' has channels 0..{fmap.shape[0] - 1}.")
    y, xpos = args.y, args.x
    if y is None or xpos is None:
        peak_y, peak_x = np.unravel_index(int(fmap[channel].argmax()), tuple(fmap.shape[1:]))
        y = int(peak_y) if y is None else y
        xpos = int(peak_x) if xpos is None else xpos
    arithmetic = explain_neuron(trace, args.layer, channel, y, xpos)
    erf = effective_receptive_field(backbone.model, x, args.layer, channel, y, xpos)
    data = {"file": args.image, "model": backbone.name, **neuron_json(arithmetic, args.terms or None)}
    data["effective_receptive_field"] = {"box90": list(erf.box90) if erf.box90 else None, "centre": [round(v, 3) for v in erf.centre]}
    return data, _neuron_text(arithmetic, erf)


def _neuron_text(a, erf) -> str:
    box = a.receptive_field
    lines = [
        f"{a.layer} channel {a.channel} at (y={a.y}, x={a.x}): value {a.value:.6g}",
        f"receptive field: x {box[0]}..{box[2] - 1}, y {box[1]}..{box[3] - 1} ({box[2] - box[0]}×{box[3] - box[1]} pixels)" if box else "receptive field: none",
        f"effective receptive field: 90% of the gradient's mass in {erf.box90}" if erf.box90 else "effective receptive field: the gradient is zero",
    ]
    if a.kind == "unexplained":
        lines.append(f"CNN Lens does not spell out the arithmetic of a {a.source_type} layer.")
        return "\n".join(lines)
    if a.terms:
        lines.append(f"{a.kind} {a.source} ({a.source_type}), window {a.window[0]}×{a.window[1]}×{a.window[2]}:")
        for t in a.terms[:10]:
            where = "padding" if t.padding else f"in[{t.channel}, {t.y}, {t.x}]"
            lines.append(f"  {where:<20} {t.input:>12.6g} × {t.weight:>12.6g} = {t.product:>12.6g}")
        if len(a.terms) > 10:
            lines.append(f"  … {len(a.terms) - 10} more terms")
        lines.append(f"  {a.reduce} = {a.products_sum:.6g}")
    for s in a.steps:
        lines.append(f"{s.name}: {s.detail} → {s.value:.6g}")
    lines.append(f"sum {a.result:.6g} (recorded {a.value:.6g})")
    return "\n".join(lines)
