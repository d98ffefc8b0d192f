"""Network overview and one-neuron timings for one backbone, server side.

Prints JSON and writes bench/results/overview.json:
- overview_new_photo: what a new photo costs the Network overview page in the library: one forward pass recording
  every layer (record_image), composing the picture (network_overview) and building the clickable figure;
- overview_page_new_photo / overview_page_rerun: a whole Streamlit run of the page (streamlit.testing AppTest, no
  browser) after choosing another sample photo, and a rerun with the same photo (recording and picture re-used);
- neuron: the Feature maps neuron panel's work: tracing every module once per photo, then per click the
  arithmetic (explain_neuron) and the effective receptive field (one forward and backward pass to the layer).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.timing import in_thread, ms_summary  # noqa: E402
from explain.featuremaps import record_image  # noqa: E402
from explain.images import SAMPLES, prepare, sample_image  # noqa: E402
from explain.models import load_backbone  # noqa: E402
from explain.neuron import explain_neuron  # noqa: E402
from explain.overview import network_overview  # noqa: E402
from explain.receptive import effective_receptive_field, trace_network  # noqa: E402


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - start) * 1000, out


def page_runs(rounds: int) -> tuple[list[float], list[float]]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at.switch_page("lessons/1_Network_overview.py").run()
    new, again = [], []
    for _ in range(rounds):
        for sample in SAMPLES:
            ms, _ = timed(at.selectbox(key="image_sample").set_value(sample).run)
            new.append(ms)
            ms, _ = timed(at.run)
            again.append(ms)
            if at.exception:
                raise RuntimeError(at.exception[0].message)
    return new, again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-page", action="store_true", help="skip the AppTest page timing")
    args = parser.parse_args()

    backbone = load_backbone(args.model)
    result = in_thread(lambda: library_runs(backbone, args.rounds))
    result = {
        "bench": "overview",
        "model": args.model,
        "device": str(backbone.device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        **result,
    }
    if not args.no_page:
        new, again = page_runs(args.rounds)
        result["overview_page_new_photo"] = ms_summary(new)
        result["overview_page_rerun"] = ms_summary(again)
    out = ROOT / "bench" / "results" / "overview.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


def library_runs(backbone, rounds: int) -> dict:
    from explain.ui.overview import overview_figure

    photos = {name: prepare(sample_image(name), backbone.preprocess) for name in SAMPLES}
    record_image(backbone, next(iter(photos.values())).tensor)  # warm-up
    record_ms, compose_ms, figure_ms, total_ms = [], [], [], []
    for _ in range(rounds):
        for prepared in photos.values():
            a, recording = timed(record_image, backbone, prepared.tensor)
            b, overview = timed(network_overview, recording, prepared.cropped, backbone.categories)
            c, _ = timed(overview_figure, overview)
            record_ms.append(a), compose_ms.append(b), figure_ms.append(c), total_ms.append(a + b + c)
    trace_ms, arith_ms, erf_ms = [], [], []
    rng = random.Random(0)
    for prepared in photos.values():
        x = backbone.normalize(prepared.tensor.to(backbone.device))
        ms, trace = timed(trace_network, backbone.model, x)
        trace_ms.append(ms)
        layers = [n for n, out in trace.outputs.items() if out.ndim == 4 and n in trace.spans]
        for layer in rng.sample(layers, 8):
            c, h, w = trace.outputs[layer].shape[1:]
            neuron = (rng.randrange(c), rng.randrange(h), rng.randrange(w))
            arith_ms.append(timed(explain_neuron, trace, layer, *neuron)[0])
            erf_ms.append(timed(effective_receptive_field, backbone.model, x, layer, *neuron)[0])
    return {
        "overview_new_photo": ms_summary(total_ms),
        "overview_record_all_layers": ms_summary(record_ms),
        "overview_compose": ms_summary(compose_ms),
        "overview_figure": ms_summary(figure_ms),
        "neuron_trace_per_photo": ms_summary(trace_ms),
        "neuron_arithmetic_per_click": ms_summary(arith_ms),
        "neuron_effective_field_per_click": ms_summary(erf_ms),
    }


if __name__ == "__main__":
    main()
