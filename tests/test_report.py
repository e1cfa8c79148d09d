"""Plots are valid SVGs showing the leaderboard's numbers; report.html has the tables, plots and previews that exist; empty inputs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report.table import build_leaderboard

from bench.report.export import export_leaderboard
from bench.report.html import write_report
from bench.media.video_io import write_frames

REPO = Path(__file__).resolve().parents[1]
NAN = float("nan")
DOVER_FIX = "weights 'dover' missing; run: videditbench weights download dover"
SVG = "{http://www.w3.org/2000/svg}"
EDIT_TYPES = ["style", "background", "foreground"]
T, H, W = 5, 32, 40


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])
        if tag == "table":
            self.tables += 1


def _clip(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (1, H, W, 3))
    return np.clip(base + np.arange(T)[:, None, None, None] * 20, 0, 255).astype(np.uint8)


def make_run(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """3 methods × 3 samples with real PNG frame folders; 'broken' fails one edit."""
    methods = ["alpha", "beta", "broken"]
    srows, erows = [], []
    for i, et in enumerate(EDIT_TYPES):
        uid = f"mini/vid{i}/0"
        src = write_frames(root / "src" / f"vid{i}", _clip(100 + i))
        for j, m in enumerate(methods):
            failed = m == "broken" and i == 0
            out = None if failed else write_frames(root / "out" / m / f"vid{i}", _clip(10 * j + i))
            base = {"method": m, "method_key": f"k-{m}", "sample_uid": uid, "suite": "mini", "video_id": f"vid{i}",
                    "edit_id": "0", "edit_type": et, "category": "animals", "task": "text"}
            erows.append({**base, "status": "error" if failed else "ok",
                          "message": "CUDA out of memory while editing" if failed else "",
                          "output_dir": None if out is None else str(out), "source_dir": str(src),
                          "prompt": f"turn vid{i} into a {et} painting", "preprocess_s": 1.0 + j,
                          "generate_s": 2.0 + 3 * j, "peak_memory_mb": 500.0 * (j + 1)})
            if failed:
                continue
            for metric, hib, val in (("clip_text", True, 20 + j + 0.5 * i), ("clip_consistency", True, 0.9 - 0.1 * j),
                                     ("warp_error", False, 0.01 * (j + 1) + 0.001 * i)):
                srows.append({**base, "metric": metric, "metric_family": metric, "variant_id": metric[:4],
                              "variant_label": "default", "value": val, "status": "ok", "message": "",
                              "higher_is_better": hib, "value_min": -math.inf, "value_max": math.inf,
                              "level": "sample"})
            srows.append({**base, "metric": "dover", "metric_family": "dover", "variant_id": "dv",
                          "variant_label": "default", "value": NAN, "status": "skipped", "message": DOVER_FIX,
                          "higher_is_better": True, "value_min": 0.0, "value_max": 1.0, "level": "sample"})
    return pd.DataFrame(srows), pd.DataFrame(erows)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    scores, edits = make_run(root)
    lb = build_leaderboard(scores, edits, bootstrap=200)
    out = root / "report"
    paths = export_leaderboard(lb, out)
    plot_paths = {k.split(":", 1)[1]: v for k, v in paths.items() if k.startswith("plot:")}
    report = write_report(lb, edits, out, plot_paths=plot_paths, scores=scores)
    return lb, paths, report, edits


def _svg(path: Path):
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return root


def test_plots_are_valid_svgs_showing_the_leaderboards_numbers(run):
    from bench.report.incremental import stored_key

    lb, paths, _, _ = run
    plots = {k: v for k, v in paths.items() if k.startswith("plot:")}
    assert "plot:radar_edit_type" in plots and "plot:radar_methods" in plots and "plot:scatter" in plots
    for header in ("clip_text ↑", "clip_consistency ↑", "warp_error (×10⁻¹) ↓"):
        assert f"plot:bar:{header}" in plots
    assert "plot:bar:dover ↑" not in plots  # nothing to draw for a skipped metric
    for p in plots.values():
        root = _svg(p)
        assert p.suffix == ".svg" and float(root.get("width")) > 200 and float(root.get("height")) > 150
        assert len(list(root.iter())) > 20 and stored_key(p)  # a real figure, keyed by its inputs
    for header in lb.columns["header"]:
        if f"plot:bar:{header}" not in plots:
            continue
        bars = {r.get("data-method"): r for r in _svg(plots[f"plot:bar:{header}"]).iter(f"{SVG}rect")
                if r.get("data-method")}
        cells = lb.cells[lb.cells["header"] == header].set_index("method")["mean"]
        assert set(bars) == {m for m, v in cells.items() if np.isfinite(v)}
        for m, r in bars.items():
            assert float(r.get("data-value")) == pytest.approx(cells[m], rel=1e-12)
        # bar tops: a larger value sits higher (smaller y) on the same axis
        tops = sorted((float(r.get("data-value")), float(r.get("y"))) for r in bars.values())
        if all(v >= 0 for v, _ in tops) and len({v for v, _ in tops}) == len(tops):
            ys = [y for _, y in tops]
            assert ys == sorted(ys, reverse=True), (header, tops)
    # clip_text means lie close together far from 0 (20.5-22.5): the axis zooms in, never from 0
    ticks = []
    for t in _svg(plots["plot:bar:clip_text ↑"]).iter(f"{SVG}text"):
        try:
            ticks.append(float((t.text or "").replace("−", "-")))
        except ValueError:
            pass
    means = lb.cells[lb.cells["header"] == "clip_text ↑"]["mean"].dropna()
    assert len(ticks) >= 3 and 0 < min(ticks) < means.min() and max(ticks) > means.max()
    # the reference row is hatched and never marked best
    ref_bars = [r for r in _svg(plots["plot:bar:clip_consistency ↑"]).iter(f"{SVG}rect") if r.get("data-reference")]
    assert all(r.get("fill").startswith("url(#hatch") and not r.get("data-best") for r in ref_bars)
    # by edit type: the per-edit-type aggregates (a radar from 3 edit types, grouped bars below that)
    from bench.report.table import per_group_aggregate

    agg = per_group_aggregate(lb, "edit_type")
    root = _svg(plots["plot:radar_edit_type"])
    shown = {(r.get("data-method"), r.get("data-group")): float(r.get("data-value"))
             for r in root.iter(f"{SVG}rect") if r.get("data-group")}
    for poly in root.iter(f"{SVG}polygon"):
        for g, v in zip(agg.columns, poly.get("data-values").split(",")):
            shown[(poly.get("data-series"), str(g))] = float(v)
    expected = {(m, str(g)): v for (m, g), v in agg.stack().items() if np.isfinite(v)}
    assert len(expected) >= 6 and shown == pytest.approx(expected, rel=1e-12)


def test_report_has_tables_plots_and_previews(run):
    lb, paths, report, edits = run
    out = report.parent
    text = report.read_text()
    parser = _Collect()
    parser.feed(text)
    assert parser.tables >= 5  # main, normalisation, efficiency, breakdowns, status
    for header in lb.columns["header"]:
        assert header in text
    for m in ("alpha", "beta", "broken"):
        assert m in text
    plot_imgs = [s for s in parser.imgs if s.endswith(".svg")]
    gifs = [s for s in parser.imgs if s.endswith(".gif")]
    assert {"plots/radar_edit_type.svg", "plots/quality_vs_runtime.svg"} <= set(plot_imgs)
    assert len(plot_imgs) == sum(1 for k in paths if k.startswith("plot:"))
    # 3 sources + 3 + 3 + 2 edited clips (one edit failed)
    assert len(gifs) == 11
    for src in parser.imgs:
        assert not os.path.isabs(src) and (out / src).is_file(), src
    from PIL import Image

    with Image.open(out / gifs[1]) as im:
        assert im.format == "GIF" and im.n_frames == T
    for et in EDIT_TYPES:
        assert f"turn vid{EDIT_TYPES.index(et)} into a {et} painting" in text
    assert "CUDA out of memory while editing" in text  # the failed edit's placeholder and status row
    import html

    assert DOVER_FIX in html.unescape(text)  # skipped metric with its fix command
    assert "clip_text ↑ 20" in text  # per-sample value under alpha's first preview


def test_report_draws_plots_into_its_own_folder_or_reuses_exported_ones(run, tmp_path):
    lb, paths, report, edits = run
    out = write_report(lb, pd.DataFrame(), tmp_path / "r2", max_samples=0)
    assert (tmp_path / "r2" / "plots" / "radar_edit_type.svg").is_file()  # self-contained: not ../ paths
    assert 'src="plots/radar_edit_type.svg"' in out.read_text()
    radar = paths["plot:radar_edit_type"]
    before = radar.stat().st_mtime_ns
    gif = next(report.parent.glob("previews/*/method_alpha-*.gif"))
    gif_before = gif.stat().st_mtime_ns
    write_report(lb, edits, report.parent)  # same folder: exported plots and previews are re-used
    assert radar.stat().st_mtime_ns == before and gif.stat().st_mtime_ns == gif_before


def test_empty_inputs_give_clear_report(tmp_path):
    lb = build_leaderboard(pd.DataFrame(), pd.DataFrame())
    out = write_report(lb, pd.DataFrame(), tmp_path / "empty")
    text = out.read_text()
    assert "No results yet" in text and "</html>" in text
    assert "<img" not in text


def test_all_error_inputs_give_clear_report(tmp_path):
    scores, edits = make_run(tmp_path / "run")
    scores = scores.assign(status="error", value=NAN, message="model exploded")
    edits = edits.assign(output_dir=None)  # frames gone from disk / never written
    lb = build_leaderboard(scores, edits, bootstrap=0)
    out = write_report(lb, edits, tmp_path / "rep")
    text = out.read_text()
    assert "No metric value could be computed" in text and "model exploded" in text
    assert "Status (" in text and "error" in text
    assert "no frames stored" in text  # preview placeholder says why
    gifs = [p for p in (tmp_path / "rep").rglob("*.gif")]
    assert len(gifs) == 3  # only the source clips


def test_screenshot_script_reports_missing_chromium(tmp_path):
    env = {**os.environ, "CHROMIUM": str(tmp_path / "no-such-chromium")}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshot_report.py"), str(tmp_path / "r.html"),
                           str(tmp_path / "s.png")], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "apt-get install -y chromium" in proc.stderr


def test_screenshot_renders_report(run, tmp_path):
    from PIL import Image

    from conftest import require_chromium

    require_chromium()

    _, _, report, _ = run
    png = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshot_report.py"), str(report), str(png),
                           "--height", "1200"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with Image.open(png) as im:
        assert im.size == (1400, 1200)
        arr = np.asarray(im.convert("RGB"))
    assert arr.std() > 10  # rendered content, not a blank page


def test_plots_with_one_method_and_missing_values_stay_small(tmp_path):
    """Regression: a lone value plus 'missing' labels once produced a 76-million-pixel-high figure."""
    scores, edits = make_run(tmp_path / "run")
    keep = (scores["method"] == "alpha") & (scores["metric"] == "clip_text")
    scores = scores[keep | (scores["metric"] == "dover")]
    lb = build_leaderboard(scores, edits, bootstrap=100)
    paths = export_leaderboard(lb, tmp_path / "out")
    bar = _svg(paths["plot:bar:clip_text ↑"])
    assert float(bar.get("width")) < 1500 and float(bar.get("height")) < 1000
    assert lb.status[lb.status["status"] == "missing"]["method"].tolist() == ["beta", "broken"]


def test_method_named_source_does_not_overwrite_the_input_preview(tmp_path):
    scores, edits = make_run(tmp_path / "run")
    edits = edits.assign(method=edits["method"].replace({"alpha": "source"}))
    scores = scores.assign(method=scores["method"].replace({"alpha": "source"}))
    lb = build_leaderboard(scores, edits, bootstrap=0)
    report = write_report(lb, edits, tmp_path / "rep", max_samples=1)
    parser = _Collect()
    parser.feed(report.read_text())
    gifs = [s for s in parser.imgs if s.endswith(".gif")]
    assert len(gifs) == len(set(gifs)) == 3  # input, source, beta ('broken' failed on this sample)
    input_gif = report.parent / gifs[0]
    source_gif = report.parent / next(g for g in gifs if "method_source" in g)
    assert input_gif.read_bytes() != source_gif.read_bytes()
