"""A small bar chart as inline SVG, for charts redrawn on every click (Feature maps' top channels on a layer switch).

A Plotly chart costs the browser about 160 ms of script per redraw on a 2-core laptop (bench/app.py's layer switch,
Chromium's profiler); these bars are a few kilobytes of markup. Each bar names itself on hover (an SVG <title>).
Text is written by the page's fonts, so Korean reads as everywhere else.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from explain.ui.livechart import _label, nice_ticks

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 24
COLOR = "#4C78A8"


def bars_html(values: Sequence[float], labels: Sequence, title: str = "", x_label: str = "", y_label: str = "") -> str:
    """Vertical bars, one per label in the given order, as HTML for st.markdown(unsafe_allow_html=True)."""
    esc = html.escape
    vals = [float(v) if v is not None and math.isfinite(float(v)) else 0.0 for v in values]
    names = [str(label) for label in labels]
    low, high = min([0.0, *vals]), max([0.0, *vals])
    if high - low < 1e-12:
        high = low + 1.0
    pad = (high - low) * 0.05
    y0, y1 = (low - pad if low < 0 else 0.0), high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sy(y: float) -> float:
        return TOP + (1 - (y - y0) / (y1 - y0)) * plot_h

    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMidYMid meet" '
             f'xmlns="http://www.w3.org/2000/svg" style="font: 11px sans-serif; overflow: visible" role="img" aria-label="{esc(title)}">']
    for tick in nice_ticks(y0, y1, 4):
        y = sy(tick)
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e8ec"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#7a7f89">{_label(tick)}</text>')
    n = max(1, len(vals))
    slot = plot_w / n
    bar_w = slot * 0.8
    zero = sy(0.0)
    for i, (value, name) in enumerate(zip(vals, names)):
        x = LEFT + i * slot + (slot - bar_w) / 2
        top, bottom = sorted((sy(value), zero))
        tip = f"{x_label} {name} · {y_label} {value:.3f}".strip(" ·") if (x_label or y_label) else f"{name}: {value:.3f}"
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{top:.1f}" width="{bar_w:.1f}" height="{max(bottom - top, 0.5):.1f}" '
                     f'fill="{COLOR}"><title>{esc(tip)}</title></rect>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" fill="#7a7f89">{esc(name)}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#9aa0aa"/>')
    parts.append("</svg>")
    head = f'<div style="font-weight:600;font-size:0.9rem">{esc(title)}</div>' if title else ""
    axis = f'<div style="font-size:0.75rem;color:#7a7f89">{esc(y_label)}</div>' if y_label else ""
    foot = f'<div style="text-align:center;font-size:0.75rem;color:#7a7f89">{esc(x_label)}</div>' if x_label else ""
    return f'<div class="cnn-lens-bars">{head}{axis}{"".join(parts)}{foot}</div>'
