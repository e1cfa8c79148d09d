"""Method presets: package-data YAML (`methods/presets/<method>.yaml`) and class attributes, expanded
by `Method.resolve_options` (preset first, explicit options on top), shown by `list methods --details`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.api.catalog import METHODS
from bench.api.errors import VidEditBenchError
from bench.api.method import Method, load_preset_file

PRESET_DIR = Path(__file__).resolve().parents[1] / "methods" / "presets"


class _Toy(Method):
    name = "toy-with-presets"
    defaults = {"steps": 50, "guidance": 7.5, "negative_prompt": ""}
    presets = {"fast": {"steps": 10, "guidance": 5.0}}


def test_every_preset_file_names_a_registered_method_and_valid_options():
    files = sorted(PRESET_DIR.glob("*.yaml"))
    assert {f.stem for f in files} >= {"controlnet-depth", "text2video-zero", "rave"}
    for f in files:
        assert f.stem in METHODS, f"{f.name}: no registered method '{f.stem}'"
        cls = METHODS.get(f.stem)
        presets = load_preset_file(f.stem)
        assert presets, f"{f.name} defines no preset"
        for p in presets.values():
            assert p.options and p.description and p.source, f"{f.name}:{p.name} needs options, description, source"
            unknown = set(p.options) - set(cls.defaults)
            assert not unknown, f"{f.name}:{p.name} sets options {sorted(unknown)} that {f.stem} does not have"
            method = cls(preset=p.name)  # creating is cheap (no weights are loaded)
            assert all(method.cfg[k] == v for k, v in p.options.items())
            assert method.config()["preset"] == p.name


def test_controlnet_depth_t2vz_official_preset_has_the_official_settings():
    m = METHODS.get("controlnet-depth")(preset="official")
    assert m.cfg["num_inference_steps"] == 20 and m.cfg["guidance_scale"] == 9.0
    assert m.cfg["prompt_suffix"] == ", best quality, extremely detailed"
    assert m.cfg["negative_prompt"].startswith("longbody, lowres, bad anatomy")
    plain = METHODS.get("controlnet-depth")()  # the defaults are Text2Video-Zero's too
    assert all(plain.cfg[k] == m.cfg[k] for k in ("num_inference_steps", "guidance_scale", "prompt_suffix",
                                                    "negative_prompt"))
    assert "preset" not in plain.config()


def test_explicit_options_win_over_the_preset_and_unknown_presets_are_named():
    m = _Toy(preset="fast", guidance=3.0)
    assert m.cfg == {"steps": 10, "guidance": 3.0, "negative_prompt": ""}
    assert m.config()["preset"] == "fast"
    assert _Toy(preset="fast").config() != _Toy().config()
    assert _Toy(preset=None).cfg == _Toy().cfg
    with pytest.raises(VidEditBenchError, match=r"no preset 'slow'; available: fast"):
        _Toy(preset="slow")
    with pytest.raises(VidEditBenchError, match="unknown option"):
        _Toy(preset="fast", stepz=3)


def test_bad_preset_file_is_one_clear_line(tmp_path, monkeypatch):
    pkg = tmp_path / "fakepkg"
    (pkg / "presets").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "presets" / "m.yaml").write_text("official: [1, 2]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(VidEditBenchError, match=r"fakepkg/presets/m.yaml: preset 'official' must be a mapping"):
        load_preset_file("m", package="fakepkg")
    assert load_preset_file("nothing-here", package="fakepkg") == {}


def test_runner_applies_a_preset_from_method_options(tmp_path):
    """Through the runner (weights absent: the rows are 'skipped' but carry the resolved config)."""
    import json

    from bench.running.runner import RunConfig, run_benchmark
    from bench.store.results import ResultStore

    cfg = RunConfig(suite="mini", methods=["controlnet-depth"], metrics=["temporal_flickering"],
                    results_dir=str(tmp_path), run_name="presets", device="cpu", limit=1,
                    suite_overrides={"num_frames": 2, "size": 16},
                    method_options={"controlnet-depth": {"preset": "official", "chunk_size": 4}})
    run_benchmark(cfg)
    store = ResultStore(cfg.run_dir)
    rows = store.edits_frame()
    assert len(rows) and set(rows.status) <= {"skipped", "not_applicable"}
    config = rows.iloc[0].method_config
    config = json.loads(config) if isinstance(config, str) else config
    assert config["preset"] == "official" and config["guidance_scale"] == 9.0 and config["chunk_size"] == 4
    store.close()


def test_list_methods_details_shows_presets_without_importing_torch():
    code = ("import sys; from typer.testing import CliRunner; from bench.cli import app; "
            "r = CliRunner().invoke(app, ['list', 'methods', '--details'], env={'COLUMNS': '250'}); "
            "print(r.output); print('TORCH', 'torch' in sys.modules); sys.exit(r.exit_code)")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "official" in proc.stdout and "num_inference_steps=20" in proc.stdout
    assert "TORCH False" in proc.stdout
