"""Content keys do not depend on where the code lives: a run made before a refactor resumes after it with
nothing recomputed. The keys below were computed by the code before `bench/` moved into rooms."""

from __future__ import annotations

from bench.api.catalog import METRICS
from bench.running.plan import build_method, edit_key, score_key
from bench.running.runner import RunConfig, Runner

#: keys of the mini suite's first sample, `source` / `color-transfer` with default options, bg_psnr
PINNED = {"source": "c9ce1cd77f3aae2a", "color-transfer": "8de9ebe9320b2acc", "bg_psnr": "694ea9d8111c",
          "sample": ("mini/bigbuckbunny/fg-bear", "a15dc49cd40a57fe"), "edit": "e87cac84c634ee4a",
          "score": "7aeb54d5a7c276d3"}


def test_method_sample_edit_and_score_keys_are_unchanged(tmp_path):
    runner = Runner(RunConfig(suite="mini", methods=["source"], metrics=["bg_psnr"], results_dir=str(tmp_path)),
                    worker=True)
    got = {m: build_method(m, m, {}, "cpu", 0, None)[1] for m in ("source", "color-transfer")}
    got["bg_psnr"] = METRICS.get("bg_psnr")().variant_id()
    sample = runner.samples[0]
    got["sample"] = (sample.uid, runner.sample_key(sample))
    got["edit"] = edit_key(got["sample"][1], got["source"])
    got["score"] = score_key(got["edit"], "bg_psnr", got["bg_psnr"])
    assert got == PINNED
