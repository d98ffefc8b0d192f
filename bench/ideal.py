"""Benchmark: ideal class images. Seconds per image, and how a *different* network ranks the target class.

Usage: python bench/ideal.py [--classes 1,281,...] [--methods clear,course,lucent] [--threads 2]

The images are made on --model (efficientnet_lite0) and judged by --judge (efficientnet_lite1), which never takes
part in the optimisation; the judge sees each image through its own preprocessing (the Classify pipeline), exactly
as if a student uploaded it. "lucent" is torch-lucent's class visualisation (FFT + decorrelated colour + its
standard transforms, Adam 0.05) on the same model with the same number of steps as the clear preset.
Prints JSON and writes bench/results/ideal.json (and the images with --save-images).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explain.classify import class_rank  # noqa: E402
from explain.images import save_png  # noqa: E402
from explain.models import load_backbone  # noqa: E402
from explain.synthesis import PRESETS, class_target, ideal_image  # noqa: E402

# 20 ImageNet classes across animals, objects, food and scenes.
CLASSES = [1, 9, 22, 94, 130, 145, 207, 281, 291, 323, 340, 388, 417, 504, 555, 817, 849, 948, 963, 980]


def ours(backbone, index: int, preset_name: str, steps: int | None, seed: int):
    settings = PRESETS[preset_name]
    if steps:
        settings = type(settings)(**{**settings.__dict__, "steps": steps})
    settings = type(settings)(**{**settings.__dict__, "seed": seed})
    result = ideal_image(backbone, class_target(backbone, index), settings)
    return result.image, result.prob


def lucent_class(backbone, index: int, steps: int, seed: int):
    """torch-lucent's render_vis on the class logit, with the model's own normalisation."""
    if "IPython" not in sys.modules:  # lucent imports IPython.display only to show images in notebooks
        ipython = types.ModuleType("IPython")
        ipython.display = types.ModuleType("IPython.display")
        sys.modules["IPython"], sys.modules["IPython.display"] = ipython, ipython.display
    import kornia
    from lucent.optvis import param, render, transform

    for name in ("get_rotation_matrix2d", "warp_affine"):  # lucent 0.1.8 uses aliases that newer kornia dropped
        if not hasattr(kornia, name):
            setattr(kornia, name, getattr(kornia.geometry.transform, name))

    torch.manual_seed(seed)
    np.random.seed(seed)
    size = backbone.preprocess.input_size
    transforms = transform.standard_transforms + [backbone.normalize]
    images = render.render_vis(
        backbone.model, f"classifier:{index}", param_f=lambda: param.image(size, fft=True, decorrelate=True),
        transforms=transforms, thresholds=(steps,), preprocess=False, progress=False, show_image=False,
    )
    image = (np.clip(images[-1][0], 0, 1) * 255).round().astype(np.uint8)
    with torch.no_grad():
        probs = backbone.logits(torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)).softmax(1)[0]
    return image, float(probs[index])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--judge", default="efficientnet_lite1")
    parser.add_argument("--classes", default=",".join(map(str, CLASSES)))
    parser.add_argument("--methods", default="clear,course,lucent")
    parser.add_argument("--steps", type=int, default=0, help="override the presets' step counts (0 = the presets')")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ideal.json"))
    parser.add_argument("--save-images", action="store_true", help="also write every image next to the JSON")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    classes = [int(c) for c in args.classes.split(",") if c.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    backbone = load_backbone(args.model, device="cpu")
    judge = load_backbone(args.judge, device="cpu")
    lucent_steps = args.steps or PRESETS["clear"].steps
    # Lucent leaves hooks on every module it touches: it gets its own copy of the same network.
    lucent_backbone = load_backbone(args.model, device="cpu") if "lucent" in methods else None
    image_dir = Path(args.out).with_suffix("")
    load_start = os.getloadavg()

    rows: dict[str, list[dict]] = {m: [] for m in methods}
    for index in classes:
        for method in methods:
            wall, cpu = time.perf_counter(), time.process_time()
            if method == "lucent":
                image, prob = lucent_class(lucent_backbone, index, lucent_steps, args.seed)
            else:
                image, prob = ours(backbone, index, method, args.steps or None, args.seed)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rank, judge_prob = class_rank(judge, image, index)
            rows[method].append(
                {"class": index, "name": backbone.categories[index], "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                 "target_prob": round(prob, 4), "judge_rank": rank, "judge_prob": round(judge_prob, 4)}
            )
            if args.save_images:
                save_png(image, image_dir / f"{index}_{method}.png")
            print(json.dumps({"method": method, **rows[method][-1]}), file=sys.stderr, flush=True)

    def summary(method: str) -> dict:
        r = rows[method]
        ranks = [x["judge_rank"] for x in r]
        steps = lucent_steps if method == "lucent" else (args.steps or PRESETS[method].steps)
        return {
            "steps": steps,
            "median_seconds": round(statistics.median(x["seconds"] for x in r), 2),
            "median_cpu_seconds": round(statistics.median(x["cpu_seconds"] for x in r), 2),
            "median_target_prob": round(statistics.median(x["target_prob"] for x in r), 4),
            "judge_top1": round(sum(k == 1 for k in ranks) / len(ranks), 3),
            "judge_top5": round(sum(k <= 5 for k in ranks) / len(ranks), 3),
            "judge_median_rank": statistics.median(ranks),
            "judge_mean_prob": round(statistics.mean(x["judge_prob"] for x in r), 4),
        }

    data = {
        "model": args.model,
        "judge": args.judge,
        "size": backbone.preprocess.input_size,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "loadavg_start": [round(v, 2) for v in load_start],
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        "torch": torch.__version__,
        "classes": classes,
        "summary": {m: summary(m) for m in methods},
        "per_class": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
