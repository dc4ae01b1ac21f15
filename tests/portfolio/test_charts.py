"""The SVG charts parse, escape their text and put each mark where the data says."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from marketplace.web import charts

NS = {"s": "http://www.w3.org/2000/svg"}


def _parse(svg: str) -> ET.Element:
    assert "<script" not in svg and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    root = ET.fromstring(svg)
    assert root.get("viewBox") == f"0 0 {charts.WIDTH} {charts.HEIGHT}" and root.get("width") == "100%"
    assert root.get("font-size") == "16"  # the body size on a 300-px-wide chart (a 360-px phone)
    assert len(svg) < 6000
    return root


def test_histogram_bars_scale_with_probability_and_var_sits_at_its_value() -> None:
    edges = [0.0, 100.0, 200.0, 300.0, 400.0]
    root = _parse(charts.loss_histogram(edges, [0.5, 0.25, 0.2, 0.05], var=300.0))
    bars = root.findall(".//s:rect[@class='bar']", NS)
    heights = [float(b.get("height", "0")) for b in bars]
    assert heights[0] == pytest.approx(2 * heights[1]) and heights[0] == pytest.approx(charts.PLOT_H)
    xs = [float(b.get("x", "0")) for b in bars]
    assert xs == sorted(xs)
    var = root.find(".//s:line[@class='var']", NS)
    assert var is not None
    assert float(var.get("x1", "0")) == pytest.approx(charts.LEFT + 0.75 * charts.PLOT_W)


def test_bar_chart_lengths_are_proportional_and_labels_escaped() -> None:
    svg = charts.bar_chart(["A", "<b>&"], [300.0, 150.0], title="By grade")
    root = _parse(svg)
    bars = root.findall(".//s:rect[@class='bar']", NS)
    assert float(bars[0].get("width", "0")) == pytest.approx(2 * float(bars[1].get("width", "0")))
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg
    assert [t.text for t in root.findall(".//s:text", NS)].count("<b>&") == 1


def test_cashflow_stems_point_up_for_money_back_and_down_for_money_lent() -> None:
    root = _parse(charts.cashflow_timeline([0, 30, 60], [-1000.0, 500.0, 600.0], ("1 Jan", "1 Mar")))
    stems = root.findall(".//s:line[@class='flow']", NS)
    mid = charts.TOP + charts.PLOT_H / 2
    y2 = [float(s.get("y2", "0")) for s in stems]
    assert y2[0] > mid and y2[1] < mid and y2[2] < y2[1]
    assert float(stems[0].get("x1", "0")) == pytest.approx(charts.LEFT)
    assert float(stems[2].get("x1", "0")) == pytest.approx(charts.LEFT + charts.PLOT_W)


def test_line_chart_points_fall_as_the_probability_falls() -> None:
    root = _parse(charts.line_chart([1, 10, 100], [0.3, 0.1, 0.02]))
    cys = [float(c.get("cy", "0")) for c in root.findall(".//s:circle[@class='point']", NS)]
    assert cys[0] == pytest.approx(charts.TOP) and cys[0] < cys[1] < cys[2]


def test_bad_chart_input_is_refused() -> None:
    with pytest.raises(ValueError):
        charts.loss_histogram([0.0, 1.0], [0.5, 0.5], var=1.0)
    with pytest.raises(ValueError):
        charts.bar_chart(["A"], [-1.0])


def test_the_spread_curve_can_put_the_number_of_notes_on_a_log_scale() -> None:
    svg = charts.line_chart([1, 10, 100], [0.5, 0.3, 0.1], log_x=True)
    xs = [float(x) for x in re.findall(r'<circle class="point" cx="([\d.]+)"', svg)]
    assert abs((xs[1] - xs[0]) - (xs[2] - xs[1])) < 0.01  # 1 -> 10 as wide as 10 -> 100
    assert 'data-x="100"' in svg and ">100<" in svg
    with pytest.raises(ValueError):
        charts.line_chart([0, 10], [0.5, 0.3], log_x=True)
