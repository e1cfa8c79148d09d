"""Presets that invert with `{source_prompt}` (TokenFlow's and VidToMe's `official`, `v2vbench`): a sample
without a source caption is a one-line error naming the sample, never an inversion with ""."""

from __future__ import annotations

import numpy as np
import pytest

from bench.api.catalog import METHODS
from bench.api.errors import VidEditBenchError
from bench.api.types import Video


@pytest.mark.parametrize("name", ["tokenflow", "vidtome"])
@pytest.mark.parametrize("caption", ["", None, "   "])
def test_source_prompt_preset_without_a_caption_is_an_error_naming_the_sample(name, caption):
    m = METHODS.get(name)(preset="official")
    assert "{source_prompt}" in m.cfg["inversion_prompt"]
    video = Video(np.zeros((2, 16, 16, 3), np.uint8), path="suites/mini/videos/cat-walk.mp4")
    with pytest.raises(VidEditBenchError) as err:
        m.source_latents(video, None, caption)
    msg = str(err.value)
    assert "\n" not in msg and "cat-walk.mp4" in msg and "no source caption" in msg and "inversion_prompt" in msg


@pytest.mark.parametrize("name", ["tokenflow", "vidtome"])
def test_source_prompt_is_filled_in_and_a_prompt_without_it_needs_no_caption(name):
    assert METHODS.get(name)(preset="official").inversion_text("a cat walking") == "a cat walking"
    assert METHODS.get(name)(inversion_prompt="").inversion_text(None) == ""
