"""Shipped run configs of the seed papers' tables: names, column order, metric names and variants."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bench.api.catalog import METRICS
from bench.presets import list_presets, preset_path
from bench.running.runner import parse_metric_spec

# the other issue-12 metrics, which may not be merged into this branch's registry yet
PENDING = {"motion_smoothness", "dynamic_degree", "aesthetic_quality"}

# each paper table's columns, in the table's order (seeds/000-004)
TABLES = {
    "ive-benchmark": ["warp_error", "clip_consistency", "fid", "clip_image"],
    "v2vbench": ["aesthetic", "dover", "clip_consistency", "dino_consistency", "clip_text", "viclip", "pick_score",
                 "motion_alignment"],
    "vbench-editing": ["subject_consistency", "motion_smoothness", "aesthetic_quality", "imaging_quality"],
    "dreamvideo2": ["clip_text", "clip_image@region=true", "dino_image@region=true", "clip_image", "dino_image",
                    "clip_consistency", "box_miou", "centroid_distance"],
    "dreamvideo2-subject": ["clip_text", "clip_image", "dino_image", "clip_consistency", "dynamic_degree"],
    "dive": ["clip_text", "clip_image", "clip_consistency", "dover"],
}


def test_every_paper_table_is_shipped_with_its_columns_in_order():
    presets = {p.name: p for p in list_presets()}
    assert set(TABLES) <= set(presets)
    for name, columns in TABLES.items():
        data = yaml.safe_load(presets[name].path.read_text())
        assert data["metrics"] == columns, name
        assert presets[name].description, name
        assert set(data) <= {"methods", "metrics", "method_options", "metric_options", "method_preset"}, name
        assert data["method_preset"] == name, name  # each paper config applies the methods' presets of its name


@pytest.mark.parametrize("name", sorted(TABLES))
def test_preset_metrics_resolve_and_their_variants_are_valid(name):
    data = yaml.safe_load(preset_path(name).read_text())
    names = [parse_metric_spec(m)[0] for m in data["metrics"]]
    known = set(METRICS.names())
    missing = [n for n in names if n not in known]
    assert set(missing) <= PENDING, f"{name}: unknown metrics {missing}"
    for spec in data["metrics"]:
        metric, opts = parse_metric_spec(spec)
        if metric in known:
            METRICS.get(metric)(**opts, **(data.get("metric_options") or {}).get(metric, {}))  # options validated


def test_config_option_takes_a_preset_name_and_list_configs_shows_them(tmp_path, monkeypatch):
    from bench.cli.run import _load_config_file
    from bench.cli import app

    monkeypatch.chdir(tmp_path)
    assert _load_config_file(Path("ive-benchmark"))["metrics"] == TABLES["ive-benchmark"]
    assert _load_config_file(Path("dive.yaml"))["metrics"] == TABLES["dive"]
    own = tmp_path / "ive-benchmark"  # a file of that name in the working folder wins over the preset
    own.write_text("metrics: [fid]\n")
    assert _load_config_file(Path("ive-benchmark"))["metrics"] == ["fid"]
    assert preset_path("no-such-table") is None and preset_path("../v2vbench") is None
    out = CliRunner().invoke(app, ["list", "configs"], env={"COLUMNS": "240"})
    assert out.exit_code == 0
    for name in TABLES:
        assert name in out.output


def test_presets_are_package_data():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "presets/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["bench"]


def test_list_configs_does_not_import_torch():
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from bench.cli import app\n"
        "r = CliRunner().invoke(app, ['list', 'configs']); assert r.exit_code == 0, r.output\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print('OK')\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr
