"""Metric families (one module per family), loaded lazily through bench.catalog's "module:attr" targets."""
