"""Leaderboard tables from stored rows (pandas): means, counts, CIs, breakdowns, efficiency, status.

Input contract (what `bench.store.results.ResultStore.scores_frame()` / `edits_frame()` return):

* scores: one row per stored value — method, method_key, sample_uid, suite, video_id, edit_id,
  edit_type, category, task, metric, metric_family, variant_id, variant_label, value, status,
  message, higher_is_better, value_min, value_max, level.
* edits: one row per (method, sample) — method, method_key, sample_uid, …, status, message,
  output_dir, source_dir, prompt, preprocess_s, generate_s, peak_memory_mb.

Rules that keep the numbers honest:

* A *column* is one (metric, variant). Values computed with different variants are never averaged
  together: a metric stored under several variant ids becomes several columns, labelled by the
  options in which the variants differ.
* A method name stored with several configurations (method_key) becomes several rows
  (`name#<key prefix>`), for the same reason.
* Every (method, column) cell that is not fully `ok` shows in the status table with its count and
  reason (e.g. the weights download command); a method that has no value at all for a column
  another method has is reported as `missing` with the edit failures that explain it.

Fair comparison (documented in `PAIRING_DOC`): per task (text-guided, image-guided, subject-driven)
the main table uses only the samples every compared method finished (the paired set, `bench.store.pairing`);
a column's mean is over the paired samples on which every compared method has a value, so all
compared methods are averaged over the same samples. Reference methods (`source`) are shown and
marked but never normalised, ranked, bolded or aggregated. Per-method means over all their own
samples stay in the `unpaired` table. Ranks carry a paired bootstrap (see `RANK_DOC`).

Units: every value is converted once, on input, to the metric's display unit (its `display_scale`
metadata, e.g. warp error ×10⁻¹); all tables, exports and plots show the same number.

Aggregate score (documented in `AGGREGATE_DOC`): each column is min–max normalised over methods
(x − min) / (max − min), flipped to 1 − that when lower is better, so 1 = best method and 0 = worst;
a column on which all methods tie gives 0.5. Normalised values are averaged first within a metric
family (its variants) and then across families, so a metric stored under several variants does not
get extra weight. Only main outputs (metric == metric_family) enter it; efficiency metrics and any
family in `aggregate_exclude` are left out. The min/max used are exported as the normalisation table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

STATUSES = ("ok", "error", "skipped", "not_applicable")

SCORE_COLUMNS: dict[str, Any] = {
    "run_id": "", "method": "", "method_key": "", "sample_uid": "", "suite": "", "video_id": "",
    "edit_id": "", "edit_type": "", "category": "", "task": "", "metric": "", "metric_family": "",
    "variant_id": "", "variant_label": "", "value": np.nan, "status": "ok", "message": "",
    "higher_is_better": True, "value_min": -np.inf, "value_max": np.inf, "level": "sample",
}
EDIT_COLUMNS: dict[str, Any] = {
    "method": "", "method_key": "", "sample_uid": "", "suite": "", "video_id": "", "edit_id": "",
    "edit_type": "", "category": "", "task": "", "status": "ok", "message": "", "output_dir": None,
    "source_dir": None, "prompt": "", "method_config": "", "preprocess_s": np.nan, "generate_s": np.nan, "peak_memory_mb": np.nan,
}

#: metric families that measure cost, not quality: never part of the aggregate score
EFFICIENCY_FAMILIES = frozenset({"generation_time", "preprocess_time", "peak_memory"})

PAIRING_DOC = (
    "Paired comparison: each task's table uses only the samples that every compared method finished "
    "(n below; dropped samples and the reason are in Status), and a column's mean is over the paired "
    "samples on which every compared method has a value. Reference rows (e.g. `source`, the unedited "
    "input) are shown for orientation only: never normalised, ranked, bolded or aggregated."
)
#: fewest paired samples a difference, rank or best cell is claimed from (a bootstrap of fewer
#: samples has too few distinct resamples: of 1 sample, a zero-width interval by construction)
MIN_PAIRED_N = 5

RANK_DOC = (
    "Rank uncertainty: paired percentile bootstrap over the paired samples (the same resampled samples "
    "for every method), {n_boot} resamples, seed {seed}, {level}% intervals of each method's difference "
    "to the best method (aggregate and per column). ≈ = not significantly different from the best "
    "(the interval contains 0). No difference, rank or best cell is claimed from fewer than "
    f"{MIN_PAIRED_N} paired samples (\"n too small\"), nor from a zero-width interval (\"degenerate\"); "
    "the aggregate is never significant where none of its columns is."
)

AGGREGATE_DOC = (
    "Aggregate = mean over metric families of the mean over that family's variants of the min–max "
    "normalised score: (x − min) / (max − min) over methods, or 1 − that when lower is better "
    "(1 = best method, 0 = worst; 0.5 when all methods tie). Only main outputs of quality metrics "
    "enter it (efficiency metrics excluded); the min/max used are in the normalisation table. "
    "Methods are compared only relative to the others in this leaderboard. Min–max scaling shows order, "
    "not size: `gap_sd` gives the size, the mean over families of each column's gap to that column's best "
    "method in units of the column's per-sample standard deviation (0 = best, −0.1 = a tenth of the "
    "spread between samples)."
)

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass
class Leaderboard:
    """All leaderboard tables. `main`, `counts`, `normalized` are wide (index = method, columns = headers)."""

    main: pd.DataFrame
    counts: pd.DataFrame
    cells: pd.DataFrame
    columns: pd.DataFrame
    by_edit_type: pd.DataFrame
    by_category: pd.DataFrame
    efficiency: pd.DataFrame
    status: pd.DataFrame
    normalized: pd.DataFrame
    aggregate: pd.DataFrame
    normalization: pd.DataFrame
    methods: list[str] = field(default_factory=list)
    #: reference rows (shown, never ranked); a subset of `methods`
    references: list[str] = field(default_factory=list)
    #: the task this board covers ("" = all samples) and whether its main table is paired
    task: str = ""
    paired: bool = False
    #: paired mode: per-method means over all of each method's own samples (same layout as `cells`)
    unpaired_cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: paired mode: samples left out of the paired set (sample_uid, method, status, message)
    dropped: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: runs with several tasks: one paired board per task (this board then holds the unpaired means)
    sections: dict[str, "Leaderboard"] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    #: method × edit type aggregate score (each column's per-group means min–max normalised over all
    #: (method, edit type) cells pooled, averaged like the main aggregate): the aggregate radar
    edit_type_aggregate: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: (method, edit type) × aggregate column, min–max normalised (1 = best): the per-method radar
    edit_type_normalized: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: per-sample values in display units (method, sample_uid, header, value) of the ok sample-level
    #: scores: the report's per-preview values
    sample_values: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: filled by export_leaderboard; write_report re-uses these instead of drawing again
    plot_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.methods

    def wide(self, value: str = "mean") -> pd.DataFrame:
        """A method × header table of one cell field (mean, std, ci_low, ci_high, n, …)."""
        return _pivot(self.cells, value, self.methods, list(self.columns["header"]) if len(self.columns) else [])

    def task_boards(self) -> list["Leaderboard"]:
        """The boards whose main tables are the comparisons: the per-task sections, or this one."""
        return list(self.sections.values()) or [self]

    @property
    def unpaired(self) -> pd.DataFrame:
        """method × header means over each method's own samples (the main table when not paired)."""
        if not self.paired:
            return self.main
        return _pivot(self.unpaired_cells, "mean", self.methods, list(self.columns["header"]) if len(self.columns) else [])

    @property
    def unpaired_counts(self) -> pd.DataFrame:
        if not self.paired:
            return self.counts
        return _pivot(self.unpaired_cells, "n", self.methods, list(self.columns["header"]) if len(self.columns) else []
                      ).fillna(0).astype(int)

    def compared(self) -> list[str]:
        return [m for m in self.methods if m not in self.references]

    def aggregate_headers(self) -> list[str]:
        """The columns that enter the aggregate score, in column order."""
        return list(_aggregate_columns(self.columns, self.settings.get("aggregate_exclude", ()))["header"])

    def header(self, column: str) -> str:
        row = self.columns[self.columns["column"] == column]
        return str(row["header"].iloc[0]) if len(row) else column


# --- input normalisation ------------------------------------------------------------------------------
def conform(df: pd.DataFrame | None, spec: dict[str, Any]) -> pd.DataFrame:
    """A copy with every contract column present (missing ones filled with defaults)."""
    df = pd.DataFrame() if df is None else df.copy()
    for col, default in spec.items():
        if col not in df.columns:
            df[col] = pd.Series([default] * len(df), index=df.index, dtype=object if default is None else None)
    for col in ("method", "method_key", "sample_uid", "status", "message", "edit_type", "category", "task"):
        if col in df.columns:
            df[col] = df[col].where(df[col].notna(), "").astype(str)
    df["status"] = df["status"].replace("", "ok")
    return df


def _method_labels(scores: pd.DataFrame, edits: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(method, method_key) -> display label; a name stored with several configs gets a key suffix."""
    pairs = pd.concat([scores[["method", "method_key"]], edits[["method", "method_key"]]]).drop_duplicates()
    labels: dict[tuple[str, str], str] = {}
    for name, group in pairs.groupby("method", sort=True):
        keys = sorted(group["method_key"].unique())
        for key in keys:
            labels[(str(name), str(key))] = str(name) if len(keys) == 1 else f"{name}#{str(key)[:6] or '?'}"
    return labels


def _apply_labels(df: pd.DataFrame, labels: dict[tuple[str, str], str]) -> pd.DataFrame:
    df = df.copy()
    df["method"] = [labels.get((m, k), m) for m, k in zip(df["method"], df["method_key"])]
    return df


def _dedupe(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per key: the newest wins, whatever its status. An older ok row never stands in for a
    newer failure: that would put a stale number beside the other methods' current ones."""
    if df.empty:
        return df
    df = df.copy()
    df["_order"] = pd.to_numeric(df["created"], errors="coerce").fillna(-np.inf) if "created" in df.columns \
        else np.arange(len(df))
    df = df.sort_values(["_order"], kind="stable").drop_duplicates(keys, keep="last")
    return df.drop(columns=["_order"]).sort_index()


def drop_superseded(scores: pd.DataFrame, edits: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Only rows of each sample's CURRENT content and each method's newest edit of it.

    A sample's current content key is that of its newest edit row (any method): a re-run with another
    frame count, size or source file makes the older rows stale for every method, including one that
    failed or was not run this time (it then shows as missing, as in a fresh run). A sample-level
    score counts only when it belongs to the newest edit of its method and sample. Set-level scores
    (no edit) are kept; their sample set is in their uid."""
    if edits.empty or "sample_key" not in edits.columns or "edit_key" not in edits.columns:
        return scores, edits
    order = pd.to_numeric(edits["created"], errors="coerce").fillna(-np.inf) if "created" in edits.columns \
        else pd.Series(np.arange(len(edits)), index=edits.index)
    ranked = edits.assign(_order=order).sort_values("_order", kind="stable")
    keyed = ranked[ranked["sample_key"].notna() & (ranked["sample_key"].astype(str) != "")]
    current = keyed.drop_duplicates("sample_uid", keep="last").set_index("sample_uid")["sample_key"]
    fresh = ranked[[current.get(u, k) == k or not k for u, k in zip(ranked["sample_uid"], ranked["sample_key"].fillna(""))]]
    newest = fresh.drop_duplicates(["method_key", "sample_uid"], keep="last")
    edits = edits.loc[newest.index].sort_index()
    if not scores.empty and "edit_key" in scores.columns:
        live = set(edits["edit_key"].astype(str))
        has_edit = scores["edit_key"].notna() & (scores["edit_key"].astype(str) != "")
        scores = scores[~has_edit | scores["edit_key"].astype(str).isin(live)]
    return scores, edits


def _parse_label(label: str) -> dict[str, str]:
    """'a=1,b=x,y' -> {'a': '1', 'b': 'x,y'} (values may contain commas)."""
    out: dict[str, str] = {}
    last = None
    for part in str(label).split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
            last = k
        elif last is not None:
            out[last] += "," + part
        elif part:
            out[part] = ""
            last = part
    return out


def _short_variant_labels(labels: dict[str, str]) -> dict[str, str]:
    """variant_id -> the options in which this metric's variants differ ('pairing=all')."""
    parsed = {vid: _parse_label(lab) for vid, lab in labels.items()}
    keys = sorted({k for p in parsed.values() for k in p})
    differing = [k for k in keys if len({p.get(k) for p in parsed.values()}) > 1]
    out = {}
    for vid, p in parsed.items():
        short = ",".join(f"{k}={p.get(k, '-')}" for k in differing)
        out[vid] = short or labels[vid] or vid or "variant ?"
    # different ids with the same label (options beyond the label): add the id to tell them apart
    seen: dict[str, int] = {}
    for lab in out.values():
        seen[lab] = seen.get(lab, 0) + 1
    return {vid: (f"{lab} @{vid[:6]}" if seen[lab] > 1 else lab) for vid, lab in out.items()}


def _default_variant(metric: str) -> dict[str, str] | None:
    """The options of a metric's default variant as its label spells them (None: not importable here)."""
    if metric not in _DEFAULTS:
        try:
            from bench.api.catalog import METRICS

            _DEFAULTS[metric] = _parse_label(METRICS.get(metric)(device="cpu").variant_label())
        except Exception:  # noqa: BLE001  (a plug-in metric not installed here: headers as before)
            _DEFAULTS[metric] = None
    return _DEFAULTS[metric]


_DEFAULTS: dict[str, dict[str, str] | None] = {}


def _stable_variant_labels(metric: str, labels: dict[str, str]) -> dict[str, str] | None:
    """variant_id -> the options in which it differs from the metric's DEFAULT variant ('' for the
    default itself): a column's header then depends only on its own variant, so the CSVs of two runs
    join. None when the metric's defaults are unknown here or two variants would share a header."""
    default = _default_variant(metric)
    if default is None:
        return None
    out = {}
    for vid, lab in labels.items():
        p = {} if lab in ("", "default") else _parse_label(lab)
        # options the metric does not know (resolved facts of an older version) do not name a column
        out[vid] = ",".join(f"{k}={v}" for k, v in p.items() if k in default and default[k] != v)
    return out if len(set(out.values())) == len(out) else None


def _first(series: pd.Series, default: Any) -> Any:
    s = series.dropna()
    return s.iloc[0] if len(s) else default


def metric_order(metric: str) -> tuple[int, str]:
    """A stable column order that does not depend on store row order: the catalog's, then by name."""
    from bench.api.catalog import BUILTIN_METRICS

    order = {name: i for i, name in enumerate(BUILTIN_METRICS)}
    return (order.get(metric, len(order)), metric)


def display_scales(families: Iterable[str]) -> dict[str, tuple[float, str]]:
    """family -> (factor, label) from each metric class's `display_scale` / `display_label` metadata.

    Classes are looked up in the metric registry (importing only their module); an unknown or
    unimportable metric is shown unscaled."""
    from bench.api.catalog import METRICS

    out: dict[str, tuple[float, str]] = {}
    for fam in sorted(set(families)):
        try:
            cls = METRICS.get(fam)
            out[fam] = (float(getattr(cls, "display_scale", 1.0)), str(getattr(cls, "display_label", "")))
        except Exception:  # noqa: BLE001 (a plugin metric missing here, a stored name no longer registered)
            out[fam] = (1.0, "")
    return out


def _column_table(scores: pd.DataFrame, scales: dict[str, tuple[float, str]]) -> pd.DataFrame:
    """One row per (metric, variant) column, in a stable order, with its header and metadata."""
    rows = []
    by_metric = dict(list(scores.groupby("metric", sort=False)))

    def order(metric: str) -> tuple:
        fam = str(_first(by_metric[metric]["metric_family"].replace("", np.nan), metric))
        return (*metric_order(fam), metric != fam, metric)

    for metric in sorted(by_metric, key=lambda m: order(str(m))):
        group = by_metric[metric]
        first_label = {v: str(_first(group.loc[group["variant_id"] == v, "variant_label"], "")) for v in set(group["variant_id"])}
        ids = sorted((v for v in first_label if v), key=lambda v: (first_label[v], v))
        labs = {vid: first_label[vid] for vid in ids}
        stable = _stable_variant_labels(str(metric), labs) if ids else None
        if stable is not None and not (group["variant_id"] == "").any():
            variants = stable
        elif len(ids) <= 1:
            variants = {vid: "" for vid in (ids or [""])}
        else:
            variants = _short_variant_labels(labs)
            if (group["variant_id"] == "").any():
                variants[""] = "variant ?"
        for vid, short in variants.items():
            sel = group if len(variants) == 1 else group[group["variant_id"] == vid]
            hib = bool(_first(sel["higher_is_better"], True))
            family = str(_first(sel["metric_family"].replace("", np.nan), metric))
            column = str(metric) if not short else f"{metric} [{short}]"
            factor, unit = scales.get(str(metric), scales.get(family, (1.0, "")))
            scale = f" ({unit})" if unit else ""
            rows.append(
                {
                    "column": column,
                    "header": f"{column}{scale} {'↑' if hib else '↓'}",
                    "metric": str(metric),
                    "metric_family": family,
                    "variant_id": vid if len(variants) > 1 else (ids[0] if ids else ""),
                    "variant_label": str(_first(sel["variant_label"].replace("", np.nan), "default")),
                    "higher_is_better": hib,
                    "value_min": float(_first(sel["value_min"], -np.inf)),
                    "value_max": float(_first(sel["value_max"], np.inf)),
                    "level": str(_first(sel["level"], "sample")),
                    "display_scale": float(factor), "display_unit": unit,
                    "_vids": (*variants, "") if len(variants) == 1 else (vid,),
                }
            )
    cols = pd.DataFrame(rows, columns=[
        "column", "header", "metric", "metric_family", "variant_id", "variant_label", "higher_is_better",
        "value_min", "value_max", "level", "display_scale", "display_unit", "_vids",
    ])
    if not cols.empty:
        # quality metrics first (families in first-seen order), efficiency metrics last
        cols["_eff"] = cols["metric_family"].isin(EFFICIENCY_FAMILIES)
        cols = cols.sort_values("_eff", kind="stable").drop(columns="_eff").reset_index(drop=True)
    return cols


def _assign_columns(scores: pd.DataFrame, cols: pd.DataFrame) -> pd.DataFrame:
    lookup: dict[tuple[str, str], tuple[str, str]] = {}
    for _, c in cols.iterrows():
        for vid in c["_vids"]:
            lookup[(c["metric"], vid)] = (c["column"], c["header"])
    out = scores.copy()
    pairs = [lookup.get((m, v), lookup.get((m, ""), (m, m))) for m, v in zip(out["metric"], out["variant_id"])]
    out["column"] = [p[0] for p in pairs]
    out["header"] = [p[1] for p in pairs]
    return out


# --- statistics -----------------------------------------------------------------------------------------
def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (NaN when fewer than 2 values)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 2 or n_boot <= 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _reason(messages: Iterable[str]) -> str:
    """The most common non-empty message, with how many other distinct messages there were."""
    msgs = [m for m in messages if m]
    if not msgs:
        return ""
    counts = pd.Series(msgs).value_counts()
    top = str(counts.index[0])
    return top if len(counts) == 1 else f"{top} (+{len(counts) - 1} other message(s))"


def _cells(scores: pd.DataFrame, cols: pd.DataFrame, methods: list[str], edits: pd.DataFrame,
           n_boot: int, seed: int) -> pd.DataFrame:
    """One row per (method, column): statistics over ok values plus status counts and reason."""
    meta = cols.set_index("column")
    grouped = {k: g for k, g in scores.groupby(["method", "column"], sort=False)}
    edit_fail = _edit_failure_reasons(edits)
    rows = []
    for m in methods:
        for column in cols["column"]:
            g = grouped.get((m, column))
            c = meta.loc[column]
            row: dict[str, Any] = {
                "method": m, "column": column, "header": c["header"], "metric": c["metric"],
                "metric_family": c["metric_family"], "variant_id": c["variant_id"],
                "variant_label": c["variant_label"], "level": c["level"], "higher_is_better": c["higher_is_better"],
            }
            if g is None:
                row.update(mean=np.nan, std=np.nan, ci_low=np.nan, ci_high=np.nan, n=0, n_error=0, n_skipped=0,
                           n_not_applicable=0, status="missing",
                           reason=edit_fail.get(m) or "no value stored for this method (metric not run)")
                rows.append(row)
                continue
            ok = g.loc[(g["status"] == "ok"), "value"].astype(float).to_numpy()
            ok = ok[np.isfinite(ok)]
            bad = g[g["status"] != "ok"]
            lo, hi = bootstrap_ci(ok, n_boot, seed=seed)
            counts = bad["status"].value_counts()
            failed = bad[bad["status"] != "not_applicable"]  # n/a for some samples is expected, not a failure
            if len(ok) and failed.empty:
                status = "ok"
            elif len(ok):
                status = "partial"
            else:
                status = str(counts.index[0]) if len(counts) else "error"
            row.update(
                mean=float(ok.mean()) if len(ok) else np.nan,
                std=float(ok.std(ddof=1)) if len(ok) > 1 else np.nan,
                ci_low=lo, ci_high=hi, n=int(len(ok)),
                n_error=int(counts.get("error", 0)), n_skipped=int(counts.get("skipped", 0)),
                n_not_applicable=int(counts.get("not_applicable", 0)), status=status,
                reason=_reason(bad["message"]) if len(bad) else "",
            )
            rows.append(row)
    return pd.DataFrame(rows, columns=[
        "method", "column", "header", "metric", "metric_family", "variant_id", "variant_label", "level",
        "higher_is_better", "mean", "std", "ci_low", "ci_high", "n", "n_error", "n_skipped", "n_not_applicable",
        "status", "reason",
    ])


def _edit_failure_reasons(edits: pd.DataFrame) -> dict[str, str]:
    out = {}
    for m, g in edits.groupby("method", sort=False):
        bad = g[g["status"] != "ok"]
        if len(bad) and len(bad) == len(g):
            out[str(m)] = f"no value stored: all {len(g)} edits {'/'.join(sorted(bad['status'].unique()))}: {_reason(bad['message'])}".rstrip(": ")
    return out


def _pivot(cells: pd.DataFrame, value: str, methods: list[str], headers: list[str]) -> pd.DataFrame:
    if cells.empty:
        return pd.DataFrame(index=pd.Index(methods, name="method"), columns=headers, dtype=float)
    wide = cells.pivot(index="method", columns="header", values=value)
    wide = wide.reindex(index=methods, columns=headers)
    wide.index.name = "method"
    wide.columns.name = None
    return wide


def _breakdown(scores: pd.DataFrame, by: str) -> pd.DataFrame:
    """Long table method × column × group (edit_type / category) over ok sample-level values."""
    cols = ["method", "column", "header", by, "mean", "n"]
    ok = scores[(scores["status"] == "ok") & (scores["level"] != "set") & np.isfinite(scores["value"].astype(float))]
    ok = ok[ok[by] != ""]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    out = (
        ok.groupby(["method", "column", "header", by], sort=False)["value"]
        .agg(mean="mean", n="count")
        .reset_index()
    )
    out["n"] = out["n"].astype(int)
    return out[cols]


def _efficiency(edits: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    cols = ["n_edits", "n_ok", "n_error", "n_skipped", "n_not_applicable", "preprocess_s_median",
            "generate_s_median", "total_s_median", "peak_memory_mb_median", "peak_memory_mb_max"]
    rows = []
    for m in methods:
        g = edits[edits["method"] == m]
        ok = g[g["status"] == "ok"]
        pre = pd.to_numeric(ok["preprocess_s"], errors="coerce")
        gen = pd.to_numeric(ok["generate_s"], errors="coerce")
        mem = pd.to_numeric(ok["peak_memory_mb"], errors="coerce")
        total = pre.fillna(0.0) + gen
        rows.append({
            "method": m, "n_edits": len(g), "n_ok": len(ok),
            "n_error": int((g["status"] == "error").sum()), "n_skipped": int((g["status"] == "skipped").sum()),
            "n_not_applicable": int((g["status"] == "not_applicable").sum()),
            "preprocess_s_median": float(pre.median()) if pre.notna().any() else np.nan,
            "generate_s_median": float(gen.median()) if gen.notna().any() else np.nan,
            "total_s_median": float(total.median()) if total.notna().any() else np.nan,
            "peak_memory_mb_median": float(mem.median()) if mem.notna().any() else np.nan,
            "peak_memory_mb_max": float(mem.max()) if mem.notna().any() else np.nan,
        })
    return pd.DataFrame(rows, columns=["method", *cols]).set_index("method")


def _status_table(scores: pd.DataFrame, edits: pd.DataFrame, cells: pd.DataFrame,
                  dropped: pd.DataFrame | None = None, extra: list[dict] | None = None) -> pd.DataFrame:
    """Every non-ok thing with its count and reason: failed edits, non-ok scores, missing cells,
    samples dropped from the paired set (listed by uid, with the method and reason)."""
    cols = ["method", "scope", "column", "metric", "variant_label", "status", "count", "message"]
    parts = []
    if dropped is not None and len(dropped):
        rows = []
        for (m, st, msg), g in dropped.groupby(["method", "status", "message"], sort=True):
            uids = sorted(g["sample_uid"])
            rows.append({"method": m, "scope": "paired set", "column": ", ".join(uids), "metric": "",
                         "variant_label": "", "status": f"dropped ({st})", "count": len(uids),
                         "message": f"left out of the paired comparison: {m} {st}" + (f": {msg}" if msg else "")})
        parts.append(pd.DataFrame(rows, columns=cols))
    if extra:
        parts.append(pd.DataFrame(extra, columns=cols))
    bad_e = edits[edits["status"] != "ok"]
    if len(bad_e):
        e = bad_e.groupby(["method", "status", "message"], sort=False).size().reset_index(name="count")
        e["scope"], e["column"], e["metric"], e["variant_label"] = "edit", "", "", ""
        parts.append(e[cols])
    bad_s = scores[scores["status"] != "ok"]
    if len(bad_s):
        s = bad_s.groupby(["method", "column", "metric", "variant_label", "status", "message"], sort=False).size()
        s = s.reset_index(name="count")
        s["scope"] = "metric"
        parts.append(s[cols])
    missing = cells[cells["status"] == "missing"]
    if len(missing):
        # one row per (method, reason): a method whose edits all failed lacks every column
        n_columns = cells["column"].nunique()
        rows = []
        for (m, msg), g in missing.groupby(["method", "reason"], sort=False):
            names = list(g["column"])
            what = f"all {len(names)} metric columns" if len(names) == n_columns and len(names) > 1 else ", ".join(names)
            rows.append({"method": m, "scope": "metric", "column": what, "metric": ", ".join(g["metric"].unique()),
                         "variant_label": "", "status": "missing", "count": 0, "message": msg})
        parts.append(pd.DataFrame(rows, columns=cols))
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    out["count"] = out["count"].astype(int)
    return out.sort_values(["method", "scope", "column", "status", "message"], kind="stable").reset_index(drop=True)


def normalize(main: pd.DataFrame, higher_is_better: dict[str, bool]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Min–max per column over rows, sign-corrected (1 = best). Returns (normalised, min/max table)."""
    norm = pd.DataFrame(index=main.index, columns=main.columns, dtype=float)
    table = []
    for col in main.columns:
        x = pd.to_numeric(main[col], errors="coerce").astype(float)
        hib = higher_is_better.get(col, True)
        finite = x[np.isfinite(x)]
        if finite.empty:
            table.append({"header": col, "min": np.nan, "max": np.nan, "higher_is_better": hib,
                          "best": "", "worst": ""})
            continue
        lo, hi = float(finite.min()), float(finite.max())
        if hi > lo:
            z = (x - lo) / (hi - lo)
            norm[col] = z if hib else 1.0 - z
        else:
            norm[col] = x.where(~np.isfinite(x), 0.5)
            norm.loc[~np.isfinite(x), col] = np.nan
        best = finite.idxmax() if hib else finite.idxmin()
        worst = finite.idxmin() if hib else finite.idxmax()
        table.append({"header": col, "min": lo, "max": hi, "higher_is_better": hib, "best": best, "worst": worst})
    return norm, pd.DataFrame(table, columns=["header", "min", "max", "higher_is_better", "best", "worst"])


def aggregate_scores(norm: pd.DataFrame, families: dict[str, str]) -> pd.Series:
    """Mean over families of the mean over each family's columns (NaN cells skipped)."""
    if norm.empty or not len(norm.columns):
        return pd.Series(np.nan, index=norm.index, dtype=float)
    by_family = norm.T.groupby(pd.Series([families[c] for c in norm.columns], index=norm.columns)).mean().T
    return by_family.mean(axis=1, skipna=True)


def _aggregate_columns(cols: pd.DataFrame, exclude: Iterable[str]) -> pd.DataFrame:
    excl = set(exclude) | set(EFFICIENCY_FAMILIES)
    sel = cols[(cols["metric"] == cols["metric_family"]) & ~cols["metric_family"].isin(excl)]
    return sel


def per_group_aggregate(lb: Leaderboard, by: str = "edit_type") -> pd.DataFrame:
    """method × group aggregate: each column's per-group means min–max normalised over all
    (method, group) cells pooled (so groups stay comparable), sign-corrected, averaged like the
    main aggregate. Used by the radar plot."""
    table = lb.by_edit_type if by == "edit_type" else lb.by_category
    agg_cols = _aggregate_columns(lb.columns, lb.settings.get("aggregate_exclude", ()))
    if table.empty or agg_cols.empty:
        return pd.DataFrame()
    sub = table[table["header"].isin(agg_cols["header"]) & ~table["method"].isin(lb.references)]
    if sub.empty:
        return pd.DataFrame()
    wide = sub.pivot_table(index=["method", by], columns="header", values="mean", aggfunc="mean")
    hib = dict(zip(agg_cols["header"], agg_cols["higher_is_better"]))
    norm, _ = normalize(wide, hib)
    fam = dict(zip(agg_cols["header"], agg_cols["metric_family"]))
    agg = aggregate_scores(norm, fam)
    return agg.unstack(by).reindex(index=[m for m in lb.methods if m in agg.index.get_level_values(0)])


def per_method_group_normalized(lb: Leaderboard, by: str = "edit_type") -> pd.DataFrame:
    """(method, group) × aggregate column: the per-group means min–max normalised over every compared
    (method, group) cell, sign-corrected (1 = best); references are never normalised. Used by the
    per-method radar plot."""
    table = lb.by_edit_type if by == "edit_type" else lb.by_category
    cols = _aggregate_columns(lb.columns, lb.settings.get("aggregate_exclude", ()))
    t = table[table["header"].isin(cols["header"])]
    if t.empty:
        return pd.DataFrame()
    headers = [h for h in cols["header"] if h in set(t["header"])]
    t = t[~t["method"].isin(lb.references)]
    if t.empty:
        return pd.DataFrame()
    wide = t.pivot_table(index=["method", by], columns="header", values="mean").reindex(columns=headers)
    norm, _ = normalize(wide, dict(zip(cols["header"], cols["higher_is_better"])))
    return norm


# --- pairing ----------------------------------------------------------------------------------------------
def _finished(sample_scores: pd.DataFrame, edits: pd.DataFrame, methods: list[str]) -> dict[str, set[str]]:
    """method -> sample uids it finished: an ok edit; for methods without stored edits (scores
    imported on their own), a sample with an ok or not-applicable score row."""
    out: dict[str, set[str]] = {}
    for m in methods:
        e = edits[edits["method"] == m]
        if len(e):
            out[m] = set(e.loc[e["status"] == "ok", "sample_uid"])
        else:
            sc = sample_scores[(sample_scores["method"] == m) & sample_scores["status"].isin(["ok", "not_applicable"])]
            out[m] = set(sc["sample_uid"])
    return out


def _references(edits: pd.DataFrame, methods: list[str], explicit: Iterable[str] | None) -> list[str]:
    from bench.store.pairing import is_reference_config

    if explicit is not None:
        refs = set(explicit)
    else:
        refs = {str(m) for m, cfg in zip(edits["method"], edits["method_config"]) if is_reference_config(cfg)}
    return [m for m in methods if m in refs or m.split("#", 1)[0] in refs]


def paired_set_shrinkers(finished: dict[str, set[str]], compared: list[str], n_paired: int) -> list[dict]:
    """Methods whose unfinished samples shrink the paired set: [{method, n_finished, n_without}],
    n_without = the paired set's size without that method (largest first)."""
    out = []
    if len(compared) < 2:
        return out
    for m in compared:
        others = [finished[c] for c in compared if c != m]
        n_without = len(set.intersection(*others))
        if n_without > n_paired:
            out.append({"method": m, "n_finished": len(finished[m]), "n_without": n_without})
    return sorted(out, key=lambda r: (-r["n_without"], r["method"]))


def _dropped(uids: set[str], compared: list[str], finished: dict[str, set[str]], edits: pd.DataFrame) -> pd.DataFrame:
    """One row per (dropped sample, compared method that did not finish it) with that edit's status."""
    idx = {(m, u): (st, msg) for m, u, st, msg in zip(edits["method"], edits["sample_uid"], edits["status"], edits["message"])}
    rows = []
    for uid in sorted(uids):
        for m in compared:
            if uid not in finished[m]:
                st, msg = idx.get((m, uid), ("not run", "no edit stored for this sample"))
                rows.append({"sample_uid": uid, "method": m, "status": st, "message": msg})
    return pd.DataFrame(rows, columns=["sample_uid", "method", "status", "message"])


def _pick_set_rows(set_scores: pd.DataFrame, targets: dict[str, set[str]], allow_legacy: bool) -> tuple[pd.DataFrame, list[dict]]:
    """The set-level rows computed on exactly each method's target sample set (+ notes for the rest)."""
    from bench.store.pairing import SET_PREFIX, set_uid

    keep, notes = [], []
    for (m, col), g in set_scores.groupby(["method", "column"], sort=True):
        want = set_uid(targets.get(m, set()))
        hit = g[g["sample_uid"] == want]
        if hit.empty and allow_legacy:
            hit = g[g["sample_uid"] == SET_PREFIX]
        if len(hit):
            keep.append(hit)
        else:
            notes.append({"method": m, "scope": "metric", "column": col, "metric": str(g["metric"].iloc[0]),
                          "variant_label": str(g["variant_label"].iloc[0]), "status": "other sample set", "count": 0,
                          "message": f"only computed on other sample set(s), not on these {len(targets.get(m, ()))} "
                                     "samples; re-run `videditbench run` with the same methods to compute it"})
    rows = pd.concat(keep) if keep else set_scores.iloc[0:0]
    return rows, notes


def _pair_columns(sample_scores: pd.DataFrame, compared: list[str]) -> pd.DataFrame:
    """Keep, per column, ok values only on samples where every compared method that has the column
    has an ok value (non-ok rows stay, for the status counts)."""
    ok = sample_scores[(sample_scores["status"] == "ok") & np.isfinite(sample_scores["value"].astype(float))]
    keep_uids: dict[str, set[str]] = {}
    for col, g in ok.groupby("column", sort=False):
        have = [set(g.loc[g["method"] == m, "sample_uid"]) for m in compared if (g["method"] == m).any()]
        keep_uids[str(col)] = set.intersection(*have) if have else set(g["sample_uid"])
    is_ok = (sample_scores["status"] == "ok")
    in_set = [u in keep_uids.get(str(c), set()) for c, u in zip(sample_scores["column"], sample_scores["sample_uid"])]
    return sample_scores[~is_ok | np.asarray(in_set, dtype=bool)]


# --- paired bootstrap of ranks -------------------------------------------------------------------------------
def gap_in_sample_sd(work: pd.DataFrame, main: pd.DataFrame, compared: list[str], headers: list[str],
                     hib: dict[str, bool], fam: dict[str, str]) -> pd.Series:
    """Per compared method: mean over families of (its column mean − the column's best mean) / the
    column's per-sample SD (within each method over its paired values, pooled over the compared
    methods), sign-corrected (≤ 0; 0 = best).
    How big the aggregate's gaps are, which min–max scaling hides."""
    out = pd.Series(np.nan, index=pd.Index(compared, name="method"), dtype=float)
    if not compared or not headers or work.empty or "header" not in work:
        return out
    ok = work[(work["status"] == "ok") & work["method"].isin(compared)]
    per_fam: dict[str, list[pd.Series]] = {}
    for h in headers:
        col = ok[ok["header"] == h].assign(value=lambda d: pd.to_numeric(d["value"], errors="coerce"))
        col = col[np.isfinite(col["value"])]
        # the spread between samples within a method (pooled over methods), not the methods' own gap
        var = col.groupby("method")["value"].var(ddof=1).dropna()
        sd = float(np.sqrt(var.mean())) if len(var) else math.nan
        means = pd.to_numeric(main.loc[compared, h], errors="coerce") if h in main.columns else None
        if means is None or not np.isfinite(sd) or sd <= 0 or not np.isfinite(means).any():
            continue
        best = means.max() if hib.get(h, True) else means.min()
        gap = (means - best) / sd if hib.get(h, True) else (best - means) / sd
        per_fam.setdefault(fam[h], []).append(gap)
    if not per_fam:
        return out
    fams = [pd.concat(g, axis=1).mean(axis=1, skipna=True) for g in per_fam.values()]
    return pd.concat(fams, axis=1).mean(axis=1, skipna=True).reindex(out.index)


def _has_width(lo: float, hi: float) -> bool:
    """An interval wider than float rounding (every resample giving the same difference is no interval)."""
    return hi - lo > 1e-9 * max(1.0, abs(lo), abs(hi))


def _norm_agg(means: dict[str, np.ndarray], hib: dict[str, bool], fam: dict[str, str]) -> np.ndarray:
    """(B, M) aggregate from per-column (B, M) means, exactly as `normalize` + `aggregate_scores`:
    min–max over methods per row (0.5 on a tie), flipped when lower is better, families averaged."""
    import warnings

    fams: dict[str, list[np.ndarray]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for col, x in means.items():
            lo, hi = np.nanmin(x, axis=1, keepdims=True), np.nanmax(x, axis=1, keepdims=True)
            span = hi - lo
            z = np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.5)
            z = z if hib[col] else 1.0 - z
            fams.setdefault(fam[col], []).append(np.where(np.isfinite(x), z, np.nan))
        per_fam = [np.nanmean(np.stack(zs), axis=0) for zs in fams.values()]
        return np.nanmean(np.stack(per_fam), axis=0)


def _rank_stats(scores: pd.DataFrame, cells: pd.DataFrame, cols: pd.DataFrame, compared: list[str],
                agg_headers: list[str], n_boot: int, seed: int, level: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paired bootstrap over samples: per-column and aggregate differences to the best method.

    Returns (per-cell stats: method, header, best, diff_best, diff_ci_low, diff_ci_high, tie_best;
    per-method aggregate stats: diff_best, diff_ci_low, diff_ci_high, tie_best)."""
    cell_cols = ["method", "header", "best", "diff_best", "diff_ci_low", "diff_ci_high", "tie_best", "claim"]
    agg_cols = ["diff_best", "diff_ci_low", "diff_ci_high", "tie_best", "claim"]
    empty_agg = pd.DataFrame({"diff_best": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan, "tie_best": False,
                              "claim": ""},
                             index=pd.Index(compared, name="method"), columns=agg_cols).astype(
        {"diff_best": float, "diff_ci_low": float, "diff_ci_high": float, "tie_best": object, "claim": object})
    if not compared or cells.empty:
        return pd.DataFrame(columns=cell_cols), empty_agg
    meta = cols.set_index("header")
    ok = scores[(scores["status"] == "ok") & (scores["level"] != "set") & scores["method"].isin(compared)]
    uids = sorted(set(ok["sample_uid"]))
    pos = {u: i for i, u in enumerate(uids)}
    rng = np.random.default_rng(seed)
    n_b = max(int(n_boot), 0)
    weights = np.zeros((n_b, len(uids)))
    if n_b and uids:
        idx = rng.integers(0, len(uids), size=(n_b, len(uids)))
        np.add.at(weights, (np.repeat(np.arange(n_b), len(uids)), idx.ravel()), 1.0)
    alpha = (1.0 - level) / 2.0
    point = cells.set_index(["method", "header"])["mean"]
    boot_means: dict[str, np.ndarray] = {}
    rows = []
    for header in meta.index:
        means = np.array([point.get((m, header), np.nan) for m in compared], dtype=float)
        hib = bool(meta.loc[header, "higher_is_better"])
        finite = np.isfinite(means)
        best = int(np.nanargmax(means) if hib else np.nanargmin(means)) if finite.any() else -1
        col = ok[ok["header"] == header]
        boot = np.tile(means, (n_b, 1))
        n_with: dict[int, int] = {}
        if len(col) and meta.loc[header, "level"] != "set":
            wide = col.pivot_table(index="sample_uid", columns="method", values="value", aggfunc="mean")
            wide = wide.reindex(columns=compared)
            if best >= 0:  # samples on which each method and the best both have a value
                fin = np.isfinite(wide.to_numpy(dtype=float))
                n_with = {j: int((fin[:, j] & fin[:, best]).sum()) for j in range(len(compared))}
        if len(col) and meta.loc[header, "level"] != "set" and n_b:
            w = weights[:, [pos[u] for u in wide.index]]
            denom = w.sum(axis=1, keepdims=True)
            x = wide.to_numpy(dtype=float)
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = (w @ np.nan_to_num(x)) / np.where(denom > 0, denom, np.nan)
            boot[:, ~np.isfinite(x).all(axis=0)] = np.nan
        boot_means[header] = boot
        for j, m in enumerate(compared):
            r = {"method": m, "header": header, "best": j == best, "diff_best": np.nan, "diff_ci_low": np.nan,
                 "diff_ci_high": np.nan, "tie_best": j == best, "claim": ""}
            if best >= 0 and finite[j]:
                r["diff_best"] = float(means[j] - means[best])
                d = boot[:, j] - boot[:, best]
                d = d[np.isfinite(d)]
                if meta.loc[header, "level"] != "set" and n_with.get(j, 0) < MIN_PAIRED_N:
                    r.update(tie_best=True, claim="n too small")  # no difference claimed either way
                elif j != best and len(d) > 1 and meta.loc[header, "level"] != "set":
                    lo, hi = np.quantile(d, [alpha, 1.0 - alpha])
                    if _has_width(lo, hi):
                        r.update(diff_ci_low=float(lo), diff_ci_high=float(hi), tie_best=bool(lo <= 0.0 <= hi))
                    else:  # every resample gave the same difference: no interval to speak of
                        r.update(tie_best=True, claim="degenerate")
            rows.append(r)
    per_cell = pd.DataFrame(rows, columns=cell_cols)
    heads = [h for h in agg_headers if np.isfinite(boot_means[h]).any()] if n_b else []
    if not heads:
        return per_cell, empty_agg
    hibs = {h: bool(meta.loc[h, "higher_is_better"]) for h in heads}
    fams = {h: str(meta.loc[h, "metric_family"]) for h in heads}
    pt = _norm_agg({h: np.array([[point.get((m, h), np.nan) for m in compared]]) for h in heads}, hibs, fams)[0]
    bt = _norm_agg({h: boot_means[h] for h in heads}, hibs, fams)
    out = empty_agg.copy()
    if not np.isfinite(pt).any():
        return per_cell, out
    best = int(np.nanargmax(pt))
    n_samples = len(uids)
    # a column where this method is significantly different from that column's best
    sig = per_cell[per_cell["header"].isin(heads) & (per_cell["claim"] == "") & ~per_cell["tie_best"].astype(bool)]
    differs = set(sig["method"])
    for j, m in enumerate(compared):
        if not np.isfinite(pt[j]):
            continue
        out.loc[m, "diff_best"] = float(pt[j] - pt[best])
        d = bt[:, j] - bt[:, best]
        d = d[np.isfinite(d)]
        if n_samples < MIN_PAIRED_N:
            out.loc[m, ["tie_best", "claim"]] = [True, "n too small"]
        elif j == best:
            out.loc[m, "tie_best"] = True
        elif len(d) > 1:
            lo, hi = np.quantile(d, [alpha, 1.0 - alpha])
            supported = m in differs or compared[best] in differs
            if _has_width(lo, hi):
                out.loc[m, ["diff_ci_low", "diff_ci_high"]] = [float(lo), float(hi)]
                out.loc[m, "tie_best"] = bool(lo <= 0.0 <= hi)
            else:  # e.g. two methods: min–max makes every resample 0 vs 1; the columns decide
                out.loc[m, ["tie_best", "claim"]] = [not supported, "" if supported else "degenerate"]
            if not out.loc[m, "tie_best"] and not supported:
                # min–max scaling can turn gaps no column supports into a 0-vs-1 aggregate
                out.loc[m, ["tie_best", "claim"]] = [True, "no column significant"]
        else:
            out.loc[m, "tie_best"] = False
    return per_cell, out


# --- build ------------------------------------------------------------------------------------------------
def _prepare(scores: pd.DataFrame | None, edits: pd.DataFrame | None,
             scales: dict[str, tuple[float, str]] | None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Conform, label, dedupe, sort (stable keys, not store order) and convert values to display units."""
    scores = conform(scores, SCORE_COLUMNS)
    edits = conform(edits, EDIT_COLUMNS)
    scores["value"] = pd.to_numeric(scores["value"], errors="coerce").astype(float)
    scores.loc[scores["status"] != "ok", "value"] = np.nan
    scores["higher_is_better"] = scores["higher_is_better"].map(
        lambda v: True if v is None or (isinstance(v, float) and math.isnan(v)) else bool(v))
    for col in ("metric", "metric_family", "variant_id", "variant_label", "level"):
        scores[col] = scores[col].where(scores[col].notna(), "").astype(str)
    scores["level"] = scores["level"].replace("", "sample")
    scores["metric_family"] = scores["metric_family"].where(scores["metric_family"] != "", scores["metric"])
    scores, edits = drop_superseded(scores, edits)
    labels = _method_labels(scores, edits)
    scores = _dedupe(_apply_labels(scores, labels), ["method", "sample_uid", "metric", "variant_id"])
    edits = _dedupe(_apply_labels(edits, labels), ["method", "sample_uid"])
    scores = scores.sort_values(["method", "metric", "variant_id", "sample_uid"], kind="stable").reset_index(drop=True)
    edits = edits.sort_values(["method", "sample_uid"], kind="stable").reset_index(drop=True)
    scales = dict(display_scales(scores["metric_family"].unique()) if scales is None else scales)
    factor = np.array([scales.get(m, scales.get(f, (1.0, "")))[0] for m, f in zip(scores["metric"], scores["metric_family"])],
                      dtype=float)
    for col in ("value", "value_min", "value_max"):
        scores[col] = pd.to_numeric(scores[col], errors="coerce").astype(float) * factor
    return scores, edits, scales


def build_leaderboard(
    scores: pd.DataFrame | None,
    edits: pd.DataFrame | None = None,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    aggregate_exclude: Iterable[str] = (),
    display_scales: dict[str, tuple[float, str]] | None = None,
    references: Iterable[str] | None = None,
    paired: bool = True,
    metric_order: Sequence[str] | None = None,
) -> Leaderboard:
    """All tables from the store's score and edit frames. `bootstrap=0` skips the CIs.

    `references`: method names shown but never ranked (default: methods whose stored config says
    `reference`, e.g. `source`). `paired=False` gives the per-method means over all samples. With
    several tasks the returned board holds those unpaired means and `sections` one paired board per
    task. `display_scales`: family -> (factor, unit label) (default: the metric classes' metadata).
    `metric_order`: metric names whose columns come first, in this order (a paper config's table)."""
    scores, edits, scales = _prepare(scores, edits, display_scales)
    kw = dict(bootstrap=bootstrap, seed=seed, aggregate_exclude=aggregate_exclude, scales=scales,
              references=references, metric_order=tuple(metric_order or ()))
    from bench.store.pairing import is_set_uid

    sample_level = ~scores["sample_uid"].map(is_set_uid)
    from bench.store.pairing import TASK_TITLES

    order = {t: i for i, t in enumerate(TASK_TITLES)}
    tasks = sorted({t for t in set(edits["task"]) | set(scores.loc[sample_level, "task"]) if t},
                   key=lambda t: (order.get(t, len(order)), t))
    if not paired or len(tasks) <= 1:
        return _build(scores, edits, task=tasks[0] if len(tasks) == 1 else "", paired=paired, **kw)
    board = _build(scores, edits, task="", paired=False, **kw)
    for t in tasks:
        sub_e = edits[edits["task"] == t]
        sub_s = scores[(scores["task"] == t) | ~sample_level]
        board.sections[t] = _build(sub_s, sub_e, task=t, paired=True, **kw)
    return board


def _build(scores: pd.DataFrame, edits: pd.DataFrame, *, task: str, paired: bool, bootstrap: int, seed: int,
           metric_order: tuple[str, ...] = (),
           aggregate_exclude: Iterable[str], scales: dict[str, tuple[float, str]],
           references: Iterable[str] | None) -> Leaderboard:
    from bench.store.pairing import compared_methods, is_set_uid, paired_set

    methods = sorted(set(scores["method"]) | set(edits["method"]))
    # a method none of whose edits applies here (e.g. an image-guided method on text samples) is
    # not part of this board at all
    only_na = {m for m, g in edits.groupby("method") if (g["status"] == "not_applicable").all()}
    has_ok = set(scores.loc[scores["status"] == "ok", "method"])
    methods = [m for m in methods if m not in only_na or m in has_ok]
    edits = edits[edits["method"].isin(methods)]
    scores = scores[scores["method"].isin(methods)]
    refs = _references(edits, methods, references)
    cols = _column_table(scores, scales)
    if metric_order and len(cols):
        rank = {m: i for i, m in enumerate(metric_order)}
        cols = cols.assign(_o=[rank.get(m, len(rank)) for m in cols["metric"]]).sort_values("_o", kind="stable")
        cols = cols.drop(columns="_o").reset_index(drop=True)
    scores = _assign_columns(scores, cols) if len(scores) else scores.assign(column="", header="")
    is_set = scores["sample_uid"].map(is_set_uid).astype(bool) if len(scores) else pd.Series([], dtype=bool)
    sample_scores, set_scores = scores[~is_set], scores[is_set]
    finished = _finished(sample_scores, edits, methods)
    own_sets = {m: set(u) for m, u in finished.items()}
    set_rows_all, notes_all = _pick_set_rows(set_scores, own_sets, allow_legacy=True)
    unpaired_scores = pd.concat([sample_scores, set_rows_all])
    extra_status: list[dict] = []
    dropped = pd.DataFrame(columns=["sample_uid", "method", "status", "message"])
    n_paired = n_total = 0
    compared = compared_methods(finished, refs)
    shrink: list[dict] = []
    if paired:
        pset = paired_set(finished, refs)
        all_uids = set(edits["sample_uid"]) | set(sample_scores["sample_uid"])
        n_paired, n_total = len(pset), len(all_uids)
        shrink = paired_set_shrinkers(finished, compared, n_paired)
        dropped = _dropped(all_uids - pset, compared, finished, edits)
        in_p = sample_scores[sample_scores["sample_uid"].isin(pset)]
        fin = [u in finished.get(m, ()) for m, u in zip(in_p["method"], in_p["sample_uid"])]
        in_p = in_p[np.asarray(fin, dtype=bool)] if len(in_p) else in_p  # a reference's unfinished edit
        in_p = _pair_columns(in_p, compared)
        targets = {m: pset & finished[m] for m in methods}
        set_rows, extra_status = _pick_set_rows(set_scores, targets, allow_legacy=False)
        work = pd.concat([in_p, set_rows]) if pset else unpaired_scores  # nothing finished: show the failures
        for m in methods:
            if m not in refs and not finished[m]:
                extra_status.append({"method": m, "scope": "paired set", "column": "", "metric": "",
                                     "variant_label": "", "status": "not compared", "count": 0,
                                     "message": f"finished none of the {n_total} samples, so it is not compared"})
    else:
        work, extra_status = unpaired_scores, notes_all
    cells = _cells(work, cols, methods, edits, bootstrap, seed)
    unpaired_cells = _cells(unpaired_scores, cols, methods, edits, bootstrap, seed) if paired else pd.DataFrame()
    pos = cells[(cells["n"] > 0) & cells["method"].isin(compared)]
    unequal = [str(c) for c, g in pos.groupby("header", sort=False)["n"] if g.nunique() > 1]
    if len(cols):
        # columns with values first (quality, then efficiency); columns nobody could compute last
        has = cells.groupby("column")["n"].sum()
        cols = cols.assign(_empty=[int(has.get(c, 0) == 0) for c in cols["column"]])
        cols = cols.sort_values("_empty", kind="stable").drop(columns="_empty").reset_index(drop=True)
    headers = list(cols["header"])
    main = _pivot(cells, "mean", methods, headers)
    counts = _pivot(cells, "n", methods, headers).fillna(0).astype(int)

    agg_cols = _aggregate_columns(cols, aggregate_exclude)
    agg_headers = list(agg_cols["header"])
    hib = dict(zip(cols["header"], cols["higher_is_better"]))
    normalized, norm_table = normalize(main.loc[compared, agg_headers], hib)
    normalized = normalized.reindex(methods)
    norm_table["in_aggregate"] = True
    fam = dict(zip(cols["header"], cols["metric_family"]))
    agg = aggregate_scores(normalized, fam)
    n_fam = normalized.notna().T.groupby(pd.Series([fam[c] for c in normalized.columns], index=normalized.columns,
                                                   dtype=object)).any().T.sum(axis=1) if agg_headers else 0
    aggregate = pd.DataFrame({"aggregate": agg, "n_families": n_fam}, index=pd.Index(methods, name="method"))
    aggregate["n_families"] = aggregate["n_families"].fillna(0).astype(int)
    aggregate["rank"] = aggregate["aggregate"].rank(ascending=False, method="min")
    aggregate["reference"] = [m in refs for m in methods]
    aggregate["gap_sd"] = gap_in_sample_sd(work, main, compared, agg_headers, hib, fam).reindex(methods)
    per_cell, per_agg = _rank_stats(work, cells, cols, compared, agg_headers, bootstrap, seed, 0.95)
    aggregate = aggregate.join(per_agg.reindex(methods))
    cells = cells.merge(per_cell, on=["method", "header"], how="left")
    cells["reference"] = cells["method"].isin(refs)
    cells["best"] = cells["best"].fillna(False).astype(bool) & (cells["claim"].fillna("") != "n too small")
    cells["tie_best"] = cells["tie_best"].fillna(False).astype(bool)
    cells["claim"] = cells["claim"].fillna("")

    # rank order: compared methods by aggregate (ties and no aggregate: by name), then references
    order = sorted(methods, key=lambda m: (m in refs, -aggregate.loc[m, "aggregate"]
                                           if np.isfinite(aggregate.loc[m, "aggregate"]) else math.inf, m))
    main, counts, normalized, aggregate = (t.reindex(order) for t in (main, counts, normalized, aggregate))
    col_pos = {c: i for i, c in enumerate(cols["column"])}
    meth_pos = {m: i for i, m in enumerate(order)}

    def _sorted(c: pd.DataFrame) -> pd.DataFrame:
        if c.empty:
            return c
        c = c.assign(_m=c["method"].map(meth_pos), _c=c["column"].map(col_pos))
        return c.sort_values(["_m", "_c"], kind="stable").drop(columns=["_m", "_c"]).reset_index(drop=True)

    cells, unpaired_cells = _sorted(cells), _sorted(unpaired_cells)
    efficiency = _efficiency(edits, order)
    status = _status_table(unpaired_scores, edits, cells, dropped, extra_status)
    work_samples = work[~work["sample_uid"].map(is_set_uid).astype(bool)] if len(work) else work
    values = sample_scores[sample_scores["status"] == "ok"] if len(sample_scores) else sample_scores
    values = values.reindex(columns=["method", "sample_uid", "header", "value"]).reset_index(drop=True)
    lb = Leaderboard(
        main=main, counts=counts, cells=cells, columns=cols.drop(columns="_vids"),
        by_edit_type=_breakdown(work_samples, "edit_type"), by_category=_breakdown(work_samples, "category"),
        efficiency=efficiency, status=status, normalized=normalized, aggregate=aggregate,
        normalization=norm_table, methods=order, references=[m for m in order if m in refs], task=task,
        paired=paired, unpaired_cells=unpaired_cells, dropped=dropped,
        settings={"bootstrap": bootstrap, "seed": seed, "ci_level": 0.95,
                  "aggregate_exclude": sorted(set(aggregate_exclude)),
                  "display_scales": {k: list(v) for k, v in sorted(scales.items())},
                  "aggregate_doc": AGGREGATE_DOC, "pairing_doc": PAIRING_DOC,
                  "rank_doc": RANK_DOC.format(n_boot=bootstrap, seed=seed, level=95),
                  "unequal_n": unequal, "n_paired": n_paired, "n_samples": n_total, "compared": compared,
                  "paired_shrink": shrink},
        sample_values=values,
    )
    lb.edit_type_aggregate = per_group_aggregate(lb, "edit_type")
    lb.edit_type_normalized = per_method_group_normalized(lb, "edit_type")
    return lb
