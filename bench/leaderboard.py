"""Leaderboard tables from stored rows (pandas): means, counts, CIs, breakdowns, efficiency, status.

Input contract (what `bench.store.ResultStore.scores_frame()` / `edits_frame()` return):

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
from typing import Any, Iterable

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
    "source_dir": None, "prompt": "", "preprocess_s": np.nan, "generate_s": np.nan, "peak_memory_mb": np.nan,
}

#: metric families that measure cost, not quality: never part of the aggregate score
EFFICIENCY_FAMILIES = frozenset({"generation_time", "preprocess_time", "peak_memory"})

#: papers print some metrics scaled; the stored value stays raw and Markdown/HTML show raw / 10**exp
#: with "(×10^exp)" in the header (IVE-Benchmark prints warp error ×10⁻¹).
DEFAULT_DISPLAY_EXPONENTS: dict[str, int] = {"warp_error": -1}

AGGREGATE_DOC = (
    "Aggregate = mean over metric families of the mean over that family's variants of the min–max "
    "normalised score: (x − min) / (max − min) over methods, or 1 − that when lower is better "
    "(1 = best method, 0 = worst; 0.5 when all methods tie). Only main outputs of quality metrics "
    "enter it (efficiency metrics excluded); the min/max used are in the normalisation table. "
    "Methods are compared only relative to the others in this leaderboard."
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
    settings: dict[str, Any] = field(default_factory=dict)
    #: filled by export_leaderboard; write_report re-uses these instead of drawing again
    plot_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.methods

    def wide(self, value: str = "mean") -> pd.DataFrame:
        """A method × header table of one cell field (mean, std, ci_low, ci_high, n, …)."""
        return _pivot(self.cells, value, self.methods, list(self.columns["header"]) if len(self.columns) else [])

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
    """One row per key: an ok row wins over failures, then the latest (stores may be merged)."""
    if df.empty:
        return df
    df = df.copy()
    df["_ok"] = (df["status"] == "ok").astype(int)
    df["_order"] = df["created"] if "created" in df.columns else np.arange(len(df))
    df = df.sort_values(["_ok", "_order"], kind="stable").drop_duplicates(keys, keep="last")
    return df.drop(columns=["_ok", "_order"]).sort_index()


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


def _first(series: pd.Series, default: Any) -> Any:
    s = series.dropna()
    return s.iloc[0] if len(s) else default


def _column_table(scores: pd.DataFrame, display_exponents: dict[str, int]) -> pd.DataFrame:
    """One row per (metric, variant) column, in a stable order, with its header and metadata."""
    rows = []
    for metric, group in scores.groupby("metric", sort=False):
        ids = [v for v in dict.fromkeys(group["variant_id"]) if v]
        if len(ids) <= 1:
            variants = {vid: "" for vid in (ids or [""])}
        else:
            labs = {vid: str(_first(group.loc[group["variant_id"] == vid, "variant_label"], "")) for vid in ids}
            variants = _short_variant_labels(labs)
            if (group["variant_id"] == "").any():
                variants[""] = "variant ?"
        for vid, short in variants.items():
            sel = group if len(variants) == 1 else group[group["variant_id"] == vid]
            hib = bool(_first(sel["higher_is_better"], True))
            family = str(_first(sel["metric_family"].replace("", np.nan), metric))
            column = str(metric) if not short else f"{metric} [{short}]"
            exp = display_exponents.get(str(metric), display_exponents.get(family, 0))
            scale = f" (×10{str(exp).translate(_SUPERSCRIPT)})" if exp else ""
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
                    "display_exponent": int(exp),
                    "_vids": (*variants, "") if len(variants) == 1 else (vid,),
                }
            )
    cols = pd.DataFrame(rows, columns=[
        "column", "header", "metric", "metric_family", "variant_id", "variant_label", "higher_is_better",
        "value_min", "value_max", "level", "display_exponent", "_vids",
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


def _status_table(scores: pd.DataFrame, edits: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Every non-ok thing with its count and reason: failed edits, non-ok scores, missing cells."""
    cols = ["method", "scope", "column", "metric", "variant_label", "status", "count", "message"]
    parts = []
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
    return out.sort_values(["method", "scope", "column"], kind="stable").reset_index(drop=True)


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
    sub = table[table["header"].isin(agg_cols["header"])]
    if sub.empty:
        return pd.DataFrame()
    wide = sub.pivot_table(index=["method", by], columns="header", values="mean", aggfunc="mean")
    hib = dict(zip(agg_cols["header"], agg_cols["higher_is_better"]))
    norm, _ = normalize(wide, hib)
    fam = dict(zip(agg_cols["header"], agg_cols["metric_family"]))
    agg = aggregate_scores(norm, fam)
    return agg.unstack(by).reindex(index=[m for m in lb.methods if m in agg.index.get_level_values(0)])


# --- build ------------------------------------------------------------------------------------------------
def build_leaderboard(
    scores: pd.DataFrame | None,
    edits: pd.DataFrame | None = None,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    aggregate_exclude: Iterable[str] = (),
    display_exponents: dict[str, int] | None = None,
) -> Leaderboard:
    """All tables from the store's score and edit frames. `bootstrap=0` skips the CIs."""
    exps = dict(DEFAULT_DISPLAY_EXPONENTS if display_exponents is None else display_exponents)
    scores = conform(scores, SCORE_COLUMNS)
    edits = conform(edits, EDIT_COLUMNS)
    scores["value"] = pd.to_numeric(scores["value"], errors="coerce").astype(float)
    scores.loc[scores["status"] != "ok", "value"] = np.nan
    scores["higher_is_better"] = scores["higher_is_better"].map(
        lambda v: True if v is None or (isinstance(v, float) and math.isnan(v)) else bool(v))
    for col in ("metric", "metric_family", "variant_id", "variant_label", "level"):
        scores[col] = scores[col].where(scores[col].notna(), "").astype(str)
    scores["level"] = scores["level"].replace("", "sample")

    labels = _method_labels(scores, edits)
    scores = _dedupe(_apply_labels(scores, labels), ["method", "sample_uid", "metric", "variant_id"])
    edits = _dedupe(_apply_labels(edits, labels), ["method", "sample_uid"])
    methods = sorted(set(labels.values()))

    cols = _column_table(scores, exps)
    scores = _assign_columns(scores, cols) if len(scores) else scores.assign(column="", header="")
    cells = _cells(scores, cols, methods, edits, bootstrap, seed)
    # columns where methods were scored on different numbers of samples (compare with care)
    pos = cells[cells["n"] > 0]
    unequal = [str(c) for c, g in pos.groupby("header", sort=False)["n"] if g.nunique() > 1]
    if len(cols):
        # columns with values first (quality, then efficiency); columns nobody could compute last
        has = cells.groupby("column")["n"].sum()
        cols = cols.assign(_empty=[int(has.get(c, 0) == 0) for c in cols["column"]])
        cols = cols.sort_values("_empty", kind="stable").drop(columns="_empty").reset_index(drop=True)
        cells = cells.assign(_o=cells["column"].map({c: i for i, c in enumerate(cols["column"])}))
        cells = cells.sort_values("_o", kind="stable").drop(columns="_o")
        cells = cells.sort_values("method", key=lambda x: x.map({m: i for i, m in enumerate(methods)}), kind="stable")
    headers = list(cols["header"])
    main = _pivot(cells, "mean", methods, headers)
    counts = _pivot(cells, "n", methods, headers).fillna(0).astype(int)

    agg_cols = _aggregate_columns(cols, aggregate_exclude)
    agg_headers = list(agg_cols["header"])
    hib = dict(zip(cols["header"], cols["higher_is_better"]))
    normalized, norm_table = normalize(main[agg_headers], hib)
    norm_table["in_aggregate"] = True
    fam = dict(zip(cols["header"], cols["metric_family"]))
    agg = aggregate_scores(normalized, fam)
    n_fam = normalized.notna().T.groupby(pd.Series([fam[c] for c in normalized.columns], index=normalized.columns,
                                                   dtype=object)).any().T.sum(axis=1) if agg_headers else 0
    aggregate = pd.DataFrame({"aggregate": agg, "n_families": n_fam}, index=pd.Index(methods, name="method"))
    aggregate["n_families"] = aggregate["n_families"].fillna(0).astype(int)
    aggregate["rank"] = aggregate["aggregate"].rank(ascending=False, method="min")

    # rank order: best aggregate first, methods without one last (alphabetical)
    order = list(aggregate.sort_values(["aggregate"], ascending=False, na_position="last", kind="stable").index)
    reorder = {m: i for i, m in enumerate(order)}
    main, counts, normalized, aggregate = (t.reindex(order) for t in (main, counts, normalized, aggregate))
    cells = cells.sort_values("method", key=lambda s: s.map(reorder), kind="stable").reset_index(drop=True)
    efficiency = _efficiency(edits, order)
    status = _status_table(scores, edits, cells)

    return Leaderboard(
        main=main, counts=counts, cells=cells, columns=cols.drop(columns="_vids"),
        by_edit_type=_breakdown(scores, "edit_type"), by_category=_breakdown(scores, "category"),
        efficiency=efficiency, status=status, normalized=normalized, aggregate=aggregate,
        normalization=norm_table, methods=order,
        settings={"bootstrap": bootstrap, "seed": seed, "ci_level": 0.95,
                  "aggregate_exclude": sorted(set(aggregate_exclude)), "display_exponents": exps,
                  "aggregate_doc": AGGREGATE_DOC, "unequal_n": unequal},
    )


# --- formatting ----------------------------------------------------------------------------------------------
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


def _scale(lb: "Leaderboard", header: str) -> float:
    row = lb.columns[lb.columns["header"] == header]
    return 10.0 ** -int(row["display_exponent"].iloc[0]) if len(row) else 1.0


def display_table(lb: Leaderboard, with_ci: bool = True) -> pd.DataFrame:
    """The main table as strings for Markdown/HTML: scaled values, '± CI', 'skipped' for empty cells."""
    cols = lb.columns.set_index("header") if len(lb.columns) else pd.DataFrame()
    out = pd.DataFrame(index=pd.Index(lb.methods, name="method"))
    out["aggregate ↑"] = [fmt_value(v, 3) for v in lb.aggregate["aggregate"]] if len(lb.methods) else []
    cell_idx = lb.cells.set_index(["method", "header"]) if len(lb.cells) else None
    for header in cols.index:
        scale = 10.0 ** -int(cols.loc[header, "display_exponent"])
        vals = []
        for m in lb.methods:
            c = cell_idx.loc[(m, header)]
            if c["n"] == 0:
                vals.append({"not_applicable": "n/a", "missing": "missing"}.get(c["status"], str(c["status"])))
                continue
            s = fmt_value(c["mean"] * scale)
            if with_ci and np.isfinite(c["ci_low"]):
                s += f" ± {fmt_value((c['ci_high'] - c['ci_low']) / 2 * scale, 2)}"
            if c["status"] == "partial":
                s += "*"
            vals.append(s)
        out[header] = vals
    out["n samples"] = [int(x) for x in lb.counts.max(axis=1)] if len(lb.counts.columns) else [0] * len(lb.methods)
    return out


def _md_escape(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    frame = df.reset_index() if index else df
    headers = [_md_escape(c) for c in frame.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_md_escape(fmt_value(v) if isinstance(v, float) else v) for v in row) + " |")
    return "\n".join(lines)


def breakdown_wide(lb: Leaderboard, by: str, header: str, display: bool = False) -> pd.DataFrame:
    """method × group means of one column; `display` applies the column's display scale."""
    t = lb.by_edit_type if by == "edit_type" else lb.by_category
    t = t[t["header"] == header]
    if t.empty:
        return pd.DataFrame()
    w = t.pivot(index="method", columns=by, values="mean")
    w.columns.name = None
    if display:
        w = w * _scale(lb, header)
    return w.reindex([m for m in lb.methods if m in w.index])


def status_display(lb: Leaderboard) -> pd.DataFrame:
    t = lb.status.copy()
    if t.empty:
        return t
    t["count"] = [str(c) if c else "—" for c in t["count"]]
    return t[["method", "scope", "column", "status", "count", "message"]]


def to_markdown(lb: Leaderboard) -> str:
    parts = ["# Leaderboard", ""]
    if lb.is_empty:
        parts += ["No results: the store has no edits and no scores yet. Run `videditbench run` first.", ""]
        return "\n".join(parts)
    parts += [
        "Means over samples (set-level metrics: one value per method); ± is the half-width of the "
        f"{int(lb.settings['ci_level'] * 100)}% bootstrap CI ({lb.settings['bootstrap']} resamples); "
        "`*` = some samples failed (see Status); ↑/↓ = higher/lower is better.", "",
        markdown_table(display_table(lb)), "",
        *([f"Note: methods were scored on different numbers of samples in {', '.join(lb.settings['unequal_n'])} "
           "(see Sample counts); compare those columns with care.", ""] if lb.settings.get("unequal_n") else []),
        "## Sample counts", "", markdown_table(lb.counts), "",
        "## Aggregate score", "", lb.settings["aggregate_doc"] + " Min/max are in stored (raw) units.", "",
    ]
    if len(lb.normalization):
        parts += [markdown_table(lb.normalization, index=False), ""]
    parts += ["## Efficiency", "", "Medians over successful edits (seconds, MB).", "",
              markdown_table(lb.efficiency), ""]
    for by, title in (("edit_type", "edit type"), ("category", "category")):
        table = lb.by_edit_type if by == "edit_type" else lb.by_category
        if table.empty:
            continue
        parts += [f"## By {title}", ""]
        for header in lb.columns["header"]:
            w = breakdown_wide(lb, by, header, display=True)
            if not w.empty:
                parts += [f"### {header}", "", markdown_table(w), ""]
    parts += ["## Status: skipped, failed, not applicable, missing", ""]
    st = status_display(lb)
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
    return {
        "methods": lb.methods,
        "columns": _records(lb.columns),
        "cells": _records(lb.cells),
        "aggregate": _records(lb.aggregate, index=True),
        "normalization": _records(lb.normalization),
        "by_edit_type": _records(lb.by_edit_type),
        "by_category": _records(lb.by_category),
        "efficiency": _records(lb.efficiency, index=True),
        "status": _records(lb.status),
        "settings": _json_safe(lb.settings),
    }


def export_leaderboard(lb: Leaderboard, out_dir: str | Path, plots: bool = True) -> dict[str, Path]:
    """Write leaderboard.{csv,md,json}, the wide/breakdown/efficiency/status CSVs and the plots.

    leaderboard.csv is the long table: one row per (method, metric column) with mean, std, CI, n,
    status counts and the reason for anything not ok. leaderboard_wide.csv is method × header.
    """
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def write(key: str, name: str, text: str) -> None:
        p = out / name
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
        paths[key] = p

    write("csv", "leaderboard.csv", lb.cells.merge(lb.aggregate.reset_index(), on="method", how="left")
          .to_csv(index=False))
    wide = lb.main.copy()
    wide.insert(0, "aggregate", lb.aggregate["aggregate"])
    write("wide_csv", "leaderboard_wide.csv", wide.to_csv())
    write("by_edit_type_csv", "by_edit_type.csv", lb.by_edit_type.to_csv(index=False))
    write("by_category_csv", "by_category.csv", lb.by_category.to_csv(index=False))
    write("efficiency_csv", "efficiency.csv", lb.efficiency.to_csv())
    write("status_csv", "status.csv", lb.status.to_csv(index=False))
    write("md", "leaderboard.md", to_markdown(lb))
    write("json", "leaderboard.json", json.dumps(to_json_dict(lb), indent=2, ensure_ascii=False, allow_nan=False))
    if plots:
        from bench.plots import write_plots

        lb.plot_paths = write_plots(lb, out / "plots")
        for key, p in lb.plot_paths.items():
            paths[f"plot:{key}"] = p
    return paths
