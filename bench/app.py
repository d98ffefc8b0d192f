"""The app as a user lives it: a real browser against the app started the README way (./run.sh), beside the CLI.

One user, an otherwise idle server. Measures, in headless Chromium (Debian's /usr/bin/chromium):
- the first visit of Home after the server started (until the page has finished running);
- page switches through the sidebar (click to the new page finished running), p50/p95;
- layer switches on Feature maps, p50/p95: Playwright's click on the option to the new grid's caption in the page (it
  includes Playwright's own checks before clicking), and timed in the page itself from the click event to the first
  frame after the new grid's image has loaded (the new grid on screen);
- heavy jobs in the app beside the same work on the CLI, interleaved (app, CLI, app, CLI, …; --repeats each): an ideal
  image (clear preset, the page's defaults) and a targeted PGD attack on Chelsea (the lab's defaults). In the app: the
  job's own time as the page shows it, and the click to the page having finished drawing the result; on the CLI: the
  job's own time ("seconds" in its JSON) and the whole process (model load included). Medians, and every value.
The browser waits by polling every 50 ms, not on animation frames (Playwright's default, which keeps a software-
rendered Chromium drawing 60 frames a second on the cores the job needs: a load no user's browser adds).
Prints JSON and writes bench/results/app.json. Targets (issue 15): heavy job in the app ≤ 1.2× the CLI's,
page switch p95 ≤ 1.0 s, layer switch p95 ≤ 0.5 s, first visit of Home ≤ 8 s.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.timing import ms_summary  # noqa: E402
from tests.live_app import CHROMIUM_ARGS, JOB_TIMEOUT_MS, chromium_path, layer_options, running_app, settle  # noqa: E402

PAGES = ["Classify", "Feature_maps", "Grad-CAM", "Ideal_images", "Adversarial", "Transfer_learning"]
TITLES = {"Classify": "Classify", "Feature_maps": "Feature maps", "Grad-CAM": "Grad-CAM", "Ideal_images": "Ideal images",
          "Adversarial": "Adversarial lab", "Transfer_learning": "Transfer learning"}


def cli(*argv: str) -> dict:
    """Run a CLI verb with --json; its JSON and the whole process's seconds."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "explain", *argv, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return {"json": json.loads(done.stdout), "process_s": time.perf_counter() - began}


POLL_MS = 50


def wait_text(tab, pattern: str, timeout_ms: int = 120_000) -> None:
    """Wait (polling every POLL_MS, not on animation frames) until the page's main area shows text matching `pattern`."""
    tab.wait_for_function(
        "p => new RegExp(p, 'm').test((document.querySelector('[data-testid=\"stMain\"]') || document.body).innerText)",
        arg=pattern, polling=POLL_MS, timeout=timeout_ms,
    )


def first_visit(tab, base: str) -> float:
    began = time.perf_counter()
    tab.goto(base)
    tab.get_by_role("heading", name="CNN Lens").wait_for(timeout=180_000)
    settle(tab, quiet_ms=300)
    return time.perf_counter() - began - 0.3  # the quiet time settle waits for is not the app's


def page_switches(tab, rounds: int) -> list[float]:
    times = []
    nav = tab.locator('[data-testid="stSidebarNav"]')
    for i in range(rounds):
        name = PAGES[i % len(PAGES)]
        link = nav.locator(f'a[href$="/{name}"]')
        began = time.perf_counter()
        link.click()
        tab.wait_for_url(re.compile(rf"/{re.escape(name)}(\?|$)"))
        # done = the new page's title is drawn and the script has stopped running (Streamlit's own flag on stApp: its
        # status widget appears only after a delay, so waiting for that widget to go away ended some switches early
        # and charged their rest to the next one)
        tab.wait_for_function(
            "t => { const h = document.querySelector('h1'); const app = document.querySelector('[data-testid=\"stApp\"]');"
            " return h !== null && h.innerText.trim().startsWith(t) && app.getAttribute('data-test-script-state') === 'notRunning'"
            " && !document.querySelector('[data-stale=\"true\"]'); }",
            arg=TITLES[name], polling=POLL_MS, timeout=180_000,
        )
        times.append((time.perf_counter() - began) * 1000)
        settle(tab, quiet_ms=300)
    return times


# Armed in the page before each layer click: the times (performance.now) of the click event itself, of the new grid's
# caption entering the DOM, of the grid image in the same element loaded, and of the next frame after that (shown).
ARM_LAYER_TIMING = """pattern => {
  const times = window.__layerSwitch = {};
  const re = new RegExp(pattern, 'm');
  document.addEventListener('click', () => { if (times.click === undefined) times.click = performance.now(); }, {capture: true, once: true});
  const main = document.querySelector('[data-testid="stMain"]');
  const seen = () => {
    const caption = [...main.querySelectorAll('[data-testid="stImageCaption"]')].find(c => re.test(c.innerText));
    if (!caption) return;
    observer.disconnect();
    times.dom = performance.now();
    const img = caption.closest('[data-testid="stImageContainer"]').querySelector('img');
    const loaded = () => { times.image = performance.now(); requestAnimationFrame(() => setTimeout(() => { times.shown = performance.now(); }, 0)); };
    if (img.complete && img.naturalWidth > 0) loaded(); else img.addEventListener('load', loaded, {once: true});
  };
  const observer = new MutationObserver(seen);
  observer.observe(main, {subtree: true, childList: true, characterData: true});
}"""


def layer_switches(tab, base: str, count: int) -> dict[str, list[float]]:
    """Per switch: Playwright's option click to the caption of the new grid in the page (what earlier runs reported; it
    includes Playwright's own checks before it clicks), and in the page itself the click event to the first frame
    after the new grid's image has loaded (the grid on screen)."""
    tab.goto(f"{base}/Feature_maps")
    tab.get_by_text(re.compile(r"channels \(row by row")).first.wait_for(timeout=180_000)
    settle(tab)
    options, names = layer_options(tab)
    times: dict[str, list[float]] = {"playwright": [], "shown": []}
    for i in range(count):
        k = (i * 3 + 1) % len(options)
        tab.get_by_role("combobox", name="Layer", exact=True).click()
        option = tab.get_by_role("option").filter(has_text=options[k]).first
        option.wait_for()
        pattern = rf"^{re.escape(names[k])}: \d+ of \d+ channels"
        tab.evaluate(ARM_LAYER_TIMING, pattern)
        began = time.perf_counter()
        option.click()
        wait_text(tab, pattern)
        times["playwright"].append((time.perf_counter() - began) * 1000)
        tab.wait_for_function("() => window.__layerSwitch.shown !== undefined", polling=POLL_MS)
        got = tab.evaluate("() => window.__layerSwitch")
        times["shown"].append(got["shown"] - got["click"])
        settle(tab)
    return times


def run_in_app(tab, button: str, shown_pattern: str) -> dict:
    """Press `button` on the open page and wait until the page has run and stopped running again; the job's own
    seconds as the page shows them (group 1 of the first match of shown_pattern) and the click to that moment."""
    state = "document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state')"
    began = time.perf_counter()
    tab.get_by_role("button", name=button).click()
    # Streamlit's own flag on stApp (its status widget appears only after a delay)
    tab.wait_for_function(f"() => {state} === 'running'", polling=POLL_MS, timeout=30_000)
    tab.wait_for_function(f"() => {state} === 'notRunning'", polling=POLL_MS, timeout=JOB_TIMEOUT_MS)
    done = time.perf_counter() - began
    settle(tab)
    shown = re.search(shown_pattern, tab.locator('[data-testid="stMain"]').inner_text())
    if shown is None:
        raise RuntimeError(f"the page shows no result matching {shown_pattern!r} after pressing {button!r}")
    return {"job_s_shown": float(shown.group(1)), "click_to_done_s": round(done, 2)}


def open_page(tab, url: str, button: str) -> None:
    tab.goto(url)
    tab.get_by_role("button", name=button).wait_for(timeout=180_000)
    settle(tab)


IDEAL_SHOWN = r"\d+ steps in ([0-9.]+) s"
ATTACK_SHOWN = r"Time\s+([0-9.]+) s"


def heavy_jobs(tab, base: str, work: Path, chelsea: Path, repeats: int) -> dict:
    """Each job `repeats` times in the app and on the CLI, interleaved, so a slow minute of the machine hits both."""
    runs: dict = {"ideal_image": [], "pgd_attack": []}
    for name, page, button, shown, argv in (
        ("ideal_image", "Ideal_images", "Make the image", IDEAL_SHOWN, ["ideal", "--target", "281", "--out", str(work / "ideal.png")]),
        ("pgd_attack", "Adversarial", "Attack", ATTACK_SHOWN, ["attack", str(chelsea), "--target", "golden retriever", "--out-dir", str(work)]),
    ):
        open_page(tab, f"{base}/{page}", button)
        for _ in range(repeats):
            app = run_in_app(tab, button, shown)
            done = cli(*argv)
            record = done["json"][0] if isinstance(done["json"], list) else done["json"]
            runs[name].append({**app, "cli_job_s": record["seconds"], "cli_process_s": round(done["process_s"], 2)})
    summary = {}
    for name, rows in runs.items():
        med = {k: round(statistics.median(r[k] for r in rows), 2) for k in ("job_s_shown", "click_to_done_s", "cli_job_s", "cli_process_s")}
        summary[name] = {
            "app_job_s_shown": med["job_s_shown"], "app_click_to_done_s": med["click_to_done_s"],
            "cli_job_s": med["cli_job_s"], "cli_process_s": med["cli_process_s"],
            "app_job_over_cli_job": round(med["job_s_shown"] / med["cli_job_s"], 2),
            "app_click_to_done_over_cli_job": round(med["click_to_done_s"] / med["cli_job_s"], 2),
            "runs": rows,
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page-switches", type=int, default=24)
    parser.add_argument("--layer-switches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each heavy job, in the app and on the CLI")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "app.json"))
    args = parser.parse_args()
    path = chromium_path()
    if path is None:
        raise SystemExit("Chromium not found: apt-get install chromium (scripts/setup_chromium.sh)")
    from playwright.sync_api import sync_playwright

    from explain.images import sample_image, save_png

    work = Path(tempfile.mkdtemp(prefix="cnn-lens-bench-app-"))
    chelsea = save_png(sample_image("chelsea"), work / "chelsea.png")
    result: dict = {"started_as": "./run.sh --server.port P --server.address 127.0.0.1 (the README's command)"}
    began = time.perf_counter()
    with running_app(work / "server.log", start_timeout_s=180) as base, sync_playwright() as pw:
        result["server_start_s"] = round(time.perf_counter() - began, 2)
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        tab = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
        tab.set_default_timeout(120_000)
        result["first_visit_home_s"] = round(first_visit(tab, base), 2)
        tab.goto(f"{base}/Classify")  # the model is loaded once before the page-switch timings
        tab.locator("h1").first.wait_for(timeout=180_000)
        settle(tab)
        result["page_switch"] = ms_summary(page_switches(tab, args.page_switches))
        layer = layer_switches(tab, base, args.layer_switches)
        result["layer_switch"] = ms_summary(layer["playwright"])
        result["layer_switch_in_page"] = ms_summary(layer["shown"])
        result.update(heavy_jobs(tab, base, work, chelsea, args.repeats))
        log = (work / "server.log").read_text(errors="replace")
        result["server_log_inotify_overflows"] = log.count("Inotify queue overflowed")
        browser.close()
    result["targets"] = {
        "heavy_job_app_over_cli_le_1_2": all(result[k]["app_click_to_done_over_cli_job"] <= 1.2 for k in ("ideal_image", "pgd_attack")),
        "page_switch_p95_le_1000_ms": (result["page_switch"]["p95_ms"] or 1e9) <= 1000,
        "layer_switch_p95_le_500_ms": (result["layer_switch"]["p95_ms"] or 1e9) <= 500,
        "layer_switch_in_page_p95_le_500_ms": (result["layer_switch_in_page"]["p95_ms"] or 1e9) <= 500,
        "first_visit_home_le_8_s": result["first_visit_home_s"] <= 8,
    }
    text = json.dumps(result, indent=2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
