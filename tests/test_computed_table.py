"""One computed table, many renderers: every output is rendered from one `Leaderboard`, and each number
it shows equals the table's (CSV, JSON, Markdown, SVG plots, the HTML report). The renderers import
nothing from the computation but the table's type and constants, so they cannot compute a statistic."""

from __future__ import annotations

import ast
import json
import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report.export import export_leaderboard
from bench.report.formats import fmt_value
from bench.report.html import write_report
from bench.report.table import build_leaderboard

REPO = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"
NAN = float("nan")
#: sample uid -> (task, edit type)
SAMPLES = {f"mini/t{i}/0": ("text", et) for i, et in enumerate(["style", "style", "background", "object", "object"])}
SAMPLES |= {f"mini/i{i}/0": ("image", et) for i, et in enumerate(["swap", "swap", "insert"])}
METRICS = (("clip_text", True), ("clip_consistency", True), ("warp_error", False), ("bg_psnr", True))


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    srows, erows = [], []
    for j, m in enumerate(["source", "alpha", "beta", "gamma"]):
        for uid, (task, et) in SAMPLES.items():
            base = {"method": m, "method_key": f"k-{m}", "sample_uid": uid, "suite": "mini", "video_id": uid.split("/")[1],
                    "edit_id": "0", "edit_type": et, "category": "animals" if uid[-3] in "02" else "city", "task": task}
            failed = m == "gamma" and uid == "mini/t1/0"
            erows.append({**base, "status": "error" if failed else "ok", "message": "out of memory" if failed else "",
                          "output_dir": None, "source_dir": None, "prompt": f"edit {uid}", "preprocess_s": 0.5 + j,
                          "generate_s": 1.0 + 2 * j + rng.random(), "peak_memory_mb": 100.0 * (j + 1),
                          "method_config": json.dumps({"reference": True}) if m == "source" else "{}"})
            if failed:
                continue
            for metric, hib in METRICS:
                value = float(rng.normal(10 + j, 1.0)) if metric != "warp_error" else float(rng.uniform(0.001, 0.01))
                srows.append({**base, "metric": metric, "metric_family": metric, "variant_id": metric[:4],
                              "variant_label": "default", "value": value, "status": "ok", "message": "",
                              "higher_is_better": hib, "value_min": -math.inf, "value_max": math.inf, "level": "sample"})
            srows.append({**base, "metric": "dover", "metric_family": "dover", "variant_id": "dv", "variant_label": "default",
                          "value": NAN, "status": "skipped", "message": "weights 'dover' missing", "higher_is_better": True,
                          "value_min": 0.0, "value_max": 1.0, "level": "sample"})
    return pd.DataFrame(srows), pd.DataFrame(erows)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    scores, edits = _frames()
    lb = build_leaderboard(scores, edits, bootstrap=200, references=["source"])
    out = tmp_path_factory.mktemp("lb")
    paths = export_leaderboard(lb, out)
    report = write_report(lb, edits, out, scores=scores)
    return lb, out, paths, report


def _same(got, want) -> None:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    np.testing.assert_array_equal(got, want)  # NaN == NaN; exact (the renderers copy, never recompute)


def test_the_fixture_exercises_sections_references_scaled_units_and_failures(rendered):
    lb, _, paths, _ = rendered
    assert set(lb.sections) == {"text", "image"} and all(b.paired for b in lb.task_boards())
    assert lb.references == ["source"]
    assert any(h.startswith("warp_error (×10") for h in lb.columns["header"])  # a display unit applied once
    text = lb.sections["text"]
    assert text.settings["n_paired"] < text.settings["n_samples"]  # gamma's failed edit leaves the paired set
    assert not text.edit_type_aggregate.empty and not text.edit_type_normalized.empty and not lb.sample_values.empty
    assert any(k.endswith("radar_methods") for k in paths) and any(k.endswith("radar_edit_type") for k in paths)


def test_csv_and_json_show_the_tables_numbers(rendered):
    lb, out, _, _ = rendered
    long = pd.read_csv(out / "leaderboard.csv", float_precision="round_trip")
    data = json.loads((out / "leaderboard.json").read_text())
    wide = pd.read_csv(out / "leaderboard_wide.csv", index_col=0, float_precision="round_trip")
    for board in lb.task_boards():
        quality = board.cells[~board.cells["header"].str.startswith(("generation", "preprocess", "peak"))]
        got = long[long["task"] == board.task].set_index(["method", "header"])
        want = quality.set_index(["method", "header"])
        assert set(got.index) == set(want.index)
        for col in ("mean", "std", "ci_low", "ci_high", "n", "diff_best", "diff_ci_low", "diff_ci_high"):
            _same(got.loc[want.index, col], want[col])
        cells = pd.DataFrame(data["sections"][board.task]["cells"]).set_index(["method", "header"])
        for col in ("mean", "ci_low", "ci_high", "n"):
            _same(cells.loc[board.cells.set_index(["method", "header"]).index, col].astype(float),
                  board.cells[col])
        agg = pd.DataFrame(data["sections"][board.task]["aggregate"]).set_index("method")
        _same(agg.loc[board.methods, "aggregate"].astype(float), board.aggregate.loc[board.methods, "aggregate"])
        w = wide[wide["task"] == board.task]
        for h in w.columns.drop(["task", "reference", "aggregate"]):
            _same(w.loc[board.methods, h], board.main.loc[board.methods, h])


def _markdown_tables(text: str) -> list[list[list[str]]]:
    tables, cur = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                cur.append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif cur:
            tables.append(cur)
            cur = []
    return tables


def _shown(board, m: str, header: str) -> str:
    """What a main-table cell must show: the table's mean, CI half-width and marks, formatted."""
    c = board.cells.set_index(["method", "header"]).loc[(m, header)]
    if c["n"] == 0:
        return {"not_applicable": "n/a", "missing": "missing"}.get(c["status"], str(c["status"]))
    s = fmt_value(c["mean"])
    if np.isfinite(c["ci_low"]):
        s += f" ± {fmt_value((c['ci_high'] - c['ci_low']) / 2, 2)}"
    return s + ("*" if c["status"] == "partial" else "") + (" †" if c["tie_best"] and not c["best"] and not c["claim"] else "")


def test_markdown_shows_the_tables_numbers(rendered):
    lb, out, _, _ = rendered
    tables = [t for t in _markdown_tables((out / "leaderboard.md").read_text()) if t[0][:3] == ["method", "rank", "aggregate ↑"]]
    assert len(tables) == len(lb.task_boards())
    for board, table in zip(lb.task_boards(), tables):
        head, rows = table[0], {r[0]: dict(zip(table[0], r)) for r in table[1:]}
        for m in board.methods:
            row = rows[f"{m} (reference)" if m in board.references else m]
            assert row["aggregate ↑"] == fmt_value(board.aggregate.loc[m, "aggregate"], 3)
            for h in head[3:-1]:
                assert row[h] == _shown(board, m, h), (board.task, m, h)
            assert int(row["n samples"]) == int(board.counts.loc[m, head[3:-1]].max())


def _svg(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def test_plots_show_the_tables_numbers(rendered):
    lb, _, paths, _ = rendered
    for board in lb.task_boards():
        prefix = f"plot:{board.task}/"
        for h in board.columns["header"]:
            if prefix + f"bar:{h}" not in paths:
                continue
            bars = {r.get("data-method"): float(r.get("data-value"))
                    for r in _svg(paths[prefix + f"bar:{h}"]).iter(f"{SVG}rect") if r.get("data-method")}
            cells = board.cells[board.cells["header"] == h].set_index("method")["mean"]
            assert bars == {m: v for m, v in cells.items() if np.isfinite(v)}
        agg = board.edit_type_aggregate
        shown = [(p.get("data-series"), [float(v) for v in p.get("data-values").split(",")])
                 for p in _svg(paths[prefix + "radar_edit_type"]).iter(f"{SVG}polygon")]
        if shown:
            assert shown == [(m, list(agg.loc[m])) for m in agg.index if np.isfinite(agg.loc[m]).all()]
        else:  # fewer than three edit types: grouped bars
            bars = {(r.get("data-method"), r.get("data-group")): float(r.get("data-value"))
                    for r in _svg(paths[prefix + "radar_edit_type"]).iter(f"{SVG}rect") if r.get("data-group")}
            assert bars == {(m, str(g)): v for (m, g), v in agg.stack().items() if np.isfinite(v)}
        norm = board.edit_type_normalized
        polys = [(p.get("data-series"), [float(v) for v in p.get("data-values").split(",")])
                 for p in _svg(paths[prefix + "radar_methods"]).iter(f"{SVG}polygon")]
        want = [(e, list(norm.loc[(m, e)])) for m in board.methods if m in norm.index.get_level_values(0)
                for e in sorted(set(norm.index.get_level_values(1))) if (m, e) in norm.index
                and np.isfinite(norm.loc[(m, e)]).all()]
        assert polys == want and len(want) >= 4
        dots = {c.get("data-method"): float(c.get("data-value"))
                for c in _svg(paths[prefix + "scatter"]).iter(f"{SVG}circle") if c.get("data-method")}
        agg_scores = board.aggregate["aggregate"]
        assert dots == {m: v for m, v in agg_scores.items() if np.isfinite(v)}


class _Cells(HTMLParser):
    """Every <td>/<th> of report.html: (text, title)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str]] = []
        self._open: list | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self._open = ["", dict(attrs).get("title", "")]

    def handle_data(self, data):
        if self._open is not None:
            self._open[0] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._open is not None:
            self.cells.append((self._open[0].strip(), self._open[1]))
            self._open = None


def test_html_report_shows_the_tables_numbers(rendered):
    lb, _, _, report = rendered
    text = report.read_text()
    parser = _Cells()
    parser.feed(text)
    cells = set(parser.cells)
    for board in lb.task_boards():
        for rec in board.cells.itertuples(index=False):
            if rec.n == 0 or rec.header.startswith(("generation", "preprocess", "peak")):
                continue
            title = (f"n={int(rec.n)}, std={fmt_value(rec.std)}, 95% CI [{fmt_value(rec.ci_low)}, "
                     f"{fmt_value(rec.ci_high)}]")
            shown = _shown(board, rec.method, rec.header)
            assert any(text == shown and t.startswith(title) for text, t in cells), (board.task, rec.method, rec.header)
    # the per-preview values are the table's per-sample values in display units
    first = lb.aggregate_headers()[:3]
    for rec in lb.sample_values[lb.sample_values["header"].isin(first)].head(20).itertuples(index=False):
        assert f"{rec.header} {fmt_value(rec.value)}" in text


def _table_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "bench.report.table":
            names |= {a.name for a in node.names}
    return names


def test_renderers_take_only_the_tables_type_and_constants_from_the_computation():
    allowed = {"Leaderboard", "EFFICIENCY_FAMILIES", "EDIT_COLUMNS", "conform"}
    for name in ("formats", "plots", "html", "export"):
        got = _table_imports(REPO / "bench" / "report" / f"{name}.py")
        assert got <= allowed, f"bench/report/{name}.py computes with {sorted(got - allowed)}"
