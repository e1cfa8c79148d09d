"""V2VBench Video Text Alignment: cosine of ViCLIP video and text embeddings.

Per edited video (V2VBench `viclip_text_alignment`): take every `stride`-th frame (V2VBench's
stride 3 turns its 24-frame clips into the 8 frames ViCLIP's temporal embedding is fixed to),
transform each frame as `clip_image_transform(224)` (PIL bicubic resize of the shorter side,
centre crop, CLIP mean/std), encode the clip (`encode_vision(test=True)`), tokenise the target
prompt with the CLIP BPE to the checkpoint's 32-token context, and store the plain cosine of the
two L2-normalised embeddings (not x100, can be negative).

ViCLIP only accepts exactly `num_frames` (8) frames. With `sampling="stride"` (the V2VBench
definition) a video whose stride leaves another count is not applicable (e.g. stride 3 on an
8-frame clip keeps 3 frames, which crashes V2VBench itself); `sampling="uniform"` instead takes 8
evenly spaced frames (round(linspace(0, T-1, 8))) from any video of at least 8 frames.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bench.errors import NotApplicable
from bench.metric import Metric
from bench.media.video_io import evenly_spaced
from bench.types import EvalItem
from metrics._embed import CLIP_MEAN, CLIP_STD, registry_weight_names

DEFAULT_WEIGHTS = "viclip-internvid-10m-flt"


def select_frames(num: int, want: int, sampling: str, stride: int) -> list[int]:
    """Indices of the frames ViCLIP sees (raises NotApplicable with the fix when there is no valid choice)."""
    if sampling == "stride":
        idx = list(range(0, num, max(1, stride)))
        if len(idx) != want:
            raise NotApplicable(
                f"viclip takes {want} frames; stride {stride} on {num} frames gives {len(idx)} "
                f"(set the viclip option stride={max(1, num // want)} when that gives {want}, or sampling=uniform)"
            )
        return idx
    if num < want:
        raise NotApplicable(f"viclip takes {want} frames; the video has only {num}")
    return evenly_spaced(num, want)


def clip_image_tensor(frames: np.ndarray, size: int) -> Any:
    """V2VBench/ViCLIP `clip_image_transform(size)` on uint8 (T, H, W, 3) frames -> float32 (T, 3, size, size)."""
    import torch
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    out = []
    for frame in frames:
        im = TF.resize(Image.fromarray(np.ascontiguousarray(frame)), size, interpolation=InterpolationMode.BICUBIC)
        im = TF.center_crop(im, size)
        out.append(TF.normalize(TF.to_tensor(im), list(CLIP_MEAN), list(CLIP_STD)))
    return torch.stack(out)


def cosine(a: Any, b: Any) -> float:
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    return float((a @ b.T).squeeze().item())


class ViClipTextAlignment(Metric):
    name: ClassVar[str] = "viclip"
    description: ClassVar[str] = (
        "Video Text Alignment (V2VBench): cos(ViCLIP ViT-L/14 video embedding of 8 frames, text embedding)"
    )
    higher_is_better: ClassVar[bool] = True
    value_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    needs: ClassVar[frozenset[str]] = frozenset({"text"})
    defaults: ClassVar[dict[str, Any]] = {
        "weights": DEFAULT_WEIGHTS,
        "sampling": "stride",
        "stride": 3,
        # heads = width // head_dim (the one architecture fact not visible in the checkpoint's shapes)
        "head_dim": 64,
    }
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"sampling": ("stride", "uniform")}

    def __init__(self, device: str = "cpu", batch_size: int | None = None, **options: Any):
        super().__init__(device=device, batch_size=batch_size, **options)
        self.model: Any = None
        self._tokenizer: Any = None
        self._text: dict[str, Any] = {}

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.options["weights"])

    def setup(self) -> None:
        from open_clip.tokenizer import SimpleTokenizer

        from bench.models import create_model
        from metrics.viclip.model import load_viclip

        self.model = create_model(self.options["weights"], load_viclip, self.device,
                                  head_dim=int(self.options["head_dim"]))
        self._tokenizer = SimpleTokenizer()  # open_clip ships the CLIP BPE vocabulary (bpe_simple_vocab_16e6)

    def text_embedding(self, prompt: str) -> Any:
        import torch

        if prompt not in self._text:
            tokens = self._tokenizer([prompt], context_length=self.model.cfg.context_length)
            with torch.inference_mode():
                self._text[prompt] = self.model.encode_text(tokens.to(self.device)).float().cpu()
        return self._text[prompt]

    def video_embedding(self, frames: np.ndarray) -> Any:
        import torch

        cfg = self.model.cfg
        idx = select_frames(len(frames), cfg.num_frames, self.options["sampling"], int(self.options["stride"]))
        video = clip_image_tensor(frames[idx], cfg.image_size)[None].to(self.device)
        with torch.inference_mode():
            return self.model.encode_vision(video).float().cpu()

    def score(self, frames: np.ndarray, prompt: str) -> float:
        if self.model is None:
            self.setup()
        return cosine(self.video_embedding(frames), self.text_embedding(prompt))

    def compute(self, item: EvalItem) -> dict[str, float]:
        if not item.prompt:
            raise NotApplicable("viclip needs a target prompt")
        return {self.name: self.score(item.edited.frames, item.prompt)}

    def teardown(self) -> None:
        self.model = None
        self._text = {}
