"""VLM judges (FiVE-Bench FiVE-Acc, EditVerseBench scores) with a local (transformers) or API backend.

Only light modules are imported here; torch/transformers load when a backend is set up.
"""

from metrics.vlm_judge.metric import VlmJudge

__all__ = ["VlmJudge"]
