"""Leaderboard plots as SVG, drawn with `bench.report.svg` (no plotting library).

* radar by edit type: one polygon per method, axes = edit types, value = the aggregate score per
  edit type (or one metric column's means);
* radar per method (the survey's Fig. 12 layout): one small panel per method, axes = metrics
  (min–max normalised over all method × edit-type means, 1 = best), one polygon per edit type;
* one bar chart per metric column (bootstrap CI as error bars);
* quality vs runtime scatter (marker area ∝ peak memory, like the survey's Fig. 11).

Bars, polygons and markers carry `data-method` / `data-value` attributes: what a plot shows can be
read back from the file.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import pandas as pd

from bench.report.svg import SET2, TAB10, TAB20, Canvas, log_label, log_ticks, nice_ticks, text_height, text_width, \
    tick_labels

if TYPE_CHECKING:  # pragma: no cover
    from bench.report.table import Leaderboard

GRID = "#b0b0b0"
MUTED = "#666666"
LEGEND_STEP = 16.0


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "metric"


def method_colors(methods: Iterable[str]) -> dict[str, str]:
    methods = list(methods)
    palette = TAB10 if len(methods) <= 10 else TAB20
    return {m: palette[i % len(palette)] for i, m in enumerate(methods)}


#: the content key of the plot being drawn (set by write_plots), stored in the SVG as a comment
_INPUT_KEY: dict[str, str] = {}


def _save(canvas: Canvas, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.svg")
    tmp.write_text(canvas.to_svg(_INPUT_KEY.get(str(path))), encoding="utf-8")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------------------
# radar
# ---------------------------------------------------------------------------------------------
def _radar_label_extent(labels: Sequence[str], size: float) -> tuple[float, float]:
    """(horizontal, vertical) room the axis labels need beyond the circle."""
    return (max((text_width(x, size) for x in labels), default=0.0) + 12,
            max((text_height(x, size) for x in labels), default=0.0) + 10)


def _radar(c: Canvas, cx: float, cy: float, radius: float, labels: Sequence[str],
           series: Sequence[tuple[str, np.ndarray, str]], lo: float, hi: float, rings: Sequence[float],
           ring_labels: bool, label_size: float) -> None:
    """Axes clockwise from the top; `series` = (name, values per axis, colour). A missing value
    leaves a gap in its polygon (never drawn as 0, which would read as "worst")."""
    n = len(labels)
    angles = [2 * math.pi * i / n for i in range(n)]
    span = (hi - lo) or 1.0

    def at(angle: float, r: float) -> tuple[float, float]:
        return cx + r * math.sin(angle), cy - r * math.cos(angle)

    for v in rings:
        r = (v - lo) / span * radius
        if 0 < r < radius - 0.5:
            c.circle(cx, cy, r, stroke=GRID, width=0.8)
    c.circle(cx, cy, radius, stroke="#000", width=1.0)
    for a, label in zip(angles, labels):
        c.line(cx, cy, *at(a, radius), stroke=GRID, width=0.8)
        x, y = at(a, radius + 8)
        sx, cy_ = math.sin(a), math.cos(a)
        c.text(x, y, label, size=label_size, anchor="start" if sx > 0.2 else ("end" if sx < -0.2 else "middle"),
               valign="bottom" if cy_ > 0.2 else ("top" if cy_ < -0.2 else "middle"))
    if ring_labels:
        for v, text in zip(rings, tick_labels(rings)):
            r = (v - lo) / span * radius
            if 0 <= r <= radius:
                x, y = at(math.pi / n, r)
                c.text(x + 2, y, text, size=7, color=MUTED)
    for name, values, color in series:
        vals = np.asarray(values, dtype=float)
        pts = [at(a, float(np.clip((v - lo) / span, 0.0, 1.0)) * radius) if np.isfinite(v) else None
               for a, v in zip(angles, vals)]
        data = {"series": name}
        if all(p is not None for p in pts):
            c.polygon(pts, fill=color, opacity=0.12, data=data | {"values": ",".join(repr(float(v)) for v in vals)})
        # the outline, broken where a value is missing (the last axis joins the first)
        run: list[tuple[float, float]] = []
        for p in pts + pts[:1]:
            if p is None:
                if len(run) > 1:
                    c.polyline(run, stroke=color, width=1.8, data=data)
                run = []
            else:
                run.append(p)
        if len(run) > 1:
            c.polyline(run, stroke=color, width=1.8, data=data)
        for p in pts:
            if p is not None:
                c.circle(*p, 2.5, fill=color)


def _legend(c: Canvas, x: float, y: float, entries: Sequence[tuple[str, str]], size: float = 8.0,
            horizontal: bool = False) -> None:
    for label, color in entries:
        c.line(x, y, x + 18, y, stroke=color, width=2.2)
        c.text(x + 24, y, label, size=size)
        if horizontal:
            x += 24 + text_width(label, size) + 18
        else:
            y += LEGEND_STEP


def _legend_width(labels: Sequence[str], size: float = 8.0) -> float:
    return 24 + max((text_width(x, size) for x in labels), default=0.0)


# ---------------------------------------------------------------------------------------------
# cartesian axes
# ---------------------------------------------------------------------------------------------
def _y_axis(c: Canvas, x0: float, y0: float, w: float, h: float, ticks: Sequence[float],
            labels: Sequence[str] | None = None, log: bool = False, grid: bool = True):
    """A frame with horizontal grid lines and tick labels; returns value → y (clipped to the frame)."""
    lo, hi = (math.log10(ticks[0]), math.log10(ticks[-1])) if log else (ticks[0], ticks[-1])
    span = (hi - lo) or 1.0

    def y_of(v: float) -> float:
        t = ((math.log10(v) if log else v) - lo) / span
        return y0 + h - float(np.clip(t, 0.0, 1.0)) * h

    for t, text in zip(ticks, labels or tick_labels(ticks)):
        y = y_of(t)
        if grid:
            c.line(x0, y, x0 + w, y, stroke="#000", width=0.8, opacity=0.15)
        c.line(x0 - 3.5, y, x0, y, stroke="#000", width=0.8)
        c.text(x0 - 6, y, text, size=9, anchor="end")
    return y_of


def _frame(c: Canvas, x0: float, y0: float, w: float, h: float) -> None:
    c.rect(x0, y0, w, h, stroke="#000", stroke_width=0.8)


def _value_range(lo: float, hi: float, zoom_ok: bool) -> tuple[float, float]:
    """Bars start at 0, unless values lie close together far from zero (e.g. CLIP ~ 0.9): then the
    axis zooms in so differences are visible."""
    if zoom_ok and lo > 0 and hi > lo and (hi - lo) < 0.25 * hi:
        pad = 0.5 * (hi - lo)
        return lo - pad, hi + pad
    return min(0.0, lo), max(0.0, hi)


def _grouped_bars(c: Canvas, x0: float, y0: float, w: float, h: float, table: pd.DataFrame,
                  colors: dict[str, str]) -> None:
    vals = table.to_numpy(dtype=float)
    finite = vals[np.isfinite(vals)]
    lo, hi = _value_range(float(finite.min()) if finite.size else 0.0, float(finite.max()) if finite.size else 1.0,
                          zoom_ok=False)
    ticks = nice_ticks(lo, hi)
    y_of = _y_axis(c, x0, y0, w, h, ticks)
    groups = [str(g) for g in table.columns]
    slot = w / max(len(groups), 1)
    width = 0.8 * slot / max(len(table.index), 1)
    for gi, g in enumerate(groups):
        c.text(x0 + (gi + 0.5) * slot, y0 + h + 6, g, size=9, anchor="middle", valign="top")
        for i, (m, row) in enumerate(table.iterrows()):
            v = float(row.iloc[gi])
            if np.isfinite(v):
                x = x0 + gi * slot + 0.1 * slot + i * width
                c.rect(x, y_of(0.0), width, y_of(v) - y_of(0.0), fill=colors.get(m, TAB10[0]),
                       data={"method": m, "group": g, "value": v})
    _frame(c, x0, y0, w, h)


def radar_by_group(table: pd.DataFrame, path: Path, title: str, colors: dict[str, str], unit_range: bool) -> Path:
    """table: method × group values. Radar for >= 3 groups, grouped bars otherwise."""
    groups = [str(g) for g in table.columns]
    methods = [str(m) for m in table.index]
    legend_w = _legend_width(methods)
    if len(groups) >= 3:
        labels = [g.replace("_", "\n") for g in groups]
        ex, ey = _radar_label_extent(labels, 9)
        radius = 200.0
        cx, cy = 20 + ex + radius, 40 + ey + radius
        c = Canvas(cx + radius + ex + 20 + legend_w + 20, cy + radius + ey + 20)
        if unit_range:
            lo, hi = 0.0, 1.0
        else:
            finite = table.to_numpy(dtype=float)
            finite = finite[np.isfinite(finite)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            pad = 0.1 * (hi - lo if hi > lo else abs(hi) or 1.0)
            lo, hi = (min(0.0, lo - pad) if lo >= 0 else lo - pad), hi + pad
        rings = [t for t in nice_ticks(lo, hi, 5) if lo <= t <= hi]
        _radar(c, cx, cy, radius, labels, [(m, table.iloc[i].to_numpy(dtype=float), colors.get(m, TAB10[0]))
                                           for i, m in enumerate(methods)],
               lo, hi, rings, ring_labels=True, label_size=9)
        _legend(c, cx + radius + ex + 20, 50, [(m, colors.get(m, TAB10[0])) for m in methods])
    else:
        x0, y0, w, h = 60.0, 40.0, 460.0, 300.0
        c = Canvas(x0 + w + 20 + legend_w + 20, y0 + h + 40)
        _grouped_bars(c, x0, y0, w, h, table, colors)
        _legend(c, x0 + w + 20, y0 + 10, [(m, colors.get(m, TAB10[0])) for m in methods])
    c.text(c.width / 2, 16, title, size=11, anchor="middle")
    return _save(c, path)


def axis_label(lb: "Leaderboard", header: str, width: int = 14) -> str:
    """A short two-line label for a crowded axis: metric name, then its variant cut to `width`."""
    row = lb.columns[lb.columns["header"] == header]
    if row.empty:
        return header
    column, metric = str(row["column"].iloc[0]), str(row["metric"].iloc[0])
    variant = column[len(metric):].strip()[1:-1]
    name = metric.replace("_", " ")
    if variant:
        name += "\n" + (variant if len(variant) <= width else variant[: width - 1] + "…")
    return name


def radar_per_method(lb: "Leaderboard", path: Path) -> Path | None:
    """Fig. 12 layout: one panel per method, axes = metrics, one polygon per edit type."""
    norm = lb.edit_type_normalized
    if norm.empty or len(norm.columns) < 3:
        return None
    headers = list(norm.columns)
    methods = [m for m in lb.methods if m in norm.index.get_level_values(0)]
    edit_types = sorted(set(norm.index.get_level_values(1)))
    etype_colors = {e: SET2[i % len(SET2)] for i, e in enumerate(edit_types)}
    labels = [axis_label(lb, h) for h in headers]
    ex, ey = _radar_label_extent(labels, 7)
    radius = 130.0
    pw, ph = 2 * (radius + ex) + 20, 2 * (radius + ey) + 40
    ncols = min(4, len(methods))
    nrows = int(np.ceil(len(methods) / ncols))
    c = Canvas(max(pw * ncols, 480), 40 + ph * nrows + 40)
    rings = [0.25, 0.5, 0.75]
    for i, m in enumerate(methods):
        px, py = (i % ncols) * pw, 40 + (i // ncols) * ph
        cx, cy = px + pw / 2, py + 30 + ey + radius
        series = [(e, norm.loc[(m, e)].to_numpy(dtype=float), etype_colors[e]) for e in edit_types
                  if (m, e) in norm.index]
        _radar(c, cx, cy, radius, labels, series, 0.0, 1.0, rings, ring_labels=False, label_size=7)
        c.text(cx, py + 12, m, size=10, anchor="middle")
    entries = [(e, etype_colors[e]) for e in edit_types]
    legend_w = sum(24 + text_width(e, 8) + 18 for e in edit_types) - 18
    _legend(c, max(10.0, (c.width - legend_w) / 2), c.height - 20, entries, horizontal=True)
    c.text(c.width / 2, 18, "Per-method metrics by edit type (min–max normalised, 1 = best)", size=11,
           anchor="middle")
    return _save(c, path)


def bar_chart(lb: "Leaderboard", header: str, path: Path, colors: dict[str, str]) -> Path | None:
    cells = lb.cells[lb.cells["header"] == header].set_index("method").reindex(lb.methods)
    means = cells["mean"].to_numpy(dtype=float)
    if not np.isfinite(means).any():
        return None
    lo = cells["ci_low"].to_numpy(dtype=float)
    hi = cells["ci_high"].to_numpy(dtype=float)
    err = np.vstack([np.where(np.isfinite(lo), means - lo, 0.0), np.where(np.isfinite(hi), hi - means, 0.0)])
    err = np.clip(np.nan_to_num(err), 0.0, None)
    ok = np.isfinite(means)
    v_lo, v_hi = _value_range(float(np.min(means[ok] - err[0][ok])), float(np.max(means[ok] + err[1][ok])),
                              zoom_ok=ok.sum() > 1)
    ticks = nice_ticks(v_lo, v_hi)
    labels = tick_labels(ticks)
    names = [f"{m} (ref.)" if m in lb.references else m for m in lb.methods]
    row = lb.columns[lb.columns["header"] == header]
    unit = str(row["display_unit"].iloc[0]) if len(row) and row["display_unit"].iloc[0] else ""
    # a short title (the full header is the report's caption) so long variant labels never shrink the plot
    title = axis_label(lb, header, width=30) + (f" ({unit})" if unit else "") + f" {header.rsplit(' ', 1)[-1]}"

    slot = 42.0
    w = max(200.0, slot * len(lb.methods))
    label_w = [text_width(n, 8) for n in names]
    # x labels rotated 30°, right-aligned at their bar: they reach left by cos 30° of their length
    left = 14 + (18 if unit else 0) + max(text_width(t, 9) for t in labels) + 8
    left = max(left, max(0.866 * lw - (i + 0.5) * (w / len(names)) for i, lw in enumerate(label_w)) + 8)
    top = 14 + text_height(title, 10)
    h = 260.0
    bottom = 12 + 0.5 * max(label_w) + 8
    title_w = text_width(title, 10)
    title_x = max(left + w / 2, title_w / 2 + 8)
    c = Canvas(max(left + w + 16, title_x + title_w / 2 + 8), top + h + bottom)
    x0, y0 = left, top
    y_of = _y_axis(c, x0, y0, w, h, ticks, labels)
    step = w / len(lb.methods)
    bw = 0.8 * step
    best = {m for m, hh in getattr(lb, "_best", set()) if hh == header}
    base = min(max(0.0, ticks[0]), ticks[-1])
    for i, (m, name) in enumerate(zip(lb.methods, names)):
        xc = x0 + (i + 0.5) * step
        v = means[i]
        c.line(xc, y0 + h, xc, y0 + h + 3.5, stroke="#000", width=0.8)
        c.text(xc + 3, y0 + h + 8, name, size=8, anchor="end", valign="top", rotate=-30)
        if not np.isfinite(v):
            status = str(cells["status"].iloc[i])
            c.text(xc, y0 + h - 0.03 * h, status, size=7, anchor="start", color=MUTED, rotate=-90)
            continue
        data = {"method": m, "value": float(v), "ci-low": float(lo[i]), "ci-high": float(hi[i])}
        top_y, base_y = y_of(v), y_of(base)
        if m in lb.references:  # reference rows: hatched, never "best"
            c.rect(xc - bw / 2, base_y, bw, top_y - base_y, fill=c.hatch(colors[m]), data=data | {"reference": 1})
        else:
            c.rect(xc - bw / 2, base_y, bw, top_y - base_y, fill=colors[m], stroke="#000" if m in best else None,
                   stroke_width=1.5 if m in best else None, data=data | ({"best": 1} if m in best else {}))
        if err[0][i] > 0 or err[1][i] > 0:
            y1, y2 = y_of(v - err[0][i]), y_of(v + err[1][i])
            c.line(xc, y1, xc, y2, stroke="#000", width=1.2)
            for y in (y1, y2):
                c.line(xc - 4, y, xc + 4, y, stroke="#000", width=1.2)
    _frame(c, x0, y0, w, h)
    c.text(title_x, 8, title, size=10, anchor="middle", valign="top")
    if unit:
        c.text(x0 - 14 - max(text_width(t, 9) for t in labels), y0 + h / 2, unit, size=8, anchor="middle",
               rotate=-90)
    return _save(c, path)


def quality_runtime_scatter(lb: "Leaderboard", path: Path, colors: dict[str, str]) -> Path | None:
    eff = lb.efficiency.reindex(lb.methods)
    q = lb.aggregate["aggregate"].reindex(lb.methods).to_numpy(dtype=float)
    t = eff["total_s_median"].to_numpy(dtype=float)
    ok = np.isfinite(q) & np.isfinite(t) & (t > 0)
    if not ok.any():
        return None
    mem = eff["peak_memory_mb_median"].to_numpy(dtype=float)
    mem_ok = np.isfinite(mem)
    area = np.full(len(mem), 60.0)  # in points², as the survey's figure scales its markers
    if mem_ok.any():
        area[mem_ok] = 40 + 400 * mem[mem_ok] / max(float(mem[mem_ok].max()), 1e-9)
    radius = np.sqrt(area) / 2 * (100 / 72)
    x0, y0, w, h = 70.0, 34.0, 520.0, 330.0
    c = Canvas(x0 + w + 30 + max(text_width(m, 8) for m in lb.methods), y0 + h + 50)
    xt = log_ticks(float(t[ok].min()) / 1.5, float(t[ok].max()) * 1.5)
    q_ok = q[ok]
    pad = 0.1 * (float(q_ok.max() - q_ok.min()) or abs(float(q_ok.max())) or 1.0)
    yt = nice_ticks(float(q_ok.min()) - pad, float(q_ok.max()) + pad, 6)
    y_of = _y_axis(c, x0, y0, w, h, yt)
    lx, hx = math.log10(xt[0]), math.log10(xt[-1])

    def x_of(v: float) -> float:
        return x0 + (math.log10(v) - lx) / ((hx - lx) or 1.0) * w

    for v in xt:
        x = x_of(v)
        major = abs(math.log10(v) - round(math.log10(v))) < 1e-9
        c.line(x, y0, x, y0 + h, stroke="#000", width=0.8, opacity=0.15 if major else 0.07)
        c.line(x, y0 + h, x, y0 + h + (3.5 if major else 2), stroke="#000", width=0.8)
        c.text(x, y0 + h + 6, log_label(v), size=9 if major else 7, anchor="middle", valign="top",
               color="#000" if major else MUTED)
    for i, m in enumerate(lb.methods):
        if ok[i]:
            x, y = x_of(float(t[i])), y_of(float(q[i]))
            c.circle(x, y, float(radius[i]), fill=colors[m], opacity=0.75, stroke="#000", width=0.5,
                     data={"method": m, "value": float(q[i]), "seconds": float(t[i]),
                           "peak-memory-mb": float(mem[i]) if mem_ok[i] else "nan"})
            c.text(x + 7, y - 7, m, size=8)
    _frame(c, x0, y0, w, h)
    c.text(x0 + w / 2, y0 + h + 34, "median pre-processing + generation time per edit (s, log)", size=9,
           anchor="middle")
    c.text(18, y0 + h / 2, "aggregate score (↑)", size=9, anchor="middle", rotate=-90)
    c.text(x0 + w / 2, 16, "Quality vs runtime (marker area ∝ peak memory)", size=10, anchor="middle")
    return _save(c, path)


def write_plots(lb: "Leaderboard", out_dir: str | Path, radar_columns: Iterable[str] = ()) -> dict[str, Path]:
    """All plots into out_dir; keys: radar_edit_type, radar_methods, radar:<header>, bar:<header>, scatter.

    A plot that cannot be drawn is left out with a warning: plots never make an export fail.
    """
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    if lb.is_empty or lb.columns.empty:
        return paths
    if lb.sections:  # one set of plots per task, each on its paired comparison
        for task, board in lb.sections.items():
            for key, p in write_plots(board, out / f"task-{task}", radar_columns).items():
                paths[f"{task}/{key}"] = p
        return paths
    from bench.report.formats import best_cells
    from bench.report.incremental import digest, up_to_date

    lb._best = best_cells(lb)  # type: ignore[attr-defined]
    common = _code_key(lb)
    for key, path, inputs, make in _plot_jobs(lb, out, list(radar_columns)):
        try:
            # a plot whose inputs (and drawing code) are unchanged is not drawn again
            input_key = digest(common, key, inputs())
            if up_to_date(path, input_key):
                paths[key] = path
                continue
            _INPUT_KEY[str(path)] = input_key
            p = make()
        except Exception as e:  # noqa: BLE001
            import warnings

            warnings.warn(f"plot {key} skipped: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
            continue
        finally:
            _INPUT_KEY.pop(str(path), None)
        if p is not None:
            paths[key] = p
    return paths


def _code_key(lb: "Leaderboard") -> str:
    """What every plot depends on besides its data: the drawing code, the methods (colours)."""
    import bench.report.svg
    from bench.report.incremental import digest

    return digest(Path(__file__).read_bytes(), Path(bench.report.svg.__file__).read_bytes(), lb.methods, lb.references)


def _plot_jobs(lb: "Leaderboard", out: Path, radar_columns: list[str]) -> list[tuple[str, Path, Any, Any]]:
    """(key, path, inputs, make): `inputs()` returns everything the plot is drawn from (its content
    key), `make()` draws it."""
    from bench.report.incremental import digest
    from bench.report.formats import breakdown_wide

    jobs: list[tuple[str, Path, Any, Any]] = []
    memo: dict[str, Any] = {}

    def colors() -> dict[str, Any]:  # follow from lb.methods (in the code key); made on first drawing only
        if "colors" not in memo:
            memo["colors"] = method_colors(lb.methods)
        return memo["colors"]

    def board() -> str:  # the board-wide plots depend on (nearly) every table; a bar chart only on its own column
        if "board" not in memo:
            memo["board"] = digest(lb.cells, lb.columns, lb.by_edit_type, lb.efficiency, lb.aggregate,
                                   sorted(lb.settings.get("aggregate_exclude", ())))
        return memo["board"]

    def radar_agg() -> Path | None:
        agg = lb.edit_type_aggregate
        if agg.empty:
            return None
        return radar_by_group(agg, out / "radar_edit_type.svg", "Aggregate score by edit type (1 = best)", colors(),
                              unit_range=True)

    def radar_col(header: str) -> Path | None:
        w = breakdown_wide(lb, "edit_type", header)
        if w.empty:
            return None
        return radar_by_group(w, out / f"radar_edit_type_{slug(header)}.svg", f"{header} by edit type", colors(),
                              unit_range=False)

    def bar_inputs(h: str) -> tuple:
        best = sorted(m for m, hh in getattr(lb, "_best", set()) if hh == h)
        return lb.cells[lb.cells["header"] == h], lb.columns[lb.columns["header"] == h], best

    jobs.append(("radar_edit_type", out / "radar_edit_type.svg", board, radar_agg))
    jobs += [(f"radar:{h}", out / f"radar_edit_type_{slug(h)}.svg", lambda h=h: breakdown_wide(lb, "edit_type", h),
              lambda h=h: radar_col(h)) for h in radar_columns]
    jobs.append(("radar_methods", out / "radar_methods.svg", board,
                 lambda: radar_per_method(lb, out / "radar_methods.svg")))
    for h in lb.columns["header"]:
        path = out / f"bar_{slug(h.rsplit(' ', 1)[0])}.svg"
        jobs.append((f"bar:{h}", path, lambda h=h: bar_inputs(h), lambda h=h, path=path: bar_chart(lb, h, path, colors())))
    jobs.append(("scatter", out / "quality_vs_runtime.svg", board,
                 lambda: quality_runtime_scatter(lb, out / "quality_vs_runtime.svg", colors())))
    return jobs
