"""Video-model adapters (issue 13): Wan V2V, Wan-VACE, CogVideoX V2V, LTX V2V, AnyV2V — with tiny random
components in hub-layout folders loaded through the same loaders real checkpoints use; and the shared
frame-count / size mapping of methods.video_common."""

from __future__ import annotations

import numpy as np
import pytest

from bench.api.catalog import METHODS
from bench.api.errors import NotApplicable
from bench.api.types import Video

STEPS = 2
T, H, W = 5, 30, 44  # not legal sizes: the adapters resize to multiples of 16/32 and back


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def video() -> Video:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    frames = []
    for t in range(T):
        f = 120 + 70 * np.sin((x + 2 * t) / 5.0)[..., None] * np.array([1.0, 0.4, -0.6])
        f[8:20, 6 + 2 * t: 20 + 2 * t] = (220, 50, 40)
        frames.append(np.clip(f + rng.normal(0, 3, f.shape), 0, 255).astype(np.uint8))
    return Video(np.stack(frames), fps=8.0)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    import tiny_video_models as tv

    root = tmp_path_factory.mktemp("tiny-video-models")
    from tiny_diffusers import build_ip2p_dir

    return {"wan": str(tv.build_wan_dir(root / "wan")), "vace": str(tv.build_wan_vace_dir(root / "vace")),
            "i2v": str(tv.build_i2vgen_xl_dir(root / "i2v")), "cog": str(tv.build_cogvideox_dir(root / "cog")),
            "ltx": str(tv.build_ltx_dir(root / "ltx")), "ip2p": str(build_ip2p_dir(root / "ip2p"))}


def anyv2v_options(dirs, **cfg):
    return {"weights": dirs["i2v"], "resolution": None, "height": None, "width": None, "num_frames": None,
            "num_inference_steps": STEPS, "num_inversion_steps": STEPS, "init_step": 0,
            "image_editor_options": {"weights": dirs["ip2p"], "num_inference_steps": STEPS, "resolution": None}, **cfg}


def anyv2v(dirs, seed: int = 0, **cfg):
    return METHODS.get("anyv2v")(device="cpu", seed=seed, **anyv2v_options(dirs, **cfg))


def make(name: str, weights: str, seed: int = 0, **cfg):
    cfg.setdefault("num_inference_steps", STEPS)
    return METHODS.get(name)(device="cpu", seed=seed, weights=weights, resolution=None, **cfg)


# ------------------------------------------------------------------------------------------------
# frame-count and size mapping
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t,multiple,expected", [(1, 4, 1), (5, 4, 5), (24, 4, 25), (24, 8, 25), (26, 8, 33),
                                                 (49, 8, 49), (16, 4, 17)])
def test_legal_frame_count(t, multiple, expected):
    from methods.video_common import legal_frame_count

    assert legal_frame_count(t, multiple) == expected


def test_frame_plan_pads_with_the_last_frame_and_drops_the_padding():
    from methods.video_common import plan_frames

    frames = np.arange(24)[:, None, None, None] * np.ones((1, 2, 2, 3), dtype=np.int64)
    plan = plan_frames(24, 4)  # Wan: 4k+1
    model = plan.to_model(frames)
    assert len(model) == 25 and (model[24] == frames[23]).all() and (model[:24] == frames).all()
    assert (plan.from_model(model) == frames).all()  # round trip is exact
    plan49 = plan_frames(24, 4, fixed=49)  # CogVideoX 1.0: 49 frames
    assert plan49.model_frames == 49 and (plan49.to_model(frames)[24:] == 23).all()
    assert (plan49.from_model(plan49.to_model(frames)) == frames).all()


def test_frame_plan_subsamples_longer_clips_and_maps_back_to_the_nearest_output():
    from methods.video_common import plan_frames

    plan = plan_frames(60, 8, fixed=49)
    frames = np.arange(60)
    model = plan.to_model(frames)
    assert len(model) == 49 and model[0] == 0 and model[-1] == 59 and (np.diff(model) > 0).all()
    back = plan.from_model(model)
    assert len(back) == 60 and np.abs(back - frames).max() <= 1  # each frame takes the nearest sampled one


def test_frame_plan_rejects_illegal_fixed_counts():
    from bench.api.errors import VidEditBenchError
    from methods.video_common import plan_frames

    with pytest.raises(VidEditBenchError, match="4k|k\\*4\\+1"):
        plan_frames(10, 4, fixed=48)


def test_model_size_snaps_to_the_model_multiple():
    from methods.video_common import model_size

    assert model_size(480, 854, resolution=480, multiple=16) == (480, 848)
    assert model_size(30, 44, resolution=None, multiple=32) == (32, 32)
    assert model_size(480, 854, resolution=None, multiple=16, target_height=480, target_width=720) == (480, 720)


# ------------------------------------------------------------------------------------------------
# Wan
# ------------------------------------------------------------------------------------------------
def test_wan_v2v_shape_determinism_and_seed(dirs, video):
    a = make("wan-v2v", dirs["wan"], strength=1.0).edit(video, prompt="a red car")
    b = make("wan-v2v", dirs["wan"], strength=1.0).edit(video, prompt="a red car")
    c = make("wan-v2v", dirs["wan"], seed=1, strength=1.0).edit(video, prompt="a red car")
    assert a.shape == video.frames.shape and a.dtype == np.uint8 and a.std() > 0
    assert mean_abs(a, b) == 0.0
    assert mean_abs(a, c) > 0.5


def test_wan_vace_shape_determinism_prompt_and_mask_modes(dirs, video):
    ref = np.full((24, 24, 3), (30, 200, 60), dtype=np.uint8)
    mask = np.zeros(video.frames.shape[:3], dtype=bool)
    mask[:, 6:22, 10:34] = True
    a = make("wan-vace", dirs["vace"]).edit(video, reference=ref, mask=mask)
    b = make("wan-vace", dirs["vace"]).edit(video, reference=ref, mask=mask)
    c = make("wan-vace", dirs["vace"]).edit(video, reference=ref, mask=mask, prompt="a green ball")
    with pytest.raises(NotApplicable, match="not a task VACE defines"):
        make("wan-vace", dirs["vace"]).edit(video, prompt="a green ball")  # text-guided without a mask
    d = make("wan-vace", dirs["vace"], unmasked_text="regenerate").edit(video, prompt="a green ball")  # opt-in
    for out in (a, c, d):
        assert out.shape == video.frames.shape and out.dtype == np.uint8
    assert mean_abs(a, b) == 0.0
    assert mean_abs(a, c) > 0.0 and mean_abs(c, d) > 0.0


def test_wan_vace_conditioning_keeps_the_unmasked_source_and_marks_the_mask(dirs, video):
    """White = generate, black = keep, through the real pipeline's conditioning path: the context the
    pipeline splits into inactive/reactive parts shows the source where the sample keeps pixels and gray
    where it edits; the mask reaching the transformer is 1 exactly over the edited latent cells and 0
    elsewhere (and on the leading reference-image frame)."""
    import torch

    m = make("wan-vace", dirs["vace"])
    m.setup()
    pipe = m.pipe
    mask = np.zeros(video.frames.shape[:3], dtype=bool)
    mask[:, :, 22:] = True  # right half of the 44-px frame: generate; left half: keep
    ref = np.full((16, 16, 3), 200, dtype=np.uint8)
    seen: dict[str, torch.Tensor] = {}
    original = pipe.prepare_video_latents

    def spy(video_t, mask_t, *args, **kwargs):
        seen["video"], seen["mask"] = video_t.detach().clone(), mask_t.detach().clone()
        return original(video_t, mask_t, *args, **kwargs)

    def grab(module, args, kwargs):
        seen.setdefault("ctx", kwargs["control_hidden_states"].detach().clone())

    pipe.prepare_video_latents = spy
    handle = pipe.transformer.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        out = m.edit(video, mask=mask, reference=ref)
    finally:
        handle.remove()
        del pipe.prepare_video_latents
    assert out.shape == video.frames.shape

    ctx_video, ctx_mask = seen["video"][0].float(), seen["mask"][0].float()  # (3, F, h, w) in [-1, 1]; (3, F, h, w) in [0, 1]
    plan, (h, w), frames, _, _ = m.vace_inputs(video, None, None)
    source = pipe.video_processor.preprocess_video(frames, h, w)[0].float()
    half = w // 2
    inactive = ctx_video * (1 - (ctx_mask > 0.5).float())
    keep_err = float((inactive[..., : half - 2] - source[..., : half - 2]).abs().mean())
    gen_err = float((inactive[..., half + 2:] - source[..., half + 2:]).abs().mean())
    assert keep_err < 0.02 < gen_err, (keep_err, gen_err)
    assert float(ctx_video[..., half + 2:].abs().max()) < 0.02  # the edited region is gray (0 in [-1, 1])
    assert float(ctx_mask[..., half + 1:].min()) == 1.0 and float(ctx_mask[..., : half - 1].max()) == 0.0

    latent_mask = seen["ctx"][0, 32:].float()  # 64 mask channels (8x8 pixels per latent cell), 1 + latent frames
    lw = latent_mask.shape[-1]
    assert float(latent_mask[:, 0].abs().max()) == 0.0  # the reference frame is kept
    assert float(latent_mask[:, 1:, :, lw // 2:].min()) == 1.0 and float(latent_mask[:, 1:, :, : lw // 2].max()) == 0.0


# ------------------------------------------------------------------------------------------------
# CogVideoX
# ------------------------------------------------------------------------------------------------
COG = {"height": None, "width": None, "num_frames": None}


def test_cogvideox_v2v_shape_determinism_and_seed(dirs, video):
    a = make("cogvideox-v2v", dirs["cog"], strength=1.0, **COG).edit(video, prompt="a red car")
    b = make("cogvideox-v2v", dirs["cog"], strength=1.0, **COG).edit(video, prompt="a red car")
    c = make("cogvideox-v2v", dirs["cog"], seed=1, strength=1.0, **COG).edit(video, prompt="a red car")
    assert a.shape == video.frames.shape and a.dtype == np.uint8 and a.std() > 0
    assert mean_abs(a, b) == 0.0 and mean_abs(a, c) > 0.0


@pytest.mark.parametrize("name,opts,expected,multiple", [
    ("wan-v2v", {}, 5, 16),
    ("wan-v2v", {"num_frames": 9}, 9, 16),
    ("cogvideox-v2v", COG, 9, 16),
    ("cogvideox-v2v", {**COG, "num_frames": 17}, 17, 16),
    ("ltx-v2v", {}, 9, 32),
])
def test_pipelines_get_a_legal_padded_clip_and_the_source_count_comes_back(dirs, video, name, opts, expected, multiple):
    """The pipeline sees a legal clip (k*4+1 / k*8+1 frames: the clip, then copies of its last frame;
    sides multiples of 16 / 32); the output has the source's T frames and size."""
    key = {"wan-v2v": "wan", "cogvideox-v2v": "cog", "ltx-v2v": "ltx"}[name]
    m = make(name, dirs[key], strength=1.0, **opts)
    m.setup()
    seen = {}
    cls = type(m.pipe)

    def spy(self, *args, **kwargs):
        frames = kwargs["video"] if "video" in kwargs else kwargs["conditions"][0].video
        seen["video"] = [np.asarray(f) for f in frames]
        seen["size"] = (kwargs["height"], kwargs["width"])
        return cls.__call__(self, *args, **kwargs)

    m.pipe.__class__ = type("SpyPipe", (cls,), {"__call__": spy})
    try:
        out = m.edit(video, prompt="a red car")
    finally:
        m.pipe.__class__ = cls
    assert len(seen["video"]) == expected
    assert all(side % multiple == 0 for side in seen["size"]) and seen["video"][0].shape[:2] == seen["size"]
    assert all(np.array_equal(f, seen["video"][T - 1]) for f in seen["video"][T:])
    assert not np.array_equal(seen["video"][0], seen["video"][T - 1])
    assert out.shape == video.frames.shape


# ------------------------------------------------------------------------------------------------
# LTX-Video
# ------------------------------------------------------------------------------------------------
def test_ltx_v2v_shape_determinism_and_seed(dirs, video):
    a = make("ltx-v2v", dirs["ltx"], strength=0.8).edit(video, prompt="a red car")
    b = make("ltx-v2v", dirs["ltx"], strength=0.8).edit(video, prompt="a red car")
    c = make("ltx-v2v", dirs["ltx"], seed=1, strength=0.8).edit(video, prompt="a red car")
    assert a.shape == video.frames.shape and a.dtype == np.uint8 and a.std() > 0
    assert mean_abs(a, b) == 0.0 and mean_abs(a, c) > 0.0


def test_ltx_v2v_strength_is_the_noise_level_of_the_source_condition(dirs, video):
    """strength 0: the source condition is hard (strength 1) and never denoised, so the prompt has no
    effect (the output is the source's VAE round trip); strength 1: the source is ignored and the
    prompt changes the result."""
    def run(strength: float, text: str) -> np.ndarray:
        return make("ltx-v2v", dirs["ltx"], strength=strength, image_cond_noise_scale=0.0).edit(video, prompt=text)

    assert mean_abs(run(0.0, "a red car"), run(0.0, "a snowy forest")) == 0.0
    assert mean_abs(run(1.0, "a red car"), run(1.0, "a snowy forest")) > 0.0


# ------------------------------------------------------------------------------------------------
# AnyV2V
# ------------------------------------------------------------------------------------------------
def test_anyv2v_injection_schedule_is_the_official_prefix():
    from methods.anyv2v import injection_steps

    ts = list(range(981, 0, -20))  # the 50-step DDIM schedule ("leading", offset 1)
    assert len(ts) == 50
    assert injection_steps(ts, 0.2) == set(ts[:10]) and max(injection_steps(ts, 0.2)) == 981
    assert min(injection_steps(ts, 0.2)) == 801 and len(injection_steps(ts, 0.5)) == 25
    assert injection_steps(ts, 0.0) == set()


def test_anyv2v_shape_determinism_seed_and_prompt(dirs, video):
    m = anyv2v(dirs)
    prepared = m.prepare(video)
    a = m.edit(video, prompt="make it red", prepared=prepared)
    b = anyv2v(dirs).edit(video, prompt="make it red")
    c = anyv2v(dirs, seed=1).edit(video, prompt="make it red")  # the editor draws other noise
    d = m.edit(video, prompt="make it snowy", prepared=prepared)
    assert a.shape == video.frames.shape and a.dtype == np.uint8 and a.std() > 0
    assert mean_abs(a, b) == 0.0
    assert mean_abs(a, c) > 0.0 and mean_abs(a, d) > 0.0


def test_anyv2v_first_frame_condition_is_the_image_editors_output(dirs, video):
    """The edited branches are conditioned on the image editor's first frame (the registered
    framewise-ip2p run on the first frame, unchanged), the source branch on the source's first frame:
    the first-frame image latents the UNet receives decode to those images' VAE round trips."""
    import torch

    from methods.diffusion_common import resize_frames

    m = anyv2v(dirs, vae_sampling="mean")  # image latents = posterior means, so they decode to round trips
    m.setup()
    prepared = m.prepare(video)
    win = prepared["windows"][0]
    source_first = win["first_frame"]  # at the model size
    edited = m.edit_first_frame(video.frames[0], "make it red")  # the editor sees the clip's own first frame
    direct = METHODS.get("framewise-ip2p")(device="cpu", seed=0, weights=dirs["ip2p"], num_inference_steps=STEPS,
                                           resolution=None).edit(Video(video.frames[:1], fps=8.0),
                                                                 prompt="make it red")[0]
    assert np.array_equal(edited, direct)
    edited = resize_frames(edited[None], source_first.shape[:2])[0]
    seen: dict[str, torch.Tensor] = {}

    def grab(module, args, kwargs):
        seen.setdefault("image_latents", kwargs["image_latents"].detach().clone())

    handle = m.pipe.unet.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        m.edit(video, prompt="make it red", prepared=prepared)
    finally:
        handle.remove()
    vae = m.pipe.vae
    scale = float(vae.config.scaling_factor)

    def round_trip(img: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            z = vae.encode(m._pixels(img[None])).latent_dist.mean
            return vae.decode(z, return_dict=False)[0].float().numpy()

    def decode(z: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return vae.decode(z / scale, return_dict=False)[0].float().numpy()

    lat = seen["image_latents"]  # (3 branches, 4, F, h, w): [source, negative, positive]
    assert lat.shape[0] == 3 and torch.equal(lat[1], lat[2])
    cond, src = decode(lat[2:3, :, 0]), decode(lat[0:1, :, 0])
    want_cond, want_src = round_trip(edited), round_trip(source_first)
    np.testing.assert_allclose(cond, want_cond, atol=1e-4)
    np.testing.assert_allclose(src, want_src, atol=1e-4)
    assert np.abs(want_cond - want_src).mean() > 1e-3  # the two conditions really differ
    # position masks follow the first frame: (i + 1) / (F - 1)
    assert torch.allclose(lat[2, :, -1], torch.ones_like(lat[2, :, -1]))


def test_anyv2v_windows_start_with_the_first_frames_and_cover_the_clip():
    from methods.anyv2v import frame_windows

    assert frame_windows(16, 16) == [(0, 16)]  # the official input: the first 16 frames
    assert frame_windows(24, 16) == [(0, 16), (8, 24)]  # the second starts on a frame the first generated
    assert frame_windows(40, 16) == [(0, 16), (15, 31), (24, 40)]
    assert frame_windows(10, 16) == [(0, 10)]  # padded by the adapter, padding dropped
    assert frame_windows(7, None) == [(0, 7)]


def test_anyv2v_official_frames_are_the_first_n_and_every_output_frame_is_generated(dirs, video):
    """With a 3-frame window on the 5-frame clip: frames 0-2 are exactly the edit of the first 3 frames
    alone (the official input), frames 3-4 come from a second window; no output frame is a copy."""
    m = anyv2v(dirs, num_frames=3)
    assert m.windows(T) == [(0, 3), (2, 5)]
    out = m.edit(video, prompt="make it red")
    first = anyv2v(dirs, num_frames=3).edit(Video(video.frames[:3], fps=8.0), prompt="make it red")
    assert out.shape == video.frames.shape
    assert np.array_equal(out[:3], first)
    flat = out.reshape(T, -1)
    assert all(not np.array_equal(flat[i], flat[j]) for i in range(T) for j in range(i + 1, T))


def test_anyv2v_vae_encodings_are_posterior_samples_as_official(dirs, video):
    import torch

    from methods.diffusion_common import cpu_generator

    m = anyv2v(dirs)
    m.setup()
    frames = video.frames[:2]
    with torch.inference_mode():
        a, b = m._encode(frames, cpu_generator(0)), m._encode(frames, cpu_generator(0))
        m.cfg["vae_sampling"] = "mean"
        mean = m._encode(frames, cpu_generator(0))
    assert torch.equal(a, b) and float((a - mean).abs().max()) > 1e-3


def test_anyv2v_clip_image_crop_is_the_official_cover_and_centre_crop():
    from methods.anyv2v import center_crop_wide

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (4, 8, 3), dtype=np.uint8)
    assert np.array_equal(center_crop_wide(img, 4, 4), img[:, 2:6])  # already covers: centre cut only
    small = rng.integers(0, 255, (2, 4, 3), dtype=np.uint8)  # upscaled x2 (BOX = replication), then cut
    assert np.array_equal(center_crop_wide(small, 4, 4), np.repeat(np.repeat(small, 2, 0), 2, 1)[:, 2:6])


def test_anyv2v_feature_injection_copies_source_features_at_the_scheduled_steps(dirs, video):
    m = anyv2v(dirs, num_inference_steps=4, num_inversion_steps=4, pnp_conv=0.5, pnp_spatial_attn=0.25,
               pnp_temporal_attn=1.0)
    m.setup()
    prepared = m.prepare(video)["windows"][0]
    first = prepared["first_frame"]
    x_inj, calls = m.sample(prepared, first, "make it red")
    # 4 steps from init 0: conv at 2 steps (1 layer), spatial at 1 step and temporal at 4 (8 layers, q and k each)
    assert calls == {"conv": 2, "spatial": 1 * 8 * 2, "temporal": 4 * 8 * 2}
    m0 = anyv2v(dirs, num_inference_steps=4, num_inversion_steps=4, pnp_conv=0.0, pnp_spatial_attn=0.0,
                pnp_temporal_attn=0.0)
    m0.setup()
    x_free, calls0 = m0.sample(prepared, first, "make it red")
    assert calls0 == {"conv": 0, "spatial": 0, "temporal": 0}
    assert float((x_inj - x_free).abs().mean()) > 1e-4


def test_video_models_run_through_the_harness(dirs, tmp_path):
    from bench.running.runner import RunConfig, run_benchmark
    from bench.store.results import ResultStore

    opts = {"num_inference_steps": STEPS, "resolution": None}
    cfg = RunConfig(suite="mini", methods=["wan-v2v", "wan-vace", "anyv2v", "cogvideox-v2v", "ltx-v2v"], metrics=["temporal_flickering"],
                    results_dir=str(tmp_path), run_name="vm", device="cpu", limit=9,  # 8 text + 1 image sample, 2 videos
                    suite_overrides={"num_frames": 5, "size": 32},
                    method_options={"wan-v2v": {**opts, "weights": dirs["wan"]},
                                    "wan-vace": {**opts, "weights": dirs["vace"]},
                                    "anyv2v": anyv2v_options(dirs),
                                    "cogvideox-v2v": {**opts, **COG, "weights": dirs["cog"]},
                                    "ltx-v2v": {**opts, "weights": dirs["ltx"]}})
    run_benchmark(cfg)
    with ResultStore(cfg.run_dir) as store:
        edits = store.edits_frame()
    v2v, vace = edits[edits.method == "wan-v2v"], edits[edits.method == "wan-vace"]
    assert set(v2v[v2v.task == "text"].status) == {"ok"}, v2v[["status", "message"]].to_dict("records")
    assert set(v2v[v2v.task == "image"].status) == {"not_applicable"}
    for name in ("cogvideox-v2v", "ltx-v2v"):
        rows = edits[(edits.method == name) & (edits.task == "text")]
        assert len(rows) and set(rows.status) == {"ok"}, rows[["status", "message"]].to_dict("records")
    av = edits[(edits.method == "anyv2v") & (edits.task == "text")]
    assert len(av) and set(av.status) == {"ok"}, av[["status", "message"]].to_dict("records")
    assert av.preprocess_s.notna().all()  # the inversion ran in prepare
    assert set(vace[vace.task == "image"].status) == {"ok"}, vace[["status", "message"]].to_dict("records")
    assert set(vace[vace.task == "text"].status) == {"not_applicable"}  # no mask: not a VACE task


# ------------------------------------------------------------------------------------------------
# registry, weights, options
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,weights,tasks", [
    ("wan-v2v", ["wan2.1-t2v-1.3b"], {"text"}),
    ("wan-vace", ["wan2.1-vace-1.3b"], {"text", "image"}),
    ("cogvideox-v2v", ["cogvideox-2b"], {"text"}),
    ("ltx-v2v", ["ltx-video-0.9.5"], {"text"}),
    ("anyv2v", ["i2vgen-xl", "instruct-pix2pix"], {"text"}),
])
def test_missing_weights_name_the_download_command(name, weights, tasks):
    from bench.api.errors import WeightsMissing
    from bench.weights import get_spec

    cls = METHODS.get(name)
    assert set(cls.tasks) == tasks and cls.description
    method = cls()
    assert method.required_weights() == weights
    for w in weights:
        spec = get_spec(w)
        assert spec.size_mb and spec.licence != "unknown" and name in spec.used_by or w == "instruct-pix2pix"
    with pytest.raises(WeightsMissing, match=f"videditbench weights download {weights[0]}"):
        method.setup()


def test_video_model_options_are_checked_in_one_line(dirs):
    from bench.api.errors import VidEditBenchError

    with pytest.raises(VidEditBenchError, match="dtype"):
        make("wan-v2v", dirs["wan"], dtype="float8").setup()
    with pytest.raises(VidEditBenchError, match="image_editor"):
        METHODS.get("anyv2v")(image_editor="no-such-editor").required_weights()


def test_vae_tiling_option_reaches_the_loaded_vae(dirs, video):
    m = make("cogvideox-v2v", dirs["cog"], vae_tiling=True, **COG)
    m.setup()
    assert m.pipe.vae.use_tiling
    assert not make("cogvideox-v2v", dirs["cog"], **COG)._load().vae.use_tiling  # cached per option set


def test_half_precision_load_keeps_the_wan_vae_in_float32(dirs):
    import torch

    from methods.video_common import load_video_pipeline

    pipe = load_video_pipeline("WanVideoToVideoPipeline", dirs["wan"], "cpu", dtype="bfloat16", fp32_components=("vae",))
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.text_encoder.dtype == torch.bfloat16
    assert pipe.vae.dtype == torch.float32


@pytest.mark.parametrize("name,key,opts", [("wan-vace", "vace", {"unmasked_text": "regenerate"}), ("cogvideox-v2v", "cog", COG), ("ltx-v2v", "ltx", {})])
def test_adapters_run_in_bfloat16(dirs, video, name, key, opts):
    """The half-precision path (bf16 weights, the Wan VAE kept float32) runs end to end (on the CPU here)."""
    out = make(name, dirs[key], dtype="bfloat16", **opts).edit(video, prompt="a red car")
    assert out.shape == video.frames.shape and out.std() > 0


def test_anyv2v_loads_the_fp16_variant_layout_as_float32_on_cpu(dirs):
    import torch
    from pathlib import Path

    from methods.anyv2v import load_i2vgen_xl

    names = sorted(p.name for p in (Path(dirs["i2v"]) / "unet").glob("*.safetensors"))
    assert names == ["diffusion_pytorch_model.fp16.safetensors"]
    parts = load_i2vgen_xl(dirs["i2v"], "cpu")
    assert parts.unet.dtype == torch.float32 and parts.text_encoder.dtype == torch.float32
    assert load_i2vgen_xl(dirs["i2v"], "cpu") is parts  # once per process


@pytest.mark.parametrize("name,key,opts", [("wan-v2v", "wan", {}), ("cogvideox-v2v", "cog", COG)])
def test_sdedit_strength_sets_the_number_of_denoising_steps(dirs, video, name, key, opts):
    """SDEdit: strength s runs the last int(s * steps) steps of the schedule (transformer calls counted)."""
    def calls(strength: float) -> int:
        m = make(name, dirs[key], strength=strength, num_inference_steps=8, **opts)
        m.setup()
        count = [0]
        handle = m.pipe.transformer.register_forward_pre_hook(lambda *a: count.__setitem__(0, count[0] + 1))
        try:
            m.edit(video, prompt="a red car")
        finally:
            handle.remove()
        return count[0]

    full, quarter = calls(1.0), calls(0.25)
    assert full > 0 and quarter * 4 == full


@pytest.mark.parametrize("name", ["wan-v2v", "wan-vace", "cogvideox-v2v", "ltx-v2v", "anyv2v"])
def test_presets_are_valid_option_sets(name):
    from pathlib import Path

    import yaml

    import methods

    presets = yaml.safe_load((Path(methods.__file__).parent / "presets" / f"{name}.yaml").read_text())
    assert "official" in presets
    cls = METHODS.get(name)
    for preset, body in presets.items():
        assert body.get("description") and body.get("source"), preset
        assert set(body["options"]) <= set(cls.defaults), (preset, set(body["options"]) - set(cls.defaults))
        method = cls(**body["options"])  # every value is accepted
        assert all(method.cfg[k] == v for k, v in body["options"].items())
