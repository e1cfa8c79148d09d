"""No significance, rank or bold claim from fewer samples than the statistic supports (issue 19)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.report.formats import best_cells, display_table, to_markdown
from bench.report.table import MIN_PAIRED_N, build_leaderboard


def _frames(values: dict[str, dict[str, list[float]]]):
    """values[method][metric] = per-sample values (samples s0, s1, ...)."""
    scores, edits = [], []
    for method, by_metric in values.items():
        n = len(next(iter(by_metric.values())))
        for i in range(n):
            uid = f"t/v{i}/e"
            edits.append(dict(method=method, method_key=method, sample_uid=uid, sample_key=f"k{i}", status="ok",
                              task="text", edit_key=f"{method}{i}", created=1.0))
            for metric, vals in by_metric.items():
                scores.append(dict(method=method, method_key=method, sample_uid=uid, metric=metric,
                                   metric_family=metric, variant_id="v", variant_label="", value=vals[i], status="ok",
                                   higher_is_better=True, level="sample", task="text", edit_key=f"{method}{i}",
                                   created=1.0))
    return pd.DataFrame(scores), pd.DataFrame(edits)


@pytest.mark.parametrize("n", [1, 2])
def test_tables_of_one_or_two_samples_claim_nothing(n):
    rng = np.random.default_rng(n)
    vals = {m: {"q": list(base + rng.normal(0, 0.01, n)), "r": list(1 - base + rng.normal(0, 0.01, n))}
            for m, base in (("A", 0.2), ("B", 0.5), ("C", 0.9))}
    lb = build_leaderboard(*_frames(vals), bootstrap=200)
    assert lb.settings["n_paired"] == n
    assert (lb.aggregate["claim"] == "n too small").all() and lb.aggregate["tie_best"].all()
    assert (lb.cells["claim"] == "n too small").all() and lb.cells["tie_best"].all()
    assert not np.isfinite(lb.cells["diff_ci_low"]).any()  # no interval, zero-width or other
    assert best_cells(lb) == set()  # nothing bolded
    table = display_table(lb)
    assert set(table["rank"]) == {"n too small"}
    assert "n too small" in to_markdown(lb)


def test_enough_samples_still_claim_a_real_difference():
    n = 12
    rng = np.random.default_rng(0)
    vals = {"A": {"q": list(0.2 + rng.normal(0, 0.01, n))}, "B": {"q": list(0.8 + rng.normal(0, 0.01, n))}}
    lb = build_leaderboard(*_frames(vals), bootstrap=200)
    assert n >= MIN_PAIRED_N
    a = lb.aggregate
    assert a.loc["B", "claim"] == "" and a.loc["A", "claim"] == "" and not bool(a.loc["A", "tie_best"])
    assert best_cells(lb) == {("B", "q ↑")}
    assert list(display_table(lb)["rank"]) == ["1", "2"]


def test_a_tiny_gap_is_not_significant_in_the_aggregate():
    """Two methods: min–max makes every column 0 or 1, but a gap no column supports is no claim."""
    n = 16
    rng = np.random.default_rng(1)
    common = rng.normal(0.97, 0.01, n)
    noise = lambda: rng.normal(0, 0.01, n)  # noqa: E731
    vals = {"A": {"flicker": list(common + noise()), "psnr": [100.0] * n},
            "B": {"flicker": list(common + 0.0016 + noise()), "psnr": [100.0] * n}}
    lb = build_leaderboard(*_frames(vals), bootstrap=500)
    cells = lb.cells.set_index(["method", "metric"])
    assert cells.loc[("A", "flicker"), "tie_best"] and cells.loc[("B", "flicker"), "tie_best"]
    assert lb.aggregate["tie_best"].all()
    assert "≈1" in display_table(lb).loc["A", "rank"] or "≈1" in display_table(lb).loc["B", "rank"]


def test_a_degenerate_bootstrap_is_reported_not_shown_as_a_zero_width_interval():
    n = 8
    vals = {"A": {"q": [0.5] * n}, "B": {"q": [0.6] * n}}  # every resample gives the same difference
    lb = build_leaderboard(*_frames(vals), bootstrap=200)
    cell = lb.cells.set_index(["method", "metric"]).loc[("A", "q")]
    assert cell["claim"] == "degenerate" and not np.isfinite(cell["diff_ci_low"])


def test_the_aggregate_says_how_big_the_gaps_are():
    """Min–max turns any two-method gap into 0 vs 1; gap_sd gives its size in per-sample SDs."""
    n = 16
    rng = np.random.default_rng(3)
    base = rng.normal(0.97, 0.01, n)
    tiny = {"A": {"flicker": list(base + rng.normal(0, 0.01, n))},
            "B": {"flicker": list(base + 0.0016 + rng.normal(0, 0.01, n))}}
    big = {"A": {"flicker": list(base)}, "B": {"flicker": list(base + 0.2)}}
    for vals, lo, hi in ((tiny, -0.5, 0.0), (big, -40.0, -5.0)):
        lb = build_leaderboard(*_frames(vals), bootstrap=100)
        gaps = lb.aggregate["gap_sd"]
        best, other = (("B", "A") if lb.aggregate.loc["B", "aggregate"] > lb.aggregate.loc["A", "aggregate"]
                       else ("A", "B"))
        assert gaps[best] == 0.0 and lo < gaps[other] < hi, gaps.to_dict()
        assert sorted(lb.aggregate.loc[["A", "B"], "aggregate"]) == [0.0, 1.0]  # what min–max alone shows
        assert "Gap to the best, in per-sample standard deviations" in to_markdown(lb)
