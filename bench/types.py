"""The records plug-ins read and return: a stable import path for plug-ins, re-exporting `bench.api.types`."""

from bench.api.types import (  # noqa: F401
    EDIT_TYPES, IMAGE_GUIDED_TYPES, Video, Sample, LoadedSample, Efficiency, EvalItem,
)
