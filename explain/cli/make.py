"""Verbs that make images: ideal (from noise) and attack (adversarial PNGs)."""

from __future__ import annotations

import argparse

from explain.adversarial import ATTACKS, NORMS, AttackSettings
from explain.adversarial.views import JPEG_QUALITY, MAX_SHIFT
from explain.cli import common
from explain.cli.common import add_model, per_image_outcome
from explain.errors import LensError
from explain.synthesis import DEFAULT_PRESET, PARAMETERISATIONS, PRESET_OF_METHOD, PRESETS

DEFAULTS = AttackSettings()


# --- ideal --------------------------------------------------------------------------------
def args_ideal(p: argparse.ArgumentParser) -> None:
    add_model(p)
    p.add_argument("--target", default=None, help="class name (or part of it) or index; default: 281 (tabby) unless --layer")
    p.add_argument("--layer", default=None, help="visualise a channel of this layer instead of a class")
    p.add_argument("--channel", type=int, default=None, help="channel index for --layer")
    p.add_argument("--neuron", action="store_true", help="with --layer: only the neuron at the centre of the channel")
    p.add_argument("--method", choices=list(PARAMETERISATIONS), default=None,
                   help=f"pixels = the course recipe (pixels + TV); fft = the clear preset (default: {PRESETS[DEFAULT_PRESET].method})")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--size", type=int, default=None, help="image side in pixels (default 224)")
    p.add_argument("--tv", type=float, default=None, help="weight of the total-variation loss")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="PNG file for the image")


def cmd_ideal(args):
    from explain.images import save_png
    from explain.synthesis import channel_target, class_target, ideal_image, preset

    if (args.layer is None) != (args.channel is None):
        raise LensError("--layer and --channel go together: give both to visualise a channel.")
    if args.layer is not None and args.target is not None:
        raise LensError("Give either --target (a class) or --layer/--channel, not both.")
    name = DEFAULT_PRESET if args.method is None else PRESET_OF_METHOD[args.method]
    settings = preset(name, steps=args.steps, size=args.size, tv=args.tv, lr=args.lr, seed=args.seed)
    backbone = common.load(args)
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
    add_model(p)
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--target", default=None, help="class to reach: a name (or unique part of one) or an index")
    goal.add_argument("--untargeted", action="store_true", help="any class but the one the network sees now")
    p.add_argument("--eps", type=float, default=DEFAULTS.eps, help=f"budget in grey levels, /255 of the pixel range (default {DEFAULTS.eps:g})")
    p.add_argument("--steps", type=int, default=DEFAULTS.steps)
    p.add_argument("--method", choices=list(ATTACKS), default=DEFAULTS.method)
    p.add_argument("--norm", choices=list(NORMS), default=DEFAULTS.norm, help="budget norm (l2 only with pgd)")
    p.add_argument("--step-size", type=float, default=None, help="levels per step, constant (default: cosine-annealed from eps to 1/4 level)")
    p.add_argument("--confidence", type=float, default=DEFAULTS.confidence, help="keep going until the goal has this probability")
    p.add_argument("--tv", type=float, default=DEFAULTS.tv_weight, help="total-variation penalty: smoother, less visible noise")
    p.add_argument(
        "--leak",
        type=float,
        default=DEFAULTS.leak,
        help=f"share of the gradient let through switched-off ReLUs on the first step, annealed to 0 (default {DEFAULTS.leak:g}; 0 = the plain gradient)",
    )
    p.add_argument(
        "--views",
        type=int,
        default=DEFAULTS.views,
        help=f"random views of the saved PNG per step (crops shifted by up to {MAX_SHIFT} px, slight rescales), so it fools other "
        f"pipelines too (default {DEFAULTS.views}; 0 = only this app's exact crop, fastest and most fragile)",
    )
    p.add_argument("--jpeg", action="store_true", help=f"also make the PNG survive JPEG re-encoding at quality {JPEG_QUALITY}")
    p.add_argument("--no-random-start", action="store_true")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--out-dir", default=".", help="folder for the adversarial PNGs (default: current folder)")
    p.add_argument("--topk", type=int, default=5)


def cmd_attack(args):
    from pathlib import Path

    from explain.adversarial import attack_images
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
        leak=args.leak,
        views=args.views,
        jpeg=args.jpeg,
        seed=args.seed,
    ).checked()
    backbone = common.load(args)
    target = None if args.untargeted else backbone.class_index(args.target)
    out_dir = Path(args.out_dir)
    records, images, slots = common.read_images(args.images, {})
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
                "before": common.scores(result.before),
                "after": common.scores(result.after),
                "linf": result.linf,
                "l2": round(result.l2, 4),
                "psnr": None if result.psnr == float("inf") else round(result.psnr, 4),
                "ssim": round(result.ssim, 6),
                "seconds": round(result.seconds, 4),
                "steps": result.steps_used,
                "robust": {k: round(v, 4) for k, v in result.robust.share().items()},
                "views_checked": dict(result.robust.views),
            }
        )
    lines = []
    for r in records:
        if "error" in r:
            lines.append(f"{r['file']}: ERROR {r['error']}")
            continue
        was, now = r["before"][0], r["after"][0]
        verdict = "fooled" if r["success"] else "NOT fooled"
        elsewhere = ", ".join(f"{k} {round(v * r['views_checked'][k])}/{r['views_checked'][k]}" for k, v in r["robust"].items() if k != "own")
        lines.append(
            f"{r['file']} -> {r['out']}: {verdict}; {was['label']} ({was['prob'] * 100:.1f}%) -> "
            f"{now['label']} ({now['prob'] * 100:.1f}%); Linf {r['linf']:g}/255, PSNR {r['psnr']} dB, "
            f"SSIM {r['ssim']:.4f}, {r['seconds']:.2f} s; other pipelines fooled: {elsewhere}"
        )
    return per_image_outcome(records, lines)


