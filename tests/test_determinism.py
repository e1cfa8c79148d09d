"""Two identical runs, and an interrupted + resumed run, write byte-identical quality tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.report.table import EFFICIENCY_FAMILIES, build_leaderboard

from bench.report.export import export_leaderboard
from bench.running.runner import RunConfig, run_benchmark
from bench.store.results import ResultStore

TINY = {"num_frames": 4, "size": 32}
METHODS = ["source", "flow-propagate", "color-transfer"]
# two variants of one metric (their order once depended on store row order), set-level, efficiency
METRICS = ["temporal_flickering", "warp_error@flow=dis", "warp_error@flow=gt", "bg_psnr", "generation_time",
           "peak_memory"]


class _Interrupt(Exception):
    pass


def _cfg(root: Path, name: str, metrics: list[str] = METRICS, **kw) -> RunConfig:
    return RunConfig(suite="mini", methods=list(METHODS), metrics=list(metrics), results_dir=str(root),
                     run_name=name, device="cpu", suite_overrides=dict(TINY), **kw)


def _export(run_dir: Path) -> dict[str, str]:
    with ResultStore(run_dir) as store:
        lb = build_leaderboard(store.scores_frame(), store.edits_frame(), bootstrap=200)
    paths = export_leaderboard(lb, run_dir / "lb", plots=False)
    md = paths["md"].read_text()
    # the Efficiency section holds the measured timings; everything else must match byte for byte
    md = re.sub(r"## Efficiency\n.*?(?=\n## )", "## Efficiency\n", md, flags=re.S)
    data = json.loads(paths["json"].read_text())

    def strip(d: dict) -> dict:
        d = dict(d)
        d.pop("efficiency", None)
        for key in ("cells", "unpaired_cells", "columns", "status"):
            d[key] = [r for r in d.get(key, []) if r.get("metric_family") not in EFFICIENCY_FAMILIES
                      and r.get("metric") not in EFFICIENCY_FAMILIES]
        for key in ("by_edit_type", "by_category"):
            d[key] = [r for r in d.get(key, []) if r["column"] not in EFFICIENCY_FAMILIES]
        d["sections"] = {k: strip(v) for k, v in d.get("sections", {}).items()}
        return d

    return {"csv": paths["csv"].read_text(), "wide": paths["wide_csv"].read_text(),
            "unpaired": "\n".join(line for line in paths["unpaired_csv"].read_text().splitlines()
                                  if not any(f in line for f in EFFICIENCY_FAMILIES)),
            "md": md, "json": json.dumps(strip(data), sort_keys=True)}


@pytest.mark.slow
def test_identical_and_resumed_runs_write_identical_quality_tables(tmp_path):
    run_benchmark(_cfg(tmp_path, "a"))
    run_benchmark(_cfg(tmp_path, "b"))
    # interrupted: metrics in another order, stopped after a few edits, then resumed in full
    state = {"n": 0}

    def stop_after_three(label: str, done: int, total: int) -> None:
        if label.startswith("edit"):
            state["n"] += 1
            if state["n"] > 3:
                raise _Interrupt()

    with pytest.raises(_Interrupt):
        run_benchmark(_cfg(tmp_path, "c", metrics=list(reversed(METRICS))), progress=stop_after_three)
    run_benchmark(_cfg(tmp_path, "c", metrics=METRICS[::2], limit=4))
    run_benchmark(_cfg(tmp_path, "c"))
    a, b, c = (_export(tmp_path / n) for n in "abc")
    assert "warp_error [flow=dis" in a["csv"] and "warp_error [flow=gt" in a["csv"]
    assert "generation_time" not in a["csv"]
    for key in a:
        assert a[key] == b[key], f"{key} differs between identical runs"
        assert a[key] == c[key], f"{key} differs after interrupt + resume"
