"""The lazy registries: a stable import path for plug-ins, re-exporting `bench.api.registry`."""

from bench.api.registry import (  # noqa: F401
    Entry, Registry,
)
