"""Paper configs run the paper's method settings (issue 21): `--config v2vbench` applies each method's
`v2vbench` preset, `list configs --details` shows them, and a method without one is flagged (stored under
a name that says so), never silently run with its defaults."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

V2VBENCH_NEGATIVE = ("long body, low-res, bad anatomy, bad hands, missing fingers, extra digit, fewer digits, "
                     "cropped, worst quality, low quality, deformed body, bloated, ugly, blurry, low res, unaesthetic")


def test_list_configs_details_shows_each_methods_settings_and_flags_the_rest():
    from bench.cli import app

    r = CliRunner().invoke(app, ["list", "configs", "--details"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    section = r.output.split("v2vbench: method preset 'v2vbench'", 1)[1].split("\n\n", 1)[0]
    for name in ("controlnet-depth", "rave", "text2video-zero", "tokenflow", "vidtome"):
        assert f"  {name}: preset v2vbench: " in section, name
    assert "controlnet-depth: preset v2vbench: num_inference_steps=20, guidance_scale=9.0" in section
    assert "  anyv2v: no 'v2vbench' preset (FLAGGED" in section
    assert "  source:" not in section and "  color-transfer:" not in section  # no model settings to apply


@pytest.mark.slow
def test_run_with_config_v2vbench_applies_each_methods_v2vbench_preset(tmp_path):
    from tiny_control import build_tiny_controlnet, build_tiny_dpt
    from tiny_diffusers import build_ip2p_dir, build_sd15_dir

    from bench.cli import app
    from bench.store.results import ResultStore

    sd, ip2p = build_sd15_dir(tmp_path / "sd"), build_ip2p_dir(tmp_path / "ip2p")
    cn, dpt = build_tiny_controlnet(tmp_path / "cn"), build_tiny_dpt(tmp_path / "dpt")
    depth = [f"weights={sd}", f"controlnet={cn}", f"depth_model={dpt}", "num_inference_steps=1"]
    opts = [f"controlnet-depth.{o}" for o in depth + ["resolution=null", "chunk_size=2"]]
    opts += [f"rave.{o}" for o in depth + ["resolution=16", "grid_size=2", "num_inversion_steps=1"]]
    opts += [f"text2video-zero.{o}" for o in (f"weights={ip2p}", "num_inference_steps=1", "resolution=null")]
    opts += [f"framewise-ip2p.{o}" for o in (f"weights={ip2p}", "num_inference_steps=1", "resolution=null")]
    args = ["run", "--config", "v2vbench", "--suite", "mini", "--limit", "1", "--num-frames", "4", "--size", "32",
            "--methods", "controlnet-depth,rave,text2video-zero,framewise-ip2p", "--metrics", "temporal_flickering",
            "--results-dir", str(tmp_path / "results"), "--name", "v2v", "--device", "cpu", "--no-export"]
    for o in opts:
        args += ["--method-opt", o]
    r = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert "framewise-ip2p' has no 'v2vbench' preset" in r.output
    with ResultStore(tmp_path / "results" / "v2v") as store:
        edits = store.edits_frame()
    ran = {}
    for _, row in edits.iterrows():
        cfg = row.method_config
        ran[row.method] = (row.status, json.loads(cfg) if isinstance(cfg, str) else cfg)
    for name in ("controlnet-depth", "rave", "text2video-zero"):
        status, cfg = ran[name]
        assert status == "ok", (name, status)
        assert cfg["preset"] == "v2vbench" and cfg["negative_prompt"] == V2VBENCH_NEGATIVE, name
    assert ran["controlnet-depth"][1]["guidance_scale"] == 9.0  # the preset's, not overridden
    assert ran["rave"][1]["cond_step_start"] == 0.0 and ran["rave"][1]["grid_size"] == 2  # explicit wins
    status, cfg = ran["framewise-ip2p-defaults-no-v2vbench-preset"]  # flagged, under a name that says so
    assert status == "ok" and "preset" not in cfg and "framewise-ip2p" not in ran
