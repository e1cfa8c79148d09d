"""Issue 8: `--executor ray` on a local Ray cluster bound to 127.0.0.1 (started and stopped here)."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from typer.testing import CliRunner  # noqa: E402

from bench import cli  # noqa: E402
from bench.api.catalog import METHODS, METRICS  # noqa: E402
from bench.running.runner import RunConfig  # noqa: E402
from bench.store.results import ResultStore  # noqa: E402

HERE = Path(__file__).parent
TINY = {"num_frames": 4, "size": 32}
QUALITY = "temporal_flickering,bg_psnr,warp_error@flow=dis"

for name, target in (("ray-slow-shift", "ray_fixtures:SlowShift"), ("ray-raises", "ray_fixtures:Raises")):
    if name not in METHODS.names():
        METHODS.register(name, target)
if "ray-counting-clip" not in METRICS.names():
    METRICS.register("ray-counting-clip", "ray_fixtures:CountingClipConsistency")


@pytest.fixture(scope="module")
def local_ray():
    from bench.running.ray_executor import start_ray

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), str(HERE)] + ([old] if old else []))
    assert not ray.is_initialized()
    start_ray(num_cpus=2)
    try:
        yield
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def test_help_and_a_local_run_import_neither_ray_nor_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from bench.cli import app\n"
        "for args in (['--help'], ['run', '--help'], ['merge', '--help']):\n"
        "    r = CliRunner().invoke(app, args); assert r.exit_code == 0, r.output\n"
        "assert '--executor' in CliRunner().invoke(app, ['run', '--help']).output\n"
        "assert 'ray' not in sys.modules and 'torch' not in sys.modules, 'imported'\n"
        "print('OK')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _listening(pids: set[int]) -> list[tuple[int, str]]:
    """(pid, local address) of every listening TCP socket of these processes, from /proc."""
    inodes: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    link = os.readlink(fd)
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes[link[8:-1]] = pid
        except OSError:
            continue
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:  # 0A: LISTEN
                out.append((inodes[parts[9]], parts[1].split(":")[0]))
    return out


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def test_local_ray_listens_on_loopback_only(local_ray):
    pids = _descendants(os.getpid()) | {os.getpid()}
    found = _listening(pids)
    assert len(found) >= 3, found  # gcs, raylet, workers: the check is not vacuous
    assert all(addr in LOOPBACK for _, addr in found), found


def _cli_run(tmp_path, name, *extra):
    return CliRunner().invoke(cli.app, [
        "run", "--suite", "mini", "--methods", "source,flow-propagate,color-transfer,ray-slow-shift", "--metrics", QUALITY,
        "--method-opt", "ray-slow-shift.delay=0",
        # the first 10 samples: 9 text-guided, 1 image-guided (flow-propagate, color-transfer)
        "--device", "cpu", "--num-frames", "4", "--size", "32", "--limit", "10", "--results-dir", str(tmp_path),
        "--name", name, "--no-export", *extra], catch_exceptions=False)


def _leaderboard_csv(tmp_path, name) -> str:
    res = CliRunner().invoke(cli.app, ["leaderboard", str(tmp_path / name), "--no-report"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return (tmp_path / name / "leaderboard" / "leaderboard.csv").read_text()


@pytest.mark.slow
def test_ray_executor_gives_the_local_quality_table(local_ray, tmp_path):
    res = _cli_run(tmp_path, "ray", "--executor", "ray", "--workers", "2")
    assert res.exit_code == 0, res.output
    res = _cli_run(tmp_path, "local")
    assert res.exit_code == 0, res.output
    ray_csv, local_csv = _leaderboard_csv(tmp_path, "ray"), _leaderboard_csv(tmp_path, "local")
    assert ray_csv == local_csv
    assert all(m in local_csv for m in ("flow-propagate", "color-transfer", "ray-slow-shift"))
    with ResultStore(tmp_path / "ray") as a, ResultStore(tmp_path / "local") as b:
        ka = {(r["edit_key"], r["status"]) for r in a.iter_edits()}
        kb = {(r["edit_key"], r["status"]) for r in b.iter_edits()}
        assert ka == kb and sum(s == "ok" for _, s in ka) == 10 + 10 + 1 + 1  # source and ray-slow-shift on all, the image-guided two on 1
        assert set(a.existing_score_keys().items()) == set(b.existing_score_keys().items())
    # a driver restart resumes: nothing is left to do
    res = _cli_run(tmp_path, "ray", "--executor", "ray", "--workers", "2")
    assert res.exit_code == 0 and "actor pid" not in res.output, res.output


def test_a_killed_worker_has_its_unit_retried_and_every_unit_done_once(local_ray, tmp_path):
    from bench.running.ray_executor import run_on_ray

    killed: list[int] = []

    def on_unit(label, pid, out):
        if not killed:  # the actor's next unit is in flight: kill -9 it mid-unit
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

    cfg = RunConfig(suite="mini", methods=["ray-slow-shift"], metrics=[], run_name="kill", results_dir=str(tmp_path),
                    device="cpu", limit=6, suite_overrides=dict(TINY), method_options={"ray-slow-shift": {"delay": 0.6}})
    summary = run_on_ray(cfg, workers=2, max_retries=2, on_unit=on_unit)
    assert killed
    with ResultStore(cfg.run_dir) as st:
        rows = list(st.iter_edits())
    per_key = Counter((r["method"], r["sample_uid"]) for r in rows)
    assert len(per_key) == 6 and set(per_key.values()) == {1}
    assert {r["status"] for r in rows} == {"ok"}, [(r["status"], r["message"]) for r in rows]
    retried = [r for r in rows if r["message"] and "retr" in r["message"]]
    assert len(retried) == 1 and f"worker pid {killed[0]} died" in retried[0]["message"]
    assert summary.edits == {"ray-slow-shift": {"ok": 6}}


def test_an_exception_inside_a_method_is_an_error_row_without_retry(local_ray, tmp_path):
    from bench.running.ray_executor import run_on_ray

    calls = tmp_path / "calls.txt"
    cfg = RunConfig(suite="mini", methods=["ray-raises"], metrics=[], run_name="raises", results_dir=str(tmp_path),
                    device="cpu", limit=3, suite_overrides=dict(TINY), method_options={"ray-raises": {"calls": str(calls)}})
    run_on_ray(cfg, workers=1, max_retries=2)
    with ResultStore(cfg.run_dir) as st:
        rows = list(st.iter_edits())
    assert len(rows) == 3 and {r["status"] for r in rows} == {"error"}
    assert all("adapter bug: no frames for you" in r["message"] and "retr" not in r["message"] for r in rows)
    assert len(calls.read_text().splitlines()) == 3  # one attempt per unit, in one worker process
    assert len(set(calls.read_text().splitlines())) == 1


@pytest.mark.slow
def test_ctrl_c_stops_a_ray_run_cleanly_and_the_same_command_resumes(tmp_path):
    import subprocess
    import sys
    import time

    code = ("import sys\n"
            "from bench.api.catalog import METHODS\n"
            "METHODS.register('ray-slow-shift', 'ray_fixtures:SlowShift')\n"
            "from bench.cli import app\n"
            "sys.argv = ['videditbench'] + sys.argv[1:]\n"
            "app()\n")
    args = [sys.executable, "-c", code, "run", "--suite", "mini", "--methods", "ray-slow-shift", "--metrics",
            "temporal_flickering", "--method-opt", "ray-slow-shift.delay=1.0", "--device", "cpu", "--num-frames", "4",
            "--size", "32", "--limit", "4", "--results-dir", str(tmp_path), "--name", "cc", "--no-export",
            "--executor", "ray", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    db = tmp_path / "cc" / "results.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if db.is_file():
            with ResultStore(tmp_path / "cc") as st:
                if st.counts()["edits"] >= 1:
                    break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted" in out and "run the same command again to resume" in out and "Traceback" not in out
    with ResultStore(tmp_path / "cc") as st:
        first = {r["sample_uid"] for r in st.iter_edits()}
    assert 1 <= len(first) < 4
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    with ResultStore(tmp_path / "cc") as st:
        rows = list(st.iter_edits())
    assert Counter(r["sample_uid"] for r in rows) == Counter({u: 1 for u in {r["sample_uid"] for r in rows}})
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}


@pytest.mark.slow
def test_ray_metric_actors_batch_frames_across_the_edits_of_a_group(local_ray, tmp_path):
    """Each metric actor gets its group's prefetch before the group's units (as the local runner's
    chunks): the model sees frames of many edits per batch, and the values are the local run's."""
    import tiny_models as tm

    clip = tm.build_tiny_clip(tmp_path / "clip")
    values = {}
    for name, extra in (("ray", ["--executor", "ray", "--workers", "2"]), ("local", [])):
        calls = tmp_path / f"calls-{name}.txt"
        res = CliRunner().invoke(cli.app, [
            "run", "--suite", "mini", "--methods", "source,ray-slow-shift", "--metrics", "ray-counting-clip",
            "--method-opt", "ray-slow-shift.delay=0", "--metric-opt", f"ray-counting-clip.weights={clip}",
            "--metric-opt", f"ray-counting-clip.calls={calls}", "--device", "cpu", "--num-frames", "4", "--size", "32",
            "--limit", "6", "--results-dir", str(tmp_path), "--name", name, "--no-export", *extra], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        with ResultStore(tmp_path / name) as st:
            values[name] = {(r["edit_key"], r["status"]): r["value"] for r in st.scores_frame().to_dict("records")
                            if r["metric"] == "ray-counting-clip"}
        sizes = [int(line.split()[1]) for line in calls.read_text().split("\n") if line]
        assert sum(sizes) == len(values[name]) == 12 and max(sizes) > 1, (name, sizes)  # each edit prefetched once
        if name == "ray":
            assert os.getpid() not in {int(line.split()[0]) for line in calls.read_text().split("\n") if line}
    assert values["ray"].keys() == values["local"].keys() and all(s == "ok" for _, s in values["ray"])
    for k, v in values["local"].items():
        assert values["ray"][k] == pytest.approx(v, rel=1e-6)
