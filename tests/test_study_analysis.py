"""Known-answer tests of the study analysis: Davidson/Bradley–Terry recovers simulated strengths,
its bootstrap intervals cover the truth at about the stated rate, metric–human agreement is exact
for a metric that orders pairs as the raters do, and Krippendorff's alpha on a hand-worked example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from bench.study.analysis import analyse, analyse_question, fit_davidson, krippendorff_alpha
from bench.study.design import BROKEN, SOURCE

METHODS = ["m0", "m1", "m2", "m3"]
TRUTH = np.array([0.9, 0.3, -0.2, -1.0])
TRUTH = TRUTH - TRUTH.mean()
Q = {"overall": "Which is better?"}


def simulate(seed: int, raters: int = 25, votes_per_rater: int = 30, nu: float = 0.4,
             theta: np.ndarray = TRUTH) -> pd.DataFrame:
    """Votes drawn from Davidson's model with known strengths; uniform random pairs, random sides."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(raters):
        for v in range(votes_per_rater):
            i, j = rng.choice(len(theta), 2, replace=False)
            pi, pj = np.exp(theta[i]), np.exp(theta[j])
            d = pi + pj + nu * np.sqrt(pi * pj)
            u = rng.random()
            choice = "left" if u < pi / d else ("right" if u < (pi + pj) / d else "tie")
            rows.append({"rater": f"r{r}", "pair_id": f"{r}-{v}", "kind": "pair", "sample_uid": f"s{v % 5}",
                         "left_method": METHODS[i], "right_method": METHODS[j], "left_edit_key": f"{METHODS[i]}-{v % 5}",
                         "right_edit_key": f"{METHODS[j]}-{v % 5}", "question": "overall", "choice": choice})
    return pd.DataFrame(rows)


def _neg_loglik(x, wins, ties):
    k = wins.shape[0]
    th = np.r_[x[: k - 1], -x[: k - 1].sum()]
    nu = np.exp(x[-1])
    out = 0.0
    for i in range(k):
        for j in range(i + 1, k):
            pi, pj = np.exp(th[i]), np.exp(th[j])
            d = pi + pj + nu * np.sqrt(pi * pj)
            out -= wins[i, j] * np.log(pi / d) + wins[j, i] * np.log(pj / d) + ties[i, j] * np.log(nu * np.sqrt(pi * pj) / d)
    return out


def test_davidson_fit_is_the_maximum_likelihood():
    from bench.study.analysis import count_matrices

    votes = simulate(1, raters=40)
    wins, ties = count_matrices(votes, METHODS)
    theta, nu, _ = fit_davidson(wins, ties, prior=0.0)
    ref = minimize(_neg_loglik, np.zeros(len(METHODS)), args=(wins, ties), method="Nelder-Mead",
                   options={"maxiter": 20000, "xatol": 1e-9, "fatol": 1e-12}).x
    np.testing.assert_allclose(theta, np.r_[ref[:3], -ref[:3].sum()], atol=1e-5)
    assert nu == pytest.approx(np.exp(ref[-1]), abs=1e-5)


def test_bradley_terry_recovers_a_known_ranking():
    res = analyse_question(simulate(7, raters=40), METHODS, "overall", "x", n_boot=200)
    assert list(res.ranking()["method"]) == METHODS  # the true order
    np.testing.assert_allclose(res.theta, TRUTH, atol=0.25)
    assert res.nu == pytest.approx(0.4, abs=0.15)
    assert np.all(res.low <= res.theta) and np.all(res.theta <= res.high)
    # win rates follow the strengths: the best beats the worst most of the time
    assert res.win_rate.loc["m0", "m3"] > 0.7 and res.win_rate.loc["m3", "m0"] < 0.3
    assert res.win_rate.loc["m0", "m3"] + res.win_rate.loc["m3", "m0"] == pytest.approx(1.0)


def test_bootstrap_intervals_cover_the_truth_at_about_the_stated_rate():
    level, seeds = 0.90, 60
    covered = []
    for seed in range(seeds):
        res = analyse_question(simulate(100 + seed, raters=20, votes_per_rater=25), METHODS, "overall", "x",
                               n_boot=150, level=level, seed=seed)
        covered.extend((res.low <= TRUTH) & (TRUTH <= res.high))
    rate = float(np.mean(covered))
    assert 0.80 <= rate <= 0.97, rate  # 240 intervals at a stated 90%


def test_metric_that_orders_pairs_like_the_raters_agrees_exactly():
    """Raters prefer the edit of higher hidden quality; a metric equal to that quality agrees on every
    decided pair (1.0) and ranks methods as people do (tau = 1); its negation gets 0 and -1."""
    rng = np.random.default_rng(3)
    base = {"m0": 3.0, "m1": 2.0, "m2": 1.0, "m3": 0.0}
    quality = {(m, s): base[m] + rng.normal(0, 0.6) for m in METHODS for s in range(6)}
    rows, scores = [], []
    for r in range(12):
        for v in range(20):
            s = int(rng.integers(6))
            a, b = rng.choice(METHODS, 2, replace=False)
            rows.append({"rater": f"r{r}", "pair_id": f"{r}-{v}", "kind": "pair", "sample_uid": f"s{s}",
                         "left_method": a, "right_method": b, "left_edit_key": f"{a}-{s}", "right_edit_key": f"{b}-{s}",
                         "question": "overall", "choice": "left" if quality[(a, s)] > quality[(b, s)] else "right"})
    for (m, s), q in quality.items():
        for metric, val, hib in (("oracle", q, True), ("oracle_lower", -q, False), ("anti", -q, True)):
            scores.append({"method": m, "edit_key": f"{m}-{s}", "metric": metric, "variant_label": "default",
                           "value": val, "status": "ok", "level": "sample", "higher_is_better": hib})
    res = analyse(pd.DataFrame(rows), Q, METHODS, pd.DataFrame(scores), n_boot=100)
    by = {m.metric: m for m in res.questions[0].metrics}
    for good in ("oracle", "oracle_lower"):
        assert by[good].pair_agreement == 1.0 and by[good].pair_n == 240
        assert by[good].tau == pytest.approx(1.0)
    assert by["anti"].pair_agreement == 0.0 and by["anti"].tau == pytest.approx(-1.0)
    assert by["oracle"].tau_low <= by["oracle"].tau <= by["oracle"].tau_high


def test_attention_check_failures_flag_and_exclude_a_rater():
    votes = simulate(5, raters=6, votes_per_rater=10)
    checks = []
    for r in range(6):
        broken_left = r % 2 == 0
        picked_broken = r == 4  # r4 chose the broken clip
        choice = ("left" if broken_left else "right") if picked_broken else ("right" if broken_left else "left")
        checks.append({"rater": f"r{r}", "pair_id": f"att{r}", "kind": "attention", "sample_uid": "s0",
                       "left_method": BROKEN if broken_left else SOURCE, "right_method": SOURCE if broken_left else BROKEN,
                       "left_edit_key": None, "right_edit_key": None, "question": "overall", "choice": choice})
    res = analyse(pd.concat([votes, pd.DataFrame(checks)]), Q, METHODS, n_boot=20)
    assert res.flagged_raters == ["r4"]
    assert res.n_raters == 5 and res.n_votes == 50
    assert list(res.attention.sort_values("rater")["failed"]) == [0, 0, 0, 0, 1, 0]


def test_krippendorff_alpha_known_values():
    # two coders, nominal: units (a,a), (b,b), (a,b): D_o = 2/6, D_e = 18/30 -> alpha = 1 - (1/3)/0.6 = 4/9
    assert krippendorff_alpha({1: [0, 0], 2: [1, 1], 3: [0, 1]}, metric="nominal") == pytest.approx(4 / 9)
    assert krippendorff_alpha({1: [1, 1, 1], 2: [-1, -1], 3: [0, 0]}) == pytest.approx(1.0)
    assert krippendorff_alpha({1: [1], 2: [-1]}) is None  # nothing rated twice


def test_every_method_winning_everything_stays_finite():
    votes = pd.DataFrame([{"rater": "r0", "pair_id": str(i), "kind": "pair", "sample_uid": "s", "left_method": "m0",
                           "right_method": "m1", "left_edit_key": "a", "right_edit_key": "b", "question": "overall",
                           "choice": "left"} for i in range(10)])
    res = analyse_question(votes, ["m0", "m1"], "overall", "x", n_boot=20)
    assert np.all(np.isfinite(res.theta)) and res.theta[0] > res.theta[1] + 1.5
