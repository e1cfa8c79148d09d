"""`study create`: turn a finished run into a study — plan the pairs, encode the clips, store it all."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict
from pathlib import Path


from bench.study.design import BROKEN, SOURCE, Candidate, StudyDesign, candidates_by_sample, plan_study
from bench.study.media import copy_image, encode_folder
from bench.study.storage import PairRow, StudyError, StudyStore, new_token

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _references(run_dir: Path, store: StudyStore) -> dict[str, str]:
    """sample_uid -> reference image path, from the run's suite (best effort: only image-guided samples have one)."""
    import json

    rows = store.conn.execute("SELECT config FROM invocations ORDER BY id DESC").fetchall()
    for (cfg,) in rows:
        try:
            conf = json.loads(cfg)
            from bench.suites import load_suite

            suite = load_suite(conf["suite"], **(conf.get("suite_overrides") or {}))
            return {s.uid: s.reference for s in suite.samples if s.reference and Path(s.reference).is_file()}
        except Exception:  # noqa: BLE001  (a moved dataset only loses the reference images)
            continue
    return {}


def create_study(run_dir: str | Path, name: str, design: StudyDesign) -> dict:
    """Create study `name` in the run's store; returns {"name", "raters": [(rater, token)], "pairs": n}."""
    run_dir = Path(run_dir)
    if not NAME_RE.match(name):
        raise StudyError(f"bad study --name {name!r}: use letters, digits, '_', '-', '.' (at most 64)")
    if not (run_dir / "results.sqlite").is_file():
        raise StudyError(f"{run_dir} has no results.sqlite: give a run folder made by `videditbench run`")
    if len(set(design.questions)) != len(design.questions) or not design.questions:
        raise StudyError("questions must be a non-empty list of distinct ids")
    with StudyStore(run_dir) as store:
        if name in store.studies():
            raise StudyError(f"a study named {name!r} already exists in {store.path}; choose another --name")
        edits = list(store.iter_edits())  # the store's API resolves its run-relative paths
        all_methods = sorted({e["method"] for e in edits})
        unknown = [m for m in design.methods if m not in all_methods]
        if unknown:
            raise StudyError(f"--methods {', '.join(unknown)} not in this run; methods there: {', '.join(all_methods)}")
        by_sample = candidates_by_sample(edits, design.methods or None)
        if not design.methods:
            design.methods = sorted({m for c in by_sample.values() for m in c})
        plans = plan_study(by_sample, design)
        refs = _references(run_dir, store)
        media_root = Path("study") / name / "media"

        def clip(uid: str, method: str) -> str:
            any_cand: Candidate = next(iter(by_sample[uid].values()))
            if method == SOURCE:
                rel = media_root / f"source-{_short(any_cand.source_dir)}.webm"
                encode_folder(any_cand.source_dir, run_dir / rel)
            elif method == BROKEN:
                rel = media_root / f"broken-{_short(any_cand.source_dir)}.webm"
                encode_folder(any_cand.source_dir, run_dir / rel, broken=True)
            else:
                cand = by_sample[uid][method]
                rel = media_root / f"edit-{_short(cand.edit_key)}.webm"
                encode_folder(cand.output_dir, run_dir / rel)
            return rel.as_posix()

        def reference(uid: str) -> str | None:
            if uid not in refs:
                return None
            rel = media_root / f"ref-{_short(refs[uid])}.png"
            copy_image(refs[uid], run_dir / rel)
            return rel.as_posix()

        raters = []
        for plan in plans:
            token = new_token()
            rows = []
            for p in plan:
                cand = next(iter(by_sample[p.sample_uid].values()))
                rows.append(PairRow(
                    pair_id=_short(f"{name}/{token}/{p.position}"), study=name, token=token, position=p.position,
                    kind=p.kind, sample_uid=p.sample_uid, task=cand.task, prompt=cand.prompt,
                    reference_media=reference(p.sample_uid), source_media=clip(p.sample_uid, SOURCE),
                    left_method=p.left_method, left_edit_key=p.left_edit_key, left_media=clip(p.sample_uid, p.left_method),
                    right_method=p.right_method, right_edit_key=p.right_edit_key,
                    right_media=clip(p.sample_uid, p.right_method)))
            raters.append((token, rows))
        config = {k: v for k, v in asdict(design).items()}
        store.create_study(name, config, raters)
        return {"name": name, "run_dir": str(run_dir), "raters": [(f"rater{i + 1}", t) for i, (t, _) in enumerate(raters)],
                "pairs": sum(len(r) for _, r in raters)}
