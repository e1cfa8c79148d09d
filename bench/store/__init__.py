"""The store room: what a run keeps and how it is keyed.

The SQLite result store (`results`), content keys of samples (`content_keys`), set-level score uids
and the paired sample set (`pairing`), run-relative paths and safe names (`runpaths`), the per-run
caches (`feature_cache` for source features, `frame_cache` for decoded frames, `judge_cache` for
VLM answers and usage). It imports the interfaces and media rooms only; it never runs anything.
"""
