"""AnyV2V in official mode reproduces the OFFICIAL code (TIGER-AI-Lab/AnyV2V bc540be, i2vgen-xl/) on the
method goldens in ../shared/goldens/methods/anyv2v (RECIPE.md there): tiny random-weight I2VGen-XL, 16 real
frames at 128x128, float32 on CPU, 20 inversion and 10 editing steps, cases `main` (template thresholds,
start index 1) and `all_injection` (start index 0, thresholds 1/1/1).

Checked at the RECIPE's tolerances (float64 copies; rel-L2 and max abs must both hold): the VAE start
latent and the inverted latents, the conditioning and output of the first inversion and the first
editing UNet call, the latents after every editing step, the decoded frames and the uint8 frames the
adapter returns. The golden was made with the posterior mean for every VAE encoding (the RECIPE's shim S1),
so the adapter runs with `vae_sampling: mean`; everything else is the `official` preset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import require_goldens

pytestmark = pytest.mark.slow

GOLDEN = "methods/anyv2v"


def _golden() -> Path:
    return require_goldens(GOLDEN)


def _load_png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def close(actual: Any, expected: Any, rel_l2: float, max_abs: float, what: str) -> None:
    a = np.asarray(actual.detach().cpu() if hasattr(actual, "detach") else actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != golden {e.shape}"
    rel = float(np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-30))
    mx = float(np.abs(a - e).max())
    assert rel <= rel_l2 and mx <= max_abs, f"{what}: rel-L2 {rel:.3g} (tol {rel_l2}), max abs {mx:.3g} (tol {max_abs})"


def _method(golden: Path, **cfg: Any):
    from bench.api.catalog import METHODS

    settings = json.loads((golden / "expected.json").read_text())["cases"]["main"]["settings"]
    opts = {"preset": "official", "weights": str(golden / "models" / "i2vgen-xl-tiny"), "height": 128, "width": 128,
            "num_frames": settings["n_frames"], "num_inversion_steps": settings["inverse_n_steps"],
            "num_inference_steps": settings["n_steps"], "init_step": settings["ddim_init_latents_t_idx"],
            "vae_sampling": "mean", **cfg}
    return METHODS.get("anyv2v")(device="cpu", seed=settings["seed"], **opts)


class Recorder:
    """Read-only taps on one adapter: UNet inputs/outputs of every call, the latents after every editing
    step (through `sample`'s `on_step`) and the decoder output (through `decode`)."""

    def __init__(self, method: Any):
        self.calls: list[dict[str, Any]] = []
        self.steps: dict[int, np.ndarray] = {}
        self.decoded: list[np.ndarray] = []
        unet = method.pipe.unet
        self.handles = [unet.register_forward_pre_hook(self._pre, with_kwargs=True),
                        unet.register_forward_hook(self._post)]
        sample, decode = method.sample, method.decode

        def tapped_sample(window, first, prompt, on_step=None):
            return sample(window, first, prompt, on_step=lambda t, x: self.steps.__setitem__(t, x.cpu().numpy()))

        def tapped_decode(latents):
            out = decode(latents)
            self.decoded.append(out.cpu().numpy())
            return out

        method.sample, method.decode = tapped_sample, tapped_decode

    def _pre(self, module, args, kwargs):
        rec = {"sample": args[0], "t": int(args[1])}
        rec.update({k: kwargs[k] for k in ("encoder_hidden_states", "image_latents", "image_embeddings", "fps")})
        self.calls.append({k: (v.detach().clone() if hasattr(v, "detach") else v) for k, v in rec.items()})

    def _post(self, module, args, output):
        self.calls[-1]["output"] = output[0].detach().clone()

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


@pytest.fixture(scope="module")
def golden() -> Path:
    return _golden()


@pytest.fixture(scope="module")
def inputs(golden):
    from bench.api.types import Video

    frames = np.stack([_load_png(p) for p in sorted((golden / "inputs" / "source_frames").glob("*.png"))])
    return Video(frames, fps=8.0), _load_png(golden / "inputs" / "edited_first_frame.png")


@pytest.fixture(scope="module")
def tolerances(golden) -> dict:
    return json.loads((golden / "expected.json").read_text())["tolerances"]


@pytest.fixture(scope="module")
def main_run(golden, inputs):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the goldens' thread count (RECIPE §7); the tolerances hold across counts
    try:
        return _main_run(golden, inputs)
    finally:
        torch.set_num_threads(before)  # later test files run with the machine's own count


def _main_run(golden, inputs):
    video, edited = inputs
    prompt = json.loads((golden / "expected.json").read_text())["cases"]["main"]["editing_prompt"]
    m = _method(golden)
    m.setup()
    rec = Recorder(m)
    try:
        prepared = m.prepare(video)
        n_inversion = len(rec.calls)
        frames = m.edit(video, prompt=prompt, prepared=prepared, edited_first_frame=edited)
    finally:
        rec.remove()
    return {"method": m, "prepared": prepared, "rec": rec, "n_inversion": n_inversion, "frames": frames,
            "prompt": prompt}


@pytest.fixture(scope="module")
def all_injection_run(golden, inputs, main_run):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as main_run
    try:
        return _all_injection_run(golden, inputs, main_run)
    finally:
        torch.set_num_threads(before)


def _all_injection_run(golden, inputs, main_run):
    video, edited = inputs
    m = _method(golden, init_step=0, pnp_conv=1.0, pnp_spatial_attn=1.0, pnp_temporal_attn=1.0)
    m.setup()
    rec = Recorder(m)
    try:  # the editing reuses the same inversion (as the golden's `--reuse-inversion`)
        frames = m.edit(video, prompt=main_run["prompt"], prepared=main_run["prepared"], edited_first_frame=edited)
    finally:
        rec.remove()
    return {"rec": rec, "frames": frames}


def test_official_mode_takes_the_golden_clip_as_one_window(main_run):
    assert [(w["start"], w["stop"]) for w in main_run["prepared"]["windows"]] == [(0, 16)]


def test_inversion_start_and_inverted_latents_match_the_official_code(golden, main_run, tolerances):
    tol = tolerances["inverted_latents"]
    want = np.load(golden / "expected" / "inversion_latents.npz")
    calls = main_run["rec"].calls[: main_run["n_inversion"]]
    assert [c["t"] for c in calls] == json.loads((golden / "expected.json").read_text())["inversion"]["timesteps"]
    close(calls[0]["sample"], want["x0"], tol["rel_l2"], tol["max_abs"], "x0 (VAE start latent)")
    kept = main_run["prepared"]["windows"][0]["latents"]
    assert sorted(kept) == [1, 101, 201, 301, 401, 501, 601, 701, 801, 901]
    for t, lat in kept.items():
        close(lat[None], want[f"t{t:03d}"], tol["rel_l2"], tol["max_abs"], f"inverted latent t={t}")


def test_first_inversion_unet_call_matches_the_official_code(golden, main_run, tolerances):
    want = np.load(golden / "expected" / "inversion_unet_call0.npz")
    got = main_run["rec"].calls[0]
    emb, img = tolerances["conditioning_embeddings"]["max_abs"], tolerances["conditioning_image_latents"]["max_abs"]
    close(got["encoder_hidden_states"], want["encoder_hidden_states"], 1.0, emb, "inversion text embedding")
    close(got["image_embeddings"], want["image_embeddings"], 1.0, emb, "inversion CLIP image embedding")
    close(got["image_latents"], want["image_latents"], 1.0, img, "inversion image latents")
    close(got["fps"].float(), want["fps"], 0.0, 0.0, "fps")
    lat = tolerances["inverted_latents"]
    close(got["output"], want["output"], lat["rel_l2"], lat["max_abs"], "inversion UNet output")


def test_first_editing_unet_call_matches_the_official_code(golden, main_run, tolerances):
    want = np.load(golden / "expected" / "main" / "first_step.npz")
    got = main_run["rec"].calls[main_run["n_inversion"]]
    assert got["t"] == 801
    emb, img = tolerances["conditioning_embeddings"]["max_abs"], tolerances["conditioning_image_latents"]["max_abs"]
    close(got["encoder_hidden_states"], want["encoder_hidden_states"], 1.0, emb, "[source, negative, positive] text")
    close(got["image_embeddings"], want["image_embeddings"], 1.0, emb, "[source, zeros, edited] CLIP image embedding")
    close(got["image_latents"], want["image_latents"], 1.0, img, "[source, edited, edited] image latents")
    close(got["fps"].float(), want["fps"], 0.0, 0.0, "fps")
    step = tolerances["step_and_final_latents"]
    close(got["sample"], want["sample"], step["rel_l2"], step["max_abs"], "first editing UNet input")
    close(got["output"], want["output"], step["rel_l2"], step["max_abs"], "first editing UNet output")
    neg, pos = got["output"][1:2], got["output"][2:3]
    close(neg + 9.0 * (pos - neg), want["guided_noise_pred"], step["rel_l2"], step["max_abs"], "guided noise")


@pytest.mark.parametrize("case", ["main", "all_injection"])
def test_step_and_final_latents_match_the_official_code(golden, case, main_run, all_injection_run, tolerances):
    run = main_run if case == "main" else all_injection_run
    tol = tolerances["step_and_final_latents"]
    want = np.load(golden / "expected" / case / "step_latents.npz")
    steps = run["rec"].steps
    assert sorted(f"t{t:03d}" for t in steps) == sorted(want.files)
    for t, lat in steps.items():
        close(lat, want[f"t{t:03d}"], tol["rel_l2"], tol["max_abs"], f"{case}: latents after step t={t}")
    close(steps[1], np.load(golden / "expected" / case / "final_latents.npy"), tol["rel_l2"], tol["max_abs"],
          f"{case}: final latents")


def test_decoded_frames_match_the_official_code(golden, main_run, tolerances):
    tol = tolerances["decoded"]
    (decoded,) = main_run["rec"].decoded
    close(decoded, np.load(golden / "expected" / "main" / "decoded.npy"), tol["rel_l2"], tol["max_abs"], "decoded")


@pytest.mark.parametrize("case", ["main", "all_injection"])
def test_uint8_frames_match_the_official_code(golden, case, main_run, all_injection_run, tolerances):
    tol = tolerances["frames_uint8"]
    got = (main_run if case == "main" else all_injection_run)["frames"]
    want = np.load(golden / "expected" / case / "frames_uint8.npy")
    assert got.shape == want.shape and got.dtype == np.uint8
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= tol["max_abs"], f"{case}: uint8 max abs diff {diff.max()}"
    assert (diff > 0).mean() <= tol["max_frac_differ"], f"{case}: {(diff > 0).mean():.1%} of uint8 values differ"
