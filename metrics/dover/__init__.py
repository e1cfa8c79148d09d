"""DOVER (Disentangled Objective Video Quality Evaluator), our own implementation of the official model.

Registry name `dover` -> `metrics.dover:DoverScore`. Torch is imported only by the submodules that
build the model and the views.
"""

from metrics.dover.score import DoverScore, fuse

__all__ = ["DoverScore", "fuse"]
