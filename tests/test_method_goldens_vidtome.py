"""`vidtome` in its `official` preset against the OFFICIAL VidToMe code on the method goldens
(`../shared/goldens/methods/vidtome`, RECIPE.md): tiny random SD 1.5-layout components, 16 real frames
at 128x128, 10 steps, float32 on CPU.

Checks, strongest first (RECIPE §10):
* random draws exactly: chunking (legacy numpy + torch `randperm`), the block generators' fork point,
  and per merge call (810 of them) the target frame, the global-merge side and the merged count;
* the matching on the golden's two recorded inputs (§9.4) exactly;
* DDIM inversion within 1e-4;
* the editing fed the golden's inverted latents with the official merge decisions replayed: noise,
  latents and frames within the tolerances of §10.3; our own matching at every one of those calls
  equals the official one except at the golden's listed near-ties / bit-identical copies (§10.4);
* end to end (own inversion, own draws and decisions) loosely (§10.5; the official run is chaotic
  at float noise).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import require_goldens

torch = pytest.importorskip("torch")

SEED = 123
#: RECIPE §10.3 / §10.5
TOL_EPS, TOL_LATENTS, TOL_FRAMES_MAX, TOL_FRAMES_MEAN = 1e-3, 2e-3, 3e-4, 2e-5
TOL_INVERSION = 1e-4
#: the 2-thread replay differs from the golden in 355 of 786k uint8 values (truncation at a level
#: boundary); rounding instead of truncating moves about half of them
MAX_UINT8_CHANGED = 3550
LOOSE_MEAN, LOOSE_MAX = 0.015, 0.25


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The golden ran on 1 thread; 1 thread also keeps this module fast on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def golden() -> Path:
    return require_goldens("methods/vidtome")


@pytest.fixture(scope="module")
def expected(golden) -> dict[str, Any]:
    return json.loads((golden / "expected.json").read_text())


@pytest.fixture(scope="module")
def decisions(golden) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    calls = json.loads((golden / "expected" / "merge_decisions.json").read_text())["calls"]
    with np.load(golden / "expected" / "merge_decisions.npz") as z:
        arrays = {k: z[k].astype(np.int64) for k in z.files}
    return calls, arrays


@pytest.fixture(scope="module")
def video(golden):
    from PIL import Image

    from bench.api.types import Video

    paths = sorted((golden / "inputs" / "bbb").glob("*.png"))
    return Video(np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths]), fps=8.0)


@pytest.fixture(scope="module")
def method(golden, expected):
    from methods.vidtome import VidToMe

    cfg = expected["config_resolved"]
    return VidToMe(device="cpu", seed=expected["seed"], preset="official",
                   weights=str(golden / "models" / "sd15-tiny"), resolution=cfg["height"],
                   num_inference_steps=cfg["generation"]["n_timesteps"], num_inversion_steps=cfg["inversion"]["steps"])


# ------------------------------------------------------------------------------------------------
# random draws and matching without the model
# ------------------------------------------------------------------------------------------------
def test_official_preset_has_the_official_settings(method, expected):
    gen = expected["config_resolved"]["generation"]
    for ours, theirs in (("guidance_scale", "guidance_scale"), ("negative_prompt", "negative_prompt"),
                         ("pnp_attn_t", "pnp_attn_t"), ("pnp_f_t", "pnp_f_t"), ("chunk_size", "chunk_size"),
                         ("chunk_order", "chunk_ord"), ("local_merge_ratio", "local_merge_ratio"),
                         ("merge_global", "merge_global"), ("global_merge_ratio", "global_merge_ratio"),
                         ("global_rand", "global_rand")):
        assert method.cfg[ours] == gen[theirs], ours
    assert (method.cfg["draws"], method.cfg["resize"], method.cfg["uint8"]) == ("official", "official", "floor")
    assert method.cfg["inversion_prompt"] == "{source_prompt}"


def test_official_chunk_draws_and_generator_fork_equal_the_golden(expected):
    import hashlib

    from methods.vidtome import OfficialDraws, video_chunks

    draws = OfficialDraws(expected["seed"])
    steps = expected["random_draws"]["steps"]
    assert len(steps) == 10
    for rec in steps:
        log: dict[str, Any] = {}
        video_chunks(16, 4, draws, "mix-4", shuffle=True, log=log)
        assert log["rand_first"] == rec["np_randint_rand_first"], rec["step"]
        assert log["rand_u"] == rec["np_rand_u"] and log["reversed"] == rec["reversed"], rec["step"]
        assert log["chunks_before_order"] == rec["chunks_before_order"], rec["step"]
        assert log["randperm"] == rec["torch_randperm"], rec["step"]
        assert log["chunks_in_order"] == rec["chunks_in_order"], rec["step"]
        if rec["step"] == 0:  # every block forks the torch generator here (its first forward)
            state = draws.torch_generator.get_state().numpy().tobytes()
            assert hashlib.sha256(state).hexdigest() == expected["random_draws"]["generator_fork"]["sha256"]


def _local_ids(merged_to_len: int, tokens: int, frames: int, randf: int) -> tuple[Any, Any]:
    ids = torch.arange(merged_to_len)
    is_dst = (ids // tokens) % min(4, frames) == randf
    return ids[~is_dst], ids[is_dst]


def _merged_to(m, src_ids, dst_ids, n: int | None = None) -> np.ndarray:
    """Canonical record of a matching: local (n given): id -> representative id; global: for each
    source id (ascending) its destination id or -1."""
    if n is not None:
        out = np.arange(n)
        out[src_ids[m.merged].numpy()] = dst_ids[m.target].numpy()
        return out
    order = np.argsort(src_ids.numpy())
    dst_of = np.full(len(src_ids), -1)
    dst_of[m.merged.numpy()] = dst_ids[m.target].numpy()
    return dst_of[order]


def test_matching_reproduces_the_golden_unit_cases(golden, decisions):
    """RECIPE §9.4: the exact official matching inputs of two step-0 calls give the official decisions."""
    from methods.vidtome import match_tokens

    calls, arrays = decisions
    with np.load(golden / "expected" / "debug_merge_step0.npz") as z:
        case = {k: z[k] for k in z.files}
    metric = torch.from_numpy(case["s0c0_local_metric"])
    src, dst = _local_ids(1024, 256, 4, randf=0)
    m = match_tokens(metric, src, dst, 0.9)
    assert m.merged.numel() == 691
    np.testing.assert_array_equal(_merged_to(m, src, dst, 1024), case["s0c0_local_merged_to"])

    metric = torch.from_numpy(case["s0c1_global_metric"])
    seq_ids = torch.from_numpy(case["s0c1_global_seq_ids"].astype(np.int64))
    src_len = int(case["s0c1_global_src_len"][0])
    pos = torch.arange(metric.shape[1])
    m = match_tokens(metric, pos[:src_len], pos[src_len:], 0.8)
    rec = next(c for c in calls if (c["step"], c["chunk_pos"], c["kind"]) == (0, 1, "global")
               and c["block"] == "down_blocks.0.attentions.0.transformer_blocks.0")
    assert bool(case["s0c1_global_local_is_src"][0]) == rec["local_is_src"] and m.merged.numel() == rec["r"]
    sl = slice(rec["off"], rec["off"] + rec["len"])
    np.testing.assert_array_equal(np.sort(seq_ids[:src_len].numpy()), arrays["global_src_ids"][sl])
    np.testing.assert_array_equal(_merged_to(m, seq_ids[:src_len], seq_ids[src_len:]), arrays["global_merged_to"][sl])


def test_official_resize_is_torchvisions_cover_resize_then_centre_crop():
    """The official `process_frames` (torchvision Resize to cover, CenterCrop); checked on non-square frames."""
    tv = pytest.importorskip("torchvision.transforms")
    from methods.vidtome import official_resize, official_size

    frames = torch.rand(2, 3, 90, 161, generator=torch.Generator().manual_seed(0))
    for size in (official_size(90, 161, 128), (64, 128), (128, 64)):
        h, w = size
        fh, fw = frames.shape[-2:]
        cover = (h, int(fw / fh * h)) if int(fw / fh * h) >= w else (int(fh / fw * w), w)
        want = tv.CenterCrop([h, w])(tv.Resize(cover)(frames))
        torch.testing.assert_close(official_resize(frames, size), want, rtol=0, atol=1e-6)
    assert official_size(720, 1280, 512) == (512, 512) and official_size(100, 200, None) == (64, 192)


def test_declared_differences_are_in_step_with_the_docstring_and_the_readme():
    """Every declared difference of the official preset is in the docstring and docs/methods.md's row, and the
    row declares nothing else."""
    import methods.vidtome as vidtome

    methods_doc = (Path(__file__).resolve().parents[1] / "docs" / "methods.md").read_text()
    row = next(line for line in methods_doc.splitlines() if line.startswith("| `vidtome` |"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[5] == "equal to official code on goldens"
    declared = cells[6].split("; ")
    assert declared == list(vidtome.OFFICIAL_DIFFERENCES)
    doc = " ".join(vidtome.__doc__.split())
    assert all(f"* {d}." in doc for d in vidtome.OFFICIAL_DIFFERENCES)


# ------------------------------------------------------------------------------------------------
# inversion
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inverted(method, video, expected):
    """Our inversion through the adapter's own path (cached by the adapter for `edit`)."""
    with torch.inference_mode():
        return method.source_latents(video, None, expected["prompts"]["inversion_prompt"]).cpu().numpy()


def test_inversion_latents_match_the_golden(inverted, golden):
    ref = np.load(golden / "expected" / "inverted_latents.npy")
    assert inverted.shape == ref.shape
    assert float(np.abs(inverted - ref).max()) <= TOL_INVERSION


# ------------------------------------------------------------------------------------------------
# editing with the official decisions replayed
# ------------------------------------------------------------------------------------------------
class Replay:
    """`decide` hook: at every merge call, records our own matching in canonical form and returns the
    official one (from the golden's records, same call order)."""

    def __init__(self, calls: list[dict[str, Any]], arrays: dict[str, np.ndarray]):
        self.calls, self.arrays = calls, arrays
        self.k = 0
        self.own: list[np.ndarray] = []

    def __call__(self, call: dict[str, Any], m, src_ids, dst_ids):
        from methods.vidtome import Matching

        rec = self.calls[self.k]
        self.k += 1
        key = ("step", "chunk_pos", "frames", "block", "kind")
        assert {k: call[k] for k in key} == {k: rec[k] for k in key}, (call, rec)
        side = "randf" if rec["kind"] == "local" else "local_is_src"
        assert call[side] == rec[side], (call, rec)  # the replay needs the official draws
        sl = slice(rec["off"], rec["off"] + rec["len"])
        dst_pos = np.full(int(dst_ids.max()) + 1, -1)
        dst_pos[dst_ids.numpy()] = np.arange(len(dst_ids))
        src = src_ids.numpy()
        if rec["kind"] == "local":
            self.own.append(_merged_to(m, src_ids, dst_ids, rec["len"]))
            to = self.arrays["local_merged_to"][sl][src]
            merged = to != src
        else:
            self.own.append(_merged_to(m, src_ids, dst_ids))
            rec_src = self.arrays["global_src_ids"][sl]
            to = self.arrays["global_merged_to"][sl][np.searchsorted(rec_src, src)]
            assert np.array_equal(np.sort(src), rec_src)
            merged = to >= 0
        pos = np.arange(len(src))
        return Matching(torch.from_numpy(pos[~merged]), torch.from_numpy(pos[merged]),
                        torch.from_numpy(dst_pos[to[merged]]))


@pytest.fixture(scope="module")
def replayed(method, video, golden, expected, decisions):
    """The editing fed the golden's inverted latents, official decisions replayed, decoded by the adapter."""
    replay = Replay(*decisions)
    eps, latents, floats = [], [], []
    method.setup()
    finish = method._finish

    def keep_float(frames, vid):  # the float frames the adapter converts to uint8
        floats.append(np.array(frames))
        return finish(frames, vid)

    source = torch.from_numpy(np.load(golden / "expected" / "inverted_latents.npy"))
    method._finish = keep_float
    try:
        with torch.inference_mode():
            x0, state = method.denoise(source, expected["prompts"]["edit_prompt"], decide=replay,
                                       on_step=lambda i, t, e, x: (eps.append(e.numpy().copy()),
                                                                   latents.append(x.numpy().copy())))
            frames = method.decode(x0, video)
    finally:
        del method._finish
    return {"replay": replay, "state": state, "eps": np.stack(eps), "latents": np.stack(latents),
            "final": x0.numpy(), "float": floats[0], "uint8": frames}


def test_merge_draws_and_counts_equal_the_golden_at_every_call(replayed, decisions):
    calls, _ = decisions
    ours = replayed["state"].calls
    assert len(ours) == len(calls) == 810
    for a, b in zip(ours, calls):
        side = "randf" if b["kind"] == "local" else "local_is_src"
        assert (a["step"], a["chunk_pos"], a["block"], a["kind"], a[side], a["r"]) == \
               (b["step"], b["chunk_pos"], b["block"], b["kind"], b[side], b["r"])
        if b["kind"] == "global":
            assert (a["local_len"], a["global_len"]) == (b["local_len"], b["global_len"])
    # every merging block of one UNet call drew the same target frame and side (per-block forks)
    per_call: dict[tuple, set] = {}
    for a in ours:
        per_call.setdefault((a["step"], a["chunk_pos"], a["kind"]), set()).add(a.get("randf", a.get("local_is_src")))
    assert all(len(v) == 1 for v in per_call.values())


def test_own_matching_equals_the_official_except_near_ties(replayed, decisions):
    calls, arrays = decisions
    own = replayed["replay"].own
    assert len(own) == len(calls)
    compared = excused = 0
    for rec, mine in zip(calls, own):
        sl = slice(rec["off"], rec["off"] + rec["len"])
        if rec["kind"] == "local":
            theirs, ids = arrays["local_merged_to"][sl], np.arange(rec["len"])
            groups = rec["copies"]
            src_groups = dst_groups = groups
        else:
            theirs, ids = arrays["global_merged_to"][sl], arrays["global_src_ids"][sl]
            src_groups, dst_groups = rec["copies_src"], rec["copies_dst"]
        compared += len(ids)
        ties = {int(t[0]) for t in rec["near_ties"]}
        in_src_copies = {int(i) for g in src_groups for i in g}
        dst_group = {int(i): gi for gi, g in enumerate(dst_groups) for i in g}
        for j in np.nonzero(mine != theirs)[0]:
            tok, a, b = int(ids[j]), int(mine[j]), int(theirs[j])
            same_copy = a in dst_group and b in dst_group and dst_group[a] == dst_group[b]
            assert tok in ties or tok in in_src_copies or same_copy, (
                f"step {rec['step']} chunk {rec['chunk_pos']} {rec['block']} {rec['kind']}: token {tok} -> {a}, "
                f"official -> {b} (not a listed near-tie or copy)")
            excused += 1
    assert compared > 250_000 and excused <= 1000  # ~130 on the reference machine, all listed ties / copies


def test_replayed_editing_matches_the_golden_within_the_recipe_tolerances(replayed, golden):
    exp = golden / "expected"

    def max_abs(a, b) -> float:
        assert a.shape == b.shape
        return float(np.abs(a - b).max())

    assert max_abs(replayed["eps"], np.load(exp / "gen_eps_per_step.npy")) <= TOL_EPS
    assert max_abs(replayed["latents"], np.load(exp / "gen_latents_per_step.npy")) <= TOL_LATENTS
    assert max_abs(replayed["final"], np.load(exp / "final_latents.npy")) <= TOL_LATENTS
    ref = np.load(exp / "decoded_frames_float.npy").transpose(0, 2, 3, 1)  # (T, 3, H, W) -> (T, H, W, 3)
    diff = np.abs(replayed["float"] - ref)
    assert float(diff.max()) <= TOL_FRAMES_MAX and float(diff.mean()) <= TOL_FRAMES_MEAN
    frames = _golden_uint8(golden)
    d8 = np.abs(replayed["uint8"].astype(int) - frames.astype(int))
    assert int(d8.max()) <= 1 and int((d8 > 0).sum()) <= MAX_UINT8_CHANGED


def _golden_uint8(golden: Path) -> np.ndarray:
    from PIL import Image

    paths = sorted((golden / "expected" / "frames_uint8").glob("*.png"))
    assert len(paths) == 16
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


# ------------------------------------------------------------------------------------------------
# end to end: own inversion, own draws, own decisions
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_end_to_end_edit_is_close_to_the_official_output(method, video, inverted, expected, golden):
    """RECIPE §10.5 (a smoke test: the official run itself is chaotic at float noise)."""
    out = method.edit(video, prompt=expected["prompts"]["edit_prompt"],
                      source_prompt=expected["prompts"]["inversion_prompt"])
    diff = np.abs(out.astype(np.float32) - _golden_uint8(golden).astype(np.float32)) / 255.0
    assert float(diff.mean()) <= LOOSE_MEAN and float(diff.max()) <= LOOSE_MAX
