"""The computed leaderboard as text: display strings, Markdown, JSON and the CSV tables.

Every function here reads a `Leaderboard` (bench.report.table) and formats what it holds; none
computes a statistic, a rank or a unit conversion (the table did that once).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.report.table import EFFICIENCY_FAMILIES, Leaderboard
from bench.store.pairing import task_title


# --- display strings ----------------------------------------------------------------------------------------------
def fmt_value(x: Any, digits: int = 4) -> str:
    """Significant digits, no exponent for ordinary magnitudes; '—' for NaN."""
    if x is None:
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(xf):
        return "—" if math.isnan(xf) else ("∞" if xf > 0 else "−∞")
    if abs(xf) >= 10**digits:
        return f"{xf:.0f}"
    return f"{xf:.{digits}g}"


def _quality_headers(lb: Leaderboard) -> list[str]:
    if lb.columns.empty:
        return []
    return list(lb.columns.loc[~lb.columns["metric_family"].isin(EFFICIENCY_FAMILIES), "header"])


def computed_headers(lb: Leaderboard, headers: list[str] | None = None) -> list[str]:
    """Quality headers with at least one value on this board (the rest are listed, not drawn)."""
    heads = _quality_headers(lb) if headers is None else headers
    if lb.cells.empty:
        return []
    n = lb.cells.groupby("header")["n"].sum()
    return [h for h in heads if n.get(h, 0) > 0]


def not_computed_headers(lb: Leaderboard) -> list[str]:
    have = set(computed_headers(lb))
    return [h for h in _quality_headers(lb) if h not in have]


def _efficiency_headers(lb: Leaderboard) -> list[str]:
    if lb.columns.empty:
        return []
    return list(lb.columns.loc[lb.columns["metric_family"].isin(EFFICIENCY_FAMILIES), "header"])


def method_display_name(lb: Leaderboard, m: str) -> str:
    return f"{m} (reference)" if m in lb.references else m


def _rank_text(lb: Leaderboard, m: str) -> str:
    if m in lb.references:
        return "ref"
    a = lb.aggregate.loc[m] if m in lb.aggregate.index else None
    if a is None or not np.isfinite(a["aggregate"]):
        return "—"
    if a.get("claim", "") == "n too small":
        return "n too small"
    rank = int(a["rank_compared"]) if "rank_compared" in a and np.isfinite(a["rank_compared"]) else int(a["rank"])
    return "1" if rank == 1 else (f"≈1 ({rank})" if bool(a.get("tie_best", False)) else str(rank))


def display_table(lb: Leaderboard, with_ci: bool = True, headers: list[str] | None = None,
                  unpaired: bool = False, ranks: bool = True) -> pd.DataFrame:
    """A table as strings for Markdown/HTML: values in display units, '± CI', 'skipped' for empty
    cells, `**best**`-free (renderers mark `best`), † = not significantly different from the best.

    Default columns: the quality metrics of the main (paired) table; `unpaired` uses the per-method
    means over all their samples; `headers` picks columns (e.g. the efficiency ones)."""
    cells = lb.unpaired_cells if (unpaired and lb.paired) else lb.cells
    heads = computed_headers(lb) if headers is None else headers
    out = pd.DataFrame(index=pd.Index([method_display_name(lb, m) for m in lb.methods], name="method"))
    if ranks and not unpaired:
        out["rank"] = [_rank_text(lb, m) for m in lb.methods]
        out["aggregate ↑"] = [fmt_value(lb.aggregate.loc[m, "aggregate"], 3) for m in lb.methods]
    cell_idx = cells.set_index(["method", "header"]) if len(cells) else None
    for header in heads:
        vals = []
        for m in lb.methods:
            c = cell_idx.loc[(m, header)]
            if c["n"] == 0:
                vals.append({"not_applicable": "n/a", "missing": "missing"}.get(c["status"], str(c["status"])))
                continue
            s = fmt_value(c["mean"])
            if with_ci and np.isfinite(c["ci_low"]):
                s += f" ± {fmt_value((c['ci_high'] - c['ci_low']) / 2, 2)}"
            if c["status"] == "partial":
                s += "*"
            if (not unpaired and "tie_best" in c and bool(c["tie_best"]) and not bool(c.get("best", False))
                    and not c.get("claim", "")):  # "n too small" / "degenerate": no claim either way
                s += " †"
            vals.append(s)
        out[header] = vals
    counts = (lb.unpaired_counts if unpaired else lb.counts)[heads] if len(cells) else pd.DataFrame()
    out["n samples"] = [int(x) for x in counts.max(axis=1)] if len(heads) and len(counts) else [0] * len(lb.methods)
    return out


def best_cells(lb: Leaderboard) -> set[tuple[str, str]]:
    """(method, header) of the best compared method per column (what renderers bold)."""
    if lb.cells.empty or "best" not in lb.cells:
        return set()
    b = lb.cells[lb.cells["best"] & ~lb.cells["reference"] & (lb.cells["n"] > 0)]
    return set(zip(b["method"], b["header"]))


def _md_escape(x: Any, cell: bool = True) -> str:
    """Text safe in a Markdown table cell or heading (bench.api.markdown_text)."""
    from bench.api.markdown_text import md_escape

    return md_escape(x)


def markdown_table(df: pd.DataFrame, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency); every cell escaped."""
    frame = df.reset_index() if index else df
    headers = [_md_escape(c) for c in frame.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_md_escape(fmt_value(v) if isinstance(v, float) else v) for v in row) + " |")
    return "\n".join(lines)


def breakdown_wide(lb: Leaderboard, by: str, header: str, display: bool = False) -> pd.DataFrame:
    """method × group means of one column (already in display units; `display` kept for callers)."""
    t = lb.by_edit_type if by == "edit_type" else lb.by_category
    t = t[t["header"] == header]
    if t.empty:
        return pd.DataFrame()
    w = t.pivot(index="method", columns=by, values="mean")
    w.columns.name = None
    w = w.reindex([m for m in lb.methods if m in w.index])
    if display:
        w.index = [method_display_name(lb, m) for m in w.index]
        w.index.name = "method"
    return w


def status_display(lb: Leaderboard) -> pd.DataFrame:
    t = lb.status.copy()
    if t.empty:
        return t
    t["count"] = [str(c) if c else "—" for c in t["count"]]
    return t[["method", "scope", "column", "status", "count", "message"]]


def _section_markdown(lb: Leaderboard, level: str) -> list[str]:
    title = task_title(lb.task)
    s = lb.settings
    compared = ", ".join(lb.compared()) or "none"
    if lb.paired:
        parts = [f"{level} {_md_escape(title[0].upper() + title[1:])}: paired comparison", "",
                 f"Paired samples: n = {s['n_paired']} of {s['n_samples']} (samples every compared method finished; "
                 f"compared: {_md_escape(compared)}; reference rows: {_md_escape(', '.join(lb.references) or 'none')}).", ""]
    else:
        parts = [f"{level} {_md_escape(title[0].upper() + title[1:])}: unpaired means", "",
                 "Each method over all of its own samples (not a paired comparison).", ""]
    for r in s.get("paired_shrink") or []:
        parts += [f"Paired set shrunk by {_md_escape(r['method'])}: it finished {r['n_finished']} of {s['n_samples']} "
                  f"samples; without it the others are compared on {r['n_without']} (`videditbench leaderboard RUN "
                  f"--exclude-methods {_md_escape(r['method'])}`).", ""]
    parts += [markdown_table(display_table(lb)), ""]
    gaps = lb.aggregate.loc[[m for m in lb.compared() if m in lb.aggregate.index], "gap_sd"] \
        if "gap_sd" in lb.aggregate else pd.Series(dtype=float)
    if np.isfinite(gaps.astype(float)).any():
        shown = ", ".join(f"{_md_escape(m)} {fmt_value(g, 2)}" for m, g in gaps.items() if np.isfinite(g))
        parts += [f"Gap to the best, in per-sample standard deviations (mean over metric families; the aggregate's "
                  f"min–max scale shows order, not size): {shown}.", ""]
    missing = not_computed_headers(lb)
    if missing:
        parts += [f"Not computed for any method here (reasons and fixes in Status): {_md_escape(', '.join(missing))}.", ""]
    if s.get("unequal_n"):
        parts += [f"Note: methods were scored on different numbers of samples in {_md_escape(', '.join(s['unequal_n']))} "
                  "(see Sample counts); compare those columns with care.", ""]
    shown = computed_headers(lb) + computed_headers(lb, _efficiency_headers(lb))
    parts += [f"{level}# Sample counts", "",
              markdown_table(lb.counts[shown].rename(index=lambda m: method_display_name(lb, m))), ""]
    if lb.paired:
        parts += [f"{level}# Unpaired means (each method over all its own samples; not comparable across methods)", "",
                  markdown_table(display_table(lb, unpaired=True)), ""]
    return parts


def to_markdown(lb: Leaderboard) -> str:
    parts = ["# Leaderboard", ""]
    if lb.is_empty:
        parts += ["No results: the store has no edits and no scores yet. Run `videditbench run` first.", ""]
        return "\n".join(parts)
    parts += [
        "Means over samples in display units (the unit is in the header, e.g. ×10⁻¹: the stored value is the shown "
        "value × 10⁻¹; set-level metrics: one value per method); ± is the half-width of the "
        f"{int(lb.settings['ci_level'] * 100)}% bootstrap CI ({lb.settings['bootstrap']} resamples); "
        "`*` = some samples failed (see Status); ↑/↓ = higher/lower is better; "
        "† = not significantly different from the best method in that column.", "",
        lb.settings["pairing_doc"], "", lb.settings["rank_doc"], "",
    ]
    for board in lb.task_boards():
        parts += _section_markdown(board, "##")
    if lb.sections:
        parts += ["## Unpaired means over all tasks (each method over all its own samples)", "",
                  markdown_table(display_table(lb, ranks=False)), ""]
    parts += ["## Aggregate score", "", lb.settings["aggregate_doc"] + " Min/max are in display units.", ""]
    for board in lb.task_boards():
        if len(board.normalization):
            parts += [markdown_table(board.normalization.assign(task=board.task), index=False), ""]
    parts += ["## Efficiency", "", "Medians over successful edits (seconds, MB; see docs/leaderboard.md for how "
              "memory is measured).", "", markdown_table(lb.efficiency), ""]
    eff = _efficiency_headers(lb)
    if eff:
        parts += [markdown_table(display_table(lb, headers=eff, ranks=False)), ""]
    for by, title in (("edit_type", "edit type"), ("category", "category")):
        for board in lb.task_boards():
            table = board.by_edit_type if by == "edit_type" else board.by_category
            if table.empty:
                continue
            parts += [f"## By {title}" + (f" ({_md_escape(board.task)}-guided)" if board.task else ""), ""]
            for header in _quality_headers(board):  # efficiency breakdowns: by_edit_type.csv
                w = breakdown_wide(board, by, header, display=True)
                if not w.empty:
                    parts += [f"### {_md_escape(header)}", "", markdown_table(w), ""]
    parts += ["## Status: skipped, failed, not applicable, missing, dropped from the paired set", ""]
    # per task only: a multi-task run's all-sample board would repeat every row
    st = pd.concat([status_display(b).assign(task=b.task) for b in lb.task_boards()], ignore_index=True)
    parts += [markdown_table(st, index=False) if len(st) else "Everything ran: no skipped or failed rows.", ""]
    return "\n".join(parts)


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def _records(df: pd.DataFrame, index: bool = False) -> list[dict]:
    frame = df.reset_index() if index else df
    return [_json_safe(r) for r in frame.to_dict(orient="records")]


def to_json_dict(lb: Leaderboard) -> dict[str, Any]:
    """Everything in display units (see `columns[].display_scale`: stored value = shown / scale)."""
    out = {
        "task": lb.task,
        "paired": lb.paired,
        "methods": lb.methods,
        "references": lb.references,
        "columns": _records(lb.columns),
        "cells": _records(lb.cells),
        "unpaired_cells": _records(lb.unpaired_cells),
        "aggregate": _records(lb.aggregate, index=True),
        "normalization": _records(lb.normalization),
        "by_edit_type": _records(lb.by_edit_type),
        "by_category": _records(lb.by_category),
        "efficiency": _records(lb.efficiency, index=True),
        "status": _records(lb.status),
        "dropped": _records(lb.dropped),
        "settings": _json_safe(lb.settings),
    }
    if lb.sections:
        out["sections"] = {t: to_json_dict(b) for t, b in lb.sections.items()}
    return out


def long_table(lb: Leaderboard) -> pd.DataFrame:
    """leaderboard.csv: one row per (task, method, column) of every comparison table, in display units."""
    frames = []
    for b in lb.task_boards():
        agg = b.aggregate.reset_index()[["method", "aggregate", "rank", "n_families", "reference"]]
        agg = agg.rename(columns={"aggregate": "aggregate", "rank": "aggregate_rank"})
        c = b.cells.merge(agg.drop(columns="reference"), on="method", how="left")
        c = c.merge(b.columns[["column", "display_scale", "display_unit"]], on="column", how="left")
        c.insert(0, "task", b.task)
        c.insert(1, "paired", b.paired)
        frames.append(c)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def wide_table(lb: Leaderboard) -> pd.DataFrame:
    """leaderboard_wide.csv: task × method rows, one column per header (the unit is in the header)."""
    frames = []
    for b in lb.task_boards():
        w = b.main[_quality_headers(b)].copy()
        w.insert(0, "aggregate", b.aggregate["aggregate"])
        w.insert(0, "reference", [m in b.references for m in w.index])
        w.insert(0, "task", b.task)
        frames.append(w)
    return pd.concat(frames) if frames else pd.DataFrame()
