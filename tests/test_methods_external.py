"""ExternalMethod: real scripts run as subprocesses (frames in / frames or video out, failures, timeouts)."""

from __future__ import annotations

import shlex
import sys
import textwrap
import time

import numpy as np
import pytest

from bench.api.catalog import METHODS
from bench.api.errors import MethodOutputError, VidEditBenchError
from bench.api.types import Sample, Video

PY = sys.executable

INVERT = """
import sys
from pathlib import Path
import numpy as np
from PIL import Image

src, out, prompt = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
files = sorted(src.glob("*.png"))
for i, f in enumerate(files):
    Image.fromarray(255 - np.asarray(Image.open(f).convert("RGB"))).save(out / f"{i:03d}.png")
(Path(sys.argv[4]) / "prompt.txt").write_text(prompt)
print(f"inverted {len(files)} frames", flush=True)
"""

VIDEO_IO = """
import sys
from bench.media.video_io import read_video, read_mask_frames, write_mp4
frames, fps = read_video(sys.argv[1])
mask = read_mask_frames(sys.argv[3])
frames[mask] = (0, 255, 0)  # paint the masked region green
write_mp4(sys.argv[2] + "/edited.mp4", frames, fps=fps, lossless=True)
"""

FAIL = """
import sys
print("loading checkpoint ...")
print("boom: checkpoint file is corrupt", file=sys.stderr)
sys.exit(3)
"""

HANG = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(f"{os.getpid()} {child.pid}")
print("started", flush=True)
time.sleep(120)
"""

WRONG = """
import sys
from pathlib import Path
import numpy as np
from PIL import Image
n = int(sys.argv[2])
for i in range(n):
    Image.fromarray(np.full((32, 48, 3), 10 * i, np.uint8)).save(Path(sys.argv[1]) / f"{i:02d}.png")
"""


@pytest.fixture
def scripts(tmp_path):
    d = tmp_path / "scripts"
    d.mkdir()
    for name, body in (("invert", INVERT), ("video_io", VIDEO_IO), ("fail", FAIL), ("hang", HANG), ("wrong", WRONG)):
        (d / f"{name}.py").write_text(textwrap.dedent(body))
    return d


@pytest.fixture
def clip(rng):
    return Video(rng.integers(0, 256, size=(4, 24, 32, 3), dtype=np.uint8), fps=8.0)


SAMPLE = Sample(suite="t", video_id="cat walk", edit_id="e1", source="x.mp4", target_prompt="p")


def test_frames_in_frames_out_with_unsafe_prompt(scripts, clip, tmp_path):
    seen = tmp_path / "seen"
    seen.mkdir()
    cmd = f"{shlex.quote(PY)} {scripts / 'invert.py'} {{input}} {{output}} {{prompt}} {shlex.quote(str(seen))}"
    m = METHODS.get("external")(command=cmd, log_dir=str(tmp_path / "logs"))
    assert m.needs == {"text"} and m.receives_sample
    assert m.applicable("text", False, False, False) == "external needs text"
    prompt = "a cat; rm -rf / $(whoami) 'quoted' \"double\" {braces}"
    out = m.edit(clip, prompt=prompt, sample=SAMPLE)
    np.testing.assert_array_equal(out, 255 - clip.frames)
    assert (seen / "prompt.txt").read_text() == prompt  # one argv element, never shell-interpreted
    run = m.last_run
    assert run.returncode == 0 and run.seconds > 0 and run.peak_rss_mb > 1
    assert "inverted 4 frames" in run.log_path.read_text()
    assert run.log_path.parent == tmp_path / "logs" and "cat_walk_e1" in run.log_path.name
    assert not run.workdir.exists()  # temporary inputs/outputs removed


def test_shell_mode_reads_values_from_the_environment(scripts, clip, tmp_path):
    seen = tmp_path / "seen dir"
    seen.mkdir()
    cmd = (f'cd {shlex.quote(str(scripts))} && {shlex.quote(PY)} invert.py "$VIDEDITBENCH_INPUT" "$VIDEDITBENCH_OUTPUT" '
           f'"$VIDEDITBENCH_PROMPT" {shlex.quote(str(seen))} > /dev/null')
    m = METHODS.get("external")(command=cmd, shell=True, log_dir=str(tmp_path / "logs"))
    prompt = "it's $HOME; `echo no`"
    out = m.edit(clip, prompt=prompt)
    np.testing.assert_array_equal(out, 255 - clip.frames)
    assert (seen / "prompt.txt").read_text() == prompt


def test_video_in_video_out_with_mask_list_command(scripts, clip, tmp_path):
    mask = np.zeros(clip.frames.shape[:3], bool)
    mask[:, 4:12, 8:20] = True
    cmd = [PY, str(scripts / "video_io.py"), "{input_video}", "{output}", "{mask}"]
    m = METHODS.get("external")(command=cmd, log_dir=str(tmp_path / "logs"), env={"EXTRA_VAR": 1})
    assert m.needs == {"mask"}
    out = m.edit(clip, mask=mask)
    expected = clip.frames.copy()
    expected[mask] = (0, 255, 0)
    np.testing.assert_array_equal(out, expected)  # lossless mp4 both ways
    with pytest.raises(VidEditBenchError, match="no mask"):
        m.edit(clip)


def test_failing_script_reports_exit_code_and_log_tail(scripts, clip, tmp_path):
    m = METHODS.get("external")(command=f"{shlex.quote(PY)} {scripts / 'fail.py'} {{input}}", log_dir=str(tmp_path / "logs"))
    with pytest.raises(MethodOutputError) as e:
        m.edit(clip)
    msg = str(e.value)
    assert "exit code 3" in msg and "boom: checkpoint file is corrupt" in msg and "loading checkpoint" in msg
    assert str(m.last_run.log_path) in msg


def test_hanging_script_and_its_child_are_killed_at_timeout(scripts, clip, tmp_path):
    import psutil

    pids_file = tmp_path / "pids"
    m = METHODS.get("external")(
        command=[PY, str(scripts / "hang.py"), str(pids_file)], timeout_s=1.5, log_dir=str(tmp_path / "logs")
    )
    t0 = time.monotonic()
    with pytest.raises(MethodOutputError, match="timed out after 1.5 s") as e:
        m.edit(clip)
    assert time.monotonic() - t0 < 15
    assert "started" in str(e.value)
    for pid in map(int, pids_file.read_text().split()):
        alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        assert not alive, f"process {pid} survived the timeout"


def test_missing_and_malformed_output(scripts, clip, tmp_path):
    logs = str(tmp_path / "logs")
    nothing = METHODS.get("external")(command=[PY, "-c", "print('did nothing')"], log_dir=logs)
    with pytest.raises(MethodOutputError, match="wrote no frames") as e:
        nothing.edit(clip)
    assert "did nothing" in str(e.value)
    garbage = METHODS.get("external")(command=[PY, "-c", "import os; open(os.environ['VIDEDITBENCH_OUTPUT'] + '/x.mp4', 'w').write('not a video')"], log_dir=logs)
    with pytest.raises(MethodOutputError, match="cannot decode"):
        garbage.edit(clip)
    wrong = METHODS.get("external")(command=[PY, str(scripts / "wrong.py"), "{output}", "7"], log_dir=logs)
    with pytest.raises(MethodOutputError, match=r"wrote 7 frames of 32x48.*4 frames of 24x32.*resize_output"):
        wrong.edit(clip)
    resized = METHODS.get("external")(command=[PY, str(scripts / "wrong.py"), "{output}", "7"], log_dir=logs, resize_output=True)
    out = resized.edit(clip)
    assert out.shape == clip.frames.shape
    assert [int(f[0, 0, 0]) for f in out] == [0, 20, 40, 60]  # frames 0, 2, 4, 6 of 7 (evenly spaced)


def test_config_validation(tmp_path):
    cls = METHODS.get("external")
    with pytest.raises(VidEditBenchError, match="needs option command"):
        cls()
    with pytest.raises(VidEditBenchError, match=r"unknown placeholder \{inptu\}"):
        cls(command="run.sh {inptu} {output}")
    with pytest.raises(VidEditBenchError, match="cwd"):
        cls(command="run.sh {input}", cwd=str(tmp_path / "nope"))
    m = cls(command="run.sh --ref {reference} --mask {mask} --out {output}", tasks=["image"])
    assert m.needs == {"reference", "mask"} and m.tasks == {"image"}
    assert m.applicable("text", True, False, False) is not None
    # options that cannot change the output are not part of the identity hashed into result keys
    assert cls(command="a {input}", timeout_s=5).config() == cls(command="a {input}", timeout_s=9).config()
    assert cls(command="a {input}").config() != cls(command="b {input}").config()
