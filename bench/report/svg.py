"""A small SVG canvas for the leaderboard plots: shapes and text in pixel coordinates, nice axis ticks.

Plots are written as SVG text directly (no plotting library to import or rasterise): sharp at any
zoom in the report, a few KB each, and byte-identical for identical inputs (every coordinate is
rounded to 0.01 px), so an unchanged plot is never rewritten. Shapes can carry `data-*` attributes
(method, value) so a test or a script can read back what a plot shows.
"""

from __future__ import annotations

import math
from html import escape
from typing import Iterable, Sequence

FONT = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
#: average glyph advance of DejaVu Sans per unit of font size; used for layout only
CHAR_WIDTH = 0.6
LINE_HEIGHT = 1.2

#: matplotlib's tab10 / tab20 / Set2 colours (the palette the plots have always used)
TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
         "#17becf"]
TAB20 = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd",
         "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d",
         "#17becf", "#9edae5"]
SET2 = ["#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f", "#e5c494", "#b3b3b3"]


def _n(v: float) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def text_width(text: str, size: float) -> float:
    """Estimated width in px of the widest line of `text` at font `size`."""
    return max((len(line) for line in str(text).split("\n")), default=0) * CHAR_WIDTH * size


def text_height(text: str, size: float) -> float:
    return (str(text).count("\n") + 1) * LINE_HEIGHT * size


def _attrs(**kw: object) -> str:
    out = []
    for k, v in kw.items():
        if v is None:
            continue
        name = k.rstrip("_").replace("_", "-")
        out.append(f'{name}="{escape(_n(v) if isinstance(v, float) else str(v))}"')
    return " ".join(out)


def _data(data: dict[str, object] | None) -> str:
    if not data:
        return ""
    return " " + " ".join(f'data-{k}="{escape(repr(v) if isinstance(v, float) else str(v))}"' for k, v in data.items())


class Canvas:
    """Collects SVG elements; `to_svg()` returns the document."""

    def __init__(self, width: float, height: float) -> None:
        self.width, self.height = float(math.ceil(width)), float(math.ceil(height))
        self._defs: dict[str, str] = {}
        self._parts: list[str] = []

    def _add(self, tag: str, data: dict[str, object] | None = None, body: str | None = None, **attrs: object) -> None:
        a = _attrs(**attrs) + _data(data)
        self._parts.append(f"<{tag} {a}>{body}</{tag}>" if body is not None else f"<{tag} {a}/>")

    def rect(self, x: float, y: float, w: float, h: float, fill: str = "none", stroke: str | None = None,
             stroke_width: float | None = None, opacity: float | None = None,
             data: dict[str, object] | None = None) -> None:
        if h < 0:
            y, h = y + h, -h
        self._add("rect", data, x=float(x), y=float(y), width=float(w), height=float(h), fill=fill, stroke=stroke,
                  stroke_width=None if stroke_width is None else float(stroke_width),
                  fill_opacity=None if opacity is None else float(opacity))

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = "#000", width: float = 1.0,
             opacity: float | None = None, dash: str | None = None) -> None:
        self._add("line", x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2), stroke=stroke,
                  stroke_width=float(width), stroke_opacity=None if opacity is None else float(opacity),
                  stroke_dasharray=dash)

    def polyline(self, points: Iterable[tuple[float, float]], stroke: str, width: float = 1.0,
                 data: dict[str, object] | None = None) -> None:
        pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
        self._add("polyline", data, points=pts, fill="none", stroke=stroke, stroke_width=float(width),
                  stroke_linejoin="round")

    def polygon(self, points: Iterable[tuple[float, float]], fill: str, opacity: float | None = None,
                stroke: str | None = None, width: float | None = None, data: dict[str, object] | None = None) -> None:
        pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
        self._add("polygon", data, points=pts, fill=fill, fill_opacity=None if opacity is None else float(opacity),
                  stroke=stroke, stroke_width=None if width is None else float(width))

    def circle(self, cx: float, cy: float, r: float, fill: str = "none", stroke: str | None = None,
               width: float | None = None, opacity: float | None = None,
               data: dict[str, object] | None = None) -> None:
        self._add("circle", data, cx=float(cx), cy=float(cy), r=float(r), fill=fill,
                  fill_opacity=None if opacity is None else float(opacity), stroke=stroke,
                  stroke_width=None if width is None else float(width))

    def text(self, x: float, y: float, text: str, size: float = 10.0, anchor: str = "start", valign: str = "middle",
             color: str = "#000", rotate: float | None = None, weight: str | None = None) -> None:
        """Text whose anchor point is (x, y): `anchor` start/middle/end horizontally, `valign`
        top/middle/bottom for the whole (possibly multi-line) block."""
        lines = str(text).split("\n")
        block = len(lines) * LINE_HEIGHT * size
        # y of the first baseline; 0.35 em puts a line's x-height centre on its nominal middle
        first = {"top": y + 0.8 * size, "middle": y - block / 2 + 0.5 * LINE_HEIGHT * size + 0.35 * size,
                 "bottom": y - block + 0.8 * size + 0.2 * size}[valign]
        if len(lines) == 1:
            body = escape(lines[0])
        else:
            body = "".join(f'<tspan x="{_n(x)}" dy="{_n(0 if i == 0 else LINE_HEIGHT * size)}">{escape(t)}</tspan>'
                           for i, t in enumerate(lines))
        self._add("text", None, body=body, x=float(x), y=float(first), font_size=float(size), text_anchor=anchor,
                  fill=color, font_weight=weight,
                  transform=None if rotate is None else f"rotate({_n(rotate)} {_n(x)} {_n(y)})")

    def hatch(self, color: str) -> str:
        """A fill of diagonal lines in `color` (for reference rows); returns the url() to use as fill."""
        pid = "hatch" + color.lstrip("#")
        self._defs[pid] = (f'<pattern id="{pid}" width="6" height="6" patternUnits="userSpaceOnUse" '
                           f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{color}" '
                           f'fill-opacity="0.45"/><line x1="0" y1="0" x2="0" y2="6" stroke="#333" '
                           f'stroke-width="1.2"/></pattern>')
        return f"url(#{pid})"

    def to_svg(self, key: str | None = None) -> str:
        from bench.report.incremental import KEY_FIELD

        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(self.width)}" height="{_n(self.height)}" '
                f'viewBox="0 0 {_n(self.width)} {_n(self.height)}" font-family="{FONT}">')
        defs = f"<defs>{''.join(self._defs[k] for k in sorted(self._defs))}</defs>" if self._defs else ""
        note = f"<!-- {KEY_FIELD}: {key} -->\n" if key else ""
        return ('<?xml version="1.0" encoding="UTF-8"?>\n' + note + head + defs +
                '<rect width="100%" height="100%" fill="#fff"/>\n' + "\n".join(self._parts) + "\n</svg>\n")


# ---------------------------------------------------------------------------------------------
# axis ticks
# ---------------------------------------------------------------------------------------------
def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 × 10^k steps) covering [lo, hi]: the first ≤ lo, the last ≥ hi."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(target - 1, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    start, stop = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(start, stop + 1)]


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Labels with as many decimals as the step needs (no float noise, no offset notation)."""
    if len(ticks) < 2:
        return [f"{t:g}" for t in ticks]
    step = min(abs(b - a) for a, b in zip(ticks, ticks[1:])) or 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6:
        decimals += 1  # a 2.5 × 10^k step
    big = max(abs(t) for t in ticks)
    if big >= 1e6 or (big and big < 1e-4):
        return [f"{t:.2e}" for t in ticks]
    return [("−" if t < 0 and round(t, decimals) != 0 else "") + f"{abs(t):.{decimals}f}" for t in ticks]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Decades covering [lo, hi] (lo, hi > 0), with 2 and 5 between them when the range is short."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if b == a:
        b += 1
    ticks = [10.0 ** k for k in range(a, b + 1)]
    if b - a <= 2:
        ticks = sorted(ticks + [m * 10.0 ** k for k in range(a, b) for m in (2, 5)])
    return ticks


def log_label(v: float) -> str:
    return f"{v:g}"
