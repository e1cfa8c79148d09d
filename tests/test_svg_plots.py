"""The SVG plot primitives: known-answer ticks, a radar that leaves a gap for a missing value, and
identical bytes for identical inputs."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from bench.report.plots import method_colors, radar_by_group
from bench.report.svg import Canvas, log_ticks, nice_ticks, tick_labels

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("lo, hi, ticks", [
    (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (-33.4, 0.0, [-40.0, -30.0, -20.0, -10.0, 0.0]),
    (0.0, 0.0111, [0.0, 0.0025, 0.005, 0.0075, 0.01, 0.0125]),
    (0.87, 0.93, [0.86, 0.88, 0.9, 0.92, 0.94]),
])
def test_nice_ticks_cover_the_range_with_round_steps(lo, hi, ticks):
    assert nice_ticks(lo, hi) == pytest.approx(ticks)


def test_tick_labels_use_the_decimals_of_the_step():
    assert tick_labels([0.0, 0.1, 0.2, 0.3]) == ["0.0", "0.1", "0.2", "0.3"]
    assert tick_labels([0.0, 0.0025, 0.005]) == ["0.0000", "0.0025", "0.0050"]
    assert tick_labels([-10.0, -5.0, 0.0]) == ["−10", "−5", "0"]
    assert tick_labels([0.0, 2.5, 5.0]) == ["0.0", "2.5", "5.0"]


def test_log_ticks_are_decades_with_2_and_5_on_short_ranges():
    assert log_ticks(0.02, 0.3) == pytest.approx([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0])
    assert log_ticks(0.5, 2000) == pytest.approx([0.1, 1, 10, 100, 1000, 10000])


def test_radar_leaves_a_gap_for_a_missing_value_and_is_deterministic(tmp_path):
    table = pd.DataFrame({"style": [0.2, 0.9], "background": [0.5, np.nan], "foreground": [0.8, 0.4],
                          "object": [1.0, 0.1]}, index=["a", "b"])
    colors = method_colors(table.index)
    p1 = radar_by_group(table, tmp_path / "r1.svg", "title", colors, unit_range=True)
    p2 = radar_by_group(table, tmp_path / "r2.svg", "title", colors, unit_range=True)
    assert p1.read_bytes() == p2.read_bytes()
    root = ET.parse(p1).getroot()
    polys = {p.get("data-series"): p for p in root.iter(f"{SVG}polygon")}
    assert set(polys) == {"a"}  # b has a missing value: outline only, no filled area
    assert [float(v) for v in polys["a"].get("data-values").split(",")] == [0.2, 0.5, 0.8, 1.0]
    # a's polygon: axis k at angle 2πk/4 clockwise from the top, radius ∝ value
    pts = [tuple(map(float, xy.split(","))) for xy in polys["a"].get("points").split()]
    circle = max((c for c in root.iter(f"{SVG}circle") if c.get("stroke") == "#000"), key=lambda c: float(c.get("r")))
    cx, cy, radius = float(circle.get("cx")), float(circle.get("cy")), float(circle.get("r"))
    for k, ((x, y), v) in enumerate(zip(pts, [0.2, 0.5, 0.8, 1.0])):
        a = 2 * math.pi * k / 4
        assert (x, y) == pytest.approx((cx + v * radius * math.sin(a), cy - v * radius * math.cos(a)), abs=0.01)
    # b's outline: background missing, so style→background and background→foreground are not drawn
    b_lines = [p for p in root.iter(f"{SVG}polyline") if p.get("data-series") == "b"]
    assert len(b_lines) == 1 and len(b_lines[0].get("points").split()) == 3  # foreground → object → style


def test_text_is_escaped():
    c = Canvas(100, 50)
    c.text(10, 10, "<b>&x</b>")
    svg = c.to_svg()
    ET.fromstring(svg.split("\n", 1)[1])  # well-formed
    assert "&lt;b&gt;&amp;x&lt;/b&gt;" in svg
