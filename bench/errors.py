"""The errors plug-ins raise: a stable import path for plug-ins, re-exporting `bench.api.errors`."""

from bench.api.errors import (  # noqa: F401
    VidEditBenchError, ManifestError, VideoReadError, WeightsMissing, MethodOutputError, NotApplicable,
    UnknownNameError,
)
