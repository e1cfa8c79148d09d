"""Fuzz the CLI with hostile input (not a test): generated manifests, configs, media and `external`
templates, each run through the real CLI in this process. Prints how many were handled cleanly — exit
0/1, or exit 2 with exactly one `error:` line — and never with a traceback or a crash, and lists the rest.

    python scripts/fuzz_cli.py [--seed 0] [--cases 200] [--keep]

Every case gets a wall-clock limit (SIGALRM) and the process an address-space limit, so a case that
would hang or eat memory is reported as a failure instead of taking the machine down. A template case
also fails if its prompt payload managed to create its marker file (a command ran).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import shlex
import signal
import struct
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CASE_LIMIT_S = 120
MEMORY_LIMIT = 8 * 2**30


@dataclass
class Case:
    kind: str
    name: str
    args: list[str]
    marker: Path | None = None  # must not exist afterwards (a payload ran a command)
    files: dict[str, bytes] = field(default_factory=dict)


class CaseTimeout(BaseException):
    pass


# --- generators ------------------------------------------------------------------------------------
HOSTILE_TEXT = [
    "x[/]", "[bold red]boom[/", "<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "a|b|c", "](javascript:x)",
    "../../../../etc/passwd", "/etc/passwd", "\u202eevil\u202c", "名前", "a" * 20000, "", " ", "\t\n", ".", "..",
    "$(touch /tmp/veb-fuzz-pwned)", "`id`", "'; DROP TABLE scores; --", "%s%s%n", "{input}", "{{", "}}", "\x00",
    "\x1b[31mred\x1b[0m", "NaN", "-1", "1e309", "!!python/object/apply:os.system ['id']",
]


def yaml_bomb(levels: int, width: int, inline: bool = True) -> str:
    parts = [f"a0: &a0 [{', '.join(['x'] * width)}]"] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return ("{" + ", ".join(parts) + "}") if inline else "\n".join(parts)


def manifest_variants(rng: random.Random, clip: str) -> list[tuple[str, str]]:
    ok_video = {"id": "v", "source": clip, "source_prompt": "a cat", "edits": [
        {"id": "e", "edit_type": "style", "target_prompt": "a cat, oil painting"}]}
    out: list[tuple[str, str]] = []
    import yaml

    def dump(d) -> str:
        return yaml.safe_dump(d, allow_unicode=True)

    for lv, w in ((6, 6), (9, 9), (12, 4)):
        out.append((f"bomb-params-{lv}x{w}", "name: b\nvideos:\n  - id: v\n    synthetic: {kind: moving_square, params: "
                    + yaml_bomb(lv, w) + "}\n    edits: [{id: e, edit_type: style, target_prompt: p}]\n"))
    out.append(("recursive-alias", "name: r\nvideos: &v [*v]\n"))
    out.append(("deep-nesting", "name: d\nvideos: " + "[" * 5000 + "]" * 5000 + "\n"))
    out.append(("binary", bytes(rng.getrandbits(8) for _ in range(512)).decode("latin-1")))
    out.append(("bad-utf8", "name: \udcff\n"))
    out.append(("python-tag", "name: !!python/object/apply:os.system ['touch /tmp/veb-fuzz-pwned']\nvideos: []\n"))
    out.append(("top-level-list", "- 1\n- 2\n"))
    out.append(("empty", ""))
    for text in HOSTILE_TEXT:
        for fld in ("id", "source_prompt", "source"):
            v = dict(ok_video, **{fld: text})
            out.append((f"hostile-{fld}-{text[:12]!r}", dump({"name": "h", "videos": [v]})))
        e = dict(ok_video["edits"][0], target_prompt=text, id=text[:40] or "e")
        out.append((f"hostile-edit-{text[:12]!r}", dump({"name": text[:60] or "h", "videos": [dict(ok_video, edits=[e])]})))
    for fld, val in (("num_frames", 10**12), ("num_frames", -3), ("size", 10**9), ("size", "big"), ("max_stride", 0),
                     ("num_frames", 1e308), ("size", [1, 2, 3])):
        out.append((f"preprocess-{fld}-{val!r}"[:40], dump({"name": "p", "preprocess": {fld: val}, "videos": [ok_video]})))
    for fld, val in (("box", [0, 0, 10**9, 10**9]), ("box", "x"), ("masks", "../../.."), ("reference", "/dev/zero"),
                     ("reference", "/etc/shadow"), ("stride", -1), ("start", 10**9), ("fps", 0)):
        out.append((f"video-{fld}-{val!r}"[:40], dump({"name": "p", "videos": [dict(ok_video, **{fld: val})]})))
    return out


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header(w: int, h: int, depth: int = 8, color: int = 2, idat: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat or zlib.compress(b"\0" * 16)) \
        + png_chunk(b"IEND", b"")


def media_variants(rng: random.Random) -> list[tuple[str, dict[str, bytes]]]:
    """(name, {relative file: bytes}) for a frame folder `clip/` or a single `clip.<ext>` file."""
    from PIL import Image

    def png(arr_mode: str, size=(16, 16)) -> bytes:
        buf = io.BytesIO()
        Image.new(arr_mode, size).save(buf, format="PNG")
        return buf.getvalue()

    good = png("RGB")
    out: list[tuple[str, dict[str, bytes]]] = [
        ("bomb-header-30000", {f"clip/{i:05d}.png": png_header(30000, 30000) for i in range(2)}),
        ("bomb-header-100000", {"clip/00000.png": png_header(100000, 100000)}),
        ("zero-size-png", {"clip/00000.png": png_header(0, 0)}),
        ("truncated-png", {"clip/00000.png": good[: len(good) // 2], "clip/00001.png": good}),
        ("empty-file", {"clip/00000.png": b""}),
        ("random-bytes-png", {"clip/00000.png": bytes(rng.getrandbits(8) for _ in range(300))}),
        ("mixed-sizes", {"clip/00000.png": png("RGB", (16, 16)), "clip/00001.png": png("RGB", (32, 8))}),
        ("16-bit", {"clip/00000.png": png("I;16"), "clip/00001.png": png("I;16")}),
        ("float-tiff-as-png", {"clip/00000.png": _tiff_f()}),
        ("palette", {"clip/00000.png": png("P"), "clip/00001.png": png("P")}),
        ("one-pixel", {"clip/00000.png": png("RGB", (1, 1))}),
        ("huge-aspect", {"clip/00000.png": png("RGB", (4096, 1))}),
        ("random-mp4", {"clip.mp4": bytes(rng.getrandbits(8) for _ in range(4096))}),
        ("empty-mp4", {"clip.mp4": b""}),
        ("gif-garbage", {"clip.gif": b"GIF89a" + bytes(rng.getrandbits(8) for _ in range(200))}),
        ("png-named-mp4", {"clip.mp4": good}),
    ]
    return out


def _tiff_f() -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.float32), "F").save(buf, format="TIFF")
    return buf.getvalue()


def config_variants(rng: random.Random) -> list[tuple[str, str]]:
    out = [
        ("bomb-judge-model", "metric_options:\n  vlm_judge:\n    model: " + yaml_bomb(9, 9) + "\n"),
        ("bomb-external-env", "methods: [external]\nmethod_options:\n  external:\n    command: [run, '{output}']\n"
                              "    env: " + yaml_bomb(9, 9) + "\n"),
        ("bomb-method-list", "methods: " + yaml_bomb(8, 8) + "\n"),
        ("python-tag", "methods: !!python/object/apply:os.system ['touch /tmp/veb-fuzz-pwned']\n"),
        ("not-a-mapping", "[1, 2]\n"), ("scalar", "42\n"), ("unknown-key", "mehtods: [source]\n"),
        ("deep", "methods: " + "[" * 3000 + "]" * 3000 + "\n"),
        ("options-not-mapping", "method_options: 5\n"), ("metric-opt-list", "metric_options: {temporal_flickering: [1]}\n"),
        ("method-markup", "methods: ['x[/]']\n"), ("metric-html", "metrics: ['<img src=x>']\n"),
        ("huge-batch", "metric_options: {temporal_flickering: {batch_size: 1e300}}\n"),
        ("negative-batch", "metric_options: {temporal_flickering: {batch_size: -5}}\n"),
        ("nul", "methods: [\"a\\0b\"]\n"),
    ]
    for t in HOSTILE_TEXT[:12]:
        out.append((f"label-{t[:10]!r}", "methods: [source]\nmethod_options: {source: {label: " + repr(t) + "}}\n"))
    return out


SHELL_FORMS = [
    ["sh", "-c", "{script} {{prompt}}"], ["bash", "-o", "pipefail", "-c", "{script} {{prompt}}"],
    ["bash", "-O", "extglob", "-c", "{script} '{{prompt}}'"], ["bash", "--rcfile", "/dev/null", "-c", '{script} "{{prompt}}"'],
    ["bash", "+x", "-c", "{script} {{prompt}}"], ["/bin/sh", "-e", "-c", '{script} "$1"', "a0", "{{prompt}}"],
    ["bash", "-c", 'bash -o pipefail -c "{script} {{prompt}}"'], ["env", "-S", "{script} {{prompt}}"],
    ["env", "bash", "-c", "{script} {{prompt}}"], ["nice", "-n", "1", "dash", "-c", "{script} {{prompt}}"],
    ["xargs", "-0", "echo", "{{prompt}}"], ["python3", "-c", "import os; os.system('echo {{prompt}}')"],
    ["python3", "-W", "ignore", "-c", "print('{{prompt}}')"], ["perl", "-e", "system('echo {{prompt}}')"],
    ["{{prompt}}"], ["env", "{{prompt}}"], ["timeout", "5", "{{prompt}}"], ["mytool", "--exec", "sh -c {{prompt}}"],
    ["mytool", "--run", "x {{prompt}}; y"], ["zsh", "-fc", "{script} {{prompt}}"], ["ksh", "-c", "{script} {{prompt}}"],
    ["su", "me", "-c", "{script} {{prompt}}"], ["ssh", "localhost", "{script}", "{{prompt}}"],
    ["sudo", "-n", "{script}", "{{prompt}}"], ["conda", "run", "-n", "x", "python", "{script}", "{{prompt}}"],
    ["awk", "BEGIN {{{{ system(\"{{prompt}}\") }}}}"], ["make", "P={{prompt}}"], ["watch", "-n", "1", "{{prompt}}"],
]


def template_variants(rng: random.Random, script: Path, marker: Path) -> list[tuple[str, object, bool]]:
    q = shlex.quote
    py = sys.executable
    out: list[tuple[str, object, bool]] = []
    for form in SHELL_FORMS:
        out.append((" ".join(form)[:50], [p.format(script=f"{py} {q(str(script))}") for p in form], False))
    base = f"{q(py)} {q(str(script))} {{input}} {{output}}"
    out += [("shell-true-prompt", base + " {prompt}", True), ("shell-true-pipe", "echo {prompt} | sh", True),
            ("shell-true-env", base + ' "$VIDEDITBENCH_PROMPT"', True), ("argv-safe", base + " {prompt}", False),
            ("argv-safe-list", [py, str(script), "{input}", "{output}", "{prompt}"], False),
            ("argv-glued", [py, str(script), "{input}", "{output}", "--p={prompt}"], False),
            ("bad-brace", base + " {prompt", False), ("unknown-field", base + " {nope}", False),
            ("empty", "", False), ("not-a-string", 5, False)]
    for _ in range(10):  # random shells/wrappers/options around a placeholder
        prog = rng.choice(["sh", "bash", "dash", "zsh", "/usr/bin/env bash", "nice bash", "python3", "perl"])
        opts = " ".join(rng.sample(["-e", "-u", "-x", "-o pipefail", "+x", "-l", "-O extglob", "--norc"], rng.randint(0, 3)))
        code = "-c" if not prog.startswith(("python", "perl")) else rng.choice(["-c", "-e"])
        out.append((f"random {prog} {opts} {code}"[:50], f"{prog} {opts} {code} " + q(f"echo {{prompt}} > {marker}"), False))
    return out


# --- running -----------------------------------------------------------------------------------------
def run_case(case: Case, invoke: Callable[[list[str]], object]) -> tuple[bool, str]:
    def on_alarm(signum, frame):
        raise CaseTimeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(CASE_LIMIT_S)
    t0 = time.monotonic()
    try:
        res = invoke(case.args)
    except CaseTimeout:
        return False, f"no answer after {CASE_LIMIT_S} s"
    except BaseException as e:  # noqa: BLE001
        return False, f"crashed the harness: {type(e).__name__}: {e}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    took = time.monotonic() - t0
    output = res.output or ""
    exc = res.exception
    if case.marker is not None and case.marker.exists():
        return False, "THE PAYLOAD RAN A COMMAND"
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-2:]).strip()
        return False, f"exception {type(exc).__name__}: {tb[-300:]}"
    if "Traceback" in output:
        return False, "traceback in the output"
    if res.exit_code == 2:
        lines = [ln for ln in output.splitlines() if ln.startswith("error:")]
        if len(lines) != 1:
            return False, f"exit 2 with {len(lines)} error lines: {output[-300:]!r}"
        return True, f"one line ({took:.1f}s): {lines[0][:140]}"
    if res.exit_code in (0, 1):
        return True, f"exit {res.exit_code} ({took:.1f}s)"
    return False, f"exit {res.exit_code}: {output[-300:]!r}"


def build_cases(root: Path, seed: int, limit: int) -> list[Case]:
    import numpy as np
    from PIL import Image

    rng = random.Random(seed)
    clip = root / "clip"
    clip.mkdir()
    for i in range(4):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(clip / f"{i:05d}.png")
    cases: list[Case] = []
    for i, (name, text) in enumerate(manifest_variants(rng, str(clip))):
        m = root / f"manifest-{i}.yaml"
        m.write_text(text, encoding="utf-8", errors="surrogateescape")
        cases.append(Case("manifest", name, ["suite", "validate", str(m), "--load"]))
    for i, (name, files) in enumerate(media_variants(rng)):
        d = root / f"media-{i}"
        for rel, data in files.items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_bytes(data)
        src = next(iter(files)).split("/")[0]
        m = d / "suite.yaml"
        m.write_text(f"name: m\npreprocess: {{num_frames: 2, size: 16}}\nvideos:\n  - id: v\n    source: {src}\n"
                     "    source_prompt: a\n    edits: [{id: e, edit_type: style, target_prompt: b}]\n")
        cases.append(Case("media", name, ["suite", "validate", str(m), "--load"]))
        cases.append(Case("media", name + " (run)", ["run", "--suite", str(m), "--methods", "source", "--metrics",
                                                      "temporal_flickering", "--device", "cpu", "--no-export",
                                                      "--results-dir", str(root / "runs"), "--name", f"media{i}"]))
    for i, (name, text) in enumerate(config_variants(rng)):
        c = root / f"config-{i}.yaml"
        c.write_text(text, encoding="utf-8")
        cases.append(Case("config", name, ["run", "--config", str(c), "--suite", "mini", "--limit", "1", "--num-frames",
                                           "4", "--size", "32", "--device", "cpu", "--no-export", "--results-dir",
                                           str(root / "runs"), "--name", f"config{i}", "--metrics", "temporal_flickering"]))
    script = root / "copy.py"
    script.write_text("import shutil, sys\nfrom pathlib import Path\n"
                      "for f in sorted(Path(sys.argv[1]).glob('*.png')): shutil.copy(f, Path(sys.argv[2]) / f.name)\n")
    import yaml

    for i, (name, cmd, shell) in enumerate(template_variants(rng, script, root / "MARKER")):
        marker = root / f"marker-{i}"
        prompt_payload = f"a cat; touch {marker} $(touch {marker}) `touch {marker}`"
        suite = root / f"tsuite-{i}.yaml"
        suite.write_text(yaml.safe_dump({"name": "t", "preprocess": {"num_frames": 2, "size": 16}, "videos": [
            {"id": "v", "source": str(clip), "source_prompt": "a", "edits": [
                {"id": "e", "edit_type": "style", "target_prompt": prompt_payload}]}]}))
        c = root / f"template-{i}.yaml"
        c.write_text(yaml.safe_dump({"methods": ["external"], "method_options": {"external": {
            "command": cmd, "shell": shell, "log_dir": str(root / "logs"), "timeout_s": 30}}}))
        cases.append(Case("template", name, ["run", "--config", str(c), "--suite", str(suite), "--device", "cpu",
                                             "--metrics", "temporal_flickering", "--no-export", "--results-dir",
                                             str(root / "runs"), "--name", f"template{i}"], marker=marker))
    rng.shuffle(cases)
    return cases[:limit] if limit else cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", type=int, default=0, help="at most this many cases (0: all)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (min(MEMORY_LIMIT, hard if hard > 0 else MEMORY_LIMIT), hard))

    from typer.testing import CliRunner

    import bench.cli as cli

    root = Path(tempfile.mkdtemp(prefix="videditbench-fuzz-"))
    cases = build_cases(root, args.seed, args.cases)
    runner = CliRunner()
    bad: list[tuple[Case, str]] = []
    by_kind: dict[str, list[int]] = {}
    t0 = time.monotonic()
    for case in cases:
        ok, why = run_case(case, lambda a: runner.invoke(cli.app, a, catch_exceptions=True))
        by_kind.setdefault(case.kind, [0, 0])
        by_kind[case.kind][0] += ok
        by_kind[case.kind][1] += 1
        if not ok:
            bad.append((case, why))
        if args.verbose or not ok:
            print(f"{'ok ' if ok else 'BAD'} {case.kind:8s} {case.name[:50]!s:50s} {why}", flush=True)
    handled = len(cases) - len(bad)
    print(f"\n{handled}/{len(cases)} hostile inputs handled with one line (or a normal exit) and no traceback "
          f"in {time.monotonic() - t0:.0f} s (seed {args.seed})")
    for kind, (ok, n) in sorted(by_kind.items()):
        print(f"  {kind:9s} {ok}/{n}")
    if Path("/tmp/veb-fuzz-pwned").exists():
        print("  WARNING: /tmp/veb-fuzz-pwned exists: a payload ran a command")
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
