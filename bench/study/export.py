"""Export a study's votes as CSV and JSONL (one row per rater × pair × question)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.study.storage import StudyStore


def export_votes(run_dir: str | Path, name: str, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with StudyStore(run_dir, create=False) as s:
        s.study(name)
        df = s.votes_frame(name)
    paths = {"csv": out / "votes.csv", "jsonl": out / "votes.jsonl"}
    tmp = paths["csv"].with_suffix(".csv.tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(paths["csv"])
    tmp = paths["jsonl"].with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for rec in df.to_dict(orient="records"):
            f.write(json.dumps(rec, default=str) + "\n")
    tmp.replace(paths["jsonl"])
    return paths
