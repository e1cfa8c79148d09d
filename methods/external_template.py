"""Which `external` command templates may receive placeholder values (issue 25).

The rule: a value is substituted only inside one argv element of a program that is neither a shell
nor a program that hands a string to a shell or an interpreter. Every template whose placeholders
could reach such a parser — or that this module cannot prove never does — is refused with one line
naming the template and the fix (read the value from `$VIDEDITBENCH_<NAME>` instead; every
placeholder is exported to the child's environment).

Refused when the template has at least one placeholder:

* `shell: true` (the whole line is parsed by `/bin/sh`);
* a placeholder in the program position (argv[0]);
* any argv element that names a shell (`sh`, `bash -o pipefail -c …`, `pwsh`, `cmd`, …) or a
  command-string wrapper (`ssh`, `su`, `sudo`, `xargs`, `watch`, `conda run`, `make`, `awk`, …),
  wherever it sits (so `nice bash -c …` and nested `bash -c "bash -c …"` are caught too);
* `env -S` / `--split-string`;
* an interpreter (`python`, `perl`, `node`, …) given code on the command line (`-c`, `-e`, …) or
  options this module does not know, or a placeholder in its script position;
* an element holding a placeholder whose literal text has shell syntax (`;`, `|`, `&`, `$`,
  backticks, redirections, newlines) or names one of the programs above.
"""

from __future__ import annotations

import re
import shlex
import string
from pathlib import PurePosixPath, PureWindowsPath

from bench.errors import VidEditBenchError

SHELLS = frozenset({
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "pdksh", "oksh", "loksh", "ash", "yash", "posh", "busybox",
    "fish", "csh", "tcsh", "elvish", "xonsh", "pwsh", "powershell", "cmd", "wsl",
})
#: words too common as argument values to refuse anywhere: refused only as the program (argv[0])
PROGRAM_ONLY = frozenset({"rc", "es", "nu", "command", "script", "source", "exec", "find", "at", "batch", "task",
                          "just", "invoke", "start", "perf", "entr", "ex", "r", "make"})
#: programs that pass (part of) their arguments to a shell or run them as code
COMMAND_STRING = frozenset({
    "ssh", "su", "sudo", "doas", "runuser", "pkexec", "sg", "newgrp", "xargs", "watch", "parallel", "script",
    "flock", "eval", "gmake", "cmake", "ninja", "awk", "gawk", "mawk", "nawk", "sed",
    "gsed", "expect", "tclsh", "wish", "osascript", "tmux", "screen", "crontab", "gdb",
    "lldb", "vi", "vim", "nvim", "ex", "emacs", "m4", "git", "docker", "podman", "kubectl", "nsenter", "chroot",
    "unshare", "systemd-run", "setpriv", "conda", "mamba", "micromamba", "pixi", "pipenv", "hatch", "tox", "nox",
    "npx", "npm", "yarn", "pnpm", "deno", "fab", "ansible", "salt", "srun", "sbatch",
    "qsub", "mpirun", "mpiexec", "bwrap", "firejail", "strace", "ltrace", "valgrind", "inotifywait",
    "runas", "schtasks", "wscript", "cscript", "mshta", "rundll32", "regsvr32", "wmic", "at.exe",
})
#: interpreters: option letters that mean "the next text is code"
INTERPRETERS: dict[str, str] = {
    "python": "c", "pypy": "c", "ipython": "c", "jython": "c", "perl": "eE", "ruby": "e", "node": "ep",
    "nodejs": "ep", "bun": "ep", "php": "rBREF", "rscript": "e", "julia": "eE", "lua": "e",
    "luajit": "e", "guile": "c", "racket": "e", "sbcl": "", "ghc": "e", "runghc": "", "scala": "e",
    "groovy": "e", "kotlin": "e",
}
#: python options that take a value (glued `-Wignore` or separate `-W ignore`)
_PY_ARG_OPTS = "WXQ"
_PY_FLAGS = set("bBdEhiIOPqsSuvVxR")
#: wrappers that exec the rest of the argv directly (no shell): options that take a separate value
_EXEC_WRAPPERS: dict[str, set[str]] = {
    "env": {"-u", "--unset", "-C", "--chdir"}, "nice": {"-n", "--adjustment"}, "nohup": set(),
    "timeout": {"-s", "--signal", "-k", "--kill-after"}, "stdbuf": {"-i", "-o", "-e"}, "setsid": set(),
    "time": {"-f", "--format", "-o", "--output"},
}
_SHELL_SYNTAX = re.compile(r"[;|&`$<>\n\r]")
FIX = ('remove the placeholder there and read the value from the environment instead (every placeholder is '
       'exported as VIDEDITBENCH_<NAME>, e.g. "$VIDEDITBENCH_PROMPT" in a shell, os.environ["VIDEDITBENCH_PROMPT"] '
       'in Python)')


def program_name(arg: str) -> str:
    """`/usr/bin/python3.11` → `python`, `C:\\x\\Bash.EXE` → `bash`, `pwsh-preview` → `pwsh`."""
    name = PureWindowsPath(PurePosixPath(arg.strip()).name).name.lower()
    name = re.sub(r"\.(exe|cmd|bat|com)$", "", name)
    return re.sub(r"(?<=[a-z])[-_.]?[0-9][0-9.]*[a-z]?$|-preview$", "", name)


def _fields(text: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]


def _literal(text: str) -> str:
    """The template element with each placeholder replaced by a neutral word."""
    return "".join(lit + ("X" if f is not None else "") for lit, f, _, _ in string.Formatter().parse(text))


class UnsafeTemplate(VidEditBenchError):
    pass


def _refuse(template: str, field: str, why: str) -> UnsafeTemplate:
    return UnsafeTemplate(f"external: template {template!r} would hand {{{field}}} to {why}; {FIX}")


def _python_script_index(parts: list[str], start: int) -> tuple[int | None, str]:
    """Index of the script/module operand of `python` at parts[start-1], or (None, reason)."""
    i = start
    while i < len(parts):
        a = parts[i]
        if a == "--":
            return (i + 1 if i + 1 < len(parts) else None), ""
        if a == "-" or not a.startswith("-"):
            return i, ""
        if a.startswith("--"):
            if a in ("--version", "--help", "--help-all", "--help-env", "--help-xoptions"):
                i += 1
                continue
            return None, f"the python option {a!r}, which this check does not know"
        j = 1
        while j < len(a):
            c = a[j]
            if c == "c":
                return None, "code given on python's command line (-c)"
            if c == "m":  # the module is the program; the rest are its arguments
                return (i if j + 1 < len(a) else i + 1), ""
            if c in _PY_ARG_OPTS:
                if j + 1 == len(a):
                    i += 1
                break
            if c not in _PY_FLAGS:
                return None, f"the python option -{c}, which this check does not know"
            j += 1
        i += 1
    return len(parts), ""  # no script: nothing after it


def _interpreter_script_index(name: str, parts: list[str], start: int) -> tuple[int | None, str]:
    if name in ("python", "pypy", "ipython", "jython"):
        return _python_script_index(parts, start)
    for i in range(start, len(parts)):
        a = parts[i]
        if a == "--":
            return (i + 1 if i + 1 < len(parts) else None), ""
        if not a.startswith("-") or a == "-":
            return i, ""
        if a.lstrip("-")[:1] in tuple(INTERPRETERS[name]) or a.startswith(("--eval", "--print", "--exec")):
            return None, f"code given on {name}'s command line ({a})"
        return None, f"the {name} option {a!r}, which this check does not know"
    return len(parts), ""


def check_template(parts: list[str], shell: bool, template: str) -> None:
    """Raise `UnsafeTemplate` unless every placeholder lands in an argv element of a program that no
    shell or code parser reads. `parts` is the split template; `template` names it in the message."""
    used = [(i, f) for i, p in enumerate(parts) for f in _fields(p)]
    if not used:
        return
    first = used[0][1]
    if shell:
        raise _refuse(template, first, "/bin/sh (shell: true parses the whole line)")
    if _fields(parts[0]):
        raise _refuse(template, _fields(parts[0])[0], "the program position (it would choose what runs)")
    with_field = {i for i, _ in used}
    for i, p in enumerate(parts):
        name = program_name(p)
        if name in SHELLS:
            raise _refuse(template, first, f"a command line that runs the shell {p!r}")
        if name in COMMAND_STRING or (i == 0 and name in PROGRAM_ONLY):
            raise _refuse(template, first, f"a command line that runs {p!r}, which can pass text to a shell or "
                                           "run it as code")
        if name == "env" and any(a.startswith("--split-string") or (a.startswith("-") and not a.startswith("--")
                                                                   and "S" in a) for a in parts[i + 1:]):
            raise _refuse(template, first, "env -S, which splits a string into a command line")
        if name in INTERPRETERS and i not in with_field:
            script, why = _interpreter_script_index(name, parts, i + 1)
            if script is None:
                raise _refuse(template, first, f"a command line with {why}")
            opts = sorted(j for j in with_field if i < j <= script)
            if opts:
                raise _refuse(template, _fields(parts[opts[0]])[0],
                              f"the options or script position of {p!r}")
    for i in sorted(with_field):
        lit = _literal(parts[i])
        if _SHELL_SYNTAX.search(lit):
            raise _refuse(template, _fields(parts[i])[0], f"the argument {parts[i]!r}, which has shell syntax "
                                                          "around it (a command string)")
        try:
            words = shlex.split(lit)
        except ValueError:
            words = lit.split()
        named = [w for w in words if program_name(w) in SHELLS | COMMAND_STRING | INTERPRETERS.keys()]
        if named:
            raise _refuse(template, _fields(parts[i])[0],
                          f"the argument {parts[i]!r}, which looks like a command string for {named[0]!r}")
    _check_exec_wrapper_chain(parts, template, first)


def _check_exec_wrapper_chain(parts: list[str], template: str, first: str) -> None:
    """Wrappers that exec their argv (`env`, `nice`, `timeout`, …): a placeholder must not sit in their
    options or in the position of the program they start."""
    i = 0
    while i < len(parts):
        name = program_name(parts[i])
        if name not in _EXEC_WRAPPERS:
            return
        takes = _EXEC_WRAPPERS[name]
        i += 1
        operands_before_program = 1 if name == "timeout" else 0
        while i < len(parts):
            a = parts[i]
            if _fields(a):
                raise _refuse(template, _fields(a)[0], f"the options of {name} or the program it starts")
            if a == "--":
                i += 1
                break
            if name == "env" and "=" in a and not a.startswith("-"):
                i += 1
                continue
            if a.startswith("-") and a != "-":
                i += 2 if a in takes else 1
                continue
            if operands_before_program:
                operands_before_program -= 1
                i += 1
                continue
            break
        if i < len(parts) and _fields(parts[i]):
            raise _refuse(template, _fields(parts[i])[0], f"the program position after {name}")
        if i < len(parts) and program_name(parts[i]) in PROGRAM_ONLY:
            raise _refuse(template, first, f"a command line that runs {parts[i]!r}")
