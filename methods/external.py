"""Run any method's own script as a subprocess (the adapter for code that lives in its own repo/env).

Config:

* `command` (required): a template, either one string (split with `shlex` like a shell would) or
  a list of arguments. Placeholders are substituted AFTER splitting, so a prompt with spaces,
  quotes or `;` stays one argument and is never interpreted by a shell:

  | placeholder | value |
  |---|---|
  | `{input}` | folder of the source frames as PNGs (`00000.png`, …) |
  | `{input_video}` | the source as an .mp4 (lossless libx264rgb unless `input_video_lossless: false`) |
  | `{output}` | an empty folder; the script writes frames (PNG/JPG) or ONE video file (.mp4, .gif, …) into it |
  | `{prompt}`, `{source_prompt}` | target / source prompt ("" if none) |
  | `{reference}` | the reference image as PNG |
  | `{mask}` | folder of per-frame mask PNGs (255 inside) |
  | `{seed}`, `{width}`, `{height}`, `{num_frames}`, `{fps}`, `{device}` | run facts |
  | `{video_id}`, `{edit_id}`, `{workdir}` | the sample's ids and the temporary work folder |

  Use `{{` / `}}` for literal braces. A template that uses `{reference}` / `{mask}` / `{prompt}`
  makes the method need that input (samples without it are "not applicable"); override with `needs`.
* `shell` (default false): run the template as one `/bin/sh -c` line (no placeholders allowed then).

  Security: a prompt from a downloaded dataset must never run anything, so a placeholder is only
  ever substituted inside one argv element of a program that is neither a shell nor a program that
  hands text to a shell or an interpreter (`methods/external_template.py` has the rule and the
  lists). A template whose placeholders could reach such a parser — `shell: true`, `bash -o
  pipefail -c "… {prompt}"`, `ssh host …`, `xargs`, `env -S`, `python -c "…{prompt}…"`, a
  placeholder as the program, or anything the check cannot prove safe — is refused with one line
  naming the template. Every value is exported as `VIDEDITBENCH_<PLACEHOLDER>`: scripts run by a
  shell read `"$VIDEDITBENCH_PROMPT"` (a shell never re-parses an expanded variable).
* `timeout_s` (default 3600): the whole process group is terminated (SIGTERM, then SIGKILL after
  5 s) when it runs longer.
* `env` (mapping, merged over the current environment), `cwd` (working directory).
* `log_dir` (default `$VIDEDITBENCH_CACHE/logs/external`): stdout+stderr of every call is kept in
  a log file there; errors quote its tail.
* `resize_output` (default false): output of a different size / frame count is an error unless
  this is true (then it is resized to the source and frames are sampled evenly).
* `keep_workdir` (default false): keep the temporary folder with inputs and outputs.
* `tasks` (default both): restrict to "text" or "image" samples.

After each call `last_run` (an `ExternalRun`) holds the exit code, wall time, the peak resident
memory of the child process tree (psutil, sampled every 50 ms) and, when `nvidia-smi` is present
and the device is CUDA, the child tree's peak GPU memory — the harness's own CUDA counters cannot
see another process.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import string
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import MethodOutputError, VidEditBenchError, VideoReadError
from bench.method import Method
from bench.types import Sample, Video
from bench.api.redaction import is_secret, register_secret
from methods.external_template import check_template

PLACEHOLDERS = (
    "input", "input_video", "output", "prompt", "source_prompt", "reference", "mask", "seed", "width",
    "height", "num_frames", "fps", "device", "video_id", "edit_id", "workdir",
)
#: options that do not change the edited frames (left out of the identity hashed into result keys)
_NON_IDENTITY = ("timeout_s", "log_dir", "keep_workdir")
LOG_TAIL_CHARS = 2000


@dataclass
class ExternalRun:
    command: str
    returncode: int | None
    seconds: float
    peak_rss_mb: float
    peak_gpu_mb: float | None
    log_path: Path
    workdir: Path


def template_fields(parts: list[str]) -> set[str]:
    """Placeholder names used in the template; raises on malformed braces or unknown names."""
    used: set[str] = set()
    for part in parts:
        try:
            parsed = list(string.Formatter().parse(part))
        except ValueError as e:
            raise VidEditBenchError(f"external: bad command template {part!r}: {e} (use {{{{ and }}}} for literal braces)") from None
        for _, field, _, _ in parsed:
            if field is None:
                continue
            if field not in PLACEHOLDERS:
                raise VidEditBenchError(
                    f"external: unknown placeholder {{{field}}} in command; valid: "
                    + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                )
            used.add(field)
    return used


ENV_PREFIX = "VIDEDITBENCH_"


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def placeholder_env(values: dict[str, Any]) -> dict[str, str]:
    """Every placeholder's value as an environment variable (how shell scripts must read them)."""
    return {env_name(k): str(v) for k, v in values.items() if k in PLACEHOLDERS}


def log_tail(path: Path, n: int = LOG_TAIL_CHARS) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    text = text[-n:].strip()
    return text or "(empty log)"


class _TreeSampler(threading.Thread):
    """Peak RSS (and GPU memory via nvidia-smi, every 0.5 s) of a process and its descendants."""

    def __init__(self, pid: int, gpu: bool, interval: float = 0.05):
        super().__init__(daemon=True)
        import psutil

        self.psutil = psutil
        self.pid = pid
        self.interval = interval
        self.gpu = gpu and shutil.which("nvidia-smi") is not None
        self.peak_rss = 0
        self.peak_gpu_mb: float | None = None
        self.known: dict[int, Any] = {}
        self._halt = threading.Event()

    def _tree(self) -> list[Any]:
        try:
            root = self.psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except self.psutil.Error:
            return []
        for p in procs:
            self.known.setdefault(p.pid, p)
        return procs

    def _gpu_mb(self, pids: set[int]) -> float | None:
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=5,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        total, seen = 0.0, False
        for line in out.splitlines():
            bits = [b.strip() for b in line.split(",")]
            if len(bits) == 2 and bits[0].isdigit() and int(bits[0]) in pids:
                seen = True
                try:
                    total += float(bits[1])
                except ValueError:
                    pass
        return total if seen else None

    def run(self) -> None:
        last_gpu = 0.0
        while not self._halt.is_set():
            procs = self._tree()
            rss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                except self.psutil.Error:
                    pass
            self.peak_rss = max(self.peak_rss, rss)
            if self.gpu and time.monotonic() - last_gpu >= 0.5:
                last_gpu = time.monotonic()
                g = self._gpu_mb({p.pid for p in procs})
                if g is not None:
                    self.peak_gpu_mb = max(self.peak_gpu_mb or 0.0, g)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def _kill_tree(proc: subprocess.Popen, known: dict[int, Any], grace_s: float = 5.0) -> None:
    """SIGTERM the process group (and any descendant that left it), then SIGKILL what survives."""
    import psutil

    try:
        known.update({c.pid: c for c in psutil.Process(proc.pid).children(recursive=True)})
    except psutil.Error:
        pass
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for p in known.values():  # psutil checks the pid was not reused before signalling
            try:
                p.send_signal(sig)
            except psutil.Error:
                pass
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        others = [p for pid, p in known.items() if pid != proc.pid]
        deadline = time.monotonic() + wait_s
        while any(_alive(p) for p in others) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not any(_alive(p) for p in others):
            return


def _alive(p: Any) -> bool:
    """Running and not a zombie (an orphaned zombie may wait for a reaper that never comes)."""
    import psutil

    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def read_output_frames(out_dir: Path) -> tuple[np.ndarray, Path]:
    """Frames the script wrote: image files in the folder, ONE video file, or ONE sub-folder of frames."""
    from bench.media.video_io import VIDEO_EXTS, list_frame_files, read_video

    if list_frame_files(out_dir):
        return read_video(out_dir)[0], out_dir
    entries = sorted(out_dir.iterdir())
    videos = [p for p in entries if p.is_file() and p.suffix.lower() in VIDEO_EXTS]
    if len(videos) == 1:
        return read_video(videos[0])[0], videos[0]
    if len(videos) > 1:
        raise MethodOutputError(f"wrote {len(videos)} videos to {out_dir} ({', '.join(p.name for p in videos)}); write exactly one")
    dirs = [p for p in entries if p.is_dir() and list_frame_files(p)]
    if len(dirs) == 1:
        return read_video(dirs[0])[0], dirs[0]
    listing = ", ".join(p.name for p in entries[:10]) or "nothing"
    raise MethodOutputError(f"wrote no frames (PNG/JPG) or video file to {out_dir} (found: {listing})")


WORKDIR_PREFIX = "videditbench-external-"
LOCK_NAME, KEEP_MARK = ".owner.lock", ".keep"
#: a work folder without its lock file (made by an older version, or killed before locking) is stale after this
STALE_UNLOCKED_S = 3600.0


def _hold(work: Path) -> int:
    """An open fd with an exclusive flock on the work folder's lock file (released when closed or the process dies)."""
    import fcntl

    fd = os.open(work / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def clean_stale_workdirs(root: Path | None = None) -> int:
    """Remove the work folders of killed `external` edits (kill -9 skips our clean-up): a folder whose lock no
    live process holds. Folders kept on purpose (keep_workdir) stay. Returns how many went."""
    import fcntl

    root = Path(root or tempfile.gettempdir())
    n = 0
    for d in root.glob(WORKDIR_PREFIX + "*"):
        if not d.is_dir() or d.is_symlink() or (d / KEEP_MARK).exists():
            continue
        lock = d / LOCK_NAME
        if not lock.exists():
            try:
                if time.time() - d.stat().st_mtime > STALE_UNLOCKED_S:
                    shutil.rmtree(d, ignore_errors=True)
                    n += 1
            except OSError:
                pass
            continue
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live edit holds it
        else:
            shutil.rmtree(d, ignore_errors=True)
            n += 1
        finally:
            os.close(fd)
    return n


class ExternalMethod(Method):
    name = "external"
    description = "Runs a method's own script through a command template; reads back the frames or video it writes"
    tasks = frozenset({"text", "image"})
    needs = frozenset()
    receives_sample = True
    defaults = {
        "command": None,
        "shell": False,
        "timeout_s": 3600.0,
        "env": {},
        "cwd": None,
        "log_dir": None,
        "resize_output": False,
        "keep_workdir": False,
        "input_video_lossless": True,
        "tasks": None,
        "needs": None,
    }

    def __init__(self, device: str = "cpu", seed: int = 0, **config: Any):
        super().__init__(device=device, seed=seed, **config)
        cmd = self.cfg.get("command")
        if not cmd:
            raise VidEditBenchError(
                "method 'external' needs option command, e.g. "
                "command: 'python my_edit.py --in {input} --out {output} --prompt {prompt}'"
            )
        if isinstance(cmd, str):
            self.parts = [cmd] if self.cfg["shell"] else shlex.split(cmd)
        elif isinstance(cmd, (list, tuple)) and all(isinstance(c, (str, int, float)) for c in cmd):
            self.parts = [str(c) for c in cmd]
            if self.cfg["shell"]:  # one shell line; placeholders are quoted at substitution
                self.parts = [" ".join(self.parts)]
        else:
            raise VidEditBenchError(f"external: command must be a string or a list of strings, got {type(cmd).__name__}")
        if not self.parts:
            raise VidEditBenchError("external: command is empty")
        clean_stale_workdirs()
        self.fields = template_fields(self.parts)
        shown = cmd if isinstance(cmd, str) else shlex.join(self.parts)
        check_template(self.parts, bool(self.cfg["shell"]), shown if len(shown) <= 200 else shown[:197] + "...")
        if float(self.cfg["timeout_s"]) <= 0:
            raise VidEditBenchError(f"external: timeout_s must be > 0, got {self.cfg['timeout_s']}")
        if not isinstance(self.cfg["env"] or {}, dict):
            raise VidEditBenchError("external: env must be a mapping of NAME: value")
        for k, v in (self.cfg["env"] or {}).items():
            if is_secret(k, v):
                register_secret(v)
        if self.cfg["cwd"] and not Path(str(self.cfg["cwd"])).expanduser().is_dir():
            raise VidEditBenchError(f"external: cwd '{self.cfg['cwd']}' is not a folder")
        # instance-level task/need metadata derived from the template (shadows the class defaults)
        if self.cfg["tasks"]:
            tasks = {self.cfg["tasks"]} if isinstance(self.cfg["tasks"], str) else set(self.cfg["tasks"])
            if not tasks <= {"text", "image"}:
                raise VidEditBenchError(f"external: tasks must be among text, image; got {sorted(tasks)}")
            self.tasks = frozenset(tasks)
        if self.cfg["needs"] is not None:
            needs = {self.cfg["needs"]} if isinstance(self.cfg["needs"], str) else set(self.cfg["needs"])
            if not needs <= {"text", "reference", "mask"}:
                raise VidEditBenchError(f"external: needs must be among text, reference, mask; got {sorted(needs)}")
            self.needs = frozenset(needs)
        else:
            self.needs = frozenset(n for n, f in (("text", "prompt"), ("reference", "reference"), ("mask", "mask")) if f in self.fields)
        self.last_run: ExternalRun | None = None

    def config(self) -> dict[str, Any]:
        """The identity hashed into result keys and stored as method_config: secrets in `env` (by name or
        token shape) are left out, since they cannot change the frames and must not be stored."""
        cfg = {k: v for k, v in super().config().items() if k not in _NON_IDENTITY}
        if isinstance(cfg.get("env"), dict):
            cfg["env"] = {k: v for k, v in cfg["env"].items() if not is_secret(k, v)}
        return cfg

    def _log_dir(self) -> Path:
        if self.cfg["log_dir"]:
            d = Path(str(self.cfg["log_dir"])).expanduser()
        else:
            from bench.weights import cache_dir

            d = cache_dir() / "logs" / "external"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _write_inputs(self, work: Path, video: Video, reference: np.ndarray | None, mask: np.ndarray | None) -> dict[str, str]:
        from bench.media.video_io import write_frames, write_image, write_mp4

        paths = {"input": "", "input_video": "", "reference": "", "mask": ""}
        paths["input"] = str(write_frames(work / "input", video.frames))
        if "input_video" in self.fields:
            paths["input_video"] = str(
                write_mp4(work / "input.mp4", video.frames, fps=video.fps, lossless=bool(self.cfg["input_video_lossless"]))
            )
        if reference is not None:
            write_image(work / "reference.png", np.asarray(reference, dtype=np.uint8))
            paths["reference"] = str(work / "reference.png")
        if mask is not None:
            m = np.asarray(mask).astype(bool)
            if m.ndim == 2:
                m = np.broadcast_to(m, (video.num_frames, *m.shape))
            mask_rgb = np.repeat((m.astype(np.uint8) * 255)[..., None], 3, axis=-1)
            paths["mask"] = str(write_frames(work / "mask", mask_rgb))
        return paths

    def _argv(self, values: dict[str, Any]) -> tuple[list[str] | str, str]:
        # check_template proved that no placeholder reaches a shell or code parser: each value is
        # substituted inside one argv element (with shell: true there are none; values are in the env)
        if self.cfg["shell"]:
            line = self.parts[0].format_map(values)
            return line, line
        argv = [p.format_map(values) for p in self.parts]
        return argv, shlex.join(argv)

    def edit(
        self,
        video: Video,
        *,
        prompt: str | None = None,
        reference: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        prepared: Any = None,
        source_prompt: str | None = None,
        sample: Sample | None = None,
    ) -> np.ndarray:
        missing = [n for n, v in (("reference", reference), ("mask", mask)) if n in self.fields and v is None]
        if missing:
            raise VidEditBenchError(f"external: the command uses {{{missing[0]}}} but this sample has no {missing[0]}")
        work = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        held = _hold(work)  # while held, no other process's start-up clean-up takes this folder
        try:
            values: dict[str, Any] = self._write_inputs(work, video, reference, mask)
            out_dir = work / "output"
            out_dir.mkdir()
            values.update(
                output=str(out_dir), prompt=prompt or "", source_prompt=source_prompt or "", seed=self.seed,
                width=video.width, height=video.height, num_frames=video.num_frames, fps=video.fps,
                device=self.device, video_id=sample.video_id if sample else "", edit_id=sample.edit_id if sample else "",
                workdir=str(work),
            )
            cmd, shown = self._argv(values)
            frames = self._run(cmd, shown, work, sample, values)
            return self._conform(frames, video)
        finally:
            if not self.cfg["keep_workdir"]:
                shutil.rmtree(work, ignore_errors=True)
            else:
                (work / KEEP_MARK).touch()
            os.close(held)

    def _run(self, cmd: list[str] | str, shown: str, work: Path, sample: Sample | None,
             values: dict[str, Any] | None = None) -> np.ndarray:
        values = values or {}
        tag = f"{sample.video_id}_{sample.edit_id}" if sample else "edit"
        tag = "".join(c if c.isalnum() or c in "-_." else "_" for c in tag)
        log_path = self._log_dir() / f"{time.strftime('%Y%m%d-%H%M%S')}_{os.getpid()}_{tag}_{work.name[-8:]}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **{str(k): str(v) for k, v in (self.cfg["env"] or {}).items()},
               **placeholder_env(values)}
        bad = [k for k, v in env.items() if "\0" in k or "\0" in v]
        if bad:
            raise VidEditBenchError(f"external: {bad[0]} contains a NUL byte, which no process can receive; remove it")
        cwd = str(Path(str(self.cfg["cwd"])).expanduser()) if self.cfg["cwd"] else None
        timeout = float(self.cfg["timeout_s"])
        start = time.perf_counter()
        with open(log_path, "wb") as log:
            log.write(f"$ {shown}\n# cwd: {cwd or os.getcwd()}\n".encode())
            for k, v in placeholder_env(values).items():
                log.write(f"# {k}={v!r}\n".encode(errors="replace"))
            log.flush()
            try:
                proc = subprocess.Popen(
                    cmd, shell=bool(self.cfg["shell"]), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            except OSError as e:
                raise MethodOutputError(f"external: cannot start {shown!r}: {e}") from None
            sampler = _TreeSampler(proc.pid, gpu=str(self.device).startswith("cuda"))
            sampler.start()
            timed_out = False
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_tree(proc, sampler.known)
            except BaseException:  # KeyboardInterrupt: never leave the child running
                _kill_tree(proc, sampler.known)
                raise
            finally:
                sampler.stop()
        self.last_run = ExternalRun(
            command=shown, returncode=proc.returncode, seconds=time.perf_counter() - start,
            peak_rss_mb=sampler.peak_rss / 2**20, peak_gpu_mb=sampler.peak_gpu_mb, log_path=log_path, workdir=work,
        )
        where = f"log: {log_path}"
        if timed_out:
            raise MethodOutputError(
                f"external: {shown!r} timed out after {timeout:g} s and was killed (raise timeout_s); {where}; "
                f"log tail:\n{log_tail(log_path)}"
            )
        if proc.returncode != 0:
            raise MethodOutputError(
                f"external: {shown!r} failed with exit code {proc.returncode}; {where}; log tail:\n{log_tail(log_path)}"
            )
        try:
            frames, _ = read_output_frames(work / "output")
        except (MethodOutputError, VideoReadError) as e:
            raise MethodOutputError(f"external: {shown!r} {e}; {where}; log tail:\n{log_tail(log_path)}") from None
        return frames

    def _conform(self, frames: np.ndarray, video: Video) -> np.ndarray:
        if frames.shape[0] == video.num_frames and frames.shape[1:3] == video.size:
            return frames
        if self.cfg["resize_output"]:
            from methods.precomputed import fit_to_source

            return fit_to_source(frames, video.num_frames, video.size)
        log = f"; log: {self.last_run.log_path}" if self.last_run else ""
        raise MethodOutputError(
            f"external: the script wrote {frames.shape[0]} frames of {frames.shape[1]}x{frames.shape[2]} (HxW), the source "
            f"has {video.num_frames} frames of {video.height}x{video.width}; write {{num_frames}} frames at "
            f"{{width}}x{{height}}, or set resize_output: true{log}"
        )
