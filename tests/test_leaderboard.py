"""Leaderboard numbers on hand-built frames with known answers; variants; status; exports."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from bench.report.formats import to_markdown
from bench.report.table import bootstrap_ci, build_leaderboard

from bench.report.export import export_leaderboard
from bench.store.pairing import set_uid

NAN = float("nan")
DOVER_FIX = "weights 'dover' missing; run: videditbench weights download dover"

# sample uid -> (edit_type, category)
SAMPLES = {
    "mini/v1/0": ("style", "animals"),
    "mini/v2/0": ("style", "sports"),
    "mini/v3/0": ("background", "animals"),
    "mini/v4/0": ("background", "sports"),
}


def score(method: str, uid: str, metric: str, value: float, *, status: str = "ok", message: str = "",
          hib: bool = True, family: str | None = None, variant_id: str = "v0", variant_label: str = "default",
          level: str = "sample", key: str | None = None) -> dict:
    et, cat = SAMPLES.get(uid, ("", ""))
    return {
        "run_id": "r1", "method": method, "method_key": key or f"key-{method}", "sample_uid": uid, "suite": "mini",
        "video_id": uid.split("/")[1] if not uid.startswith("__set__") else "", "edit_id": "0", "edit_type": et, "category": cat,
        "task": "text", "metric": metric, "metric_family": family or metric, "variant_id": variant_id,
        "variant_label": variant_label, "value": value if status == "ok" else NAN, "status": status,
        "message": message, "higher_is_better": hib, "value_min": -math.inf, "value_max": math.inf, "level": level,
    }


def edit(method: str, uid: str, *, status: str = "ok", message: str = "", gen: float = 1.0, pre: float = 0.5,
         mem: float = 100.0, key: str | None = None) -> dict:
    et, cat = SAMPLES[uid]
    return {
        "method": method, "method_key": key or f"key-{method}", "sample_uid": uid, "suite": "mini",
        "video_id": uid.split("/")[1], "edit_id": "0", "edit_type": et, "category": cat, "task": "text",
        "status": status, "message": message, "output_dir": None, "source_dir": None, "prompt": f"edit {uid}",
        "preprocess_s": pre, "generate_s": gen, "peak_memory_mb": mem,
    }


def known_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    uids = list(SAMPLES)
    rows = []
    # clip_text (higher better): A = 1,2,3,4 ; B = 2, error, 4, 6
    for uid, v in zip(uids, [1, 2, 3, 4]):
        rows.append(score("A", uid, "clip_text", v))
    for uid, v in zip(uids, [2, None, 4, 6]):
        rows.append(score("B", uid, "clip_text", v) if v is not None
                    else score("B", uid, "clip_text", NAN, status="error", message="CUDA out of memory"))
    # warp_error (lower better): A = 0.1 everywhere, B = 0.3 everywhere
    for uid in uids:
        rows.append(score("A", uid, "warp_error", 0.1, hib=False))
        rows.append(score("B", uid, "warp_error", 0.3, hib=False))
    # generation time (efficiency; never in the aggregate): B much faster
    for uid in uids:
        rows.append(score("A", uid, "generation_time", 10.0, hib=False))
        rows.append(score("B", uid, "generation_time", 1.0, hib=False))
    # dover skipped for everyone (weights missing)
    for m in ("A", "B"):
        for uid in uids:
            rows.append(score(m, uid, "dover", NAN, status="skipped", message=DOVER_FIX))
    # set-level FID (lower better), keyed by the sample set it was computed on. A's edit of uids[1]
    # failed, so the paired set is uids 0, 2, 3 (also all of A's own samples).
    paired = [uids[0], uids[2], uids[3]]
    rows.append(score("A", set_uid(paired), "fid", 10.0, hib=False, level="set"))
    rows.append(score("B", set_uid(paired), "fid", 20.0, hib=False, level="set"))
    rows.append(score("B", set_uid(uids), "fid", 25.0, hib=False, level="set"))  # B's own 4 samples
    rows.append(score("B", set_uid(uids[:2]), "fid", 99.0, hib=False, level="set"))  # a `--limit 2` re-run
    edits = [edit("A", u, gen=g, pre=1.0, mem=m) for u, g, m in zip(uids, [1, 2, 3, 10], [100, 200, 300, 400])]
    edits += [edit("B", u, gen=0.5) for u in uids]
    edits[1] = edit("A", uids[1], status="error", message="CUDA out of memory", gen=NAN)
    return pd.DataFrame(rows), pd.DataFrame(edits)


@pytest.fixture(scope="module")
def lb():
    s, e = known_frames()
    return build_leaderboard(s, e, bootstrap=500, seed=0)


def test_means_counts_and_headers(lb):
    # quality columns, then efficiency, then columns no method could compute
    headers = list(lb.columns["header"])
    assert headers == ["clip_text ↑", "warp_error (×10⁻¹) ↓", "fid ↓", "generation_time ↓", "dover ↑"]
    # paired: A's edit of uids[1] failed, so both methods are averaged over uids 0, 2, 3
    assert lb.paired and lb.settings["n_paired"] == 3 and lb.settings["n_samples"] == 4
    assert lb.main.loc["A", "clip_text ↑"] == pytest.approx((1 + 3 + 4) / 3)
    assert lb.main.loc["B", "clip_text ↑"] == pytest.approx((2 + 4 + 6) / 3)
    assert lb.counts.loc["A", "clip_text ↑"] == 3 and lb.counts.loc["B", "clip_text ↑"] == 3
    # unpaired: each method over all its own values
    assert lb.unpaired.loc["A", "clip_text ↑"] == pytest.approx(2.5)
    assert lb.unpaired.loc["B", "clip_text ↑"] == pytest.approx(4.0)  # the failed sample is not averaged in
    assert lb.unpaired_counts.loc["A", "clip_text ↑"] == 4 and lb.unpaired_counts.loc["B", "clip_text ↑"] == 3
    assert lb.main.loc["A", "warp_error (×10⁻¹) ↓"] == pytest.approx(1.0)  # stored 0.1, shown ×10 (header ×10⁻¹)
    # set-level: the value computed on the paired set, never the `--limit 2` one
    assert lb.main.loc["B", "fid ↓"] == pytest.approx(20.0) and lb.counts.loc["B", "fid ↓"] == 1
    assert lb.unpaired.loc["B", "fid ↓"] == pytest.approx(25.0)
    assert np.isnan(lb.main.loc["A", "dover ↑"]) and lb.counts.loc["A", "dover ↑"] == 0
    std = lb.wide("std")
    assert std.loc["A", "clip_text ↑"] == pytest.approx(np.std([1, 3, 4], ddof=1))
    cell = lb.unpaired_cells.set_index(["method", "column"]).loc[("B", "clip_text")]
    assert cell["status"] == "partial" and cell["n_error"] == 1 and "CUDA out of memory" in cell["reason"]
    ci_lo, ci_hi = lb.wide("ci_low").loc["A", "clip_text ↑"], lb.wide("ci_high").loc["A", "clip_text ↑"]
    assert 1.0 <= ci_lo < 8 / 3 < ci_hi <= 4.0
    # the dropped sample is listed with the method and reason
    dropped = lb.status[lb.status["scope"] == "paired set"]
    assert list(dropped["column"]) == [list(SAMPLES)[1]] and list(dropped["method"]) == ["A"]
    assert "CUDA out of memory" in dropped["message"].iloc[0]


def test_breakdowns(lb):
    # on the paired samples (uids 0, 2, 3), like the main table
    et = lb.by_edit_type.set_index(["method", "column", "edit_type"])
    assert et.loc[("A", "clip_text", "style"), "mean"] == pytest.approx(1.0)
    assert et.loc[("A", "clip_text", "background"), "mean"] == pytest.approx(3.5)
    assert et.loc[("B", "clip_text", "style"), "mean"] == pytest.approx(2.0)
    assert et.loc[("B", "clip_text", "style"), "n"] == 1
    assert et.loc[("B", "clip_text", "background"), "mean"] == pytest.approx(5.0)
    cat = lb.by_category.set_index(["method", "column", "category"])
    assert cat.loc[("A", "clip_text", "animals"), "mean"] == pytest.approx(2.0)
    assert cat.loc[("A", "clip_text", "sports"), "mean"] == pytest.approx(4.0)
    assert cat.loc[("B", "clip_text", "sports"), "mean"] == pytest.approx(6.0)
    # set-level rows carry no edit type: they are not broken down
    assert "fid" not in set(lb.by_edit_type["column"])


def test_aggregate_min_max_sign_corrected(lb):
    # clip_text: A worst (0), B best (1); warp_error: A best (1); fid: A best (1); dover: no values;
    # generation_time excluded (efficiency) although B is far faster.
    assert lb.aggregate.loc["A", "aggregate"] == pytest.approx(2 / 3)
    assert lb.aggregate.loc["B", "aggregate"] == pytest.approx(1 / 3)
    assert lb.aggregate.loc["A", "n_families"] == 3
    assert lb.methods == ["A", "B"]  # ranked by aggregate
    norm = lb.normalization.set_index("header")
    assert norm.loc["fid ↓", "min"] == 10.0 and norm.loc["fid ↓", "max"] == 20.0
    assert norm.loc["fid ↓", "best"] == "A" and norm.loc["clip_text ↑", "best"] == "B"
    assert "generation_time ↓" not in norm.index


def test_efficiency(lb):
    eff = lb.efficiency
    # A: edit 2 failed -> medians over generate_s 1, 3, 10 and memory 100, 300, 400
    assert eff.loc["A", "n_edits"] == 4 and eff.loc["A", "n_error"] == 1 and eff.loc["A", "n_ok"] == 3
    assert eff.loc["A", "generate_s_median"] == pytest.approx(3.0)
    assert eff.loc["A", "total_s_median"] == pytest.approx(4.0)
    assert eff.loc["A", "peak_memory_mb_median"] == pytest.approx(300.0)
    assert eff.loc["B", "generate_s_median"] == pytest.approx(0.5) and eff.loc["B", "n_error"] == 0


def test_status_lists_skipped_with_reason(lb):
    st = lb.status
    dover = st[(st["column"] == "dover")]
    assert set(dover["method"]) == {"A", "B"}
    assert (dover["status"] == "skipped").all() and (dover["count"] == 4).all()
    assert (dover["message"] == DOVER_FIX).all()
    edit_rows = st[st["scope"] == "edit"]
    assert list(edit_rows["method"]) == ["A"] and edit_rows["message"].iloc[0] == "CUDA out of memory"


def test_variants_become_separate_columns():
    uids = list(SAMPLES)
    rows = []
    for uid in uids:
        # same metric, two variants with very different values: must never be averaged together
        rows.append(score("A", uid, "clip_consistency", 0.9, variant_id="c1",
                          variant_label="backbone=L,pairing=consecutive"))
        rows.append(score("A", uid, "clip_consistency", 0.5, variant_id="c2", variant_label="backbone=L,pairing=all"))
        rows.append(score("B", uid, "clip_consistency", 0.8, variant_id="c1",
                          variant_label="backbone=L,pairing=consecutive"))
        rows.append(score("B", uid, "clip_consistency", 0.6, variant_id="c2", variant_label="backbone=L,pairing=all"))
        rows.append(score("A", uid, "clip_text", 20.0, variant_id="t"))
        rows.append(score("B", uid, "clip_text", 30.0, variant_id="t"))
    lb = build_leaderboard(pd.DataFrame(rows), None, bootstrap=0)
    headers = list(lb.columns["header"])
    # the default variant (pairing=consecutive) is the plain name; another names what differs from it
    assert "clip_consistency ↑" in headers and "clip_consistency [pairing=all] ↑" in headers
    assert lb.main.loc["A", "clip_consistency ↑"] == pytest.approx(0.9)
    assert lb.main.loc["A", "clip_consistency [pairing=all] ↑"] == pytest.approx(0.5)
    assert lb.counts.loc["A", "clip_consistency [pairing=all] ↑"] == 4
    # family weight: clip_consistency variants average to A = (1 + 0)/2, clip_text A = 0 -> 0.25
    assert lb.aggregate.loc["A", "aggregate"] == pytest.approx(0.25)
    assert lb.aggregate.loc["B", "aggregate"] == pytest.approx(0.75)
    assert np.isnan(lb.wide("ci_low").loc["A", "clip_text ↑"])  # bootstrap=0 -> no CI


def test_method_configs_not_mixed_and_duplicates_resolved():
    uid = list(SAMPLES)[0]
    rows = [
        score("sdedit", uid, "clip_text", 10.0, key="aaaaaa111"),
        score("sdedit", uid, "clip_text", 20.0, key="bbbbbb222"),
        # a failed attempt and a later success of the same value: the success counts once
        score("other", uid, "clip_text", NAN, status="error", message="boom"),
        score("other", uid, "clip_text", 5.0),
    ]
    lb = build_leaderboard(pd.DataFrame(rows), None, bootstrap=0)
    assert set(lb.methods) == {"sdedit#aaaaaa", "sdedit#bbbbbb", "other"}
    assert lb.main.loc["sdedit#aaaaaa", "clip_text ↑"] == 10.0
    assert lb.main.loc["sdedit#bbbbbb", "clip_text ↑"] == 20.0
    assert lb.counts.loc["other", "clip_text ↑"] == 1 and lb.status.empty


def test_missing_cells_are_reported_not_dropped():
    uids = list(SAMPLES)
    s = pd.DataFrame([score("A", u, "clip_text", 1.0) for u in uids])
    e = pd.DataFrame([edit("A", u) for u in uids] +
                     [edit("C", u, status="error", message="method crashed: shape mismatch") for u in uids])
    lb = build_leaderboard(s, e, bootstrap=0)
    assert "C" in lb.methods and lb.counts.loc["C", "clip_text ↑"] == 0
    miss = lb.status[(lb.status["method"] == "C") & (lb.status["scope"] == "metric")]
    assert list(miss["status"]) == ["missing"] and "shape mismatch" in miss["message"].iloc[0]
    assert "missing" in to_markdown(lb)


def test_bootstrap_ci_properties():
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    lo, hi = bootstrap_ci(v, 2000, seed=1)
    assert lo < v.mean() < hi and lo >= 1.0 and hi <= 6.0
    assert bootstrap_ci(v, 2000, seed=1) == (lo, hi)  # seeded
    assert all(math.isnan(x) for x in bootstrap_ci(np.array([3.0]), 100))


def test_exports_carry_skipped_reasons(lb, tmp_path):
    paths = export_leaderboard(lb, tmp_path, plots=False)
    for key in ("csv", "md", "json", "wide_csv", "status_csv", "efficiency_csv", "by_edit_type_csv"):
        assert paths[key].is_file()
    md = paths["md"].read_text()
    assert "| method | rank | aggregate ↑ | clip_text ↑" in md
    assert DOVER_FIX in md and "skipped" in md and "## By edit type" in md and "## Efficiency" in md
    # n = 3 paired samples: fewer than MIN_PAIRED_N, so no rank is claimed
    assert "| A | n too small | 0.667 | 2.667 ± " in md and "Paired samples: n = 3 of 4" in md
    assert "| 1 ± 0 | 10 | 3 |" in md  # warp_error 0.1 stored raw, shown ×10 (header ×10⁻¹); n = 3
    assert "Not computed for any method here (reasons and fixes in Status): dover ↑" in md
    assert "| A | 2.5 ± " in md  # the unpaired table
    assert "4 ± 1.8*" in md  # B's unpaired clip_text: one sample failed
    csv = pd.read_csv(paths["csv"])
    dover = csv[csv["column"] == "dover"]
    assert len(dover) == 2 and (dover["status"] == "skipped").all() and (dover["reason"] == DOVER_FIX).all()
    assert (dover["n_skipped"] == 3).all()  # leaderboard.csv is the paired table (3 paired samples)
    a_clip = csv[(csv["method"] == "A") & (csv["column"] == "clip_text")].iloc[0]
    assert a_clip["mean"] == pytest.approx(8 / 3) and a_clip["n"] == 3
    unpaired = pd.read_csv(paths["unpaired_csv"])
    a_clip = unpaired[(unpaired["method"] == "A") & (unpaired["column"] == "clip_text")].iloc[0]
    assert a_clip["mean"] == pytest.approx(2.5) and a_clip["n"] == 4
    data = json.loads(paths["json"].read_text())
    assert any(r["column"] == "dover" and r["message"] == DOVER_FIX for r in data["status"])
    cell = next(c for c in data["cells"] if c["method"] == "A" and c["column"] == "dover")
    assert cell["mean"] is None and cell["reason"] == DOVER_FIX
    wide = pd.read_csv(paths["wide_csv"], index_col=0)
    assert wide.loc["B", "clip_text ↑"] == pytest.approx(4.0)
    assert wide.loc["A", "warp_error (×10⁻¹) ↓"] == pytest.approx(1.0)


def test_empty_and_all_error_inputs(tmp_path):
    lb = build_leaderboard(pd.DataFrame(), pd.DataFrame())
    assert lb.is_empty and lb.main.empty
    paths = export_leaderboard(lb, tmp_path / "empty")
    assert "No results" in paths["md"].read_text()
    assert json.loads(paths["json"].read_text())["methods"] == []

    uids = list(SAMPLES)
    s = pd.DataFrame([score(m, u, "clip_text", NAN, status="error", message="model exploded")
                      for m in ("A", "B") for u in uids])
    lb = build_leaderboard(s, None)
    assert lb.counts.to_numpy().sum() == 0 and lb.aggregate["aggregate"].isna().all()
    paths = export_leaderboard(lb, tmp_path / "err")
    md = paths["md"].read_text()
    assert "model exploded" in md and "| A | metric | clip_text | error | 4 | model exploded |" in md
    assert "Not computed for any method here (reasons and fixes in Status): clip_text ↑" in md


def test_reads_the_result_store_frames(tmp_path):
    """The real store's frames (SQLite round trip) feed build_leaderboard unchanged."""
    from bench.store.results import EditRow, ResultStore, ScoreRow

    with ResultStore(tmp_path / "results.sqlite") as store:
        for m, vals in (("A", [1.0, 3.0]), ("B", [2.0, None])):
            for i, v in enumerate(vals):
                uid = f"mini/v{i}/0"
                ek = f"{m}-{i}"
                store.put_edit(EditRow(edit_key=ek, method=m, method_key=f"k{m}", method_config="{}", sample_uid=uid,
                                       sample_key=f"s{i}", suite="mini", video_id=f"v{i}", edit_id="0",
                                       edit_type=["style", "background"][i], category="animals", task="text",
                                       prompt="p", status="ok", generate_s=1.0 + i, preprocess_s=0.0,
                                       peak_memory_mb=10.0))
                store.put_scores([
                    ScoreRow(score_key=f"{ek}-clip", edit_key=ek, method=m, method_key=f"k{m}", sample_uid=uid,
                             metric="clip_text", metric_family="clip_text", variant_id="v", variant_label="default",
                             value=v, status="ok" if v is not None else "error",
                             message=None if v is not None else "boom", higher_is_better=True, value_min=None,
                             value_max=None, level="sample"),
                    ScoreRow(score_key=f"{ek}-dover", edit_key=ek, method=m, method_key=f"k{m}", sample_uid=uid,
                             metric="dover", metric_family="dover", variant_id="d", variant_label="default",
                             value=None, status="skipped", message=DOVER_FIX, higher_is_better=True,
                             value_min=0.0, value_max=1.0, level="sample"),
                ])
        scores, edits = store.scores_frame(), store.edits_frame()
    lb = build_leaderboard(scores, edits, bootstrap=0)
    assert lb.unpaired.loc["A", "clip_text ↑"] == pytest.approx(2.0) and lb.counts.loc["B", "clip_text ↑"] == 1
    assert lb.main.loc["A", "clip_text ↑"] == pytest.approx(1.0)  # paired: only sample 0 has both values
    # breakdowns follow the paired table: B has no value on sample 1, so only sample 0 counts
    assert lb.by_edit_type.set_index(["method", "edit_type"]).loc[("A", "style"), "mean"] == 1.0
    assert ("A", "background") not in lb.by_edit_type.set_index(["method", "edit_type"]).index
    assert (lb.status[lb.status["column"] == "dover"]["message"] == DOVER_FIX).all()
    assert "boom" in set(lb.status["message"])
    assert lb.efficiency.loc["A", "generate_s_median"] == pytest.approx(1.5)


def test_not_applicable_rows_are_not_failures_and_unequal_n_is_flagged():
    uids = list(SAMPLES)
    rows = [score("A", u, "bg_psnr", 30.0) for u in uids[:2]]
    rows += [score("A", u, "bg_psnr", NAN, status="not_applicable", message="bg_psnr needs mask") for u in uids[2:]]
    rows += [score("B", u, "bg_psnr", 20.0) for u in uids]
    lb = build_leaderboard(pd.DataFrame(rows), None, bootstrap=0, paired=False)
    cell = lb.cells.set_index(["method", "column"]).loc[("A", "bg_psnr")]
    assert cell["status"] == "ok" and cell["n"] == 2 and cell["n_not_applicable"] == 2
    na = lb.status[lb.status["status"] == "not_applicable"]
    assert list(na["count"]) == [2] and na["message"].iloc[0] == "bg_psnr needs mask"
    assert lb.settings["unequal_n"] == ["bg_psnr ↑"]
    md = to_markdown(lb)
    assert "different numbers of samples in bg_psnr ↑" in md and "30*" not in md


def test_a_columns_header_depends_only_on_its_own_variant():
    """The same variant gets the same header whatever other variants a run holds: CSVs of runs join."""
    def board(labels: dict[str, str]):
        rows = [score(m, uid, "clip_consistency", v, variant_id=vid, variant_label=lab)
                for vid, lab in labels.items() for m, v in (("A", 0.9), ("B", 0.8)) for uid in SAMPLES]
        return list(build_leaderboard(pd.DataFrame(rows), None, bootstrap=0).columns["header"])

    alone = board({"c2": "backbone=L,pairing=all"})
    both = board({"c1": "backbone=L,pairing=consecutive", "c2": "backbone=L,pairing=all"})
    default_only = board({"c1": "backbone=L,pairing=consecutive"})
    assert alone == ["clip_consistency [pairing=all] ↑"]
    assert set(both) == {"clip_consistency ↑", "clip_consistency [pairing=all] ↑"}
    assert default_only == ["clip_consistency ↑"]
