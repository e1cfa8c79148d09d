"""A self-contained HTML report: leaderboard tables, plots, status, and animated previews.

Everything the page shows lies in `out_dir` and is referenced by relative paths (plots/…png,
previews/…gif), so the folder can be zipped, copied or served as is. Previews are GIFs made from
the stored lossless PNG frames (lossy palette: for looking at, never for scoring).
"""

from __future__ import annotations

import html
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report.formats import (
    _efficiency_headers,
    best_cells,
    breakdown_wide,
    display_table,
    fmt_value,
    not_computed_headers,
    status_display,
)
from bench.report.table import EDIT_COLUMNS, Leaderboard, conform

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
  body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
  header { background: #24292f; color: #fff; padding: 18px 32px; }
  header h1 { margin: 0 0 4px 0; font-size: 22px; }
  header .meta { color: #c9d1d9; font-size: 13px; }
  nav { padding: 8px 32px; background: #fff; border-bottom: 1px solid #d0d7de; font-size: 14px; position: sticky; top: 0; z-index: 2; }
  nav a { margin-right: 16px; color: #0969da; text-decoration: none; }
  main { padding: 8px 32px 48px 32px; max-width: 1600px; }
  section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 12px 20px 16px 20px; margin: 16px 0; }
  h2 { font-size: 18px; margin: 6px 0 10px 0; }
  h3 { font-size: 15px; margin: 14px 0 6px 0; }
  p.note { color: #57606a; font-size: 13px; margin: 4px 0 10px 0; }
  .alert { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 12px; font-size: 14px; margin: 8px 0; }
  .empty { background: #ddf4ff; border: 1px solid #54aeff; border-radius: 6px; padding: 14px; font-size: 15px; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; font-size: 13px; margin: 4px 0 8px 0; }
  th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: right; white-space: nowrap; }
  th { background: #f6f8fa; font-weight: 600; }
  td.label, th.label { text-align: left; }
  td.best { font-weight: 700; background: #dafbe1; }
  td.ref { color: #57606a; background: #f6f8fa; font-style: italic; }
  .lb table th { white-space: normal; max-width: 130px; vertical-align: bottom; }
  .lb table th.group { text-align: center; background: #eaeef2; border-bottom: 2px solid #d0d7de; }
  .lb table tr > :first-child { position: sticky; left: 0; z-index: 1; background: #fff; box-shadow: 1px 0 0 #d0d7de; }
  .lb table thead tr > :first-child { background: #f6f8fa; }
  .lb table tr > td.ref:first-child { background: #f6f8fa; }
  p.legend { font-size: 12px; color: #57606a; margin: 2px 0 8px 0; }
  td.bad { color: #9a6700; background: #fff8c5; }
  td.msg { text-align: left; white-space: normal; max-width: 560px; overflow-wrap: anywhere; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
  td.wrap { text-align: left; white-space: normal; max-width: 240px; overflow-wrap: anywhere; font-size: 12px; }
  .plots { display: flex; flex-wrap: wrap; gap: 12px; }
  .plots figure { margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: 6px; background: #fff; max-width: 1110px; }
  .plots figure:has(img.bar) { max-width: 420px; }
  .plots figcaption { overflow-wrap: anywhere; }
  .plots img { max-width: 560px; height: auto; display: block; }
  .plots img.wide { max-width: 1100px; }
  .plots img.bar { max-width: 400px; }
  .plots figcaption, .preview figcaption { font-size: 12px; color: #57606a; text-align: center; margin-top: 4px; }
  .sample { border-top: 1px solid #d0d7de; padding: 10px 0; }
  .sample .title { font-weight: 600; font-size: 14px; }
  .sample .prompt { font-size: 13px; color: #57606a; margin: 2px 0 6px 0; }
  .tag { display: inline-block; background: #ddf4ff; color: #0550ae; border-radius: 10px; padding: 0 8px; font-size: 12px; margin-left: 6px; font-weight: 400; }
  .row { display: flex; flex-wrap: wrap; gap: 10px; }
  .preview { margin: 0; width: {{ preview_side }}px; }
  .preview img { display: block; width: {{ preview_side }}px; height: auto; border-radius: 4px; background: #eee; }
  .preview .missing { width: {{ preview_side }}px; height: {{ (preview_side * 0.75) | int }}px; display: flex; align-items: center; justify-content: center;
                      text-align: center; font-size: 11px; color: #9a6700; background: #fff8c5; border: 1px dashed #d4a72c; border-radius: 4px; padding: 4px; box-sizing: border-box; overflow: hidden; }
  .preview.source figcaption { font-weight: 600; }
  .preview .val { font-size: 11px; color: #1f2328; white-space: normal; }
  td.txt { text-align: left; }
  th.msg { text-align: left; }
  details summary { cursor: pointer; font-weight: 600; margin: 6px 0; }
  code { font-size: 12px; }
</style>
</head>
<body>
<header>
  <h1>{{ title }}</h1>
  <div class="meta">{{ summary }} · {{ generated }}</div>
</header>
<nav>
  <a href="#leaderboard">Leaderboard</a><a href="#plots">Plots</a><a href="#efficiency">Efficiency</a>
  <a href="#breakdowns">Breakdowns</a><a href="#status">Status ({{ n_status }})</a><a href="#previews">Previews</a>
</nav>
<main>
{% if empty %}
<section><div class="empty">{{ empty }}</div></section>
{% endif %}
{% if n_status %}
<div class="alert">{{ n_status }} skipped / failed / missing item(s): see <a href="#status">Status</a> for the reasons and the commands that fix them.</div>
{% endif %}

<section id="leaderboard">
  <h2>Leaderboard</h2>
  <p class="note">Means over samples in display units (the unit is in the header: ×10⁻¹ = the stored value is the shown value × 10⁻¹; set-level metrics such as FID: one value per method).
  ± = half-width of the {{ ci_level }}% bootstrap confidence interval. ↑/↓ = higher/lower is better; bold = best compared method;
  † = not significantly different from the best; * = some samples failed. Reference rows (grey, “(reference)”) are never ranked.
  Hover a cell for n, std and the interval.</p>
  <p class="note">{{ pairing_doc }} {{ rank_doc }}</p>
  {% for b in boards %}
  <div class="board" id="task-{{ b.task or 'all' }}">
  <h3>{{ b.title }}</h3>
  <p class="note">{{ b.note }}</p>
  {% if b.main %}<div class="scroll lb">{{ table(b.main) }}</div>{% else %}<p class="note">No metric values.</p>{% endif %}
  {% if b.unequal_n %}<div class="alert">Methods were scored on different numbers of samples in: {{ b.unequal_n|join(", ") }}. Compare those columns with care (hover a cell for its n).</div>{% endif %}
  {% if b.unpaired %}<details><summary>Unpaired means (each method over all its own samples; not comparable across methods)</summary>
    <div class="scroll lb">{{ table(b.unpaired) }}</div></details>{% endif %}
  </div>
  {% endfor %}
  {% if overall %}<details><summary>Unpaired means over all tasks</summary><div class="scroll lb">{{ table(overall) }}</div></details>{% endif %}
  <details><summary>Aggregate score and its min–max table</summary>
    <p class="note">{{ aggregate_doc }}</p>
    {% for n in normalization %}<div class="scroll">{{ table(n) }}</div>{% endfor %}
  </details>
</section>

<section id="plots">
  <h2>Plots</h2>
  {% if plots %}
  <div class="plots">
  {% for p in plots %}<figure><img src="{{ p.src }}" alt="{{ p.caption }}" class="{{ p.cls }}"><figcaption>{{ p.caption }}</figcaption></figure>
  {% endfor %}
  </div>
  {% else %}<p class="note">No plots (no metric values to plot).</p>{% endif %}
</section>

<section id="efficiency">
  <h2>Efficiency</h2>
  <p class="note">Measured by the harness: medians over successful edits; pre-processing runs once per source video.</p>
  {% if efficiency %}<div class="scroll">{{ table(efficiency) }}</div>{% else %}<p class="note">No edits stored.</p>{% endif %}
  {% if efficiency_metrics %}<div class="scroll">{{ table(efficiency_metrics) }}</div>{% endif %}
</section>

<section id="breakdowns">
  <h2>Breakdowns</h2>
  {% for group in breakdowns %}
  <details {% if loop.first %}open{% endif %}><summary>By {{ group.title }}</summary>
    {% for t in group.tables %}<h3>{{ t.header }}</h3><div class="scroll">{{ table(t.table) }}</div>{% endfor %}
  </details>
  {% else %}<p class="note">No per-sample values to break down.</p>{% endfor %}
</section>

<section id="status">
  <h2>Status: skipped, failed, not applicable, missing</h2>
  {% if status %}<div class="scroll">{{ table(status) }}</div>
  {% else %}<p class="note">Everything ran: no skipped or failed rows.</p>{% endif %}
</section>

<section id="previews">
  <h2>Previews</h2>
  <p class="note">Source clip beside each method's edited clip (GIF previews of the stored lossless frames).{% if truncated %} Showing the first {{ samples|length }} of {{ truncated }} samples.{% endif %}</p>
  {% for s in samples %}
  {% if loop.first or s.task != loop.previtem.task %}<h3>{{ task_titles.get(s.task, s.task) }} samples</h3>{% endif %}
  <div class="sample">
    <div class="title">{{ s.uid }}<span class="tag">{{ s.edit_type }}</span>{% if s.category %}<span class="tag">{{ s.category }}</span>{% endif %}<span class="tag">{{ s.task }}</span></div>
    <div class="prompt">{% if s.prompt %}“{{ s.prompt }}”{% else %}(no text prompt){% endif %}</div>
    <div class="row">
    {% for c in s.clips %}
      <figure class="preview {{ c.cls }}">
        {% if c.src %}<img src="{{ c.src }}" alt="{{ c.label }}" loading="lazy">{% else %}<div class="missing" title="{{ c.message }}">{{ c.status }}{% if c.message %}: {{ c.message[:120] }}{% endif %}</div>{% endif %}
        <figcaption>{{ c.label }}{% for v in c.vals or [] %}<br><span class="val">{{ v }}</span>{% endfor %}</figcaption>
      </figure>
    {% endfor %}
    </div>
    {% if s.not_here %}<div class="prompt">Not for this task: {{ s.not_here|join(", ") }}</div>{% endif %}
  </div>
  {% else %}<p class="note">No samples.</p>{% endfor %}
</section>
{{ study }}
</main>
</body>
</html>
"""


@dataclass
class HtmlTable:
    headers: list[str]
    rows: list[list[dict[str, str]]] = field(default_factory=list)
    label_cols: int = 1
    #: optional group row above the headers: (label, number of columns it spans)
    groups: list[tuple[str, int]] = field(default_factory=list)
    #: full text of shortened headers (shown on hover), same length as headers or empty
    titles: list[str] = field(default_factory=list)
    #: legend lines under the table (what shortened labels stand for)
    legend: list[str] = field(default_factory=list)


def _render_table(t: HtmlTable) -> str:
    from markupsafe import Markup

    e = html.escape
    out = ["<table>"]
    if t.groups:
        out.append("<thead><tr class=\"groups\">")
        out += [f'<th colspan="{n}" class="group">{e(label)}</th>' for label, n in t.groups]
        out.append("</tr><tr>")
    else:
        out.append("<thead><tr>")
    left = {i for i, c in enumerate(t.rows[0]) if c.get("cls") in ("msg", "txt")} if t.rows else set()
    for i, h in enumerate(t.headers):
        cls = "label" if i < t.label_cols or i in left else ""
        title = f' title="{e(t.titles[i])}"' if t.titles and t.titles[i] and t.titles[i] != h else ""
        out.append(f'<th class="{cls}"{title}>{e(h)}</th>')
    out.append("</tr></thead><tbody>")
    for row in t.rows:
        out.append("<tr>")
        for i, c in enumerate(row):
            cls = " ".join(x for x in ("label" if i < t.label_cols else "", c.get("cls", "")) if x)
            title = f' title="{e(c["title"])}"' if c.get("title") else ""
            out.append(f'<td class="{cls}"{title}>{e(c.get("text", ""))}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    if t.legend:
        out.append('<p class="legend">' + "<br>".join(e(x) for x in t.legend) + "</p>")
    return Markup("".join(out))


def _short_headers(lb: Leaderboard, headers: list[str], max_variant: int = 18) -> tuple[list[str], list[str], list[str]]:
    """(shown headers, their metric names, legend): long variant labels become `v1`, `v2`, … with a
    legend, and the metric name moves into the family group row above."""
    meta = lb.columns.set_index("header") if len(lb.columns) else pd.DataFrame()
    shown, fams, legend = [], [], []
    codes: dict[str, str] = {}
    for h in headers:
        if h not in meta.index:
            shown.append(h)
            fams.append("")
            continue
        c = meta.loc[h]
        column, metric = str(c["column"]), str(c["metric"])
        variant = column[len(metric):].strip()[1:-1] if column != metric else ""
        if len(variant) > max_variant:
            if variant not in codes:
                codes[variant] = f"v{len(codes) + 1}"
                legend.append(f"{codes[variant]} = {variant}")
            variant = codes[variant]
        unit = f" ({c['display_unit']})" if c.get("display_unit") else ""
        arrow = "↑" if bool(c["higher_is_better"]) else "↓"
        label = (f"[{variant}]" if variant else "") + unit
        if metric != str(c["metric_family"]):
            label = f"{metric[len(str(c['metric_family'])):].lstrip('_') or metric} {label}".strip()
        shown.append(f"{label} {arrow}".strip())
        fams.append(str(c["metric_family"]))
    return shown, fams, legend


def _frame_table(df: pd.DataFrame, index: bool = True, msg_cols: tuple[str, ...] = ()) -> HtmlTable | None:
    if df is None or df.empty:
        return None
    frame = df.reset_index() if index else df
    headers = [str(c) for c in frame.columns]
    rows = []
    for rec in frame.itertuples(index=False):
        row = []
        for h, v in zip(headers, rec):
            text = fmt_value(v) if isinstance(v, (float, np.floating)) else ("" if v is None else str(v))
            numeric = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            row.append({"text": text, "cls": "msg" if h in msg_cols else ("" if numeric else "txt")})
        rows.append(row)
    return HtmlTable(headers, rows, label_cols=1)


def _main_table(lb: Leaderboard, unpaired: bool = False, headers: list[str] | None = None,
                ranks: bool = True) -> HtmlTable | None:
    """A leaderboard table: best compared method bold, reference rows marked, hover = n/std/CI."""
    if lb.is_empty:
        return None
    disp = display_table(lb, unpaired=unpaired, headers=headers, ranks=ranks and not unpaired)
    if len(disp.columns) <= 1 + 2 * int(ranks and not unpaired):
        return None
    cells_df = lb.unpaired_cells if (unpaired and lb.paired) else lb.cells
    cells = cells_df.set_index(["method", "header"]) if len(cells_df) else None
    best = set() if unpaired else best_cells(lb)
    top = [m for m in lb.compared() if _is_top(lb, m)] if not unpaired else []
    rows = []
    for m, (label, rec) in zip(lb.methods, disp.iterrows()):
        ref = m in lb.references
        row = [{"text": str(label), "cls": "ref" if ref else ""}]
        for col in disp.columns:
            c: dict[str, str] = {"text": str(rec[col]), "cls": "ref" if ref else ""}
            if cells is not None and (m, col) in cells.index:
                cell = cells.loc[(m, col)]
                if cell["n"] == 0:
                    c["cls"] = "bad"
                    c["title"] = f"{cell['status']}: {cell['reason']}"
                else:
                    if (m, col) in best:
                        c["cls"] = "best"
                    c["title"] = (f"n={int(cell['n'])}, std={fmt_value(cell['std'])}, "
                                  f"95% CI [{fmt_value(cell['ci_low'])}, {fmt_value(cell['ci_high'])}]")
                    if not unpaired and "diff_ci_low" in cell and np.isfinite(cell["diff_ci_low"]):
                        c["title"] += (f"; difference to the best {fmt_value(cell['diff_best'])} "
                                       f"[{fmt_value(cell['diff_ci_low'])}, {fmt_value(cell['diff_ci_high'])}]")
                    if cell["status"] == "partial":
                        c["title"] += f"; failed: {cell['reason']}"
            if col in ("aggregate ↑", "rank") and m in top:
                c["cls"] = "best"
            row.append(c)
        rows.append(row)
    heads = ["method", *[str(c) for c in disp.columns]]
    shown, fams, legend = _short_headers(lb, heads)
    size = {f: fams.count(f) for f in fams}
    for i, f in enumerate(fams):
        if f and size[f] == 1:  # a family of one column: its own header, no group label
            shown[i] = f"{f} {shown[i]}"
            fams[i] = ""
    groups: list[tuple[str, int]] = []
    for f in fams:
        if groups and groups[-1][0] == f:
            groups[-1] = (f, groups[-1][1] + 1)
        else:
            groups.append((f, 1))
    return HtmlTable(shown, rows, groups=groups if any(f for f in fams) else [], titles=heads, legend=legend)


def _board(b: Leaderboard) -> dict[str, Any]:
    from bench.store.pairing import task_title

    title = task_title(b.task)
    st = b.settings
    if b.paired:
        note = (f"Paired samples: n = {st.get('n_paired', 0)} of {st.get('n_samples', 0)} (every compared method "
                f"finished them; dropped samples and why: Status). Compared: {', '.join(b.compared()) or 'none'}; "
                f"reference rows: {', '.join(b.references) or 'none'}.")
        head = f"{title[0].upper() + title[1:]}: paired comparison"
    else:
        note = "Each method over all of its own samples (not a paired comparison)."
        head = f"{title[0].upper() + title[1:]}: unpaired means"
    missing = not_computed_headers(b)
    if missing:
        note += f" Not computed for any method here (reasons and fixes in Status): {', '.join(missing)}."
    return {"task": b.task, "title": head, "note": note, "main": _main_table(b),
            "unpaired": _main_table(b, unpaired=True) if b.paired else None,
            "unequal_n": st.get("unequal_n", [])}


def _is_top(lb: Leaderboard, m: str) -> bool:
    a = lb.aggregate.loc[m]
    return bool(np.isfinite(a["aggregate"]) and a["rank"] == 1)


def _status_frame(lb: Leaderboard) -> pd.DataFrame:
    """Status rows of every comparison (with its task), plus the all-task rows of a multi-task run."""
    # (a multi-task run's all-sample board would repeat every per-task row: left out)
    parts = [status_display(b).assign(task=b.task or "all") for b in lb.task_boards()]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame()
    st = pd.concat(parts, ignore_index=True)
    return st[["task", *[c for c in st.columns if c != "task"]]]


def _status_table(lb: Leaderboard) -> HtmlTable | None:
    st = _status_frame(lb)
    if st.empty:
        return None
    # long messages and sample lists wrap instead of being cut
    t = _frame_table(st, index=False, msg_cols=("message", "column"))
    col = t.headers.index("column")
    for row in t.rows:
        row[col]["cls"] = "wrap"
    return t


def _safe(text: str) -> str:
    """A readable file name for any text, made injective by a hash of the text itself
    (`a_b/c` and `a/b_c` both read `a_b_c` but get different suffixes)."""
    from bench.api.hashing import hash_obj

    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_")[:60] or "x"
    return f"{readable}-{hash_obj(str(text), 8)}"


def _generated(edits: pd.DataFrame, scores: pd.DataFrame | None) -> str:
    """When the newest result was stored (not the wall clock: an unchanged store gives the same page)."""
    stamps = [pd.to_numeric(f["created"], errors="coerce").max() for f in (edits, scores)
              if f is not None and "created" in f and len(f)]
    stamps = [t for t in stamps if pd.notna(t)]
    when = time.localtime(float(max(stamps)) if stamps else None)
    return ("results as of " if stamps else "generated ") + time.strftime("%Y-%m-%d %H:%M:%S", when)


def _gif(frames_dir: str | None, dest: Path, max_frames: int, side: int) -> tuple[Path | None, str]:
    """(gif path, '') or (None, reason). A GIF whose key (the frames' file bytes and the preview
    size, in its comment) matches is re-used: each edit's preview is encoded once."""
    from bench.report import incremental
    from bench.media.safe_files import refuse_links
    from bench.media.video_io import GIF_ENCODING, read_video, write_gif

    if not frames_dir:
        return None, "no frames stored"
    src = Path(frames_dir)
    if not src.exists():
        return None, f"frames not found: {src}"
    try:
        if not incremental.enabled():  # the old path: re-use a GIF newer than its frame folder
            if dest.exists() and dest.stat().st_mtime >= src.stat().st_mtime:
                return dest, ""
            key = None
        else:
            key = incremental.digest(incremental.files_digest(src), max_frames, side, GIF_ENCODING)
            if incremental.up_to_date(dest, key):
                return dest, ""
        refuse_links(src)  # an outside image never reaches the preview
        frames, fps = read_video(src, max_frames=max_frames)
        return write_gif(dest, frames, fps=fps, max_side=side, comment=key), ""
    except Exception as e:  # noqa: BLE001  (a broken preview must not break the report)
        return None, f"preview failed: {e}"


def _method_label_map(edits: pd.DataFrame, methods: list[str]) -> dict[tuple[str, str], str]:
    known = set(methods)
    out = {}
    for m, k in zip(edits["method"], edits["method_key"]):
        suffixed = f"{m}#{str(k)[:6] or '?'}"
        out[(m, k)] = suffixed if suffixed in known and m not in known else m
    return out


def _sample_values(lb: Leaderboard, max_values: int) -> dict[tuple[str, str], list[str]]:
    """(method label, sample_uid) -> ['clip_text ↑ 27.31', …] for the first quality columns (the table's
    per-sample values, already in display units)."""
    values = lb.sample_values
    if values.empty or max_values <= 0:
        return {}
    headers = lb.aggregate_headers()[:max_values]
    shown = values[values["header"].isin(headers)]
    out: dict[tuple[str, str], list[str]] = {}
    for rec in shown.itertuples(index=False):
        out.setdefault((rec.method, rec.sample_uid), []).append(f"{rec.header} {fmt_value(rec.value)}")
    return out


def _guidance_key(suite: Any, sample: Any, max_frames: int, side: int) -> str:
    """Content key of a sample's guidance previews without loading it: the sample, the suite's
    preprocessing, the preview size, and the size/mtime of the files it reads."""
    from bench.report import incremental

    files = []
    for f in (sample.source, sample.reference, sample.mask):
        p = Path(str(f)) if f else None
        st = p.stat() if p is not None and p.exists() else None
        files.append((str(f), st.st_size, st.st_mtime_ns) if st else str(f))
    from bench.media.video_io import GIF_ENCODING

    return incremental.digest(repr(sample), repr(getattr(suite, "preprocess", None)), files, max_frames, side,
                              GIF_ENCODING)


def _guidance_clips(suite: Any, uid: str, sample_dir: Path, out: Path, max_frames: int, side: int) -> list[dict]:
    """The reference image and the mask (tinted over the source) of an image-guided sample; both
    carry the sample's content key, so an unchanged sample is neither loaded nor encoded again."""
    from bench.report import incremental
    from bench.media.video_io import spread_indices, write_gif

    sample = next((x for x in getattr(suite, "samples", ()) if x.uid == uid), None) if suite is not None else None
    if sample is None:
        return []
    ref, mask_gif = sample_dir / "reference.png", sample_dir / "mask.gif"
    ref_clip = {"label": "reference image", "cls": "source", "src": _rel(ref, out), "status": "", "message": ""}
    mask_clip = {"label": "mask (red)", "cls": "source", "src": _rel(mask_gif, out), "status": "", "message": ""}
    key = _guidance_key(suite, sample, max_frames, side) if incremental.enabled() else None
    want = [(ref, ref_clip)] * bool(sample.reference) + [(mask_gif, mask_clip)] * bool(sample.mask)
    if key and want and all(incremental.up_to_date(p, key) for p, _ in want):
        return [c for _, c in want]
    clips = []
    try:
        loaded = suite.load(sample)
    except Exception as e:  # noqa: BLE001 (a moved dataset must not break the report)
        return [{"label": "reference / mask", "cls": "source", "src": None, "status": "not loaded",
                 "message": str(e).splitlines()[0] if str(e) else type(e).__name__}]
    if loaded.reference is not None:
        from PIL import Image, PngImagePlugin

        ref.parent.mkdir(parents=True, exist_ok=True)
        im = Image.fromarray(np.asarray(loaded.reference, np.uint8))
        im.thumbnail((side * 2, side * 2))
        info = PngImagePlugin.PngInfo()
        if key:
            info.add_text(incremental.KEY_FIELD, key)
        im.save(ref, pnginfo=info)
        clips.append(ref_clip)
    if loaded.mask is not None:
        frames = loaded.video.frames.astype(np.float32)
        m = np.asarray(loaded.mask, bool)[..., None]
        tint = np.where(m, 0.45 * frames + 0.55 * np.array([255.0, 40.0, 40.0]), 0.6 * frames)
        idx = spread_indices(len(tint), max_frames)
        write_gif(mask_gif, tint[idx].clip(0, 255).astype(np.uint8), fps=loaded.video.fps, max_side=side, comment=key)
        clips.append(mask_clip)
    return clips


def _samples(lb: Leaderboard, edits: pd.DataFrame, out: Path, max_samples: int, max_frames: int,
             side: int, values: dict[tuple[str, str], list[str]], suite: Any = None) -> tuple[list[dict[str, Any]], int]:
    if edits.empty:
        return [], 0
    labels = _method_label_map(edits, lb.methods)
    edits = edits.assign(label=[labels[(m, k)] for m, k in zip(edits["method"], edits["method_key"])])
    order = list(lb.methods) + sorted(set(edits["label"]) - set(lb.methods))
    from bench.store.pairing import TASK_TITLES

    task_of = dict(zip(edits["sample_uid"], edits["task"].replace("", "text")))
    rank = {t: i for i, t in enumerate(TASK_TITLES)}
    uids = sorted(edits["sample_uid"].unique(), key=lambda u: (rank.get(task_of.get(u, "text"), len(rank)), u))
    refs = set(lb.references) | {m for b in lb.task_boards() for m in b.references}
    total = len(uids)
    uids = uids[:max_samples] if max_samples >= 0 else uids
    source_gifs: dict[str, tuple[Path | None, str]] = {}
    samples = []
    for uid in uids:
        g = edits[edits["sample_uid"] == uid]
        first = g.iloc[0]
        sdir = next((str(d) for d in g["source_dir"] if d is not None and str(d) not in ("", "nan", "None")), None)
        sample_dir = out / "previews" / _safe(uid)
        key = sdir or ""
        if key not in source_gifs:
            source_gifs[key] = _gif(sdir, sample_dir / "input.gif", max_frames, side)
        src_gif, src_msg = source_gifs[key]
        clips = [{"label": "source video (input)", "cls": "source", "src": _rel(src_gif, out), "status": "source missing",
                  "message": src_msg}]
        if (first["task"] or "text") != "text":
            clips += _guidance_clips(suite, uid, sample_dir, out, max_frames, side)
        by_label = {r["label"]: r for _, r in g.iterrows()}
        not_here = []
        for m in order:
            r = by_label.get(m)
            if r is None:
                clips.append({"label": m, "cls": "", "src": None, "status": "not run", "message": ""})
                continue
            if r["status"] == "not_applicable":  # e.g. an image-guided method on a text sample
                not_here.append(m)
                continue
            m_label = f"{m} (reference)" if m in refs else m
            if r["status"] != "ok":
                clips.append({"label": m_label, "cls": "", "src": None, "status": r["status"], "message": r["message"]})
                continue
            gif, msg = _gif(r["output_dir"], sample_dir / f"method_{_safe(m)}.gif", max_frames, side)
            clips.append({"label": m_label, "cls": "", "src": _rel(gif, out), "status": "no preview", "message": msg,
                          "vals": values.get((m, uid), [])})
        prompt = next((str(p) for p in g["prompt"] if p is not None and str(p) not in ("", "nan", "None")), "")
        samples.append({
            "uid": uid, "prompt": prompt, "edit_type": first["edit_type"] or "?", "category": first["category"],
            "task": first["task"] or "text", "clips": clips, "not_here": not_here,
        })
    return samples, total


def _rel(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    return Path(os.path.relpath(path, root)).as_posix()


def _plots(lb: Leaderboard, out: Path, plot_paths: dict[str, Path] | None) -> list[dict[str, str]]:
    from bench.report.plots import write_plots

    inside = [Path(p).resolve() for p in lb.plot_paths.values()]
    if plot_paths is None and inside and all(p.is_file() and out.resolve() in p.parents for p in inside):
        plot_paths = lb.plot_paths  # drawn by export_leaderboard into this folder
    paths = plot_paths if plot_paths is not None else write_plots(lb, out / "plots")

    def priority(key: str) -> tuple[int, str]:
        # the headline plots first: the survey's Fig. 12 (per-method radar) and Fig. 11 (quality vs cost)
        base = key.rpartition("/")[2]
        rank = {"radar_methods": 0, "scatter": 1, "radar_edit_type": 2}.get(base, 3)
        task = key.rpartition("/")[0]
        return (rank, list(lb.sections).index(task) if task in lb.sections else 0)

    items = []
    for key, p in sorted(paths.items(), key=lambda kv: priority(kv[0])):
        p = Path(p)
        if not p.is_file():
            continue
        task, _, key = key.rpartition("/")
        prefix = f"{task}-guided: " if task else ""
        if key == "radar_edit_type":
            caption = "Aggregate score per edit type (one colour per method)"
        elif key == "radar_methods":
            caption = "Per method: metrics by edit type (survey Fig. 12 layout)"
        elif key == "scatter":
            caption = "Quality vs runtime"
        else:
            caption = key.split(":", 1)[-1]
        items.append({"src": _rel(p.resolve(), out.resolve()), "caption": prefix + caption,
                      "cls": "wide" if key == "radar_methods" else ("bar" if key.startswith("bar:") else "")})
    return items


def _breakdowns(lb: Leaderboard) -> list[dict[str, Any]]:
    groups = []
    for board in lb.task_boards():  # per task, on its paired samples
        where = f" ({board.task}-guided)" if board.task and lb.sections else ""
        for by, title in (("edit_type", "edit type"), ("category", "category")):
            tables = []
            for header in board.columns["header"]:
                w = breakdown_wide(board, by, header, display=True)
                t = _frame_table(w)
                if t is not None:
                    tables.append({"header": header, "table": t})
            if tables:
                groups.append({"title": title + where, "tables": tables})
    return groups


def write_report(
    lb: Leaderboard,
    edits: pd.DataFrame | None,
    out_dir: str | Path,
    *,
    title: str = "VidEditBench report",
    max_samples: int = 100,
    preview_frames: int = 16,
    preview_side: int = 160,
    plot_paths: dict[str, Path] | None = None,
    scores: pd.DataFrame | None = None,
    sample_values: int = 3,
    run_dir: str | Path | None = None,
    suite: Any = None,
) -> Path:
    """Write out_dir/report.html (+ plots/ and previews/ beside it) and return its path.

    `plot_paths` (default: those export_leaderboard recorded on `lb`, if still on disk) re-uses
    plots already written; otherwise they are drawn into out_dir/plots. `max_samples` caps the preview rows (-1 = all). Each preview
    shows its first `sample_values` quality values (the table's, in display units); `scores` (the
    store's score frame) dates the report with the edits. With
    `suite` (a `bench.suites` Suite) image-guided previews also show the reference image and the mask.
    """
    from jinja2 import Environment

    from bench.study.report import report_hook as study_report_hook
    from bench.store.pairing import TASK_TITLES

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    edits = conform(edits, EDIT_COLUMNS)
    values = _sample_values(lb, sample_values)
    samples, total = _samples(lb, edits, out, max_samples, preview_frames, preview_side, values, suite)

    n_ok = int((edits["status"] == "ok").sum())
    if lb.is_empty:
        empty = ("No results yet: the store has no edits and no scores. Run `videditbench run` (or score "
                 "precomputed outputs) and build the report again.")
    elif lb.cells.empty or int(lb.cells["n"].sum()) == 0:
        empty = ("No metric value could be computed: every edit or metric failed or was skipped. "
                 "The Status section lists each reason and the command that fixes it.")
    else:
        empty = ""
    summary = (f"{len(lb.methods)} method(s) · {edits['sample_uid'].nunique()} sample(s) · "
               f"{n_ok}/{len(edits)} edits ok · {len(lb.columns)} metric column(s)")
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.globals["table"] = _render_table
    page = env.from_string(TEMPLATE).render(
        title=title,
        summary=summary,
        generated=_generated(edits, scores),
        empty=empty,
        n_status=len(_status_frame(lb)),
        ci_level=int(lb.settings.get("ci_level", 0.95) * 100),
        aggregate_doc=lb.settings.get("aggregate_doc", ""),
        pairing_doc=lb.settings.get("pairing_doc", ""),
        rank_doc=lb.settings.get("rank_doc", ""),
        boards=[_board(b) for b in lb.task_boards()] if not lb.is_empty else [],
        overall=_main_table(lb, ranks=False) if lb.sections else None,
        normalization=[t for t in (_frame_table(b.normalization.assign(task=b.task), index=False)
                                   for b in lb.task_boards()) if t is not None],
        efficiency=_frame_table(lb.efficiency),
        efficiency_metrics=_main_table(lb, headers=_efficiency_headers(lb), ranks=False),
        breakdowns=_breakdowns(lb),
        status=_status_table(lb),
        plots=_plots(lb, out, plot_paths),
        samples=samples,
        truncated=total if len(samples) < total else 0,
        preview_side=preview_side,
        study=study_report_hook(run_dir, out),
        task_titles={t: v[0].upper() + v[1:] for t, v in TASK_TITLES.items()},
    )
    from bench.report.incremental import write_if_changed

    path = out / "report.html"
    write_if_changed(path, page)
    return path
