"""Adversarial benchmark: targeted PGD success on saved PNGs and speed, side by side with torchattacks.

On the ImageNet sample photos (labels.csv: file,class_index,class_name), every photo gets a target by a
rule: `lab` (the default: the lab's own default target, a tabby cat, or a golden retriever for a cat) or K
for (true + K) % 1000, a class far from the true one (`--target-rules lab,500,250` runs several).

- robust: every saved PNG (ours and torchattacks', pasted and re-read the same way) is judged through the
  view families of explain.adversarial.views: our pipeline, torchvision's Resize + CenterCrop, the 25
  crops shifted by -2…+2 px, 8 resizes with other kernels, JPEG 90. Reported as the share of images
  fooled per family and the mean share of views.
- `--curve 2,3,4 --curve-steps 10,20,40`: our success per family against ε and steps (lab defaults otherwise).

- ours: `attack_images` end to end (preprocessing, attack, PNG encode/decode and re-classification
  through `classify_images`); success is judged on that re-read PNG only.
- torchattacks: `torchattacks.PGD` on the same [0, 1] crops, same model, ε, step size, steps and
  random start; only its attack call is timed. Its success is reported twice: on its float output,
  and on that output rounded to uint8, pasted into the photo and re-read like ours.
  Both run batch by batch, interleaved, so a change in machine load hits both alike.
- transfer: untargeted MI-FGSM (and PGD for reference) made on the source model, then the PNG is
  classified by the transfer model through its own preprocessing. The transfer rate counts photos
  the transfer model got right before and wrong after.

Prints JSON and writes bench/results/adversarial.json. Needs `torchattacks` (bench/requirements.txt).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from explain.adversarial import AttackSettings, attack_images, default_batch_size, default_target, robustness  # noqa: E402
from explain.classify import classify_images, second_network_verdicts  # noqa: E402
from explain.images import decode_image, encode_png, prepare, read_image, to_image  # noqa: E402
from explain.models import load_backbone  # noqa: E402


def target_rule(rule: str) -> str:
    return "the lab's default target (tabby; golden retriever for a cat)" if rule == "lab" else f"(true + {rule}) % 1000"


def targets_by_rule(backbone, images, labels, rule: str) -> list[int]:
    if rule == "lab":
        return [default_target(s[0].index) for s in classify_images(backbone, images, 1)]
    return [(y + int(rule)) % 1000 for y in labels]


def robust_summary(backbone, pngs: list[np.ndarray], goals: list[int]) -> dict:
    """Per view family: the share of images whose every view gives the goal, and the mean share of views."""
    began = time.perf_counter()
    judged = robustness(backbone, pngs, goals, True)
    seconds = (time.perf_counter() - began) / len(pngs)
    families = list(judged[0].views)
    return {
        "views": dict(judged[0].views),
        "images_all_views": {f: float(np.mean([r.fooled[f] == r.views[f] for r in judged])) for f in families},
        "mean_share_of_views": {f: float(np.mean([r.share()[f] for r in judged])) for f in families},
        "check_seconds_per_image": seconds,
    }


class Logits(nn.Module):
    """The backbone as torchattacks expects it: [0, 1] images in, logits out."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.net = backbone.model

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        return self.backbone.logits(x01)


def load_samples(folder: Path, limit: int | None) -> tuple[list[str], list[np.ndarray], list[int]]:
    with open(folder / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:limit]
    return [r["file"] for r in rows], [read_image(folder / r["file"]) for r in rows], [int(r["class_index"]) for r in rows]


def paste_and_reread(backbone, image: np.ndarray, crop01: torch.Tensor) -> np.ndarray:
    """A [0, 1] crop rounded to uint8, put back into the resized photo, through PNG and back."""
    prepared = prepare(image, backbone.preprocess)
    size = backbone.preprocess.input_size
    h, w = prepared.resized.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    full = prepared.resized.copy()
    full[top : top + size, left : left + size] = to_image(crop01)
    return decode_image(encode_png(full))


def targeted_pgd(backbone, images, labels, args, rule: str) -> dict:
    import torchattacks

    targets = targets_by_rule(backbone, images, labels, rule)
    settings = AttackSettings(
        method="pgd", eps=args.eps, steps=args.steps, step_size=args.step_size, random_start=args.random_start, leak=args.leak,
        views=args.views,
    )
    # torchattacks takes one constant step size: give it the mean of ours (the same total movement)
    alpha = float(np.mean(settings.step_sizes()))
    # eval(): torchattacks puts a model it was given in training mode back into training mode afterwards
    atk = torchattacks.PGD(Logits(backbone).eval(), eps=args.eps / 255, alpha=alpha / 255, steps=args.steps, random_start=args.random_start)
    atk.set_mode_targeted_by_label(quiet=True)
    attack_images(backbone, images[:2], settings, target=targets[:2], check_views=False)  # warm-up
    ours, ours_s, theirs_s, theirs_float, theirs_png, theirs_reread = [], 0.0, 0.0, [], [], []
    for start in range(0, len(images), args.batch_size):
        chunk, goal = images[start : start + args.batch_size], targets[start : start + args.batch_size]
        began = time.perf_counter()
        ours += attack_images(backbone, chunk, settings, target=goal, batch_size=args.batch_size, check_views=False)
        ours_s += time.perf_counter() - began
        if args.no_torchattacks:
            continue
        crops = torch.cat([prepare(img, backbone.preprocess).tensor for img in chunk]).to(backbone.device)
        began = time.perf_counter()
        adv = atk(crops, torch.tensor(goal, device=backbone.device))
        theirs_s += time.perf_counter() - began
        with torch.no_grad():
            theirs_float += (backbone.logits(adv).argmax(1).cpu() == torch.tensor(goal)).tolist()
        reread = [paste_and_reread(backbone, img, a[None]) for img, a in zip(chunk, adv.cpu())]
        theirs_png += [s[0].index == g for s, g in zip(classify_images(backbone, reread, 1), goal)]
        theirs_reread += reread
    n = len(images)
    result = {
        "eps_levels": args.eps,
        "steps": args.steps,
        "views_per_step": args.views,
        "step_sizes_levels_ours": [round(a, 3) for a in settings.step_sizes()],
        "step_size_levels_torchattacks": alpha,
        "random_start": args.random_start,
        "leak": args.leak,
        "batch_size": args.batch_size,
        "target_rule": target_rule(rule),
        "ours": {
            "success_png": sum(r.success for r in ours) / n,
            "failures": [i for i, r in enumerate(ours) if not r.success],
            "seconds_per_image": ours_s / n,
            "mean_steps": float(np.mean([r.steps_used for r in ours])),
            "max_linf_levels": max(r.linf for r in ours),
            "mean_psnr_db": float(np.mean([r.psnr for r in ours])),
            "min_psnr_db": float(min(r.psnr for r in ours)),
            "mean_ssim": float(np.mean([r.ssim for r in ours])),
            "timed": "end to end: preprocessing, attack, PNG encode/decode, re-classification (not the robust check)",
            "robust": robust_summary(backbone, [decode_image(r.png) for r in ours], targets),
        },
    }
    if not args.no_torchattacks:
        result["torchattacks"] = {
            "version": torchattacks.__version__,
            "success_float": sum(theirs_float) / n,
            "success_png": sum(theirs_png) / n,
            "seconds_per_image": theirs_s / n,
            "timed": "the attack call only, on prepared crops",
            "robust": robust_summary(backbone, theirs_reread, targets),
        }
        result["seconds_ratio_ours_over_torchattacks"] = ours_s / theirs_s
    return result


def curve(backbone, images, labels, args) -> list[dict]:
    """Our robust success against ε and steps, lab defaults otherwise (first target rule)."""
    targets = targets_by_rule(backbone, images, labels, args.target_rules.split(",")[0])
    points = []
    for eps in [float(e) for e in args.curve.split(",")]:
        for steps in [int(k) for k in args.curve_steps.split(",")]:
            settings = AttackSettings(eps=eps, steps=steps, views=args.views, leak=args.leak)
            began = time.perf_counter()
            results = attack_images(backbone, images, settings, target=targets, batch_size=args.batch_size, check_views=False)
            seconds = (time.perf_counter() - began) / len(images)
            robust = robust_summary(backbone, [decode_image(r.png) for r in results], targets)
            points.append({"eps_levels": eps, "steps": steps, "seconds_per_image": seconds, "mean_steps": float(np.mean([r.steps_used for r in results])), **robust})
            print(json.dumps(points[-1]), file=sys.stderr)
    return points


def transfer(backbone, images, labels, args) -> dict:
    other = load_backbone(args.transfer_model)
    clean_other = [s[0].index for s in classify_images(other, images, 1)]
    right = [i for i, (p, y) in enumerate(zip(clean_other, labels)) if p == y]
    out: dict = {"to": args.transfer_model, "eps_levels": args.transfer_eps, "steps": args.steps, "leak": args.leak,
                 "transfer_model_clean_top1": len(right) / len(images)}
    # no early stop: an attack that barely fools the source model transfers worst
    common = {"eps": args.transfer_eps, "steps": args.steps, "confidence": 0.999, "leak": args.leak}
    for name, settings in (
        ("mifgsm", AttackSettings(method="mifgsm", **common)),
        ("pgd", AttackSettings(method="pgd", random_start=False, **common)),
    ):
        began = time.perf_counter()
        results = attack_images(backbone, images, settings, labels=labels, batch_size=args.batch_size)
        seconds = (time.perf_counter() - began) / len(images)
        # the app's own rule (classify.second_network_verdicts), on the PNGs as a user would re-read them
        verdicts = second_network_verdicts(other, images, [decode_image(r.png) for r in results], list(labels), targeted=False, k=1)
        fooled = [i for i in right if verdicts[i].fooled]
        out[name] = {
            "source_success_png": sum(r.success for r in results) / len(results),
            "transfer_rate": len(fooled) / max(1, len(right)),
            "transfer_counts": f"{len(fooled)} of {len(right)} photos the transfer model got right",
            "seconds_per_image": seconds,
            "mean_psnr_db": float(np.mean([r.psnr for r in results])),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "imagenet-samples"))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--eps", type=float, default=2.0, help="levels (/255)")
    parser.add_argument("--steps", type=int, default=AttackSettings().steps)
    parser.add_argument("--views", type=int, default=AttackSettings().views, help="random views per step (0 = the exact crop only)")
    parser.add_argument("--curve", default=None, help="comma-separated ε (levels): our success per family against ε and --curve-steps")
    parser.add_argument("--curve-steps", default="10,20,40")
    parser.add_argument("--step-size", type=float, default=None, help="levels (default: the library's)")
    parser.add_argument("--random-start", action=argparse.BooleanOptionalAction, default=AttackSettings().random_start)
    parser.add_argument(
        "--target-rules",
        default="lab",
        help="comma-separated rules: lab (the lab's default target) or K for target = (true + K) %% 1000; the first is reported as targeted_pgd",
    )
    parser.add_argument("--leak", type=float, default=AttackSettings().leak, help="backward leak through off ReLUs (0 = plain gradient)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the library's (8 on CPU for Lite0)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-torchattacks", action="store_true")
    parser.add_argument("--transfer-model", default="efficientnet_lite1")
    parser.add_argument("--transfer-eps", type=float, default=8.0)
    parser.add_argument("--no-transfer", action="store_true")
    parser.add_argument("--no-targeted", action="store_true", help="only the transfer part")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "adversarial.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    backbone = load_backbone(args.model)
    args.batch_size = args.batch_size or default_batch_size(backbone, args.views)
    files, images, labels = load_samples(Path(args.data), args.limit)
    result = {
        "bench": "adversarial",
        "model": args.model,
        "device": str(backbone.device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "images": len(images),
    }
    if not args.no_targeted:
        runs = []
        for rule in args.target_rules.split(","):
            runs.append(targeted_pgd(backbone, images, labels, args, rule))
            print(json.dumps(runs[-1]), file=sys.stderr)  # each part as it ends: a long run cut short keeps what it did
        result["targeted_pgd"] = runs[0]
        if len(runs) > 1:
            attacks = len(runs) * len(images)
            fooled = attacks - sum(len(r["ours"]["failures"]) for r in runs)
            result["targeted_pgd_rules"] = {
                "rules": [r["target_rule"] for r in runs],
                "attacks": attacks,
                "ours_success_png": fooled / attacks,
                "ours_failures": {r["target_rule"]: r["ours"]["failures"] for r in runs},
                "ours_seconds_per_image": [r["ours"]["seconds_per_image"] for r in runs],
                **(
                    {}
                    if args.no_torchattacks
                    else {
                        "torchattacks_success_png": sum(round(r["torchattacks"]["success_png"] * len(images)) for r in runs) / attacks,
                        "seconds_ratio_ours_over_torchattacks": [r["seconds_ratio_ours_over_torchattacks"] for r in runs],
                    }
                ),
                "others": runs[1:],
            }
    if args.curve:
        result["curve"] = curve(backbone, images, labels, args)
    if not args.no_transfer:
        result["transfer"] = transfer(backbone, images, labels, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
