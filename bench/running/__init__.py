"""The running room: turning a config into stored edits and scores.

`plan` (the units of a run, read from the store, nothing written), `units` (executing one unit),
`runner` (the local loop and the one store writer), `ray_executor` (the same units on Ray actors),
`common` (failure text, output checks, seeding, freeing memory: shared by plan, units and runner),
`guard` (time limits, read-only inputs, SIGTERM), `locking` (one process per run folder),
`efficiency` (time and memory around edits), `merge` (shard stores into one). It imports the
interfaces, weights, media, suites and store rooms; never the report, the study or the CLI.
"""
