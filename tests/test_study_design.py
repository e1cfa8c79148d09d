"""Pair design: uniform over (sample, method pair), left/right balanced, seeded, fixed-baseline mode,
shared pairs for agreement, attention checks at random positions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from bench.study.design import (
    BROKEN,
    SOURCE,
    Candidate,
    DesignError,
    StudyDesign,
    comparable_pairs,
    plan_study,
)

METHODS = ["a", "b", "c", "d"]


def _by_sample(n_samples: int = 5, missing: tuple[tuple[int, str], ...] = ()) -> dict[str, dict[str, Candidate]]:
    out = {}
    for i in range(n_samples):
        uid = f"s{i}"
        out[uid] = {m: Candidate(uid, m, f"{m}{i}", f"/o/{m}{i}", f"/src/{i}", "p", "text")
                    for m in METHODS if (i, m) not in missing}
    return out


def test_pairs_are_uniform_and_sides_balanced():
    by = _by_sample(missing=((0, "d"),))  # sample 0 has 3 methods: 3 pairs; the others 6 each
    pool = comparable_pairs(by)
    assert len(pool) == 3 + 4 * 6
    plans = plan_study(by, StudyDesign(methods=METHODS, pairs_per_rater=27, raters=200, attention_checks=0,
                                       shared_pairs=0, seed=1))
    counts = Counter((p.sample_uid, *sorted((p.left_method, p.right_method))) for plan in plans for p in plan)
    assert set(counts) == set(pool)
    # 27 per rater = the whole pool without replacement: every combination exactly once per rater
    assert set(counts.values()) == {200}
    plans = plan_study(by, StudyDesign(methods=METHODS, pairs_per_rater=10, raters=300, attention_checks=0,
                                       shared_pairs=0, seed=2))
    counts = Counter((p.sample_uid, *sorted((p.left_method, p.right_method))) for plan in plans for p in plan)
    assert chisquare([counts[c] for c in pool]).pvalue > 0.001
    left_first = sum(p.left_method < p.right_method for plan in plans for p in plan)
    assert abs(left_first / 3000 - 0.5) < 0.04


def test_seeded_and_baseline_and_shared_and_attention():
    by = _by_sample()
    d = dict(methods=METHODS, pairs_per_rater=8, raters=4, attention_checks=2, shared_pairs=3)
    a, b = plan_study(by, StudyDesign(**d, seed=5)), plan_study(by, StudyDesign(**d, seed=5))
    assert a == b and a != plan_study(by, StudyDesign(**d, seed=6))
    for plan in a:
        assert len(plan) == 10 and [p.position for p in plan] == list(range(10))
        att = [p for p in plan if p.kind == "attention"]
        assert len(att) == 2 and all({p.left_method, p.right_method} == {SOURCE, BROKEN} for p in att)
        assert all(p.left_edit_key is None and p.right_edit_key is None for p in att)
    key = lambda p: (p.sample_uid, *sorted((p.left_method, p.right_method)))  # noqa: E731
    common = set.intersection(*[{key(p) for p in plan if p.kind == "pair"} for plan in a])
    assert len(common) >= 3
    base = plan_study(by, StudyDesign(methods=METHODS, pairs_per_rater=12, raters=3, baseline="b", seed=0))
    pairs = [p for plan in base for p in plan if p.kind == "pair"]
    assert all("b" in (p.left_method, p.right_method) for p in pairs)
    assert {p.left_method for p in pairs} | {p.right_method for p in pairs} == set(METHODS)


def test_design_errors_name_the_option():
    by = _by_sample()
    with pytest.raises(DesignError, match="--pairs-per-rater"):
        plan_study(by, StudyDesign(methods=METHODS, pairs_per_rater=0))
    with pytest.raises(DesignError, match="--baseline 'z'"):
        plan_study(by, StudyDesign(methods=METHODS, baseline="z"))
    one = {u: {"a": c["a"]} for u, c in by.items()}
    with pytest.raises(DesignError, match="at least two methods"):
        plan_study(one, StudyDesign(methods=["a"]))
