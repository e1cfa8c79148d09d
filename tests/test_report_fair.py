"""The report a researcher would publish: per-task sections, reference rows, grouped headers,
reference image + mask beside image-guided previews, status that wraps."""

from __future__ import annotations

import html
import re

from bench.running.runner import RunConfig, run_benchmark


def test_report_per_task_sections_reference_rows_and_image_guidance(tmp_path):
    from bench.cli.run import _export

    cfg = RunConfig(suite="mini", methods=["source", "flow-propagate", "color-transfer"],
                    metrics=["temporal_flickering", "bg_psnr", "warp_error@flow=dis", "warp_error@flow=gt"],
                    results_dir=str(tmp_path), run_name="r", device="cpu",
                    suite_overrides={"num_frames": 4, "size": 32})
    run_benchmark(cfg)
    paths = _export(cfg.run_dir)
    out = paths["report"].parent
    text = paths["report"].read_text()
    plain = html.unescape(text)
    assert "Text-guided: paired comparison" in plain and "Image-guided: paired comparison" in plain
    assert "source (reference)" in plain and 'class="ref"' in text
    # metric families grouped over their variants, long variant labels shortened with a legend
    assert '<th colspan="2" class="group">warp_error</th>' in text
    assert re.search(r"v1 = flow=\w+", plain)
    # image-guided previews: the reference image and the mask beside the source and the edits
    assert plain.count("reference image") >= 1 and plain.count("mask (red)") >= 1
    refs = list(out.glob("previews/*/reference.png"))
    masks = list(out.glob("previews/*/mask.gif"))
    assert refs and masks and len(refs) == len(masks)
    assert ".lb table tr > :first-child { position: sticky" in text  # the method column stays visible
    # per-task plots
    assert any(k.startswith("plot:text/") for k in paths) and any(k.startswith("plot:image/") for k in paths)


def test_report_fits_1400px_in_headless_chromium(tmp_path):
    import sys
    from pathlib import Path

    from conftest import require_chromium

    require_chromium()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from screenshot_report import measure_layout

    from bench.cli.run import _export

    cfg = RunConfig(suite="mini", methods=["source", "flow-propagate", "color-transfer"],
                    metrics=["temporal_flickering", "bg_psnr", "bg_ssim", "warp_error@flow=dis", "warp_error@flow=gt",
                             "motion_alignment@flow=dis", "clip_text", "dover", "generation_time", "peak_memory"],
                    results_dir=str(tmp_path), run_name="r", device="cpu",
                    suite_overrides={"num_frames": 4, "size": 32})
    run_benchmark(cfg)
    report = _export(cfg.run_dir)["report"]
    facts = measure_layout(report, width=1400)
    assert facts["page"]["scroll"] <= 1400  # no horizontal page scroll
    assert facts["tables"] and all(t["scroll"] <= t["client"] for t in facts["tables"]), facts["tables"]
    assert facts["cut_messages"] == 0
    for im in facts["images"]:  # plots are never blown up beyond their pixels, nor squeezed to a stamp
        assert 0 < im["shown"] <= im["natural"] and im["shown"] >= min(300, im["natural"]), im
