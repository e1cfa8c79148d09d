"""ViCLIP video-text alignment (V2VBench), our own implementation of the official model.

Registry name `viclip` -> `metrics.viclip:ViClipTextAlignment`. Torch is imported only by the
submodules that build the model.
"""

from metrics.viclip.score import ViClipTextAlignment

__all__ = ["ViClipTextAlignment"]
