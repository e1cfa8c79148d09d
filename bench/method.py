"""The `Method` interface: a stable import path for plug-ins, re-exporting `bench.api.method`."""

from bench.api.method import (  # noqa: F401
    PRESETS_PACKAGE, Preset, load_preset_file, Method,
)
