"""Planning the units of a run: which (method, sample) edits and (metric, edit) scores are still to do.

A plan reads the store (what is finished) but writes nothing: it returns the units to execute and
the records already decided without executing anything (not applicable, method not creatable).
Set-level metrics are planned over the ok edits once the edit phase is over. The keys here are the
run's content-hash keys; a local run, a Ray run and merged shards of one config share them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.api.hashing import hash_obj
from bench.api.types import Sample
from bench.store.results import EditRow


def edit_key(sample_key: str, method_key: str) -> str:
    return hash_obj({"sample": sample_key, "method": method_key})


def score_key(edit_or_set_key: str, output: str, variant_id: str) -> str:
    return hash_obj({"edit": edit_or_set_key, "metric": output, "variant": variant_id})


def set_key(method_key: str, sample_keys: list[str]) -> str:
    return hash_obj({"method": method_key, "samples": sorted(sample_keys)})


def balanced_shard(samples: list[Sample], shard: tuple[int, int] | None) -> list[Sample]:
    """Shard i of n: samples sorted by a hash of their uid, dealt round-robin, so shard sizes differ by
    at most one and a sample's shard depends only on the suite's set of uids (not on file order).
    The samples of a shard keep the suite's order."""
    if not shard:
        return samples
    i, n = shard
    ranked = sorted(samples, key=lambda s: (hash_obj(s.uid, 8), s.uid))
    mine = {s.uid for s in ranked[i::n]}
    return [s for s in samples if s.uid in mine]


@dataclass(frozen=True)
class EditUnit:
    """One method on one sample. `source` groups the units whose `prepare` is shared."""

    method: str  # registry name
    label: str  # stored name
    method_key: str
    method_config: dict
    sample_uid: str
    sample_key: str
    edit_key: str
    source: str


@dataclass
class MethodPlan:
    name: str
    label: str
    method: Any = None  # the (guarded) method instance; None when it could not be created
    method_key: str = ""
    method_config: dict = field(default_factory=dict)
    create_error: str | None = None
    decided: list = field(default_factory=list)  # EditRows written without executing (not_applicable, create error)
    units: list[EditUnit] = field(default_factory=list)
    skipped_existing: int = 0


def needs_edit(row: dict | None, retry_errors: bool) -> bool:
    from pathlib import Path

    if row is None:
        return True
    if row["status"] == "ok":
        return not (row["output_dir"] and Path(row["output_dir"]).is_dir())
    if row["status"] == "error":
        return retry_errors
    if row["status"] == "skipped":
        return True  # weights may have appeared since; re-checking is cheap
    return False


def make_edit_row(sample: Sample, sample_key: str, label: str, mkey: str, mconfig: dict, status: str,
                  **kw: Any) -> EditRow:
    return EditRow(
        edit_key=edit_key(sample_key, mkey), method=label, method_key=mkey,
        method_config=json.dumps(mconfig, sort_keys=True, default=str), sample_uid=sample.uid,
        sample_key=sample_key, suite=sample.suite, video_id=sample.video_id, edit_id=sample.edit_id,
        edit_type=sample.edit_type, category=sample.category, task=sample.task, prompt=sample.target_prompt,
        status=status, **kw,
    )


def build_method(name: str, label: str, options: dict, device: str, seed: int, timeout_s: float | None):
    """(guarded method, method key, stored config); raises what creating the method raises."""
    from bench.api.catalog import METHODS
    from bench.running.guard import GuardedMethod

    cls = METHODS.get(name)
    method = GuardedMethod(cls(device=device, seed=seed, **options), timeout_s, label)
    mconfig = {**method.config(), "label": label}
    mkey = hash_obj(mconfig)
    if getattr(method, "reference", False):  # stored for the leaderboard, not part of the key
        mconfig = {**mconfig, "reference": True}
    return method, mkey, mconfig


def plan_method(runner, name: str) -> MethodPlan:
    """The edit units of one method over the runner's samples (source-video-major order)."""
    from bench.running.common import describe_exception

    cfg = runner.config
    label = runner._method_label(name)
    options = dict(cfg.method_options.get(name, {}))
    plan = MethodPlan(name, label)
    try:
        plan.method, plan.method_key, plan.method_config = build_method(
            name, label, options, runner.device, cfg.seed, cfg.timeout_s)
    except Exception as e:  # noqa: BLE001  (import errors, bad options)
        fallback = {"name": label, "seed": cfg.seed, **options}
        mkey = hash_obj(fallback)
        plan.method_key, plan.method_config = mkey, fallback
        plan.create_error = f"method '{name}' could not be created: {describe_exception(e)}"
        for s in runner.samples:
            sk = runner.sample_key(s)
            if needs_edit(runner.store.get_edit(edit_key(sk, mkey)), cfg.retry_errors):
                plan.decided.append(make_edit_row(s, sk, label, mkey, fallback, "error", message=plan.create_error))
        return plan
    todo: list[Sample] = []
    for s in runner.samples:
        sk = runner.sample_key(s)
        if not needs_edit(runner.store.get_edit(edit_key(sk, plan.method_key)), cfg.retry_errors):
            plan.skipped_existing += 1
            continue
        reason = plan.method.applicable(s.task, bool(s.target_prompt), bool(s.reference), bool(s.mask))
        if reason:
            plan.decided.append(make_edit_row(s, sk, label, plan.method_key, plan.method_config, "not_applicable",
                                              message=reason))
            continue
        todo.append(s)
    by_video: dict[str, list[Sample]] = defaultdict(list)
    for s in todo:
        by_video[s.source].append(s)
    for group in by_video.values():
        for s in group:
            sk = runner.sample_key(s)
            plan.units.append(EditUnit(name, label, plan.method_key, plan.method_config, s.uid, sk,
                                       edit_key(sk, plan.method_key), s.source))
    return plan


def sample_has(sample: Sample, row: dict) -> set[str]:
    """What a (sample, edit) offers a metric (`Metric.needs`)."""
    has = {"source"}
    if sample.target_prompt:
        has.add("text")
    if sample.reference:
        has.add("reference")
    if sample.mask:
        has.add("mask")
    if "boxes" in dict(sample.meta):
        has.add("boxes")
    if sample.source.startswith("synthetic:") or dict(sample.meta).get("has_flow_gt"):
        has.add("flow_gt")
    if row.get("generate_s") is not None:
        has.add("efficiency")
    return has


def score_done(existing: dict[str, str], metric, ekey: str, retry_errors: bool) -> bool:
    st = existing.get(score_key(ekey, metric.name, metric.variant_id()))
    if st is None or st == "skipped":
        return False
    return not (st == "error" and retry_errors)


@dataclass(frozen=True)
class ScoreUnit:
    """One metric variant on one edit (the edit's stored row)."""

    row: dict
    sample_uid: str


@dataclass(frozen=True)
class SetUnit:
    """One set-level metric on one sample set of one method; `rows` are its applicable edits."""

    row0: dict
    set_key: str
    set_uid: str
    rows: list


def plan_scores(metric, edits: list[dict], by_uid: dict[str, Sample], existing: dict[str, str],
                retry_errors: bool) -> tuple[list[ScoreUnit], list[tuple[dict, str]], int]:
    """(units, not-applicable (row, reason), already done) of a per-sample metric; units source-major
    so cached source features hit."""
    units, not_applicable, done = [], [], 0
    for r in edits:
        if score_done(existing, metric, r["edit_key"], retry_errors):
            done += 1
            continue
        s = by_uid[r["sample_uid"]]
        reason = metric.applicable(sample_has(s, r))
        if reason:
            not_applicable.append((r, reason))
            continue
        units.append(ScoreUnit(r, r["sample_uid"]))
    units.sort(key=lambda u: (by_uid[u.sample_uid].source, u.row["method"]))
    return units, not_applicable, done


def set_targets(edits: list[dict]) -> list[tuple[dict, list[dict]]]:
    """(first row, rows) of every sample set a set-level metric is computed on, per method: all
    its ok edits, those of each task, and each task's paired set (samples every compared,
    non-reference method finished; `bench.store.pairing`), so the leaderboard finds the value for the
    exact set it compares and a partial re-run never replaces the full-set value."""
    from bench.store.pairing import is_reference_config, paired_set

    refs = {r["method"] for r in edits if is_reference_config(r.get("method_config"))}
    by_method: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in edits:
        by_method[(r["method"], r["method_key"])].append(r)
    tasks = sorted({r["task"] or "" for r in edits})
    paired: dict[str, set[str]] = {}
    for t in tasks:
        finished: dict[str, set[str]] = defaultdict(set)
        for r in edits:
            if (r["task"] or "") == t:
                finished[r["method"]].add(r["sample_uid"])
        paired[t] = paired_set(finished, refs)
    out, seen = [], set()
    for (method, mkey), rows in sorted(by_method.items()):
        sets = [rows]
        for t in tasks:
            in_task = [r for r in rows if (r["task"] or "") == t]
            sets += [in_task, [r for r in in_task if r["sample_uid"] in paired[t]]]
        for rs in sets:
            ident = (mkey, frozenset(r["sample_uid"] for r in rs))
            if rs and ident not in seen:
                seen.add(ident)
                out.append((rs[0], sorted(rs, key=lambda r: r["sample_uid"])))
    return out


def plan_set_scores(metric, edits: list[dict], by_uid: dict[str, Sample], existing: dict[str, str],
                    retry_errors: bool, extra_edits: list[dict] | None = None) -> tuple[list[SetUnit], int]:
    """The set units of a set-level metric (after the edits exist), and how many are already done:
    the sets of `edits`, then those of `extra_edits` (a superset: the store's edits of other shards)."""
    from bench.store.pairing import set_uid

    targets, seen = [], set()
    for group in (edits, extra_edits if extra_edits is not None and len(extra_edits) > len(edits) else []):
        for r0, rows in set_targets(group):
            ident = (r0["method_key"], frozenset(r["sample_uid"] for r in rows))
            if ident not in seen:
                seen.add(ident)
                targets.append((r0, rows))
    todo, done = [], 0
    for r0, rows in targets:
        k = set_key(r0["method_key"], [r["sample_key"] for r in rows])
        if score_done(existing, metric, k, retry_errors):
            done += 1
            continue
        applicable = [r for r in rows if not metric.applicable(sample_has(by_uid[r["sample_uid"]], r))]
        todo.append(SetUnit(r0, k, set_uid(r["sample_uid"] for r in rows), applicable))
    return todo, done
