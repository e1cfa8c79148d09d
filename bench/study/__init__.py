"""Human preference studies on a run's edits: pair design, a local rating server, votes in the
run's SQLite store, and the analysis (Bradley–Terry/Davidson with bootstrap CIs, agreement of the
automatic metrics with people). Modules: design, media, storage, server, pages, analysis, report, cli.
"""
