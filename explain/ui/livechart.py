"""A running job's chart, drawn as inline SVG: the browser shows it without loading a charting library.

While a long job runs, the browser shares the cores with it (a laptop, a classroom PC). A Plotly chart redrawn twice
a second cost Chromium most of a core and made the job in the app 1.5-2x slower than the same job on the CLI
(bench/app.py); the first Plotly chart of a page also loads Plotly's 4 MB script in the middle of the job. These
lines are a few kilobytes of markup. Finished results keep their interactive Plotly charts.

A chart is one or more panels side by side; a panel has lines on a left axis and optionally a right one.
Text (titles, legend) is written by the page's fonts, so Korean reads as everywhere else.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_POINTS = 300  # per line: a longer history is thinned evenly (the last point always kept)
WIDTH, HEIGHT = 480, 200  # the panel's own units; it scales to the column's width
LEFT, RIGHT, TOP, BOTTOM = 44, 44, 14, 26
PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#9D755D")


@dataclass(frozen=True)
class Line:
    """One line: its values at steps 1..n (or at `x`), on the left axis or the right one."""

    name: str
    values: Sequence[float]
    x: Sequence[float] | None = None
    color: str = ""
    dashed: bool = False
    right: bool = False


@dataclass(frozen=True)
class Panel:
    """One plot: lines, a title, axis labels and optional fixed ranges (left axis, x axis)."""

    lines: tuple[Line, ...]
    title: str = ""
    x_label: str = ""
    y_label: str = ""
    y2_label: str = ""
    y_range: tuple[float, float] | None = None
    x_range: tuple[float, float] | None = None


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About `count` round tick values covering low..high (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + step * 1e-6:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def _label(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.2g}"


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    stride = len(points) / MAX_POINTS
    kept = [points[int(i * stride)] for i in range(MAX_POINTS)]
    return kept if kept[-1] == points[-1] else kept + [points[-1]]


def _range(lines: list[Line], fixed: tuple[float, float] | None) -> tuple[float, float] | None:
    if fixed is not None:
        return float(fixed[0]), float(fixed[1])
    values = [v for line in lines for v in _finite(line.values)]
    if not values:
        return None
    low, high = min(values), max(values)
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.05
    return low - pad, high + pad


def _points(line: Line) -> list[tuple[float, float]]:
    xs = line.x if line.x is not None else range(1, len(line.values) + 1)
    return [(float(x), float(y)) for x, y in zip(xs, line.values) if y is not None and math.isfinite(float(y))]


def panel_svg(panel: Panel) -> str:
    """One panel as an <svg> element (scales to its container's width)."""
    left_lines = [line for line in panel.lines if not line.right]
    right_lines = [line for line in panel.lines if line.right]
    all_points = [p for line in panel.lines for p in _points(line)]
    if panel.x_range is not None:
        x0, x1 = panel.x_range
    elif all_points:
        x0, x1 = min(p[0] for p in all_points), max(p[0] for p in all_points)
    else:
        x0, x1 = 0.0, 1.0
    if x1 <= x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMidYMid meet" '
             f'xmlns="http://www.w3.org/2000/svg" style="font: 11px sans-serif; overflow: visible">']
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#d0d3d9"/>')
    for tick in nice_ticks(x0, x1, 5):
        if float(tick).is_integer() or x1 - x0 < 5:
            parts.append(f'<text x="{sx(tick):.1f}" y="{HEIGHT - 12}" text-anchor="middle" fill="#7a7f89">{_label(tick)}</text>')
    for lines, y_fixed, side in ((left_lines, panel.y_range, "left"), (right_lines, None, "right")):
        span = _range(lines, y_fixed)
        if span is None:
            continue
        y0, y1 = span

        def sy(y: float, y0: float = y0, y1: float = y1) -> float:
            return TOP + (1 - (y - y0) / (y1 - y0)) * plot_h

        for tick in nice_ticks(y0, y1, 4):
            y = sy(tick)
            if side == "left":
                parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e8ec"/>')
                parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#7a7f89">{_label(tick)}</text>')
            else:
                parts.append(f'<text x="{LEFT + plot_w + 4}" y="{y + 4:.1f}" text-anchor="start" fill="#7a7f89">{_label(tick)}</text>')
        for line in lines:
            points = _thin([(x, min(max(y, y0), y1)) for x, y in _points(line)])
            if not points:
                continue
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
            dash = ' stroke-dasharray="4 3"' if line.dashed else ""
            width = 1.5 if line.dashed else 2.2
            parts.append(f'<polyline points="{path}" fill="none" stroke="{line.color}" stroke-width="{width}"{dash}/>')
            if len(points) == 1:
                x, y = points[0]
                parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{line.color}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _colored(panels: Sequence[Panel]) -> list[Panel]:
    """Give every line without a colour its own from the palette, the same name the same colour in every panel."""
    colors: dict[str, str] = {}
    out = []
    for panel in panels:
        lines = []
        for line in panel.lines:
            color = line.color or colors.get(line.name) or PALETTE[len(colors) % len(PALETTE)]
            colors.setdefault(line.name, color)
            lines.append(Line(line.name, line.values, line.x, color, line.dashed, line.right))
        out.append(Panel(tuple(lines), panel.title, panel.x_label, panel.y_label, panel.y2_label, panel.y_range, panel.x_range))
    return out


def live_chart_html(panels: Panel | Sequence[Panel]) -> str:
    """Panels side by side with their titles, axis labels and one legend, as HTML for st.html / st.markdown."""
    panels = _colored([panels] if isinstance(panels, Panel) else list(panels))
    esc = html.escape
    cells = []
    for panel in panels:
        head = []
        if panel.title:
            head.append(f'<div style="font-weight:600;font-size:0.85rem">{esc(panel.title)}</div>')
        if panel.y_label or panel.y2_label:
            head.append(
                '<div style="display:flex;justify-content:space-between;font-size:0.75rem;color:#7a7f89">'
                f"<span>{esc(panel.y_label)}</span><span>{esc(panel.y2_label)}</span></div>"
            )
        foot = f'<div style="text-align:center;font-size:0.75rem;color:#7a7f89">{esc(panel.x_label)}</div>' if panel.x_label else ""
        cells.append(f'<div style="flex:1;min-width:0;max-width:640px">{"".join(head)}{panel_svg(panel)}{foot}</div>')
    seen: dict[str, Line] = {}
    for panel in panels:
        for line in panel.lines:
            seen.setdefault(line.name, line)
    dash = ' stroke-dasharray="4 3"'
    legend = "".join(
        f'<span style="margin-right:14px;white-space:nowrap"><svg width="22" height="8"><line x1="0" x2="22" y1="4" y2="4" '
        f'stroke="{line.color}" stroke-width="2.5"{dash if line.dashed else ""}/></svg> {esc(name)}</span>'
        for name, line in seen.items() if name
    ) if len(seen) > 1 else ""
    legend_html = f'<div style="font-size:0.8rem;margin-top:2px">{legend}</div>' if legend else ""
    return f'<div class="cnn-lens-live-chart"><div style="display:flex;gap:12px">{"".join(cells)}</div>{legend_html}</div>'
