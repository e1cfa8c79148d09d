"""`create_model` and `release`: a stable import path for plug-ins, re-exporting `bench.weights.models`."""

from bench.weights.models import (  # noqa: F401
    resolve_path, create_model, cached_models, release, model_scope, clear_model_cache,
)
