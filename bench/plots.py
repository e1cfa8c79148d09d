"""Leaderboard plots as PNG (matplotlib with the Agg backend, imported lazily).

* radar by edit type: one polygon per method, axes = edit types, value = the aggregate score per
  edit type (or one metric column's means);
* radar per method (the survey's Fig. 12 layout): one small panel per method, axes = metrics
  (min–max normalised over all method × edit-type means, 1 = best), one polygon per edit type;
* one bar chart per metric column (bootstrap CI as error bars);
* quality vs runtime scatter (marker area ∝ peak memory, like the survey's Fig. 11).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from bench.leaderboard import Leaderboard


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "metric"


def method_colors(methods: Iterable[str]) -> dict[str, Any]:
    plt = _plt()
    methods = list(methods)
    cmap = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


#: the content key of the plot being drawn (set by write_plots), stored in the PNG's text chunk
_INPUT_KEY: dict[str, str] = {}


def _save(fig: Any, path: Path) -> Path:
    from bench.incremental import KEY_FIELD

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    key = _INPUT_KEY.get(str(path))
    fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png", metadata={KEY_FIELD: key} if key else None)
    _plt().close(fig)
    tmp.replace(path)
    return path


def _radar_axes(fig: Any, n_axes: int, pos: Any = 111) -> tuple[Any, np.ndarray]:
    ax = fig.add_subplot(*(pos if isinstance(pos, tuple) else (pos,)), projection="polar")
    angles = np.linspace(0, 2 * np.pi, n_axes, endpoint=False)
    ax.set_theta_offset(np.pi / 2)
    ax.set_theta_direction(-1)
    return ax, angles


def _polygon(ax: Any, angles: np.ndarray, values: np.ndarray, color: Any, label: str) -> None:
    vals = np.asarray(values, dtype=float)
    a = np.concatenate([angles, angles[:1]])
    v = np.concatenate([vals, vals[:1]])
    # a missing value leaves a gap (never drawn as 0, which would read as "worst")
    ax.plot(a, v, color=color, linewidth=1.8, label=label, marker="o", markersize=3)
    if np.isfinite(vals).all():
        ax.fill(a, v, color=color, alpha=0.12)


def _align_radar_labels(ax: Any, angles: np.ndarray) -> None:
    """Labels on the left/right of a radar grow away from the circle instead of across it."""
    for label, angle in zip(ax.get_xticklabels(), angles):
        x = np.sin(angle)  # theta runs clockwise from the top
        label.set_horizontalalignment("left" if x > 0.2 else ("right" if x < -0.2 else "center"))


def radar_by_group(table: pd.DataFrame, path: Path, title: str, colors: dict[str, Any],
                   unit_range: bool) -> Path:
    """table: method × group values. Radar for >= 3 groups, grouped bars otherwise."""
    plt = _plt()
    groups = [str(g) for g in table.columns]
    if len(groups) >= 3:
        fig = plt.figure(figsize=(6.4, 6.0))
        ax, angles = _radar_axes(fig, len(groups))
        for m, row in table.iterrows():
            _polygon(ax, angles, row.to_numpy(dtype=float), colors.get(m), str(m))
        ax.set_xticks(angles)
        ax.set_xticklabels([g.replace("_", "\n") for g in groups], fontsize=9)
        _align_radar_labels(ax, angles)
        if unit_range:
            ax.set_ylim(0, 1.0)
        else:
            finite = table.to_numpy(dtype=float)
            finite = finite[np.isfinite(finite)]
            if finite.size:
                lo, hi = float(finite.min()), float(finite.max())
                pad = 0.1 * (hi - lo if hi > lo else abs(hi) or 1.0)
                ax.set_ylim(min(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(loc="upper left", bbox_to_anchor=(1.05, 1.05), fontsize=8, frameon=False)
    else:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        n = max(len(table.index), 1)
        width = 0.8 / n
        x = np.arange(len(groups))
        for i, (m, row) in enumerate(table.iterrows()):
            ax.bar(x + i * width - 0.4 + width / 2, row.to_numpy(dtype=float), width, color=colors.get(m), label=str(m))
        ax.set_xticks(x)
        ax.set_xticklabels(groups)
        ax.legend(fontsize=8, frameon=False)
        ax.grid(axis="y", alpha=0.3)
    ax.set_title(title, fontsize=11, pad=18)
    return _save(fig, path)


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
    from bench.leaderboard import _aggregate_columns, normalize

    plt = _plt()
    cols = _aggregate_columns(lb.columns, lb.settings.get("aggregate_exclude", ()))
    t = lb.by_edit_type[lb.by_edit_type["header"].isin(cols["header"])]
    if t.empty:
        return None
    headers = [h for h in cols["header"] if h in set(t["header"])]
    if len(headers) < 3:
        return None
    t = t[~t["method"].isin(lb.references)]  # reference rows are never normalised
    if t.empty:
        return None
    wide = t.pivot_table(index=["method", "edit_type"], columns="header", values="mean").reindex(columns=headers)
    norm, _ = normalize(wide, dict(zip(cols["header"], cols["higher_is_better"])))
    methods = [m for m in lb.methods if m in norm.index.get_level_values(0)]
    edit_types = sorted(set(norm.index.get_level_values(1)))
    etype_colors = {e: plt.get_cmap("Set2")(i % 8) for i, e in enumerate(edit_types)}
    ncols = min(4, len(methods))
    nrows = int(np.ceil(len(methods) / ncols))
    fig = plt.figure(figsize=(4.8 * ncols, 4.6 * nrows + 0.8))
    for i, m in enumerate(methods):
        ax, angles = _radar_axes(fig, len(headers), (nrows, ncols, i + 1))
        for e in edit_types:
            if (m, e) in norm.index:
                _polygon(ax, angles, norm.loc[(m, e)].to_numpy(dtype=float), etype_colors[e], e)
        ax.set_ylim(0, 1.0)
        ax.set_xticks(angles)
        ax.set_xticklabels([axis_label(lb, h) for h in headers], fontsize=7)
        _align_radar_labels(ax, angles)
        ax.tick_params(axis="x", pad=10)
        ax.set_yticklabels([])
        ax.set_title(m, fontsize=10, pad=14)
    handles = [plt.Line2D([0], [0], color=etype_colors[e], lw=2) for e in edit_types]
    fig.legend(handles, edit_types, loc="lower center", ncol=min(len(edit_types), 6), fontsize=8, frameon=False)
    fig.suptitle("Per-method metrics by edit type (min–max normalised, 1 = best)", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    return _save(fig, path)


def bar_chart(lb: "Leaderboard", header: str, path: Path, colors: dict[str, Any]) -> Path | None:
    plt = _plt()
    cells = lb.cells[lb.cells["header"] == header].set_index("method").reindex(lb.methods)
    means = cells["mean"].to_numpy(dtype=float)
    if not np.isfinite(means).any():
        return None
    lo = cells["ci_low"].to_numpy(dtype=float)
    hi = cells["ci_high"].to_numpy(dtype=float)
    err = np.vstack([np.where(np.isfinite(lo), means - lo, 0.0), np.where(np.isfinite(hi), hi - means, 0.0)])
    err = np.clip(np.nan_to_num(err), 0.0, None)
    fig, ax = plt.subplots(figsize=(max(3.2, 0.55 * len(lb.methods) + 1.6), 3.4))
    x = np.arange(len(lb.methods))
    bars = ax.bar(x, np.nan_to_num(means), yerr=err, capsize=3, color=[colors[m] for m in lb.methods])
    best = {m for m, h in getattr(lb, "_best", set()) if h == header}
    for bar, m in zip(bars, lb.methods):
        if m in lb.references:  # reference rows: hatched, never "best"
            bar.set_hatch("//")
            bar.set_alpha(0.45)
        elif m in best:
            bar.set_edgecolor("k")
            bar.set_linewidth(1.5)
    for xi, (m, c) in zip(x, cells.iterrows()):
        if not np.isfinite(c["mean"]):
            # axes-fraction y: data coordinates could lie far outside a zoomed y-range
            ax.text(xi, 0.03, str(c["status"]), ha="center", va="bottom", fontsize=7, rotation=90, color="0.4",
                    transform=ax.get_xaxis_transform())
    ax.set_xticks(x)
    ax.set_xticklabels([f"{m} (ref.)" if m in lb.references else m for m in lb.methods], rotation=30, ha="right",
                       fontsize=8)
    # a short title (the full header is the report's caption) so long variant labels never shrink the plot
    row = lb.columns[lb.columns["header"] == header]
    unit = str(row["display_unit"].iloc[0]) if len(row) and row["display_unit"].iloc[0] else ""
    ax.set_title(axis_label(lb, header, width=30) + (f" ({unit})" if unit else "") + f" {header.rsplit(' ', 1)[-1]}",
                 fontsize=10)
    if unit:
        ax.set_ylabel(unit, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ok = np.isfinite(means)
    lo_all = float(np.min(means[ok] - err[0][ok]))
    hi_all = float(np.max(means[ok] + err[1][ok]))
    if ok.sum() > 1 and lo_all > 0 and hi_all > lo_all and (hi_all - lo_all) < 0.25 * hi_all:
        # values close together far from zero (e.g. CLIP ~ 0.9): zoom so differences are visible
        pad = 0.5 * (hi_all - lo_all)
        ax.set_ylim(lo_all - pad, hi_all + pad)
    ax.ticklabel_format(axis="y", useOffset=False)
    return _save(fig, path)


def quality_runtime_scatter(lb: "Leaderboard", path: Path, colors: dict[str, Any]) -> Path | None:
    plt = _plt()
    eff = lb.efficiency.reindex(lb.methods)
    q = lb.aggregate["aggregate"].reindex(lb.methods).to_numpy(dtype=float)
    t = eff["total_s_median"].to_numpy(dtype=float)
    ok = np.isfinite(q) & np.isfinite(t) & (t > 0)
    if not ok.any():
        return None
    mem = eff["peak_memory_mb_median"].to_numpy(dtype=float)
    mem_ok = np.isfinite(mem)
    size = np.full(len(mem), 60.0)
    if mem_ok.any():
        size[mem_ok] = 40 + 400 * mem[mem_ok] / max(float(mem[mem_ok].max()), 1e-9)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, m in enumerate(lb.methods):
        if ok[i]:
            ax.scatter(t[i], q[i], s=size[i], color=colors[m], alpha=0.75, edgecolor="k", linewidth=0.5)
            ax.annotate(m, (t[i], q[i]), xytext=(5, 5), textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("median pre-processing + generation time per edit (s, log)")
    ax.set_ylabel("aggregate score (↑)")
    ax.set_title("Quality vs runtime (marker area ∝ peak memory)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


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
    from bench.leaderboard import best_cells

    from bench.incremental import digest, up_to_date

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
            _plt().close("all")
            continue
        finally:
            _INPUT_KEY.pop(str(path), None)
        if p is not None:
            paths[key] = p
    return paths


def _code_key(lb: "Leaderboard") -> str:
    """What every plot depends on besides its data: this module's code, matplotlib, the methods (colours)."""
    from importlib.metadata import version

    from bench.incremental import digest

    # the version from the package metadata: an unchanged plot does not even import matplotlib
    return digest(Path(__file__).read_bytes(), version("matplotlib"), lb.methods, lb.references)


def _plot_jobs(lb: "Leaderboard", out: Path, radar_columns: list[str]) -> list[tuple[str, Path, Any, Any]]:
    """(key, path, inputs, make): `inputs()` returns everything the plot is drawn from (its content
    key), `make()` draws it."""
    from bench.incremental import digest
    from bench.leaderboard import breakdown_wide, per_group_aggregate

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
        agg = per_group_aggregate(lb, "edit_type")
        if agg.empty:
            return None
        return radar_by_group(agg, out / "radar_edit_type.png", "Aggregate score by edit type (1 = best)", colors(),
                              unit_range=True)

    def radar_col(header: str) -> Path | None:
        w = breakdown_wide(lb, "edit_type", header)
        if w.empty:
            return None
        return radar_by_group(w, out / f"radar_edit_type_{slug(header)}.png", f"{header} by edit type", colors(),
                              unit_range=False)

    def bar_inputs(h: str) -> tuple:
        best = sorted(m for m, hh in getattr(lb, "_best", set()) if hh == h)
        return lb.cells[lb.cells["header"] == h], lb.columns[lb.columns["header"] == h], best

    jobs.append(("radar_edit_type", out / "radar_edit_type.png", board, radar_agg))
    jobs += [(f"radar:{h}", out / f"radar_edit_type_{slug(h)}.png", lambda h=h: breakdown_wide(lb, "edit_type", h),
              lambda h=h: radar_col(h)) for h in radar_columns]
    jobs.append(("radar_methods", out / "radar_methods.png", board,
                 lambda: radar_per_method(lb, out / "radar_methods.png")))
    for h in lb.columns["header"]:
        path = out / f"bar_{slug(h.rsplit(' ', 1)[0])}.png"
        jobs.append((f"bar:{h}", path, lambda h=h: bar_inputs(h), lambda h=h, path=path: bar_chart(lb, h, path, colors())))
    jobs.append(("scatter", out / "quality_vs_runtime.png", board,
                 lambda: quality_runtime_scatter(lb, out / "quality_vs_runtime.png", colors())))
    return jobs
