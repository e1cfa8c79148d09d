"""Open-vocabulary detection of a subject phrase in video frames (Grounding DINO, OWLv2) via transformers.

`load_detector(path)` loads a Hugging Face model folder through `AutoProcessor` and
`AutoModelForZeroShotObjectDetection` (Grounding DINO: `IDEA-Research/grounding-dino-base` /
`-tiny`; OWLv2: `google/owlv2-base-patch16-ensemble`). `best_boxes` returns, per frame, the
highest-scoring box [x0, y0, x1, y1] in frame pixels whose score passes the threshold, or None.

Scores and boxes are those of the processors' own post-processing: Grounding DINO, the sigmoid of
the query-to-token logits maximised over the text tokens, boxes relative to the unpadded image;
OWLv2, the sigmoid of the query-to-text logit, boxes relative to the padded square (the longer side).
The query text is the phrase lower-cased and ended with "." for Grounding DINO (its tokenisation of
category lists), the phrase itself for OWLv2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bench.errors import VidEditBenchError

Box = tuple[float, float, float, float]


@dataclass
class Detector:
    model: Any
    processor: Any
    kind: str  # "grounding-dino" | "owlv2"
    device: str = "cpu"

    def query(self, phrase: str) -> str:
        if self.kind == "grounding-dino":
            q = phrase.strip().lower()
            return q if q.endswith(".") else q + "."
        return phrase.strip()

    def scores_and_boxes(self, frames: Sequence[np.ndarray], phrase: str) -> tuple[np.ndarray, np.ndarray]:
        """(N, Q) scores and (N, Q, 4) pixel boxes [x0, y0, x1, y1] for N same-sized uint8 frames."""
        import torch

        h, w = frames[0].shape[:2]
        q = self.query(phrase)
        if self.kind == "grounding-dino":
            inputs = self.processor(images=list(frames), text=[q] * len(frames), return_tensors="pt")
        else:
            inputs = self.processor(images=list(frames), text=[[q]] * len(frames), return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            out = self.model(**inputs)
        scores = torch.sigmoid(out.logits.float()).max(dim=-1).values
        cx, cy, bw, bh = out.pred_boxes.float().unbind(-1)
        corners = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=-1)
        if self.kind == "grounding-dino":
            scale = torch.tensor([w, h, w, h], dtype=corners.dtype, device=corners.device)
        else:  # OWLv2 pads every image to a square of its longer side before predicting
            side = float(max(h, w))
            scale = torch.tensor([side] * 4, dtype=corners.dtype, device=corners.device)
        return scores.cpu().double().numpy(), (corners * scale).cpu().double().numpy()

    def best_boxes(self, frames: Sequence[np.ndarray], phrase: str, threshold: float,
                   batch_size: int = 8) -> list[Box | None]:
        out: list[Box | None] = []
        for start in range(0, len(frames), max(1, batch_size)):
            chunk = list(frames[start : start + max(1, batch_size)])
            scores, boxes = self.scores_and_boxes(chunk, phrase)
            for s, b in zip(scores, boxes):
                i = int(np.argmax(s))
                out.append(tuple(float(v) for v in b[i]) if s[i] > threshold else None)  # type: ignore[misc]
        return out


def load_detector(path: str | os.PathLike, device: str = "cpu") -> Detector:
    """Loader for `bench.models.create_model`: a transformers zero-shot detector folder -> Detector."""
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    from metrics._embed import _float32_kwargs, _quiet_transformers

    _quiet_transformers()
    p = Path(path)
    if not (p / "config.json").is_file():
        raise VidEditBenchError(f"{p}: not a transformers detector folder (no config.json)")
    model = AutoModelForZeroShotObjectDetection.from_pretrained(str(p), local_files_only=True, **_float32_kwargs())
    kind = {"grounding-dino": "grounding-dino", "owlv2": "owlv2"}.get(model.config.model_type)
    if kind is None:
        raise VidEditBenchError(f"{p}: detector type '{model.config.model_type}' is not supported "
                                "(use Grounding DINO or OWLv2)")
    processor = AutoProcessor.from_pretrained(str(p), local_files_only=True)
    return Detector(model.to(device).eval(), processor, kind, device)
