"""What every judge backend takes and returns (the backends themselves: hf.py, openai_api.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.errors import VidEditBenchError


@dataclass
class JudgeRequest:
    prompt: str
    images: list[np.ndarray] = field(default_factory=list)  # uint8 (H, W, 3) RGB, in the order shown
    as_video: bool = False  # send the frames as one video (local models that take video, as FiVE-Bench does)


@dataclass
class JudgeReply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 1  # requests this answer took (an API retry after a 429 or a timeout counts)


class JudgeTransportError(VidEditBenchError):
    """The backend gave no answer (HTTP error, timeouts past the retry budget, a malformed response)."""
