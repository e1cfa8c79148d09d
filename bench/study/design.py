"""Which pairs each rater sees: drawn uniformly at random (never adaptively: adaptive pairing biases
the Bradley–Terry fit), left/right randomised per pair, an optional fixed baseline (every pair is
baseline vs another method, as LOVEU-TGVE ran it), and attention checks (source vs a visibly broken
copy of it) at random positions. A few "shared" pairs, drawn the same way, go to every rater (each
with its own left/right order) so that inter-rater agreement can be measured. Everything is a
function of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Iterable

import numpy as np

DEFAULT_QUESTIONS: dict[str, str] = {
    "instruction": "Which edit follows the instruction better?",
    "temporal": "Which is more temporally consistent?",
    "preservation": "Which preserves the source better?",
}
CHOICES = ("left", "right", "tie")  # "tie" is the "not sure" answer
SOURCE, BROKEN = "__source__", "__broken__"  # pseudo-methods of attention-check pairs


@dataclass(frozen=True)
class Candidate:
    """One finished edit that can be shown."""

    sample_uid: str
    method: str
    edit_key: str
    output_dir: str
    source_dir: str
    prompt: str | None
    task: str


@dataclass
class PlannedPair:
    position: int
    kind: str  # "pair" | "attention"
    sample_uid: str
    left_method: str
    right_method: str
    left_edit_key: str | None  # None for the source / broken pseudo-edits
    right_edit_key: str | None


@dataclass
class StudyDesign:
    methods: list[str]
    questions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_QUESTIONS))
    pairs_per_rater: int = 20
    raters: int = 3
    baseline: str | None = None
    attention_checks: int = 2
    shared_pairs: int = 4  # pairs every rater judges (own left/right order): what inter-rater agreement needs
    seed: int = 0


class DesignError(ValueError):
    pass


def candidates_by_sample(edits: Iterable[dict], methods: list[str] | None) -> dict[str, dict[str, Candidate]]:
    """{sample_uid: {method: Candidate}} of ok edits whose frames exist (the newest per method)."""
    from pathlib import Path

    out: dict[str, dict[str, Candidate]] = {}
    newest: dict[tuple[str, str], float] = {}
    for e in edits:
        if e.get("status") != "ok" or not e.get("output_dir") or not e.get("source_dir"):
            continue
        if methods and e["method"] not in methods:
            continue
        if not Path(e["output_dir"]).is_dir():
            continue
        key = (e["sample_uid"], e["method"])
        if key in newest and newest[key] >= (e.get("created") or 0.0):
            continue
        newest[key] = e.get("created") or 0.0
        out.setdefault(e["sample_uid"], {})[e["method"]] = Candidate(
            e["sample_uid"], e["method"], e["edit_key"], e["output_dir"], e["source_dir"], e.get("prompt"),
            e.get("task") or "text")
    return out


def comparable_pairs(by_sample: dict[str, dict[str, Candidate]], baseline: str | None = None) -> list[tuple[str, str, str]]:
    """Every (sample_uid, method_a, method_b) with a_ < b_ that can be shown; with a baseline only baseline pairs."""
    out = []
    for uid in sorted(by_sample):
        ms = sorted(by_sample[uid])
        for a, b in combinations(ms, 2):
            if baseline is None or baseline in (a, b):
                out.append((uid, a, b))
    return out


def draw_pairs(pool: list[tuple[str, str, str]], n: int, rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """n pairs uniformly at random: without replacement while the pool lasts, then a fresh shuffle."""
    out: list[tuple[str, str, str]] = []
    while len(out) < n:
        order = rng.permutation(len(pool))
        out.extend(pool[i] for i in order[: n - len(out)])
    return out


def plan_rater(pool: list[tuple[str, str, str]], by_sample: dict[str, dict[str, Candidate]], design: StudyDesign,
               rng: np.random.Generator, shared: list[tuple[str, str, str]] = ()) -> list[PlannedPair]:
    own = [p for p in pool if p not in set(shared)] or pool
    drawn = list(shared) + draw_pairs(own, design.pairs_per_rater - len(shared), rng)
    drawn = [drawn[i] for i in rng.permutation(len(drawn))]
    items: list[tuple[str, str, str, str]] = []  # (kind, uid, left, right)
    for uid, a, b in drawn:
        left, right = (a, b) if rng.random() < 0.5 else (b, a)
        items.append(("pair", uid, left, right))
    uids = sorted(by_sample)
    for _ in range(design.attention_checks):
        uid = uids[int(rng.integers(len(uids)))]
        left, right = (SOURCE, BROKEN) if rng.random() < 0.5 else (BROKEN, SOURCE)
        pos = int(rng.integers(len(items) + 1))
        items.insert(pos, ("attention", uid, left, right))
    planned = []
    for i, (kind, uid, left, right) in enumerate(items):
        cands = by_sample[uid]
        planned.append(PlannedPair(
            i, kind, uid, left, right,
            cands[left].edit_key if left in cands else None, cands[right].edit_key if right in cands else None))
    return planned


def plan_study(by_sample: dict[str, dict[str, Candidate]], design: StudyDesign) -> list[list[PlannedPair]]:
    """One list of pairs per rater."""
    if design.pairs_per_rater < 1:
        raise DesignError(f"--pairs-per-rater must be at least 1 (got {design.pairs_per_rater})")
    if design.raters < 1:
        raise DesignError(f"--raters must be at least 1 (got {design.raters})")
    if design.attention_checks < 0:
        raise DesignError("--attention-checks must be 0 or more")
    present = sorted({m for c in by_sample.values() for m in c})
    if design.baseline is not None and design.baseline not in present:
        raise DesignError(f"--baseline {design.baseline!r} has no finished edits in this run; methods with edits: "
                          f"{', '.join(present) or '(none)'}")
    pool = comparable_pairs(by_sample, design.baseline)
    if not pool:
        raise DesignError("no sample has finished edits of two of the chosen methods "
                          f"(methods with edits: {', '.join(present) or '(none)'}); a study needs at least two methods")
    if design.shared_pairs < 0:
        raise DesignError("--shared-pairs must be 0 or more")
    rng = np.random.default_rng(design.seed)
    shared = draw_pairs(pool, min(design.shared_pairs, design.pairs_per_rater, len(pool)), rng) if design.raters > 1 else []
    return [plan_rater(pool, by_sample, design, rng, shared) for _ in range(design.raters)]
