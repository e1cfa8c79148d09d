"""TokenFlow and VidToMe on tiny random SD-1.5-layout components (CPU), loaded through the same loader
real weights use; plus the algorithm-specific pieces (TokenFlow propagation, VidToMe merging)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.api.types import Video  # noqa: E402

FAST = {"resolution": None, "num_inference_steps": 2, "num_inversion_steps": 2}


@pytest.fixture(scope="module")
def sd(tmp_path_factory) -> str:
    from tiny_diffusers import build_sd15_dir

    return str(build_sd15_dir(tmp_path_factory.mktemp("tiny-tf") / "sd15"))


@pytest.fixture(scope="module")
def clip() -> Video:
    """4 frames, 64x64: a textured background with a square moving right."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:64, 0:64].astype(np.float32)
    frames = []
    for t in range(4):
        f = 110 + 70 * np.sin((x + 2 * t) / 5.0)[..., None] * np.array([1.0, 0.4, -0.6])
        f[20:40, 8 + 6 * t:28 + 6 * t] = (220, 70, 40)
        frames.append(np.clip(f + rng.normal(0, 3, f.shape), 0, 255).astype(np.uint8))
    return Video(np.stack(frames), fps=8.0)


def _tokenflow(sd, seed=0, **extra):
    from methods.tokenflow import TokenFlow

    return TokenFlow(device="cpu", seed=seed, weights=sd, **(FAST | {"batch_size": 2} | extra))


# ------------------------------------------------------------------------------------------------
# TokenFlow: keyframes, neighbours, propagation
# ------------------------------------------------------------------------------------------------
def test_tokenflow_keyframe_neighbours_and_weights():
    from methods.tokenflow import keyframe_neighbours, sample_keyframes

    prev, nxt, w = keyframe_neighbours(6, np.array([1, 4]))
    assert prev.tolist() == [0, 0, 0, 0, 1, 1] and nxt.tolist() == [0, 0, 1, 1, 1, 1]
    np.testing.assert_allclose(w, [0.5, 1.0, 2 / 3, 1 / 3, 1.0, 0.5], rtol=1e-6)
    gen = torch.Generator().manual_seed(0)
    draws = [sample_keyframes(10, 4, gen) for _ in range(8)]
    for keys in draws:  # one keyframe inside each batch [0..3], [4..7], [8, 9]
        assert len(keys) == 3 and 0 <= keys[0] < 4 and 4 <= keys[1] < 8 and 8 <= keys[2] < 10
    assert len({tuple(k) for k in draws}) > 1  # re-drawn every call
    again = torch.Generator().manual_seed(0)
    assert all(np.array_equal(k, sample_keyframes(10, 4, again)) for k in draws)  # seeded


def test_tokenflow_propagated_features_are_convex_combinations_at_the_nn_indices():
    from methods.tokenflow import keyframe_neighbours, propagate

    gen = torch.Generator().manual_seed(1)
    groups, keys, tokens, dim, frames = 3, 2, 6, 5, 5
    key_out = torch.randn(groups, keys, tokens, dim, generator=gen)
    key_src = torch.randn(keys, tokens, dim, generator=gen)
    frame_src = torch.randn(frames, tokens, dim, generator=gen)
    prev, nxt, w = keyframe_neighbours(frames, np.array([1, 3]))
    out, nn_prev, nn_next = propagate(key_out, key_src, frame_src, prev, nxt, w)
    assert out.shape == (groups, frames, tokens, dim)

    def cos(a, b):
        a = a / np.linalg.norm(a, axis=-1, keepdims=True)
        b = b / np.linalg.norm(b, axis=-1, keepdims=True)
        return a @ b.T

    ko, ks, fs = key_out.numpy(), key_src.numpy(), frame_src.numpy()
    for f in range(frames):
        for nn, k in ((nn_prev[f].numpy(), prev[f]), (nn_next[f].numpy(), nxt[f])):
            sim = cos(fs[f], ks[k])
            assert np.array_equal(nn, sim.argmax(axis=1))  # each token's cosine nearest neighbour
        assert 0.0 <= w[f] <= 1.0
        expected = w[f] * ko[:, prev[f], nn_prev[f].numpy()] + (1 - w[f]) * ko[:, nxt[f], nn_next[f].numpy()]
        np.testing.assert_allclose(out[:, f].numpy(), expected, rtol=1e-5, atol=1e-6)
    # a keyframe's own source features map every token to itself: it gets back its own output
    own, nn, _ = propagate(key_out, key_src, key_src[1:2], np.array([1]), np.array([1]), np.array([1.0]))
    assert nn[0].tolist() == list(range(tokens))
    torch.testing.assert_close(own[:, 0], key_out[:, 1])


def test_tokenflow_injection_layers_are_the_decoder_attentions_but_the_first():
    from methods.pnp import injection_layers

    names = [f"up_blocks.{i}.attentions.{j}.transformer_blocks.0.attn{a}.processor"
             for i in (1, 2, 3) for j in (0, 1, 2) for a in (1, 2)]
    names += ["down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor",
              "mid_block.attentions.0.transformer_blocks.0.attn1.processor"]
    chosen = injection_layers(names)
    assert len(chosen) == 8  # SD: decoder self-attention blocks 4-11
    assert "up_blocks.1.attentions.0.transformer_blocks.0.attn1.processor" not in chosen
    assert all(".attn1." in n and n.startswith("up_blocks.") for n in chosen)


# ------------------------------------------------------------------------------------------------
# TokenFlow end to end
# ------------------------------------------------------------------------------------------------
def test_tokenflow_edit_is_deterministic_prompt_dependent_and_injects(sd, clip):
    method = _tokenflow(sd, seed=4)
    prepared = method.prepare(clip)
    assert prepared["latents"].shape == (2, 4, 4, 8, 8)  # (editing steps, frames, C, h/8, w/8)
    assert prepared["timesteps"].tolist() == [501, 1]
    before = dict(method.pipe.unet.attn_processors)
    out = method.edit(clip, prompt="a watercolor painting", prepared=prepared)
    assert out.shape == clip.frames.shape and out.dtype == np.uint8 and out.std() > 0
    after = dict(method.pipe.unet.attn_processors)
    assert all(before[k] is after[k] for k in before)  # processors restored for other methods
    assert not method.pipe.unet.up_blocks[1].resnets[1].conv2._forward_hooks  # injection hook removed
    again = _tokenflow(sd, seed=4).edit(clip, prompt="a watercolor painting")  # prepare recomputed inside
    assert np.array_equal(out, again)
    other = _tokenflow(sd, seed=4).edit(clip, prompt="a bronze statue", prepared=prepared)
    assert not np.array_equal(out, other)
    no_pnp = _tokenflow(sd, seed=4, pnp_attn_t=0.0, pnp_f_t=0.0).edit(clip, prompt="a watercolor painting",
                                                                      prepared=prepared)
    assert not np.array_equal(out, no_pnp)  # the PnP injection changes the result


def test_tokenflow_can_invert_with_the_samples_source_caption(sd, clip):
    method = _tokenflow(sd, seed=1, inversion_prompt="{source_prompt}")
    assert method.prepare(clip) is None  # needs the caption: inverted inside edit
    a = method.edit(clip, prompt="a watercolor painting", source_prompt="a red square on stripes")
    key = method._inverted[0]
    again = method.edit(clip, prompt="a watercolor painting", source_prompt="a red square on stripes")
    assert np.array_equal(a, again) and method._inverted[0] == key  # same video + caption: inverted once
    b = method.edit(clip, prompt="a watercolor painting", source_prompt="a blue ball in the snow")
    assert not np.array_equal(a, b)  # the caption conditions the inversion and the source branch
    from bench.api.errors import VidEditBenchError

    with pytest.raises(VidEditBenchError, match="no source caption"):  # never a silent "" (issue 21)
        _tokenflow(sd, seed=1, inversion_prompt="{source_prompt}").edit(
            clip, prompt="a watercolor painting", source_prompt=None)


def test_tokenflow_inversion_steps_must_visit_the_editing_timesteps(sd, clip):
    from bench.api.errors import VidEditBenchError

    with pytest.raises(VidEditBenchError, match="multiple of the number of denoising steps"):
        _tokenflow(sd, num_inference_steps=2, num_inversion_steps=3).prepare(clip)


def test_tokenflow_and_vidtome_through_the_runner(sd, tmp_path):
    """Through the runner: ok rows with the source's shape, the same output for the same seed, another
    output for another seed (one whose TokenFlow keyframe draws differ from seed 0's)."""
    from bench.api.catalog import METHODS
    from bench.running.runner import RunConfig, run_benchmark
    from bench.store.results import ResultStore
    from bench.media.video_io import read_video
    from methods.diffusion_common import cpu_generator
    from methods.tokenflow import sample_keyframes

    names = [n for n in ("tokenflow", "vidtome") if n in METHODS]
    opts = {"weights": sd, **FAST, "num_inference_steps": 2}

    def draws(seed):
        gen = cpu_generator(seed)
        return [sample_keyframes(4, 2, gen).tolist() for _ in range(2)]

    other_seed = next(s for s in range(1, 50) if draws(s) != draws(0))

    def run(seed, name):
        cfg = RunConfig(suite="mini", methods=names, metrics=["temporal_flickering"], results_dir=str(tmp_path),
                        run_name=name, device="cpu", seed=seed, limit=1, suite_overrides={"num_frames": 4, "size": 64},
                        method_options={n: {**opts, **({"batch_size": 2} if n == "tokenflow" else {})} for n in names})
        run_benchmark(cfg)
        store = ResultStore(cfg.run_dir)
        edits = store.edits_frame()
        out = {}
        for n in names:
            rows = edits[edits.method == n]
            assert len(rows) == 1 and set(rows.status) == {"ok"}, rows[["status", "message"]].to_dict("records")
            assert rows.preprocess_s.notna().all()  # DDIM inversion ran in prepare
            out[n], _ = read_video(rows.iloc[0].output_dir)
            assert out[n].shape == (4, 64, 64, 3) and out[n].dtype == np.uint8
        store.close()
        return out

    first, again, other = run(0, "a"), run(0, "b"), run(other_seed, "c")
    for n in names:
        assert np.array_equal(first[n], again[n]), n
        assert not np.array_equal(first[n], other[n]), n


def test_new_methods_name_their_weights_when_missing():
    from bench.api.catalog import METHODS
    from bench.api.errors import WeightsMissing

    for name in ("tokenflow", "vidtome"):
        method = METHODS.get(name)()
        assert method.required_weights() == ["stable-diffusion-v1-5"]
        with pytest.raises(WeightsMissing, match="videditbench weights download stable-diffusion-v1-5"):
            method.setup()
    sd21 = METHODS.get("tokenflow")(weights="stable-diffusion-2-1-base")
    assert sd21.required_weights() == ["stable-diffusion-2-1-base"]


# ------------------------------------------------------------------------------------------------
# VidToMe: merging, chunks, end to end
# ------------------------------------------------------------------------------------------------
def test_vidtome_local_and_global_merging_unmerge_to_the_same_token_count():
    from methods.vidtome import bipartite_merge, global_merge, local_merge

    gen = torch.Generator().manual_seed(0)
    frames, n, dim = 4, 16, 8
    x = torch.randn(3, frames * n, dim, generator=gen)
    m = local_merge(x, frames, 0.9, 4, torch.Generator().manual_seed(1))
    merged = m.merge(x)
    src = (frames - 1) * n  # one destination frame of 4 (stride 4), the other 3 frames are sources
    assert merged.shape == (3, src - int(src * 0.9) + n, dim)
    restored = m.unmerge(merged)
    assert restored.shape == x.shape  # back to every frame's tokens
    kept = torch.zeros(frames * n, dtype=torch.bool)
    kept[m.keep] = True
    assert torch.equal(restored[:, kept], x[:, kept])  # kept tokens come back unchanged
    # a merged token takes the value of a destination token: the one it is most similar to
    merged_away = (~kept).nonzero().flatten()
    assert len(merged_away) == int(src * 0.9)
    assert all(any(torch.equal(restored[:, i], x[:, j]) for j in m.keep) for i in merged_away.tolist())

    # 8 frames, stride 4: two destination frames after round 1, then one (two rounds)
    x8 = torch.randn(3, 8 * n, dim, generator=gen)
    m8 = local_merge(x8, 8, 0.5, 4, torch.Generator().manual_seed(2))
    assert m8.unmerge(m8.merge(x8)).shape == x8.shape and len(m8.keep) < 8 * n

    glob = torch.randn(3, 10, dim, generator=gen)
    for local_is_src in (True, False):
        gm, local = global_merge(merged, glob, 0.8, local_is_src)
        seq_len = merged.shape[1] + glob.shape[1]
        src_len = merged.shape[1] if local_is_src else glob.shape[1]
        out = gm.merge(torch.cat([merged, glob], 1) if local_is_src else torch.cat([glob, merged], 1))
        assert out.shape[1] == seq_len - int(src_len * 0.8)
        assert gm.unmerge(out)[:, local].shape == merged.shape

    # the matching is shared by the batch (source / uncond / cond branches get the same map)
    b = bipartite_merge(x, torch.arange(0, 32), torch.arange(32, 64), 0.5)
    assert b.keep.ndim == 1 and b.back.shape == (64,)


def test_vidtome_chunks_cover_every_frame_once():
    from methods.vidtome import video_chunks

    rng = np.random.default_rng(0)
    for order in ("seq", "rand", "mix-4"):
        for _ in range(5):
            chunks = video_chunks(13, 4, rng, order)
            assert sorted(np.concatenate(chunks).tolist()) == list(range(13))
            assert all(1 <= len(c) <= 4 for c in chunks)
    firsts = {len(video_chunks(13, 4, np.random.default_rng(s), "seq")[0]) for s in range(20)}
    assert len(firsts) > 1  # the first chunk's length is random


def _vidtome(sd, seed=0, **extra):
    from methods.vidtome import VidToMe

    return VidToMe(device="cpu", seed=seed, weights=sd, **(FAST | extra))


def test_vidtome_edit_is_deterministic_prompt_dependent_and_merges(sd, clip):
    method = _vidtome(sd, seed=2)
    prepared = method.prepare(clip)
    assert prepared["latents"].shape == (2, 4, 4, 8, 8)
    out = method.edit(clip, prompt="a watercolor painting", prepared=prepared)
    assert out.shape == clip.frames.shape and out.dtype == np.uint8 and out.std() > 0
    assert np.array_equal(out, _vidtome(sd, seed=2).edit(clip, prompt="a watercolor painting"))
    assert not np.array_equal(out, _vidtome(sd, seed=2).edit(clip, prompt="a bronze statue", prepared=prepared))
    with torch.inference_mode():
        _, state = method.denoise(torch.from_numpy(prepared["latents"]), "a watercolor painting")
    assert state.last_counts and all(m < n for n, m in state.last_counts.values())  # tokens really merged
    plain = _vidtome(sd, seed=2, local_merge_ratio=0.0, merge_global=False).edit(
        clip, prompt="a watercolor painting", prepared=prepared)
    assert not np.array_equal(out, plain)  # merging changes the result
