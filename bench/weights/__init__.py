"""The weights room: where each model's weights come from, where they live, and loading them once.

`spec` (WeightSpec and its registry), `catalog` (the built-in specs), `files` (resolution order,
download, verify, sizes), `models` (`create_model`: weights name or path -> model, cached until
`release()`). `bench.weights` itself is the one door for the registry functions below. It imports
only the interfaces room (`bench.api`).
"""

from bench.weights.files import (  # noqa: F401
    all_specs, cache_dir, download, get_spec, is_offline, locate, project_cache_path, resolve, size_on_disk, verify,
)
from bench.weights.spec import WeightSpec, register_weight  # noqa: F401
