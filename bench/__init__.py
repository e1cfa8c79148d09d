"""VidEditBench: a benchmark and evaluation harness for diffusion-based video editing.

Importing this package is cheap: heavy libraries (torch, transformers, diffusers) are imported
only by the method or metric module that needs them.
"""

__version__ = "0.1.0"
