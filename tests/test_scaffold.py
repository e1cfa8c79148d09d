"""`write_method_scaffold`: the generated adapter runs, and its generated test passes (and can fail)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.api.errors import VidEditBenchError
from bench.cli.scaffold import class_name, module_name, write_method_scaffold


def _pytest(test_file: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


def test_generated_test_passes_and_can_fail(tmp_path, capsys, small_video):
    paths = write_method_scaffold("my-cool_edit", tmp_path)
    method_file, test_file = paths
    assert method_file == tmp_path / "methods" / "my_cool_edit.py"
    assert test_file == tmp_path / "tests" / "test_method_my_cool_edit.py"
    hint = capsys.readouterr().out
    assert '"my-cool_edit": "methods.my_cool_edit:MyCoolEditMethod"' in hint
    assert '[project.entry-points."videditbench.methods"]' in hint

    result = _pytest(test_file, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout

    # the placeholder edit honours its option and the mask
    import importlib.util

    spec = importlib.util.spec_from_file_location("scaffold_check", method_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mask = np.zeros(small_video.frames.shape[:3], bool)
    mask[:, :10] = True
    out = mod.MyCoolEditMethod(strength=0.5).edit(small_video, prompt="x", mask=mask)
    assert out.shape == small_video.frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], small_video.frames[~mask]) and not np.array_equal(out[mask], small_video.frames[mask])

    # the generated test is not vacuous: a broken edit (wrong frame count) makes it fail
    broken = method_file.read_text().replace("return np.clip(np.rint(out), 0, 255).astype(np.uint8)",
                                             "return np.clip(np.rint(out), 0, 255).astype(np.uint8)[:-1]")
    assert broken != method_file.read_text()
    method_file.write_text(broken)
    result = _pytest(test_file, tmp_path)
    assert result.returncode != 0 and "same frame count" in result.stdout


def test_refuses_overwrite_and_bad_names(tmp_path, capsys):
    write_method_scaffold("fancy", tmp_path, echo=False)
    assert capsys.readouterr().out == ""
    with pytest.raises(VidEditBenchError, match="already exist"):
        write_method_scaffold("fancy", tmp_path)
    assert len(write_method_scaffold("fancy", tmp_path, overwrite=True, echo=False)) == 2
    with pytest.raises(VidEditBenchError, match="built-in"):
        write_method_scaffold("rave", tmp_path)
    with pytest.raises(VidEditBenchError, match="bad method name"):
        write_method_scaffold("../evil", tmp_path)
    with pytest.raises(VidEditBenchError, match="bad method name"):
        write_method_scaffold("has.dot", tmp_path)


def test_name_mangling():
    assert module_name("My Cool-Edit") == "my_cool_edit" and class_name("my_cool_edit") == "MyCoolEditMethod"
    assert module_name("3d-edit") == "m_3d_edit"
    assert module_name("class") == "class_method"
    assert class_name("tokenflow_method") == "TokenflowMethod"
