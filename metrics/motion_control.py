"""DreamVideo-2's motion-control metrics: box mIoU and normalised centroid distance (Tables 2 and 4).

Per frame of the edited video, an open-vocabulary detector (Grounding DINO base by default; the
`detector` option takes `grounding-dino-tiny`, `owlv2-base` or a local model folder) is queried with
the sample's subject phrase and its highest-scoring box above `threshold` is compared with the
target box of that frame:

* `box_miou`: IoU of the detected and the target box, mean over frames (higher is better);
* `centroid_distance`: Euclidean distance of the two box centres divided by the frame diagonal,
  mean over frames (lower is better).

A frame with no detection above the threshold counts as IoU 0 and centroid distance 1 (the
largest possible normalised distance). The target boxes are the manifest's per-frame `boxes`
track when the sample has one, else the per-frame bounding box of its mask; frames whose target
is empty are left out. The subject phrase is the manifest's `subject`; without one, the noun
phrase of the target prompt (`prompt_noun_phrase`) is used and the score row says so.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Sequence

import numpy as np

from bench.errors import NotApplicable
from bench.metric import Metric
from bench.types import EvalItem
from metrics._embed import cached, content_key, mask_bbox, registry_weight_names, weights_path

Box = tuple[float, float, float, float]
DETECTORS = ("grounding-dino-base", "grounding-dino-tiny", "owlv2-base")
MISS_IOU, MISS_DISTANCE = 0.0, 1.0

_ARTICLES = {"a", "an", "the", "this", "that", "some", "one", "two", "its", "his", "her", "their"}
# words that end a subject noun phrase in a caption ("a red ball rolling across ...")
_STOP = {
    "is", "are", "was", "were", "be", "being", "has", "have", "with", "without", "in", "on", "at", "by",
    "over", "under", "across", "through", "into", "onto", "from", "to", "of", "near", "along", "around",
    "behind", "beside", "between", "above", "below", "and", "or", "while", "as", "that", "which", "who",
    "jumps", "runs", "walks", "moves", "swims", "flies", "sits", "stands", "rides", "plays",
}


def prompt_noun_phrase(prompt: str) -> str:
    """The leading noun phrase of a caption: leading articles dropped, cut at the first preposition,
    conjunction, verb or -ing word ("A red ball rolling across ..." -> "red ball")."""
    words = re.findall(r"[A-Za-z0-9'\-]+|[,.;:!?]", prompt)
    out: list[str] = []
    for w in words:
        lw = w.lower()
        if not out and lw in _ARTICLES:
            continue
        if lw in _STOP or (lw.endswith("ing") and len(lw) > 4 and out) or not re.match(r"[A-Za-z0-9]", lw):
            if out:
                break
            continue
        out.append(lw)
    return " ".join(out) or prompt.strip().lower()


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes (0 when either is empty)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def centroid_distance(a: Box, b: Box, height: int, width: int) -> float:
    """Distance of the two box centres divided by the frame diagonal sqrt(H² + W²)."""
    dx = (a[0] + a[2]) / 2 - (b[0] + b[2]) / 2
    dy = (a[1] + a[3]) / 2 - (b[1] + b[3]) / 2
    return math.hypot(dx, dy) / math.hypot(height, width)


def track_scores(detected: Sequence[Box | None], target: Sequence[Box | None], height: int,
                 width: int) -> tuple[float, float]:
    """(mean IoU, mean normalised centroid distance) over the frames that have a target box; a missed
    detection counts IoU 0 and distance 1."""
    ious, dists = [], []
    for det, tgt in zip(detected, target, strict=True):
        if tgt is None:
            continue
        if det is None:
            ious.append(MISS_IOU)
            dists.append(MISS_DISTANCE)
        else:
            ious.append(box_iou(det, tgt))
            dists.append(centroid_distance(det, tgt, height, width))
    if not ious:
        raise NotApplicable("no frame has a target box (empty boxes / mask in every frame)")
    return float(np.mean(ious)), float(np.mean(dists))


def target_boxes(item: EvalItem) -> list[Box | None]:
    """Per-frame target boxes: the manifest's `boxes` track, else the bounding box of the mask."""
    t = item.edited.num_frames
    if item.boxes is not None:
        b = np.asarray(item.boxes, dtype=np.float64)
        if len(b) != t:
            raise NotApplicable(f"the box track has {len(b)} boxes but the edited video has {t} frames")
        return [tuple(map(float, r)) if r[2] > r[0] and r[3] > r[1] else None for r in b]  # type: ignore[misc]
    if item.mask is None:
        raise NotApplicable("box_miou / centroid_distance need a 'boxes' track or a mask in the manifest")
    m = np.asarray(item.mask).astype(bool)
    if m.ndim == 2:
        m = np.broadcast_to(m, (t, *m.shape))
    if m.shape[0] != t or m.shape[1:] != item.edited.size:
        raise NotApplicable(f"mask shape {m.shape} does not match the edited video {(t, *item.edited.size)}")
    out: list[Box | None] = []
    for frame_mask in m:
        bb = mask_bbox(frame_mask)
        out.append(None if bb is None else (float(bb[1]), float(bb[0]), float(bb[3]), float(bb[2])))
    return out


def subject_phrase(item: EvalItem) -> tuple[str, str | None]:
    """(phrase, note): the manifest's `subject`, else the target prompt's noun phrase (with a note)."""
    subject = item.sample.meta_dict().get("subject")
    if subject:
        return str(subject), None
    if not item.prompt:
        raise NotApplicable("box_miou / centroid_distance need a 'subject' in the manifest or a target prompt")
    phrase = prompt_noun_phrase(item.prompt)
    return phrase, f"subject '{phrase}' taken from the target prompt (no 'subject' in the manifest)"


class _MotionControl(Metric):
    needs: ClassVar[frozenset[str]] = frozenset()
    defaults: ClassVar[dict[str, Any]] = {"detector": "grounding-dino-base", "threshold": 0.35}
    output: ClassVar[int] = 0  # which of (miou, distance) this metric stores

    def __init__(self, device: str = "cpu", batch_size: int | None = None, **options: Any):
        super().__init__(device=device, batch_size=batch_size, **options)
        self.detector: Any = None
        self._note: str | None = None

    def applicable(self, item_has: set[str]) -> str | None:
        if not ({"boxes", "mask"} & item_has):
            return f"{self.name} needs a 'boxes' track or a mask"
        return None

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.options["detector"])

    def setup(self) -> None:
        from bench.models import create_model
        from metrics.detection import load_detector

        self.detector = create_model(self.options["detector"], load_detector, self.device)

    def detections(self, frames: np.ndarray, phrase: str, cache: Any = None) -> list[Box | None]:
        """Best box per frame (cached per frames, phrase, detector and threshold: the two metrics share it)."""
        if self.detector is None:
            self.setup()
        thr = float(self.options["threshold"])
        namespace = f"open-vocab-detection|{weights_path(self.options['detector'])}|{thr}"
        return cached(cache, namespace, content_key(frames, phrase),
                      lambda: self.detector.best_boxes(frames, phrase, thr, self.batch_size))

    def compute(self, item: EvalItem) -> dict[str, float]:
        targets = target_boxes(item)
        phrase, self._note = subject_phrase(item)
        detected = self.detections(item.edited.frames, phrase, item.cache)
        h, w = item.edited.size
        return {self.name: track_scores(detected, targets, h, w)[self.output]}

    def row_note(self) -> str | None:
        return self._note

    def teardown(self) -> None:
        self.detector = None


class BoxMIoU(_MotionControl):
    name = "box_miou"
    description = ("mIoU (DreamVideo-2): IoU of the detector's best box for the subject and the target box, "
                   "mean over frames; a missed detection counts 0")
    higher_is_better = True
    value_range = (0.0, 1.0)
    output = 0


class CentroidDistance(_MotionControl):
    name = "centroid_distance"
    description = ("CD (DreamVideo-2): distance of detected and target box centres / frame diagonal, "
                   "mean over frames; a missed detection counts 1")
    higher_is_better = False
    value_range = (0.0, 1.0)
    output = 1
