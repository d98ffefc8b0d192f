"""Our class maps against pytorch-grad-cam and Captum (bench/requirements.txt): same model, layer, targets.

For every photo of the sample set (labels.csv: file,class_index,class_name) both implementations
compute the map of the labelled class; we report the Pearson correlation of the two maps per image
and the time ratio ours / theirs (batches timed alternately, so machine load hits both alike).
Score-CAM and Ablation-CAM need one forward pass per channel (1280 on EfficientNet-Lite0's last layer),
occlusion one per patch place, integrated gradients and SmoothGrad one backward per step or sample:
on a CPU they run on the first --heavy-limit photos only (the report says how many).

Captum's maps are compared before any display scaling (our `raw`: the channel maximum of |gradient| for
saliency, SmoothGrad and guided backprop, |sum over channels| for integrated gradients, the probability
drop for occlusion), with the same settings: SmoothGrad 16 samples at noise 0.15 of the pixel range,
averaging the signed gradients; integrated gradients 32 midpoint steps from black; occlusion a 32 px patch
of the photo's mean colour at stride 16. Where the definitions differ, the report says so (`differs`):
SmoothGrad draws its own noise (so `noise_floor` gives the correlation of two of our own runs with other
seeds: the best any other implementation can reach), and Captum's guided backprop changes only nn.ReLU
modules: EfficientNet-Lite's activations are ReLU6, so there Captum's "guided" map is the plain gradient
(pytorch-grad-cam's likewise). Without a peer: the counterfactual map.

    python bench/cam.py [--data ../shared/datasets/imagenet-samples] [--model efficientnet_lite0] [--methods gradcam,...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
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
CAPTUM = ("saliency", "smoothgrad", "integrated_gradients", "occlusion", "guided_backprop", "guided_gradcam")
HEAVY = ("scorecam", "ablationcam", "smoothgrad", "integrated_gradients", "occlusion")
DIFFERS = {
    "smoothgrad": "each draws its own Gaussian noise: compare with noise_floor (ours against ours with other seeds)",
    "guided_backprop": "Captum guides only nn.ReLU modules; EfficientNet-Lite uses ReLU6, so Captum's map is the plain gradient",
    "guided_gradcam": "Captum: its plain-gradient 'guided backprop' (ReLU6, see above) times Grad-CAM upsampled by nearest "
                      "neighbour; ours: guided backprop through ReLU6 times the bilinear [0, 1] Grad-CAM map",
}


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


class _Logits01(torch.nn.Module):
    """The backbone as Captum sees a model: [0, 1] pixels in, logits out (normalisation inside)."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.model = backbone.model

    def forward(self, x):
        return self.backbone.logits(x)


def captum_maps(method: str, backbone, layer: str, x01: torch.Tensor, targets: list[int], bs: int) -> np.ndarray:
    """Captum's map for each image and class, reduced over colour channels as ours is (see the module docstring)."""
    from captum import attr

    net = _Logits01(backbone).eval()
    x01 = x01.detach()
    x = x01.to(backbone.device).clone().requires_grad_(True)
    if method == "saliency":
        out = attr.Saliency(net).attribute(x, target=targets, abs=True).amax(1)
    elif method == "smoothgrad":
        sigma = 0.15 * float(x01.max() - x01.min())
        out = attr.NoiseTunnel(attr.Saliency(net)).attribute(
            x, nt_type="smoothgrad", nt_samples=16, nt_samples_batch_size=bs, stdevs=sigma, target=targets, abs=False
        ).abs().amax(1)
    elif method == "integrated_gradients":
        out = attr.IntegratedGradients(net).attribute(
            x, baselines=0.0, target=targets, n_steps=32, method="riemann_middle", internal_batch_size=bs
        ).sum(1).abs()
    elif method == "occlusion":
        probs = lambda inp: torch.softmax(net(inp).float(), 1)  # noqa: E731  (our occlusion follows the probability)
        fill = x01.mean((2, 3), keepdim=True).expand_as(x01).to(backbone.device)
        out = attr.Occlusion(probs).attribute(
            x.detach(), sliding_window_shapes=(3, 32, 32), strides=(3, 16, 16), baselines=fill, target=targets,
            perturbations_per_eval=4 * backbone.micro_batch,
        )[:, 0]
    elif method == "guided_backprop":
        out = attr.GuidedBackprop(net).attribute(x, target=targets).abs().amax(1)
    elif method == "guided_gradcam":
        module = dict(net.model.named_modules())[layer]
        out = attr.GuidedGradCam(net, module).attribute(x, target=targets).abs().amax(1)
    else:
        raise ValueError(method)
    return out.detach().float().cpu().numpy()


def compare(method, cls, backbone, layer, x, targets, rows, bs) -> dict:
    """Our maps against one peer's on the same images: cls is a pytorch-grad-cam class, or None for Captum."""
    n = x.shape[0]
    batches = [(s, min(n, s + bs)) for s in range(0, n, bs)]
    captum = cls is None

    def ours(s: int, e: int, seed: int = 0) -> np.ndarray:
        result = compute_cam(backbone, x[s:e], targets[s:e], method=method, layer=layer, batch_size=bs, seed=seed)
        # against Captum: before display scaling (guided Grad-CAM's raw is the Grad-CAM layer map; its map is the pixels')
        return result.raw if captum and method != "guided_gradcam" else result.maps

    def ref(s: int, e: int) -> np.ndarray:
        if captum:
            return captum_maps(method, backbone, layer, x[s:e], targets[s:e], bs)
        return reference_maps(cls, backbone, layer, x[s:e], targets[s:e])

    # warm-up: first calls pay for allocator growth and lazy initialisation
    ours(0, 1)
    ref(0, 1)
    ours_t = ref_t = ours_cpu = ref_cpu = 0.0
    corr: list[float] = []
    floor: list[float] = []
    for k, (s, e) in enumerate(batches):
        runs = {}
        for who in ("ours", "ref") if k % 2 == 0 else ("ref", "ours"):
            t0, c0 = time.perf_counter(), time.process_time()
            runs[who] = ours(s, e) if who == "ours" else ref(s, e)
            if backbone.device.type == "cuda":
                torch.cuda.synchronize()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if who == "ours":
                ours_t += dt
                ours_cpu += dc
            else:
                ref_t += dt
                ref_cpu += dc
        corr += [pearson(a, b) for a, b in zip(runs["ours"], runs["ref"])]
        if method == "smoothgrad":
            floor += [pearson(a, b) for a, b in zip(runs["ours"], ours(s, e, seed=1))]
    worst = int(np.argmin(corr))
    out = {
        "peer": "captum" if captum else "pytorch-grad-cam",
        "images": n,
        "pearson_min": round(min(corr), 6),
        "pearson_mean": round(float(np.mean(corr)), 6),
        "pearson_median": round(float(np.median(corr)), 6),
        "worst_image": rows[worst]["file"],
        "images_below_0.99": sum(c < 0.99 for c in corr),
        "time_ours_s": round(ours_t, 3),
        "time_reference_s": round(ref_t, 3),
        "time_ratio": round(ours_t / ref_t, 3),
        # CPU seconds of this process: on a shared machine less disturbed by waiting for a core than wall time
        "cpu_ours_s": round(ours_cpu, 3),
        "cpu_reference_s": round(ref_cpu, 3),
        "cpu_ratio": round(ours_cpu / ref_cpu, 3),
    }
    if floor:
        out["noise_floor_mean"] = round(float(np.mean(floor)), 6)
        out["noise_floor_min"] = round(min(floor), 6)
    if captum and method in DIFFERS:
        out["differs"] = DIFFERS[method]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "../shared/datasets/imagenet-samples"))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--layer", default=None, help="default: the backbone's Grad-CAM layer")
    parser.add_argument("--methods", default=",".join(PEERS), help=f"comma-separated, of: {', '.join((*PEERS, *CAPTUM))}")
    parser.add_argument("--captum", default=",".join(CAPTUM), help="methods to compare with Captum ('' for none)")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos (0 = all)")
    parser.add_argument("--heavy-limit", type=int, default=4, help="photos for Score-CAM and Ablation-CAM (0 = as --limit)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench/results/cam.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import pytorch_grad_cam

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    captum = [m.strip() for m in args.captum.split(",") if m.strip()]
    unknown = [m for m in methods if m not in PEERS] + [m for m in captum if m not in CAPTUM]
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
        "captum": "captum " + _version("captum") if captum else None,
        "load_average": os.getloadavg(),
        "methods": {},
        "captum_methods": {},
    }
    for method in methods:
        n = len(rows) if method not in HEAVY or not args.heavy_limit else min(len(rows), args.heavy_limit)
        cls = getattr(pytorch_grad_cam, PEERS[method])
        report["methods"][method] = compare(method, cls, backbone, layer, x[:n], targets[:n], rows, bs)
        print(method, json.dumps(report["methods"][method]), file=sys.stderr, flush=True)
    for method in captum:
        n = len(rows) if method not in HEAVY or not args.heavy_limit else min(len(rows), args.heavy_limit)
        report["captum_methods"][method] = compare(method, None, backbone, layer, x[:n], targets[:n], rows, bs)
        print("captum", method, json.dumps(report["captum_methods"][method]), file=sys.stderr, flush=True)
    same = [*report["methods"].values(), *(m for m in report["captum_methods"].values() if "differs" not in m)]
    report["pass"] = all(m["pearson_min"] >= 0.99 and m["time_ratio"] <= 1.0 for m in same)
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
