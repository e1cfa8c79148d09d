"""Fair comparison: reference rows, paired sets per task, paired-bootstrap ranks, one unit per number."""

from __future__ import annotations

import html
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from bench.report.formats import to_markdown
from bench.report.table import build_leaderboard

from bench.report.export import export_leaderboard
from bench.store.pairing import paired_set, set_uid

NAN = float("nan")


def score(method, uid, metric, value, *, task="text", hib=True, status="ok", message="", level="sample",
          key=None, family=None):
    return {
        "method": method, "method_key": key or f"k-{method}", "sample_uid": uid, "suite": "s", "video_id": uid,
        "edit_id": "0", "edit_type": "style" if uid.endswith(("0", "2", "4")) else "shape", "category": "c",
        "task": task, "metric": metric, "metric_family": family or metric, "variant_id": "v", "variant_label": "default",
        "value": value if status == "ok" else NAN, "status": status, "message": message, "higher_is_better": hib,
        "value_min": -math.inf, "value_max": math.inf, "level": level,
    }


def edit(method, uid, *, task="text", status="ok", message="", reference=False):
    return {
        "method": method, "method_key": f"k-{method}", "sample_uid": uid, "suite": "s", "video_id": uid, "edit_id": "0",
        "edit_type": "style", "category": "c", "task": task, "status": status, "message": message, "output_dir": None,
        "source_dir": None, "prompt": "p", "preprocess_s": 0.1, "generate_s": 1.0, "peak_memory_mb": 10.0,
        "method_config": json.dumps({"name": method, **({"reference": True} if reference else {})}),
    }


def frames(n: int = 8, noise: float = 0.0, seed: int = 0):
    """source (reference, perfect scores), A clearly best, B ≈ A, C clearly worst on clip_text."""
    rng = np.random.default_rng(seed)
    uids = [f"t{i}" for i in range(n)]
    base = rng.normal(0, 1, n)
    rows, edits = [], []
    for m, shift, ref in (("source", 10.0, True), ("A", 1.0, False), ("B", 0.98, False), ("C", -3.0, False)):
        for i, u in enumerate(uids):
            rows.append(score(m, u, "clip_text", base[i] + shift + noise * rng.normal()))
            rows.append(score(m, u, "warp_error", 0.001 * (2 if m == "C" else 1), hib=False))
            edits.append(edit(m, u, reference=ref))
    return pd.DataFrame(rows), pd.DataFrame(edits), uids


def test_reference_rows_are_shown_but_never_ranked_normalised_or_bolded():
    s, e, _ = frames()
    lb = build_leaderboard(s, e, bootstrap=300)
    assert lb.references == ["source"] and "source" in lb.methods and lb.methods[-1] == "source"
    # source has the best clip_text by far, yet it is not ranked, aggregated, normalised or best
    assert np.isnan(lb.aggregate.loc["source", "aggregate"]) and np.isnan(lb.aggregate.loc["source", "rank"])
    assert bool(lb.aggregate.loc["source", "reference"])
    assert "source" not in set(lb.normalization["best"]) | set(lb.normalization["worst"])
    best = lb.cells[lb.cells["best"]]
    assert set(best["method"]) == {"A"} and not lb.cells[lb.cells["method"] == "source"]["best"].any()
    # min–max over compared methods only: A = 1 on clip_text, C = 0
    assert lb.normalized.loc["A", "clip_text ↑"] == pytest.approx(1.0)
    assert lb.normalized.loc["C", "clip_text ↑"] == pytest.approx(0.0)
    assert lb.aggregate.loc["A", "rank"] == 1 and lb.aggregate.loc["C", "rank"] == 3
    md = to_markdown(lb)
    assert "| source (reference) | ref | — |" in md
    # explicit references override the stored flag
    lb2 = build_leaderboard(s, e, bootstrap=0, references=[])
    assert lb2.references == [] and lb2.aggregate.loc["source", "rank"] == 1


def test_runner_marks_reference_methods_in_the_stored_config_without_changing_keys():
    from bench.api.catalog import METHODS

    assert METHODS.get("source").reference is True
    assert METHODS.get("flow-propagate").reference is False


def test_paired_set_drops_unfinished_samples_and_states_n():
    s, e, uids = frames()
    # B failed two edits, C one: paired n = 5; the reference's failure does not shrink the set
    for m, u, msg in (("B", uids[1], "CUDA out of memory"), ("B", uids[2], "CUDA out of memory"),
                      ("C", uids[5], "NaN in output"), ("source", uids[7], "disk full")):
        e.loc[(e["method"] == m) & (e["sample_uid"] == u), ["status", "message"]] = ["error", msg]
        s = s[~((s["method"] == m) & (s["sample_uid"] == u))]  # a failed edit has no scores
    lb = build_leaderboard(s, e, bootstrap=0)
    assert lb.settings["n_paired"] == 5 and lb.settings["n_samples"] == 8
    assert set(lb.counts.loc[["A", "B", "C"], "clip_text ↑"]) == {5}
    kept = [u for u in uids if u not in (uids[1], uids[2], uids[5])]
    a_vals = s[(s["method"] == "A") & (s["metric"] == "clip_text") & s["sample_uid"].isin(kept)]["value"]
    assert lb.main.loc["A", "clip_text ↑"] == pytest.approx(a_vals.mean())
    assert lb.counts.loc["source", "clip_text ↑"] == 4  # the reference lacks uids[7]
    drop = lb.status[lb.status["scope"] == "paired set"]
    b = drop[drop["method"] == "B"].iloc[0]
    assert b["column"] == f"{uids[1]}, {uids[2]}" and b["count"] == 2 and "CUDA out of memory" in b["message"]
    assert "NaN in output" in drop[drop["method"] == "C"]["message"].iloc[0]
    assert lb.unpaired_counts.loc["A", "clip_text ↑"] == 8 and lb.unpaired_counts.loc["B", "clip_text ↑"] == 6
    assert "Paired samples: n = 5 of 8" in to_markdown(lb)


def test_each_task_is_compared_on_its_own_paired_set():
    s, e, uids = frames(6)
    img = [f"i{i}" for i in range(4)]
    rows = [score(m, u, "clip_text", v, task="image") for m, v in (("D", 5.0), ("source", 9.0)) for u in img]
    eds = [edit(m, u, task="image", reference=m == "source") for m in ("D", "source") for u in img]
    lb = build_leaderboard(pd.concat([s, pd.DataFrame(rows)]), pd.concat([e, pd.DataFrame(eds)]), bootstrap=0)
    assert set(lb.sections) == {"text", "image"} and not lb.paired
    text, image = lb.sections["text"], lb.sections["image"]
    assert text.paired and text.settings["n_paired"] == 6 and "D" not in text.methods
    assert image.methods == ["D", "source"] and image.settings["n_paired"] == 4
    assert image.aggregate.loc["D", "rank"] == 1
    md = to_markdown(lb)
    assert "## Text-guided: paired comparison" in md and "## Image-guided: paired comparison" in md


def test_paired_bootstrap_marks_methods_not_different_from_the_best():
    s, e, _ = frames(12, noise=0.5, seed=3)
    lb = build_leaderboard(s, e, bootstrap=500, seed=1)
    cell = lb.cells.set_index(["method", "header"])
    assert bool(cell.loc[("A", "clip_text ↑"), "best"])
    b = cell.loc[("B", "clip_text ↑")]
    assert b["diff_ci_low"] <= 0 <= b["diff_ci_high"] and bool(b["tie_best"])  # 0.02 behind, noisy: a tie
    c = cell.loc[("C", "clip_text ↑")]
    assert c["diff_ci_high"] < 0 and not bool(c["tie_best"])  # 4 behind on every sample
    # pairing matters: the per-sample spread (sd 1) is shared, so the paired CI of C's gap is tight
    assert c["diff_ci_high"] - c["diff_ci_low"] < 1.0  # unpaired it would be ≈ 4 × sqrt(2/12) ≈ 1.6
    assert bool(lb.aggregate.loc["A", "tie_best"]) and not bool(lb.aggregate.loc["C", "tie_best"])
    again = build_leaderboard(s, e, bootstrap=500, seed=1)
    pd.testing.assert_frame_equal(lb.cells, again.cells)  # seeded: deterministic
    assert "paired percentile bootstrap" in lb.settings["rank_doc"] and "seed 1" in lb.settings["rank_doc"]


def test_set_metric_uses_the_value_of_the_compared_set_never_a_partial_rerun():
    s, e, uids = frames(4)
    e.loc[(e["method"] == "C") & (e["sample_uid"] == uids[0]), ["status", "message"]] = ["error", "boom"]
    paired = uids[1:]
    rows = [score(m, set_uid(paired), "fid", v, hib=False, level="set") for m, v in (("A", 10), ("B", 12), ("C", 30))]
    rows += [score("A", set_uid(uids), "fid", 11, hib=False, level="set"),  # A on all of its samples
             score("A", set_uid(uids[:2]), "fid", 99, hib=False, level="set"),  # a --limit 2 re-run
             score("source", set_uid(paired), "fid", 0.0, hib=False, level="set")]
    lb = build_leaderboard(pd.concat([s, pd.DataFrame(rows)]), e, bootstrap=0)
    assert lb.main.loc["A", "fid ↓"] == 10 and lb.main.loc["C", "fid ↓"] == 30
    assert lb.main.loc["source", "fid ↓"] == 0.0 and lb.unpaired.loc["A", "fid ↓"] == 11
    # B has no value on its own full set: the unpaired cell says so instead of borrowing another set's
    assert np.isnan(lb.unpaired.loc["B", "fid ↓"])


def test_markdown_escapes_raw_html_and_table_syntax(tmp_path):
    s, e, uids = frames(3)
    evil = "<img src=x onerror=alert(1)>|x"
    s.loc[(s["method"] == "C") & (s["sample_uid"] == uids[0]) & (s["metric"] == "warp_error"),
          ["status", "message", "value"]] = ["error", evil, NAN]
    s = s.assign(method=s["method"].replace({"B": "<b>bold</b>"}))
    e = e.assign(method=e["method"].replace({"B": "<b>bold</b>"}))
    md = to_markdown(build_leaderboard(s, e, bootstrap=0))
    assert "<img" not in md and "<b>" not in md
    assert "&lt;img src=x onerror=alert(1)&gt;\\|x" in md and "&lt;b&gt;bold&lt;/b&gt;" in md


def test_one_unit_per_number_across_csv_markdown_json_html_and_plots(tmp_path):
    from bench.report.html import write_report

    s, e, _ = frames(4)
    lb = build_leaderboard(s, e, bootstrap=0)
    header = "warp_error (×10⁻¹) ↓"
    stored = 0.001  # A's raw warp error; shown ×10 with the header (×10⁻¹)
    paths = export_leaderboard(lb, tmp_path)
    shown = lb.main.loc["A", header]
    assert shown == pytest.approx(stored * 10)
    long = pd.read_csv(paths["csv"])
    row = long[(long["method"] == "A") & (long["header"] == header)].iloc[0]
    assert row["mean"] == pytest.approx(shown) and row["display_unit"] == "×10⁻¹"
    wide = pd.read_csv(paths["wide_csv"], index_col=0)
    assert wide.loc["A", header] == pytest.approx(shown)
    unp = pd.read_csv(paths["unpaired_csv"])
    assert unp[(unp["method"] == "A") & (unp["header"] == header)]["mean"].iloc[0] == pytest.approx(shown)
    data = json.loads(paths["json"].read_text())
    cell = next(c for c in data["cells"] if c["method"] == "A" and c["header"] == header)
    assert cell["mean"] == pytest.approx(shown)
    md_row = next(line for line in paths["md"].read_text().splitlines() if line.startswith("| A | 1 |"))
    cols = [c.strip() for c in md_row.strip("|").split("|")]
    md_header = next(line for line in paths["md"].read_text().splitlines() if line.startswith("| method | rank |"))
    idx = [c.strip() for c in md_header.strip("|").split("|")].index(header)
    assert float(cols[idx].split(" ")[0]) == pytest.approx(shown)
    report = write_report(lb, e, tmp_path, plot_paths={}, scores=s)
    text = html.unescape(report.read_text())
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", text)
    assert "0.01" in cells and "0.001" not in cells  # the same number, never the raw one
    import xml.etree.ElementTree as ET

    bar = ET.parse(paths[f"plot:bar:{header}"]).getroot()
    values = {r.get("data-method"): float(r.get("data-value")) for r in bar.iter("{http://www.w3.org/2000/svg}rect")
              if r.get("data-method")}
    assert values["A"] == pytest.approx(shown)  # the plot shows the displayed number, in the same unit
    assert "×10⁻¹" in "".join(bar.itertext())


def test_paired_set_helper():
    finished = {"A": {"1", "2", "3"}, "B": {"2", "3"}, "src": {"1"}, "none": set()}
    assert paired_set(finished, ["src"]) == {"2", "3"}
    assert paired_set({"src": {"1"}}, ["src"]) == {"1"}
    assert set_uid(["b", "a"]) == set_uid(["a", "b"]) != set_uid(["a"])
