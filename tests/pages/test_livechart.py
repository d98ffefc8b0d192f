"""The running job's chart as inline SVG (explain/ui/livechart.py): what it draws must be the history it was given."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

from explain.ui.livechart import MAX_POINTS, Line, Panel, live_chart_html, nice_ticks, panel_svg


def _polylines(svg: str) -> list[list[tuple[float, float]]]:
    root = ET.fromstring(svg)
    lines = []
    for el in root.iter("{http://www.w3.org/2000/svg}polyline"):
        lines.append([tuple(float(v) for v in p.split(",")) for p in el.get("points").split()])
    return lines


def test_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 100) == [0, 25, 50, 75, 100]
    assert nice_ticks(0, 1, 4) == [0, 0.25, 0.5, 0.75, 1.0]
    ticks = nice_ticks(-0.37, 2.71)
    assert ticks[0] >= -0.37 and ticks[-1] <= 2.71 and len(ticks) >= 3
    assert nice_ticks(3, 3) == [3] and nice_ticks(math.nan, 1) == []


def test_a_line_goes_up_where_its_values_go_up_and_keeps_its_order():
    values = [0.0, 10.0, 50.0, 20.0, 90.0]
    (points,) = _polylines(panel_svg(Panel((Line("p", values),), y_range=(0, 100))))
    assert len(points) == len(values)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # one point per step, left to right
    # SVG y grows downwards: a larger value is drawn higher, in proportion
    assert all((ys[i] > ys[i + 1]) == (values[i] < values[i + 1]) for i in range(4))
    span = ys[0] - ys[4]
    assert abs((ys[0] - ys[2]) / span - 50 / 90) < 1e-2


def test_gaps_and_long_histories():
    svg = panel_svg(Panel((Line("a", [1.0, math.nan, 3.0, float("inf"), 5.0]),)))
    (points,) = _polylines(svg)
    assert len(points) == 3  # the non-finite values are left out, not drawn at 0
    long = list(range(5000))
    (points,) = _polylines(panel_svg(Panel((Line("a", long),))))
    assert len(points) <= MAX_POINTS + 1 and points[-1][0] == max(p[0] for p in points)  # thinned, the last step kept
    assert _polylines(panel_svg(Panel((Line("a", []),)))) == []  # nothing yet: an empty frame, no error


def test_right_axis_lines_get_their_own_scale():
    panel = Panel((Line("prob", [0.0, 100.0]), Line("loss", [0.001, 0.002], right=True)), y_range=(0, 100))
    left, right = _polylines(panel_svg(panel))
    assert abs((left[0][1] - left[1][1]) - (right[0][1] - right[1][1])) < 20  # both span the plot, not loss squashed at 0


def test_names_are_escaped_and_each_line_has_a_legend_entry_in_its_colour():
    html = live_chart_html([
        Panel((Line("<script>alert(1)</script>", [1, 2]), Line("검증", [2, 1], dashed=True)), title="손실 & <b>", x_label="에포크"),
    ])
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html
    assert "검증" in html and "에포크" in html
    colours = re.findall(r'<polyline [^>]*stroke="(#[0-9A-Fa-f]{6})"', html)
    assert len(set(colours)) == 2
    for colour in colours:
        assert html.count(f'stroke="{colour}"') >= 2  # the line and its legend swatch


def test_the_same_name_keeps_its_colour_across_panels():
    html = live_chart_html([Panel((Line("train", [1, 2]), Line("val", [2, 3]))), Panel((Line("train", [3, 4]), Line("val", [4, 5])))])
    colours = re.findall(r'<polyline [^>]*stroke="(#[0-9A-Fa-f]{6})"', html)
    assert colours[0] == colours[2] and colours[1] == colours[3] and colours[0] != colours[1]
