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
    """Templates that run: each placeholder is one argv element of a program no shell parses."""
    q = shlex.quote
    base = f"{q(PY)} {q(str(script))} {{input}} {{output}} {q(str(seen))}"
    return [
        ("string argv", base + " {prompt}", False),
        ("list argv", [PY, str(script), "{input}", "{output}", str(seen), "{prompt}"], False),
        ("python options before the script", [PY, "-u", "-W", "ignore", "-X", "utf8", str(script), "{input}",
                                              "{output}", str(seen), "{prompt}"], False),
        ("env and nice wrappers", ["env", "A=1", "nice", "-n", "1", PY, str(script), "{input}", "{output}", str(seen),
                                   "{prompt}"], False),
        ("shell true reads the environment", base.replace("{input} {output}", '"$VIDEDITBENCH_INPUT" "$VIDEDITBENCH_OUTPUT"'),
         True),
        ("sh -c reads the environment", ["sh", "-c", f'{base} "$VIDEDITBENCH_PROMPT"'.replace(
            "{input} {output}", '"$VIDEDITBENCH_INPUT" "$VIDEDITBENCH_OUTPUT"')], False),
    ]


#: templates in which a placeholder could reach a shell or a code parser: refused at construction
REFUSED = [
    ("sh -c", "sh -c 'edit {prompt}'", False),
    ("bash -lc", ["bash", "-lc", "edit '{prompt}'"], False),
    ("bash -o pipefail -c", 'bash -o pipefail -c "edit {prompt}"', False),
    ("bash -O extglob -c", ["bash", "-O", "extglob", "-c", "edit {prompt}"], False),
    ("bash --rcfile F -c", ["bash", "--rcfile", "/dev/null", "-c", "edit {prompt}"], False),
    ("bash +x -c", ["bash", "+x", "-c", "edit {prompt}"], False),
    ("sh -e -c with positional args", ["/bin/sh", "-e", "-c", 'edit "$1"', "arg0", "{prompt}"], False),
    ("nested bash -c in bash -c", 'bash -c "bash -o pipefail -c \"edit {prompt}\""', False),
    ("nested pipefail in shell true", 'bash -o pipefail -c "edit {prompt}"', True),
    ("shell true", "edit {prompt}", True),
    ("shell true quoted", "edit '{prompt}'", True),
    ("shell true piping into a shell", "echo {prompt} | sh", True),
    ("zsh with path", ["/usr/bin/zsh", "-f", "-c", "edit {prompt}"], False),
    ("pwsh -Command", ["pwsh", "-NoProfile", "-Command", "edit {prompt}"], False),
    ("cmd /c", ["cmd.exe", "/c", "edit {prompt}"], False),
    ("env -S", ["env", "-S", "edit {prompt}"], False),
    ("env bash -c", ["/usr/bin/env", "bash", "-e", "-c", "edit {prompt}"], False),
    ("nice wraps a shell", ["nice", "-n", "5", "dash", "-c", "edit {prompt}"], False),
    ("xargs", ["xargs", "-0", "edit", "{prompt}"], False),
    ("sudo", ["sudo", "-u", "me", "edit", "{prompt}"], False),
    ("su -c", ["su", "me", "-c", "edit {prompt}"], False),
    ("ssh", ["ssh", "host", "edit", "{prompt}"], False),
    ("conda run", ["conda", "run", "-n", "env", "python", "edit.py", "{prompt}"], False),
    ("python -c", [PY, "-c", "import sys; print('{prompt}')"], False),
    ("python -Ic", [PY, "-Ic", "print('{prompt}')"], False),
    ("python -W x -c", [PY, "-W", "ignore", "-c", "print('{prompt}')"], False),
    ("perl -e", ["perl", "-e", "print '{prompt}'"], False),
    ("node -e", ["node", "-e", "console.log('{prompt}')"], False),
    ("placeholder as the program", ["{prompt}", "x"], False),
    ("placeholder as the program after env", ["env", "A=1", "{workdir}/run"], False),
    ("command string argument", ["mytool", "--exec", "bash -c {prompt}"], False),
    ("shell syntax around a placeholder", ["mytool", "--run", "edit {prompt}; echo done"], False),
    ("awk program", ["awk", "BEGIN {{ print \"{prompt}\" }}"], False),
]


@pytest.fixture
def clip():
    rng = np.random.default_rng(0)
    return Video(rng.integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8), fps=8.0)


@pytest.mark.parametrize("case", range(6))
def test_prompt_never_executes(case, tmp_path, clip):
    script = tmp_path / "copy.py"
    script.write_text(textwrap.dedent(COPY))
    seen = tmp_path / "seen.txt"
    name, cmd, shell = templates(script, seen)[case]
    for i, prompt in enumerate(payloads(tmp_path / "marker")):
        m = METHODS.get("external")(command=cmd, shell=shell, log_dir=str(tmp_path / "logs"))
        out = m.edit(clip, prompt=prompt)
        np.testing.assert_array_equal(out, clip.frames)
        assert not (tmp_path / "marker").exists(), f"{name}: payload {i} ran a command"
        assert seen.read_text() == prompt, f"{name}: payload {i} arrived altered"


@pytest.mark.parametrize("name,cmd,shell", REFUSED, ids=[r[0] for r in REFUSED])
def test_templates_that_could_reach_a_shell_are_refused(name, cmd, shell):
    with pytest.raises(VidEditBenchError) as e:
        METHODS.get("external")(command=cmd, shell=shell)
    msg = str(e.value)
    assert "\n" not in msg and "template" in msg and "VIDEDITBENCH_PROMPT" in msg, msg
    shown = cmd if isinstance(cmd, str) else shlex.join(cmd)
    assert repr(shown[:50])[1:-1] in msg or shown[:30] in msg


def test_shells_without_placeholders_still_run(tmp_path, clip):
    m = METHODS.get("external")(command=["bash", "-o", "pipefail", "-c", 'cp "$VIDEDITBENCH_INPUT"/*.png "$VIDEDITBENCH_OUTPUT"'],
                                log_dir=str(tmp_path / "logs"))
    np.testing.assert_array_equal(m.edit(clip, prompt="$(touch x)"), clip.frames)


def test_nul_byte_in_prompt_is_one_clear_error(tmp_path, clip):
    script = tmp_path / "noop.py"
    script.write_text("pass\n")
    m = METHODS.get("external")(command=f"{shlex.quote(PY)} {script} {{prompt}}", log_dir=str(tmp_path / "logs"))
    with pytest.raises(VidEditBenchError, match="NUL"):
        m.edit(clip, prompt="a\0b")
