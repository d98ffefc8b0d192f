"""explain/ui/svgbars.py: the top-channels bars of Feature maps as inline SVG (no Plotly chart on a layer switch)."""

import re

from explain.ui.svgbars import bars_html


def _bars(markup: str) -> list[tuple[float, float, str]]:
    return [(float(y), float(h), tip) for y, h, tip in re.findall(r'<rect class="bar" x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)" fill="[^"]+"><title>([^<]*)</title>', markup)]


def test_one_bar_per_label_in_order_taller_for_larger_values_each_named_on_hover():
    markup = bars_html([3.0, 1.0, 2.0], [12, 7, 40], "Top channels", "channel", "mean")
    bars = _bars(markup)
    assert [tip for *_, tip in bars] == ["channel 12 · mean 3.000", "channel 7 · mean 1.000", "channel 40 · mean 2.000"]
    heights = [h for _, h, _ in bars]
    assert heights[0] > heights[2] > heights[1] > 0
    assert abs(heights[0] / heights[1] - 3.0) < 0.01  # bars start at zero: their heights compare like the values
    assert "Top channels" in markup and markup.count("<svg") == 1


def test_negative_values_hang_below_the_zero_line_and_text_is_escaped():
    markup = bars_html([-2.0, 1.0], ["<b>", "ok"], "a & b", "채널", "평균")
    (y_neg, h_neg, tip), (y_pos, h_pos, _) = _bars(markup)
    assert y_neg > y_pos and abs(y_neg - (y_pos + h_pos)) < 0.2  # the negative bar starts where the positive one ends (zero)
    assert "<b>" not in markup and "&lt;b&gt;" in markup and "a &amp; b" in markup and "평균" in markup
    assert tip.startswith("채널 &lt;b&gt;")


def test_the_feature_maps_page_draws_the_top_channels_as_svg_not_plotly():
    from .apptest import open_app

    at = open_app("lessons/2_Feature_maps.py")
    bars = [m.value for m in at.markdown if "cnn-lens-bars" in m.value]
    assert len(bars) == 1 and len(_bars(bars[0])) == 10
