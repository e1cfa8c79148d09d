"""Metric families (one module per family), loaded lazily through bench.api.catalog's "module:attr" targets."""
