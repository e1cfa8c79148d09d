"""The report room: the computed leaderboard table and everything that renders it.

`table` computes the one table (pairing per task, statistics, ranks, display units, status): a
`Leaderboard` holding every number any output shows. The renderers only read it: `formats`
(display strings, Markdown, JSON, CSV tables), `plots` (SVG charts on the small canvas of `svg`),
`html` (the HTML report); `export` writes the files; `incremental` writes a file only when its
bytes change.
It imports the interfaces, media, suites, store and study rooms (the HTML report shows a study's
results); never the running room or the CLI.
"""
