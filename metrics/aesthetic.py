"""LAION aesthetic predictor v2 (V2VBench Frames Quality).

Score per frame = MLP(L2-normalised CLIP ViT-L/14 projected image embedding); mean over frames.
The MLP is the one of `sac+logos+ava1-l14-linearMSE.pth`: Linear 768->1024, Dropout, Linear
1024->128, Dropout, Linear 128->64, Dropout, Linear 64->16, Linear 16->1, with no activations, so
its state dict keys are layers.{0,2,4,6,7}.{weight,bias}. The embeddings come from the same
transformers CLIP as clip_text (openai/clip-vit-large-patch14 and its processor), so a run shares
one vision forward per video between these metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.errors import VidEditBenchError
from bench.metric import Metric
from bench.types import EvalItem
from metrics._embed import BACKENDS, EncoderPrefetch, FrameEncoder, l2_normalize, registry_weight_names, weights_path
from metrics.clip import DEFAULT_CLIP, ClipBackbone

#: indices of the Linear layers inside the original nn.Sequential (Dropouts sit at 1, 3 and 5)
LINEAR_INDICES: tuple[int, ...] = (0, 2, 4, 6, 7)
EXPECTED_KEYS: frozenset[str] = frozenset(f"layers.{i}.{p}" for i in LINEAR_INDICES for p in ("weight", "bias"))


def build_aesthetic_mlp(dims: tuple[int, ...] = (768, 1024, 128, 64, 16, 1)) -> Any:
    """The predictor's architecture; `dims` are the Linear widths (in, hidden..., out)."""
    from torch import nn

    class AestheticMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = dims
            self.layers = nn.Sequential(
                nn.Linear(d[0], d[1]), nn.Dropout(0.2),
                nn.Linear(d[1], d[2]), nn.Dropout(0.2),
                nn.Linear(d[2], d[3]), nn.Dropout(0.1),
                nn.Linear(d[3], d[4]),
                nn.Linear(d[4], d[5]),
            )

        def forward(self, x: Any) -> Any:
            return self.layers(x)

    return AestheticMLP()


def _find_checkpoint(path: Path) -> Path:
    if path.is_file():
        return path
    candidates = sorted(path.glob("*.pth")) + sorted(path.glob("*.pt"))
    if len(candidates) != 1:
        raise VidEditBenchError(f"{path}: expected exactly one .pth aesthetic-predictor checkpoint, found {len(candidates)}")
    return candidates[0]


def load_aesthetic_head(path: Path, device: str = "cpu") -> Any:
    """Load the .pth state dict (strictly) into the MLP; widths are read from the tensors."""
    import torch

    ckpt = _find_checkpoint(Path(path))
    state = torch.load(str(ckpt), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or set(state) != EXPECTED_KEYS:
        got = sorted(state)[:12] if isinstance(state, dict) else type(state).__name__
        raise VidEditBenchError(
            f"{ckpt}: not a LAION aesthetic-predictor v2 state dict; expected keys {sorted(EXPECTED_KEYS)}, got {got}"
        )
    dims = (int(state["layers.0.weight"].shape[1]),) + tuple(int(state[f"layers.{i}.weight"].shape[0]) for i in LINEAR_INDICES)
    mlp = build_aesthetic_mlp(dims)
    mlp.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return mlp.to(device).eval()


class LaionAesthetic(EncoderPrefetch, Metric):
    name = "aesthetic"
    description = "Frames Quality (V2VBench): LAION aesthetic predictor v2 on CLIP ViT-L/14 embeddings, mean over frames"
    higher_is_better = True
    value_range = (0.0, 10.0)
    defaults: ClassVar[dict[str, Any]] = {"weights": DEFAULT_CLIP, "head_weights": "laion-aesthetic-v2", "backend": "pil"}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"backend": BACKENDS}

    _clip: ClipBackbone | None = None
    _head: Any = None

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.options["weights"], self.options["head_weights"])

    def setup(self) -> None:
        from bench.models import create_model

        self._clip = ClipBackbone(self.options["weights"], self.options["backend"], self.device, self.batch_size)
        self._head = create_model(weights_path(self.options["head_weights"]), load_aesthetic_head, self.device)
        in_dim = self._head.layers[0].in_features
        proj_dim = int(self._clip.model.config.projection_dim)
        if in_dim != proj_dim:
            raise VidEditBenchError(
                f"aesthetic head expects {in_dim}-d CLIP embeddings but '{self.options['weights']}' gives {proj_dim}-d "
                "(the LAION v2 head needs CLIP ViT-L/14)"
            )

    def compute(self, item: EvalItem) -> dict[str, float]:
        import torch

        if self._clip is None:
            self.setup()
        assert self._clip is not None
        emb = l2_normalize(self._clip.image_embeds(item.edited.frames, item.cache))
        with torch.inference_mode():
            scores = self._head(emb.to(self.device)).squeeze(-1).double().cpu().numpy()
        return {self.name: float(np.mean(scores))}

    def encode_requests(self, item: EvalItem) -> list[tuple[FrameEncoder, Any]]:
        if self._clip is None:
            self.setup()
        assert self._clip is not None
        return [(self._clip.pooler, item.edited.frames)]

    def teardown(self) -> None:
        self._clip = None
        self._head = None


__all__ = ["LaionAesthetic", "build_aesthetic_mlp", "load_aesthetic_head"]
