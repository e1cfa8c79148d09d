"""Method adapters: one module per video-editing method (registered lazily in bench.api.catalog)."""
