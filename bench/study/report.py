"""The study section of the leaderboard/report: an HTML fragment and the same content as Markdown.

`study_section(run_dir)` renders every study stored in a run (empty strings when there is none), so
the report only needs to call it; every text is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from bench.study.analysis import QuestionResult, StudyResults
from bench.api.markdown_text import md_escape

e = html.escape


def _f(x: float | None, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _ranking_rows(q: QuestionResult) -> list[list[str]]:
    r = q.ranking()
    return [[str(i + 1), m, _f(t), f"[{_f(lo)}, {_f(hi)}]"] for i, (m, t, lo, hi) in
            enumerate(zip(r["method"], r["theta"], r["low"], r["high"]))]


def _uncomparable(q: QuestionResult) -> list[str]:
    """Metrics with no value to compare (e.g. scored for one method only)."""
    return [m.metric for m in q.metrics if m.tau is None and m.pair_n == 0]


def _metric_rows(q: QuestionResult) -> list[list[str]]:
    rows = []
    skip = set(_uncomparable(q))
    for m in sorted((m for m in q.metrics if m.metric not in skip), key=lambda m: -(m.tau if m.tau is not None else -9)):
        ci = f"[{_f(m.tau_low)}, {_f(m.tau_high)}]" if m.tau_low is not None else "–"
        rows.append([m.metric + (" ↑" if m.higher_is_better else " ↓"), _f(m.tau), ci,
                     _f(m.pair_agreement), str(m.pair_n)])
    return rows


def _html_table(headers: list[str], rows: list[list[str]], label_cols: int = 1) -> str:
    head = "".join(f"<th class='label'>{e(h)}</th>" if i < label_cols else f"<th>{e(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td class='label'>{e(c)}</td>" if i < label_cols else f"<td>{e(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    esc = md_escape
    lines = ["| " + " | ".join(map(esc, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def _win_rows(q: QuestionResult) -> tuple[list[str], list[list[str]]]:
    wr = q.win_rate
    headers = ["row beats column"] + list(wr.columns)
    rows = [[m] + [_f(v) if m != c else "" for c, v in zip(wr.columns, wr.loc[m])] for m in wr.index]
    return headers, rows


def _alpha(q: QuestionResult) -> str:
    if q.alpha is not None:
        return f"{q.alpha:.2f} over {q.alpha_units} pair(s) rated more than once"
    return "– (no pair rated twice)" if q.alpha_units == 0 else "– (undefined: every answer the same)"


def _summary(res: StudyResults) -> str:
    return (f"{res.n_votes} votes · {res.n_raters} rater(s) · {len(res.questions)} question(s) · "
            f"{int(res.level * 100)}% bootstrap CIs over raters")


RANK_HEADERS = ["rank", "method", "strength θ", "CI"]
METRIC_HEADERS = ["metric", "Kendall τ vs people", "τ CI", "pairwise agreement", "decided votes"]
EXPLAIN = ("Bradley–Terry strengths with ties (Davidson; “not sure” = tie), log scale, centred at 0. "
           "Win rate counts ties as half. Kendall τ: metric’s method means vs the human strengths; "
           "pairwise agreement: share of decided votes whose preferred edit the metric also prefers. "
           "Attention-check pairs (source vs a broken clip) are not counted.")


NO_VOTES = "No votes yet: share the rater links (`videditbench study links NAME`) and serve the study."


def render_html(res: StudyResults) -> str:
    parts = [f"<h3>Study {e(res.name)}</h3>", f"<p class='note'>{e(_summary(res))}. {e(EXPLAIN)}</p>"]
    for note in res.notes:
        parts.append(f"<div class='alert'>{e(note)}</div>")
    if not res.n_votes:
        return "\n".join(parts + [f"<p class='note'>{e(NO_VOTES.replace('`', ''))}</p>"])
    for q in res.questions:
        a = _alpha(q)
        parts.append(f"<h3>{e(q.text)}</h3><p class='note'>{q.n_votes} votes ({q.n_ties} not sure) from "
                     f"{q.n_raters} rater(s); tie parameter ν = {_f(q.nu)}; Krippendorff’s α = {e(a)}</p>")
        parts.append("<div class='row'><div class='scroll'>" + _html_table(RANK_HEADERS, _ranking_rows(q), 2)
                     + "</div><div class='scroll'>" + _html_table(*_win_rows(q)) + "</div></div>")
        if _metric_rows(q):
            parts.append("<div class='scroll'>" + _html_table(METRIC_HEADERS, _metric_rows(q)) + "</div>")
        if _uncomparable(q):
            parts.append(f"<p class='note'>Not comparable (values for fewer than two of the shown edits): "
                         f"{e(', '.join(_uncomparable(q)))}</p>")
        if not q.metrics:
            parts.append("<p class='note'>No sample-level metric values in the store to compare with.</p>")
    return "\n".join(parts)


def render_markdown(res: StudyResults) -> str:
    out = [f"## Human study: {md_escape(res.name)}", "", _summary(res) + ".", "", EXPLAIN, ""]
    out += [f"> {md_escape(n)}" for n in res.notes] + ([""] if res.notes else [])
    if not res.n_votes:
        return "\n".join(out + [NO_VOTES, ""])
    for q in res.questions:
        a = _alpha(q)
        out += [f"### {md_escape(q.text)}", "", f"{q.n_votes} votes ({q.n_ties} not sure), {q.n_raters} rater(s), "
                f"ν = {_f(q.nu)}, Krippendorff's α = {a}", "", _md_table(RANK_HEADERS, _ranking_rows(q)), "",
                _md_table(*_win_rows(q)), ""]
        if _metric_rows(q):
            out += [_md_table(METRIC_HEADERS, _metric_rows(q)), ""]
        if _uncomparable(q):
            out += ["Not comparable (values for fewer than two of the shown edits): "
                    + md_escape(", ".join(_uncomparable(q))), ""]
    return "\n".join(out)


def study_section(run_dir: str | Path | None, n_boot: int = 1000) -> tuple[str, str]:
    """(HTML section, Markdown) for every study of the run; ("", "") when it has none."""
    import sqlite3

    db = Path(run_dir) / "results.sqlite" if run_dir is not None else None
    if db is None or not db.is_file():
        return "", ""
    from bench.study.analysis import analyse_store

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)  # reading never creates tables
    try:
        has = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'").fetchone()
        names = [r[0] for r in conn.execute("SELECT name FROM studies ORDER BY created, name")] if has else []
    finally:
        conn.close()
    if not names:
        return "", ""
    results = [analyse_store(run_dir, n, n_boot=n_boot) for n in names]
    body = "\n".join(render_html(r) for r in results)
    section = f"<section id='study'>\n<h2>Human study</h2>\n{body}\n</section>"
    return section, "\n\n".join(render_markdown(r) for r in results)


def report_hook(run_dir: str | Path | None, out_dir: str | Path):
    """What bench/report/html.py inserts: the study section as safe HTML (also written as out_dir/study.md).
    A broken study never breaks the report: it shows one line saying why."""
    from markupsafe import Markup

    try:
        section, md = study_section(run_dir)
    except Exception as err:  # noqa: BLE001
        return Markup(f"<section id='study'><h2>Human study</h2><div class='alert'>study analysis failed: "
                      f"{e(str(err))}</div></section>")
    if md:
        path = Path(out_dir) / "study.md"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(md + "\n", encoding="utf-8")
        tmp.replace(path)
    return Markup(section)
