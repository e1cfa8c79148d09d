"""The `Metric` interface: a stable import path for plug-ins, re-exporting `bench.api.metric`."""

from bench.api.metric import (  # noqa: F401
    OutputInfo, Scores, Metric,
)
