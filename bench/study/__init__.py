"""Human preference studies on a run's edits: pair design, a local rating server, votes in the
run's SQLite store, and the analysis (Bradley–Terry/Davidson with bootstrap CIs, agreement of the
automatic metrics with people). Modules: design, media, storage, server, pages, analysis, report, cli.
It imports the interfaces, media, suites and store rooms; never the running room, the report or
the top-level CLI (the report reads the study, not the other way round).
"""
