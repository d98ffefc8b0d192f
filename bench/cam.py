"""Our class maps against pytorch-grad-cam (`pip install grad-cam`): same model, layer, targets, every shared method.

For every photo of the sample set (labels.csv: file,class_index,class_name) both implementations
compute the map of the labelled class; we report the Pearson correlation of the two maps per image
and the time ratio ours / theirs (batches timed alternately, so machine load hits both alike).
Score-CAM and Ablation-CAM need one forward pass per channel (1280 on EfficientNet-Lite0's last layer):
on a CPU they run on the first --heavy-limit photos only (the report says how many).

Methods without a peer here: saliency, SmoothGrad, integrated gradients and occlusion (Captum has them, but
is not installed with the bench), guided backprop and guided Grad-CAM (pytorch-grad-cam's guided backprop
replaces only nn.ReLU modules; EfficientNet-Lite uses ReLU6, so its "guided" map there is the plain gradient),
and the counterfactual map.

    python bench/cam.py [--data ../shared/datasets/imagenet-samples] [--model efficientnet_lite0] [--methods gradcam,...]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explain.cam import compute_cam, default_layer  # noqa: E402
from explain.images import prepare, read_image  # noqa: E402
from explain.models import load_model  # noqa: E402

PEERS = {  # our method -> pytorch-grad-cam class name
    "gradcam": "GradCAM",
    "gradcampp": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "hirescam": "HiResCAM",
    "eigencam": "EigenCAM",
    "scorecam": "ScoreCAM",
    "ablationcam": "AblationCAM",
}
HEAVY = ("scorecam", "ablationcam")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.std() == 0 and b.std() == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def reference_maps(cls, backbone, layer: str, x01: torch.Tensor, targets: list[int]) -> np.ndarray:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    module = dict(backbone.model.named_modules())[layer]
    # created per batch and released at once, so its hooks never run during our timings
    with cls(backbone.model, [module]) as cam:
        return cam(backbone.normalize(x01.to(backbone.device)), [ClassifierOutputTarget(t) for t in targets])


def compare(method, cls, backbone, layer, x, targets, rows, bs) -> dict:
    n = x.shape[0]
    batches = [(s, min(n, s + bs)) for s in range(0, n, bs)]
    # warm-up: first calls pay for allocator growth and lazy initialisation
    compute_cam(backbone, x[:1], targets[:1], method=method, layer=layer, batch_size=bs)
    reference_maps(cls, backbone, layer, x[:1], targets[:1])
    ours_t = ref_t = 0.0
    corr: list[float] = []
    for k, (s, e) in enumerate(batches):
        runs = {}
        for who in ("ours", "ref") if k % 2 == 0 else ("ref", "ours"):
            t0 = time.perf_counter()
            if who == "ours":
                runs[who] = compute_cam(backbone, x[s:e], targets[s:e], method=method, layer=layer, batch_size=bs).maps
            else:
                runs[who] = reference_maps(cls, backbone, layer, x[s:e], targets[s:e])
            if backbone.device.type == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            if who == "ours":
                ours_t += dt
            else:
                ref_t += dt
        corr += [pearson(a, b) for a, b in zip(runs["ours"], runs["ref"])]
    worst = int(np.argmin(corr))
    return {
        "images": n,
        "pearson_min": round(min(corr), 6),
        "pearson_mean": round(float(np.mean(corr)), 6),
        "pearson_median": round(float(np.median(corr)), 6),
        "worst_image": rows[worst]["file"],
        "images_below_0.99": sum(c < 0.99 for c in corr),
        "time_ours_s": round(ours_t, 3),
        "time_reference_s": round(ref_t, 3),
        "time_ratio": round(ours_t / ref_t, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "../shared/datasets/imagenet-samples"))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--layer", default=None, help="default: the backbone's Grad-CAM layer")
    parser.add_argument("--methods", default=",".join(PEERS), help=f"comma-separated, of: {', '.join(PEERS)}")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos (0 = all)")
    parser.add_argument("--heavy-limit", type=int, default=4, help="photos for Score-CAM and Ablation-CAM (0 = as --limit)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench/results/cam.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import pytorch_grad_cam

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in PEERS]
    if unknown:
        parser.error(f"no peer for: {', '.join(unknown)}")
    data = Path(args.data)
    with open(data / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if args.limit:
        rows = rows[: args.limit]
    backbone = load_model(args.model)
    layer = args.layer or default_layer(backbone)
    x = torch.cat([prepare(read_image(data / r["file"]), backbone.preprocess).tensor for r in rows])
    targets = [int(r["class_index"]) for r in rows]
    bs = max(1, args.batch_size)

    report: dict = {
        "model": args.model,
        "layer": layer,
        "images": len(rows),
        "batch_size": bs,
        "threads": args.threads,
        "device": str(backbone.device),
        "reference": "pytorch-grad-cam " + _version("grad-cam"),
        "methods": {},
    }
    for method in methods:
        n = len(rows) if method not in HEAVY or not args.heavy_limit else min(len(rows), args.heavy_limit)
        cls = getattr(pytorch_grad_cam, PEERS[method])
        report["methods"][method] = compare(method, cls, backbone, layer, x[:n], targets[:n], rows, bs)
        print(method, json.dumps(report["methods"][method]), file=sys.stderr, flush=True)
    report["pass"] = all(m["pearson_min"] >= 0.99 and m["time_ratio"] <= 1.0 for m in report["methods"].values())
    text = json.dumps(report, indent=2)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
