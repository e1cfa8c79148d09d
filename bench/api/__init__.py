"""The interfaces room: what plug-ins implement and every other room stands on.

Records (`types`: Video, Sample, LoadedSample, EvalItem, Efficiency), `Method` and `Metric`, the lazy
registries (`registry`) and the built-in catalog (`catalog`), the errors (`errors`), and the two
small utilities they use: stable hashing (`hashing`) and device/batch-size choice (`device`). It
imports nothing from other rooms (the catalog names plug-ins as "module:attr" strings, imported
only on use). Plug-ins reach it through the public re-exports `bench.method`, `bench.metric`,
`bench.types`, `bench.registry`, `bench.errors` (and `bench.models` for weights).
"""
