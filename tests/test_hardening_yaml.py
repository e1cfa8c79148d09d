"""Issue 25, item 4: YAML alias bombs are refused wherever YAML is read, before objects are built."""

from __future__ import annotations

import time

import pytest
import yaml
from typer.testing import CliRunner

import bench.cli as cli
from bench.api import safe_yaml
from bench.errors import VidEditBenchError
from bench.suites.manifest import load_manifest


def bomb(levels: int = 9, width: int = 9) -> str:
    """~9^9 nodes in a few hundred bytes."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines)


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + ln for ln in text.splitlines())


def test_loader_refuses_bombs_and_recursion_and_keeps_ordinary_aliases():
    t0 = time.monotonic()
    with pytest.raises(safe_yaml.AliasBombError, match="alias"):
        safe_yaml.load(bomb())
    assert time.monotonic() - t0 < 2
    with pytest.raises(yaml.YAMLError):
        safe_yaml.load("a: &r [1, *r]")
    shared = "base: &b {steps: 20, size: 64}\nm1: *b\nm2: *b\nm3: {<<: *b, steps: 5}\n"
    assert safe_yaml.load(shared) == yaml.safe_load(shared)
    big = "\n".join(f"k{i}: [{i}, {i}]" for i in range(3000))  # a large document without aliases is fine
    assert len(safe_yaml.load(big)) == 3000


def test_manifest_with_a_bomb_in_synthetic_params_is_one_error(tmp_path):
    m = tmp_path / "bomb.yaml"
    m.write_text("name: b\nx:\n" + _indent(bomb(), 2) + "\nvideos:\n  - id: v\n    synthetic: {kind: moving_square, "
                 "params: *a8}\n    edits: [{id: e, edit_type: style, target_prompt: p}]\n")
    with pytest.raises(VidEditBenchError, match="alias"):
        load_manifest(m)


def flow_bomb() -> str:
    return "{" + ", ".join(f"a{i}: &a{i} [" + (", ".join([f"*a{i - 1}"] * 9) if i else "x") + "]" for i in range(9)) + "}"


@pytest.mark.parametrize("where", ["metric_options:\n  vlm_judge:\n    model: BOMB\n",
                                   "methods: [external]\nmethod_options:\n  external:\n    command: [run, '{output}']\n"
                                   "    env: BOMB\n"])
def test_config_with_a_bomb_is_one_line(tmp_path, where):
    f = tmp_path / "c.yaml"
    f.write_text(where.replace("BOMB", flow_bomb()))
    t0 = time.monotonic()
    res = CliRunner().invoke(cli.app, ["run", "--config", str(f), "--no-export", "--results-dir", str(tmp_path)])
    assert time.monotonic() - t0 < 10
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "alias" in res.output and len(res.output.strip().splitlines()) == 1


def test_option_values_with_a_bomb_are_refused(tmp_path):
    res = CliRunner().invoke(cli.app, ["run", "--metric-opt", f"vlm_judge.model={flow_bomb()}", "--no-export",
                                       "--results-dir", str(tmp_path)])
    assert res.exit_code == 2 and "alias" in res.output and "Traceback" not in res.output, res.output


def test_nesting_too_deep_and_bad_utf8_are_one_error(tmp_path):
    with pytest.raises(yaml.YAMLError, match="nested deeper"):
        safe_yaml.load("a: " + "[" * 5000 + "]" * 5000)
    for name, data in (("deep.yaml", ("videos: " + "[" * 5000 + "]" * 5000).encode()), ("bad.yaml", b"name: \xff\xfe\n"),
                       ("deep.json", b"[" * 100000 + b"]" * 100000)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(VidEditBenchError):
            load_manifest(tmp_path / name)
