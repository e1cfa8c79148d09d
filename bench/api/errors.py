"""Errors that carry enough context to tell the user what is wrong and how to fix it."""

from __future__ import annotations


class VidEditBenchError(Exception):
    """Base class: the CLI prints these as one line instead of a traceback."""


def _clip(text: str, n: int) -> str:
    """User values quoted in a message stay readable: one line, at most n characters."""
    text = str(text).replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= n else text[: n - 1] + "…"


class ManifestError(VidEditBenchError):
    """A suite manifest (or another user-supplied description) has a bad or missing field."""

    def __init__(self, file: str, entry: str | None, field: str | None, problem: str, fix: str | None = None):
        self.file, self.entry, self.field, self.problem, self.fix = file, entry, field, problem, fix
        where = file
        if entry:
            where += f", entry {_clip(entry, 160)}"
        if field:
            where += f", field '{_clip(field, 80)}'"
        msg = f"{where}: {_clip(problem, 600)}"
        if fix:
            msg += f" ({fix})"
        super().__init__(msg)


class VideoReadError(VidEditBenchError):
    """A video, frame folder, image or mask could not be read."""

    def __init__(self, path: str, problem: str, fix: str | None = None):
        self.path = path
        msg = f"{path}: {problem}"
        if fix:
            msg += f" ({fix})"
        super().__init__(msg)


class WeightsMissing(VidEditBenchError):
    """Model weights are not available locally; `fix` is the exact command that fetches them."""

    def __init__(self, name: str, fix: str, detail: str = ""):
        self.name, self.fix = name, fix
        msg = f"weights '{name}' are not available locally"
        if detail:
            msg += f" ({detail})"
        msg += f"; run: {fix}"
        super().__init__(msg)


class MethodOutputError(VidEditBenchError):
    """A method returned frames of the wrong count, size, dtype, or with NaNs."""


class NotApplicable(VidEditBenchError):
    """A method or metric cannot be paired with this sample (e.g. it needs a reference image)."""


class UnknownNameError(VidEditBenchError):
    """A name that is not in a registry."""

    def __init__(self, kind: str, name: str, choices: list[str]):
        self.kind, self.name, self.choices = kind, name, choices
        super().__init__(f"unknown {kind} '{name}'; valid choices: {', '.join(sorted(choices)) or '(none)'}")
