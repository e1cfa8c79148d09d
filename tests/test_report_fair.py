"""The report a researcher would publish: per-task sections, reference rows, grouped headers,
reference image + mask beside image-guided previews, status that wraps."""

from __future__ import annotations

import html
import re

from bench.runner import RunConfig, run_benchmark


def test_report_per_task_sections_reference_rows_and_image_guidance(tmp_path):
    from bench.cli import _export

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
