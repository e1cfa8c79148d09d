"""`tokenflow` (preset `official`) against the method goldens: the official TokenFlow code (omerbt/TokenFlow
5dd6a69, PnP) run on tiny random-weight SD-1.5-layout models, float32 CPU (../shared/goldens/methods/tokenflow,
RECIPE.md). Two levels, with the RECIPE's tolerances (§9):

* tight: the editing fed the golden's inverted latents (`prepared`), so the nearest-neighbour fields see the
  same source features, and every step started from the golden's previous x (teacher-forced): keyframe
  draws, start latent, step-0 NN fields, every step's latents, decoded floats and uint8 frames;
* pre-editing and loose end to end: our own VAE encoding and DDIM inversion, then the whole edit (near-ties
  in the NN fields make the editing chaotic at float noise, so end to end is compared by relative measures).
  Free running from the golden's inversion is not checked at the tight level: there float noise of the
  official run's own size (1.9e-4 after step 3) flips a near-tie nearest neighbour in frame 14 at step 4
  (see methods/tokenflow.py).

The goldens folder is required: missing, these tests skip locally and fail under CI=true.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import require_goldens
from tokenflow_golden import SUBDIR, Golden

torch = pytest.importorskip("torch")

from bench.types import Video  # noqa: E402


@pytest.fixture(scope="module")
def golden() -> Golden:
    return Golden.load(require_goldens(SUBDIR))


def edit_traced(golden: Golden, prepared: Any, teacher: Any = None) -> tuple[Any, np.ndarray]:
    from methods.tokenflow import TokenFlowTrace

    method = golden.official()
    method.trace = TokenFlowTrace(teacher=teacher)
    frames = method.edit(golden.video, prompt=golden.prompt, prepared=prepared)
    return method.trace, frames


def max_abs(a: Any, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - b).max())


@pytest.fixture(scope="module")
def tight(golden: Golden) -> tuple[Any, np.ndarray]:
    """The edit fed the golden's inversion, every step teacher-forced (started from the golden's previous x).

    Run with 2 torch threads, the count its near-tie allowance was measured at: another count rounds the
    attention differently and can flip a different near-tie nearest neighbour (seen with 1 thread)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return edit_traced(golden, golden.prepared(), teacher=golden.npy("step_latents.npy"))
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def own_inversion(golden: Golden) -> dict[str, np.ndarray]:
    return golden.official().prepare(golden.video)


# ------------------------------------------------------------------------------------------------
# no model needed
# ------------------------------------------------------------------------------------------------
def test_keyframe_draws_equal_the_official_draws(golden):
    from methods.diffusion_common import cpu_generator
    from methods.tokenflow import sample_keyframes

    cfg = golden.settings
    gen = cpu_generator(int(cfg["seed"]))
    draws = [sample_keyframes(int(cfg["n_frames"]), int(cfg["batch_size"]), gen).tolist()
             for _ in range(int(cfg["n_timesteps"]))]
    assert draws == golden.expected["random_draws"]["keyframes_per_step"]


def test_propagation_weights_are_the_official_batch_centre_sigmoid():
    from methods.tokenflow import batch_weights

    # RECIPE §6.4: in-batch positions 0..3 of any batch b > 0 (batch size 4)
    for b in (1, 3):
        np.testing.assert_allclose(batch_weights(b, 4, 4).numpy(), [0.6225, 0.6792, 0.7311, 0.6971], atol=1e-4)


def test_official_propagation_blends_own_and_previous_batch_keyframes_at_their_nearest_neighbours():
    from methods.tokenflow import batch_weights, propagate_batch

    gen = torch.Generator().manual_seed(0)
    key_src, frame_src = torch.randn(3, 5, 4, generator=gen), torch.randn(2, 5, 4, generator=gen)
    key_out = torch.randn(3, 3, 5, 6, generator=gen)  # (branches, keyframes = batches, tokens, channels)

    def nn(frame, key):  # cosine nearest neighbour of each token of `frame` among keyframe `key`'s tokens
        q = frame_src[frame] / frame_src[frame].norm(dim=-1, keepdim=True)
        k = key_src[key] / key_src[key].norm(dim=-1, keepdim=True)
        return (q @ k.T).argmax(-1)

    out0, _ = propagate_batch(key_out, key_src, frame_src, 0, None)  # batch 0: its own keyframe only
    w = batch_weights(2, 2, 2)
    out2, _ = propagate_batch(key_out, key_src, frame_src, 2, w)
    for f in range(2):
        assert torch.equal(out0[:, f], key_out[:, 0][:, nn(f, 0)])
        want = w[f] * key_out[:, 2][:, nn(f, 2)] + (1 - w[f]) * key_out[:, 1][:, nn(f, 1)]
        torch.testing.assert_close(out2[:, f], want)


def test_official_preset_resizes_to_a_square_and_refuses_partial_batches(golden):
    from bench.errors import VidEditBenchError
    from methods.tokenflow import TokenFlow

    clip = Video(np.zeros((12, 90, 160, 3), np.uint8), fps=8.0)
    assert TokenFlow(preset="official")._size_for(clip) == (512, 512)
    assert TokenFlow()._size_for(clip) == (512, 912)  # ours: the shorter side
    with pytest.raises(VidEditBenchError, match="not a multiple of batch_size 8"):
        TokenFlow(preset="official").edit(clip, prompt="a cat")


# ------------------------------------------------------------------------------------------------
# tight: fed the golden's inversion (RECIPE §9.3)
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tight_start_latent_and_keyframes(golden, tight):
    trace, _ = tight
    assert max_abs(trace.start, golden.npy("start_latents.npy")) <= 2e-4
    assert [k.tolist() for k in trace.keyframes] == golden.expected["random_draws"]["keyframes_per_step"]


@pytest.mark.slow
def test_tight_step0_nearest_neighbour_fields(golden, tight):
    trace, _ = tight
    fields = np.load(golden.root / "expected" / "nn_step0.npz")
    ours = {(b, layer): nn for b, layer, nn in trace.nn}
    index = golden.expected["files"]["expected/nn_step0.npz"]["index"]
    assert len(ours) == len({(e["batch"], e["layer"]) for e in index})
    wrong = total = 0
    for e in index:
        nn = ours[(e["batch"], e["layer"])][0 if e["keyframe_of_batch"] == e["batch"] else 1]
        ref = fields[e["key"]]
        wrong += int((nn.numpy() != ref).sum())
        total += ref.size
    assert wrong <= 1e-4 * total, f"{wrong} of {total} step-0 nearest neighbours differ"


@pytest.mark.slow
def test_tight_step_latents_decoded_and_uint8_frames(golden, tight):
    """Every step within 1e-3 of the golden when started from the golden's previous x (RECIPE §9.3), but for
    one near-tie flip; the last step's output, its decoding and the uint8 frames within the RECIPE's bounds."""
    trace, frames = tight
    steps = golden.npy("step_latents.npy")
    assert len(trace.steps) == len(steps)
    for i, x in enumerate(trace.steps):
        diff = np.abs(np.asarray(x, dtype=np.float64) - steps[i])
        # RECIPE §9.3 caveat: one near-tie nearest neighbour (step 4, frame 14: margins down to 2e-7 there) may
        # resolve the other way at float noise; it moves that frame locally, so one frame per step is allowed
        # past 1e-3 (up to 0.1) as long as the mean stays at noise level
        per_frame = diff.reshape(len(diff), -1).max(axis=1)
        assert (per_frame > 1e-3).sum() <= 1 and per_frame.max() <= 0.1 and diff.mean() <= 2e-4, \
            f"step {i}: max {per_frame.max():.3g} (frames over 1e-3: {np.flatnonzero(per_frame > 1e-3).tolist()}), " \
            f"mean {diff.mean():.3g}"
    assert max_abs(trace.steps[-1], golden.npy("final_latents.npy")) <= 5e-3
    assert max_abs(trace.decoded, golden.npy("decoded.npy").transpose(0, 2, 3, 1)) <= 1e-3
    ref = golden.frames()
    diff = np.abs(frames.astype(np.int16) - ref.astype(np.int16))
    assert frames.shape == ref.shape and diff.max() <= 1
    assert (diff > 0).mean() <= 0.01  # official truncation: rounding would differ in about half the values


# ------------------------------------------------------------------------------------------------
# our own encoding and inversion (RECIPE §9.1), then end to end (§9.4)
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_own_x0_inversion_eps_and_start_latent(golden, own_inversion):
    from methods.tokenflow import ddim_eps

    inv = np.load(golden.root / "expected" / "inverted_latents.npz")
    assert max_abs(own_inversion["x0"], golden.npy("vae_latents.npy")) <= 5e-5
    assert own_inversion["timesteps"].tolist() == golden.expected["timesteps"]["editing"]
    for i, t in enumerate(own_inversion["timesteps"]):
        assert max_abs(own_inversion["latents"][i], inv[f"t{t}"]) <= 2e-4, f"t={t}"
    assert int(own_inversion["noisiest_t"]) == max(golden.expected["timesteps"]["inverted_saved"])
    assert max_abs(own_inversion["noisiest"], inv[f"t{int(own_inversion['noisiest_t'])}"]) <= 2e-4
    method = golden.official()
    method.setup()
    sched = method._scheduler()
    alpha = sched.alphas_cumprod[int(own_inversion["noisiest_t"])]
    eps = ddim_eps(torch.from_numpy(own_inversion["x0"]), torch.from_numpy(own_inversion["noisiest"]), alpha)
    assert max_abs(eps, golden.npy("ddim_eps.npy")) <= 2e-4
    assert max_abs(method.start_latent(own_inversion, sched), golden.npy("start_latents.npy")) <= 2e-4


@pytest.mark.slow
def test_loose_end_to_end(golden, own_inversion):
    trace, frames = edit_traced(golden, own_inversion)
    final = golden.npy("final_latents.npy")
    ours = trace.steps[-1].numpy()
    assert np.linalg.norm(ours - final) / np.linalg.norm(final) <= 0.05
    assert np.abs(trace.decoded - golden.npy("decoded.npy").transpose(0, 2, 3, 1)).mean() <= 0.01
    ref = golden.frames()
    assert np.abs(frames.astype(np.float64) - ref).mean() <= 2.5
