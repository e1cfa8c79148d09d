"""VidEditBench: a benchmark and evaluation harness for diffusion-based video editing.

Importing this package is cheap: heavy libraries (torch, transformers, diffusers) are imported
only by the method or metric module that needs them.

The code lives in rooms along the data path (docs/architecture.md draws them): `api` (the
interfaces plug-ins implement) -> `weights`, `media` -> `suites` -> `store` -> `running` -> `study`
-> `report` -> `cli`; a room imports only the rooms before it. `bench.method`, `bench.metric`,
`bench.types`, `bench.registry`, `bench.errors` and `bench.models` re-export the plug-in interfaces.
"""

__version__ = "0.1.0"
