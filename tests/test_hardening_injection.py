"""Issue 7: a prompt never runs a command through `external`, whatever shell the template calls."""

from __future__ import annotations

import shlex
import sys
import textwrap

import numpy as np
import pytest

from bench.api.catalog import METHODS
from bench.api.errors import VidEditBenchError
from bench.api.types import Video
from methods.external import shell_safe_format, shell_script_positions

PY = sys.executable

COPY = """
import os, shutil, sys
from pathlib import Path
src, out, seen = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
for f in sorted(src.glob("*.png")):
    shutil.copy(f, out / f.name)
seen.write_text(sys.argv[4] if len(sys.argv) > 4 else os.environ["VIDEDITBENCH_PROMPT"])
"""


def payloads(marker) -> list[str]:
    m = shlex.quote(str(marker))
    return [
        f"a cat; touch {m}",
        f"a cat $(touch {m})",
        f"a cat `touch {m}`",
        f"a cat\ntouch {m}\n",
        f"a cat' ; touch {m} ; echo '",
        f'a cat" ; touch {m} ; echo "',
        f"a cat\\\" ; touch {m} ; echo \\\"",
        f"a cat' \"$(touch {m})\" '",
    ]


def templates(script, seen) -> list[tuple[str, object, bool]]:
    q = shlex.quote
    base = f"{q(PY)} {q(str(script))} {{input}} {{output}} {q(str(seen))}"
    return [
        ("sh -c unquoted", f"sh -c {q(base + ' {prompt}')}", False),
        ("sh -c double quotes", f"sh -c '{base} \"{{prompt}}\"'", False),
        ("bash -lc single quotes", ["bash", "-lc", base + " '{prompt}'"], False),
        ("sh -c in a list with positional args", ["/bin/sh", "-e", "-c", base + ' "{prompt}"', "arg0"], False),
        ("shell true unquoted", base + " {prompt}", True),
        ("shell true double quotes", base + ' "{prompt}"', True),
        ("shell true single quotes", base + " '{prompt}'", True),
        ("shell true nested sh -c", "sh -c " + q(base + ' "{prompt}"'), True),
        ("shell true env only", base, True),
    ]


@pytest.fixture
def clip():
    rng = np.random.default_rng(0)
    return Video(rng.integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8), fps=8.0)


@pytest.mark.parametrize("case", range(9))
def test_prompt_never_executes(case, tmp_path, clip):
    script = tmp_path / "copy.py"
    script.write_text(textwrap.dedent(COPY))
    seen = tmp_path / "seen.txt"
    name, cmd, shell = templates(script, seen)[case]
    if name == "shell true nested sh -c":  # parsed twice: refused, with the fix
        with pytest.raises(VidEditBenchError, match="VIDEDITBENCH_PROMPT"):
            METHODS.get("external")(command=cmd, shell=shell)
        return
    for i, prompt in enumerate(payloads(tmp_path / "marker")):
        m = METHODS.get("external")(command=cmd, shell=shell, log_dir=str(tmp_path / "logs"))
        out = m.edit(clip, prompt=prompt)
        np.testing.assert_array_equal(out, clip.frames)
        assert not (tmp_path / "marker").exists(), f"{name}: payload {i} ran a command"
        assert seen.read_text() == prompt, f"{name}: payload {i} arrived altered"


def test_shell_script_positions():
    assert shell_script_positions(["sh", "-c", "x {prompt}"]) == {2}
    assert shell_script_positions(["conda", "run", "-n", "env", "bash", "-lc", "x", "a0"]) == {6}
    assert shell_script_positions(["/usr/bin/env", "bash", "-e", "-c", "x"]) == {4}
    assert shell_script_positions(["sh", "script.sh", "{prompt}"]) == set()  # argv, no shell parsing
    assert shell_script_positions(["python", "-c", "print(1)"]) == set()


def test_shell_safe_format_contexts():
    assert shell_safe_format("e {prompt}") == 'e "${VIDEDITBENCH_PROMPT}"'
    assert shell_safe_format('e "x {prompt}"') == 'e "x ${VIDEDITBENCH_PROMPT}"'
    assert shell_safe_format("e 'x {prompt}'") == "e 'x '\"${VIDEDITBENCH_PROMPT}\"''"
    assert shell_safe_format("e {{lit}} {seed}") == 'e {lit} "${VIDEDITBENCH_SEED}"'


def test_nested_shell_in_argv_refused():
    with pytest.raises(VidEditBenchError, match="nested"):
        METHODS.get("external")(command=["sh", "-c", "bash -c 'echo {prompt}'"])
    with pytest.raises(VidEditBenchError, match="nested"):
        METHODS.get("external")(command="eval echo {prompt}", shell=True)


def test_nul_byte_in_prompt_is_one_clear_error(tmp_path, clip):
    m = METHODS.get("external")(command=f"{shlex.quote(PY)} -c pass {{prompt}}", log_dir=str(tmp_path / "logs"))
    with pytest.raises(VidEditBenchError, match="NUL"):
        m.edit(clip, prompt="a\0b")
