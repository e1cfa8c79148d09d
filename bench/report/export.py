"""Writing a computed leaderboard to files: the CSV tables, leaderboard.md, leaderboard.json and the plots.

Each file is written only when its bytes change (`incremental`), so an unchanged run leaves the export
folder as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.report.formats import long_table, to_json_dict, to_markdown, wide_table
from bench.report.table import EFFICIENCY_FAMILIES, Leaderboard


def export_leaderboard(lb: Leaderboard, out_dir: str | Path, plots: bool = True) -> dict[str, Path]:
    """Write leaderboard.{csv,md,json}, the wide/unpaired/breakdown/efficiency/status CSVs and the plots.

    leaderboard.csv is the long table: one row per (task, method, quality metric column) of the paired
    comparison with mean, std, CI, n, difference to the best (paired bootstrap CI), status counts and
    the reason for anything not ok (efficiency columns: efficiency_cells.csv); leaderboard_unpaired.csv
    the per-method means over all samples.
    Every value is in display units (the unit is in `header` and `display_unit`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def write(key: str, name: str, text: str) -> None:
        from bench.report.incremental import write_if_changed

        p = out / name
        write_if_changed(p, text)  # unchanged bytes: the file (and its mtime) stays as it is
        paths[key] = p

    def per_task(get) -> pd.DataFrame:
        frames = [get(b).assign(task=b.task) for b in lb.task_boards()]
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    long = long_table(lb)
    timing = long["metric_family"].isin(EFFICIENCY_FAMILIES) if len(long) else pd.Series([], dtype=bool)
    # quality numbers only (byte-identical between identical runs); measured cost in efficiency_cells.csv
    write("csv", "leaderboard.csv", long[~timing].to_csv(index=False))
    write("efficiency_cells_csv", "efficiency_cells.csv", long[timing].to_csv(index=False))
    write("wide_csv", "leaderboard_wide.csv", wide_table(lb).to_csv())
    unpaired = lb.unpaired_cells if lb.paired else lb.cells
    write("unpaired_csv", "leaderboard_unpaired.csv", unpaired.to_csv(index=False))
    write("by_edit_type_csv", "by_edit_type.csv", per_task(lambda b: b.by_edit_type).to_csv(index=False))
    write("by_category_csv", "by_category.csv", per_task(lambda b: b.by_category).to_csv(index=False))
    write("efficiency_csv", "efficiency.csv", lb.efficiency.to_csv())
    write("status_csv", "status.csv", per_task(lambda b: b.status).to_csv(index=False))
    write("md", "leaderboard.md", to_markdown(lb))
    write("json", "leaderboard.json", json.dumps(to_json_dict(lb), indent=2, ensure_ascii=False, allow_nan=False))
    if plots:
        from bench.report.plots import write_plots

        lb.plot_paths = write_plots(lb, out / "plots")
        for key, p in lb.plot_paths.items():
            paths[f"plot:{key}"] = p
    return paths
