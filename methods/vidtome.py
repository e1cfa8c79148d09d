"""VidToMe: video token merging for zero-shot video editing (Li et al., CVPR 2024).

Our implementation on diffusers primitives (SD 1.5 UNet, VAE, DDIM, CLIP text encoder), following the
paper and the official code (lixirui142/VidToMe 064c7b1: `generate.py`, `invert.py`, `vidtome/patch.py`,
`vidtome/merge.py`, `utils/pnp_utils.py`, `configs/default.yaml`, PnP control):

* `prepare`: DDIM inversion of the frames (`num_inversion_steps`, the inversion prompt, no guidance),
  keeping the inverted latent at every editing timestep (PnP's source branch); editing starts from
  the most noisy one.
* every step splits the video into chunks of `chunk_size` frames (a random-length first chunk, then
  chunk_size each, the list reversed with probability 0.5, processed in the "mix" order: a random
  quarter of the chunks first, the rest in sequence) and predicts each chunk's noise with the UNet
  on `[source x_t, edit (uncond), edit (cond)]` with text `["", negative prompt, target prompt]`
  and PnP injection (residual features of `up_blocks[1].resnets[1]` for the first `pnp_f_t` of the
  steps, self-attention queries/keys of the decoder layers but the first for `pnp_attn_t`);
* token merging in every self-attention layer whose resolution is at most `max_downsample` x below
  the latent's: the chunk's frames are joined into one token set; LOCAL merging (bipartite soft
  matching): one random target frame per `target_stride` frames is the destination set, the most
  similar `local_merge_ratio` of the other frames' tokens are merged into their cosine-nearest
  destination token (repeated until one frame's worth of sets is left); GLOBAL merging: the merged
  chunk tokens are matched with a token set shared across the chunks of the step (kept per layer;
  at random the chunk is the source or the destination side, `global_merge_ratio` merged), and the
  set is updated with the chunk's tokens. Self-attention runs on the merged tokens (so across the
  chunk's frames and the global tokens); its output is unmerged back to every frame's tokens (a
  merged token takes its destination's output). Matching is shared by the three branches
  ("align_batch", as the official code with PnP). The global set is reset every step.

Random draws (`draws`):
* `official` (presets `official`, `v2vbench`): as the official code after `seed_everything(seed)`.
  Chunking uses the legacy numpy generator (`RandomState(seed)`: `randint(0, chunk_size)`, then
  `rand()`) and torch's `randperm` on a CPU generator seeded with `seed`. Every transformer block
  forks that torch generator at its first forward (the first UNet call, right after step 0's
  `randperm`; official `init_generator`), so all merging blocks of one UNet call draw the same target
  frame (`randint`) and the same global-merge side (`rand`). On CUDA the official fork is of the CUDA
  generator, which nothing else has drawn from: a CUDA generator seeded with `seed`, drawing on the GPU.
* `independent` (default, ours): chunking from `numpy.random.default_rng(seed)`, one torch generator
  seeded with `seed` shared by all layers, so layers draw different target frames and sides.

Frames (`resize`, `uint8`):
* `resize: official`: the official `process_frames`: the target size is `resolution` x `resolution`
  (sides floored to multiples of 64; `resolution: null` keeps the source's sides, floored), the
  frame is resized (bilinear, antialiased, torchvision's tensor `Resize`) to cover it and
  centre-cropped. `shorter_side` (default): the shorter side scaled to `resolution`, no crop.
* `uint8: floor` (official `ToPILImage` / `save_video`: truncation) or `round` (default).

Seams for checks against the official code (plain arguments, one code path): `denoise(latents, ...)`
takes any inverted latents (e.g. a golden's); `decide` is called at every merge with the call's
identity and our matching and returns the matching to use (a test hook that replays recorded
decisions); `on_step` sees each step's noise and latents; the returned state keeps every draw
(`chunk_log`, `calls`).

Differences from the official code that change output frames, in the `official` preset
(`OFFICIAL_DIFFERENCES`, also the methods table of docs/methods.md):
* non-square sources: the official centre crop's output stretched to the source size. The official
  code outputs only the crop; the harness needs frames at the source size, so the crop's output is
  resized (Lanczos) to it. Square sources (e.g. V2VBench's 512x512) are unaffected.
* chunks over 16 frames: leftover tokens of earlier local rounds indexed where they are. A chunk
  needs a third local-merge round only past target_stride^2 = 16 frames (chunk_size > 16; the
  default is 4); there the official code has moved the previous rounds' leftovers behind the
  destinations but still indexes them as if in front, so it merges the wrong tokens; ours keeps
  and indexes them in front. Chunks up to 16 frames merge identically.
* clips over 32 frames: every frame edited (official: the first 32). The official default
  `frame_range: [0, 32, 1]` edits the first 32 frames; the harness needs all of them.
Everything else equals the official code up to float noise (attention via SDPA, the diffusers DDIM
step, our token order within the merged sequence), which can flip near-tie matches. On the golden
(tests/test_method_goldens_vidtome.py, 1 thread) the draws are identical, the inversion is within
2.2e-5, the editing with the official decisions replayed is within 7.9e-5 (noise), 2.1e-4 (latents),
2.1e-5 (float frames; uint8 off by 1 on 394 of 786k values), and our own matching equals the official
one except at listed near-ties and bit-identical copies. Free-running, such flips cascade, so end to
end the frames differ by mean 0.0054 / max 0.082 (as two runs of the official code on 1 vs 2
threads: 0.0054 / 0.083). Fed the golden's inverted latents with our own
decisions, the first tensor that differs is the guided noise of step 6 (t=301; steps 0-5 agree
within 7e-5, step 6 by 0.16): its first differing decision is chunk 3's local merge in
`up_blocks.2.attentions.0`, where token 224 goes to destination 0 instead of 51, a near-tie the
golden lists (score gap 5.4e-7); the later blocks of that call then see different inputs. The cause
is the official hard nearest-neighbour matching at float32 noise, not a behaviour we differ in.
The default (ours) further differs by `draws: independent`, `resize: shorter_side`, `uint8: round`
and inverting with "" (prepared once per video; official inverts with a source caption).

Official mode: equal to official code on goldens (tests/test_method_goldens_vidtome.py).

Differences from the official code that change output frames:
* non-square sources: the official centre crop's output stretched to the source size.
* chunks over 16 frames: leftover tokens of earlier local rounds indexed where they are.
* clips over 32 frames: every frame edited (official: the first 32).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator

import numpy as np

from bench.api.errors import VidEditBenchError
from bench.api.types import Video
from methods.diffusion_common import cpu_generator
from methods.pnp import SourceInverted, conv_injection, injection_layers, pnp_qk

NEGATIVE_PROMPT = "ugly, blurry, low res"
DRAWS = ("independent", "official")
RESIZES = ("shorter_side", "official")
UINT8 = ("round", "floor")
#: differences from the official code that change output frames in the `official` preset (docstring and
#: docs/methods.md's methods table name each; tests/test_method_goldens_vidtome.py keeps them in step)
OFFICIAL_DIFFERENCES = (
    "non-square sources: the official centre crop's output stretched to the source size",
    "chunks over 16 frames: leftover tokens of earlier local rounds indexed where they are",
    "clips over 32 frames: every frame edited (official: the first 32)",
)


# ------------------------------------------------------------------------------------------------
# token merging as index maps (unit-tested)
# ------------------------------------------------------------------------------------------------
@dataclass
class TokenMerge:
    """Replace-mode token merging of a (B, N, C) sequence: merge keeps `keep` (M,), unmerge maps every
    original token to its representative in the merged sequence, `back` (N,)."""

    keep: Any
    back: Any

    @classmethod
    def identity(cls, n: int, device: Any = None) -> "TokenMerge":
        import torch

        idx = torch.arange(n, device=device)
        return cls(idx, idx.clone())

    def merge(self, x: Any) -> Any:
        return x[:, self.keep]

    def unmerge(self, y: Any) -> Any:
        return y[:, self.back]

    def then(self, other: "TokenMerge") -> "TokenMerge":
        """This merge followed by `other` (on the merged sequence)."""
        return TokenMerge(self.keep[other.keep], other.back[self.back])


@dataclass
class Matching:
    """One bipartite matching decision, as positions into its source and destination index sets:
    `unmerged` sources (in the order they enter the merged sequence), `merged` sources and the
    destination position `target` of each merged source."""

    unmerged: Any
    merged: Any
    target: Any


#: decide(call, matching, src_ids, dst_ids) -> the matching to use (test hook: replay recorded decisions);
#: `call` identifies the merge (step, chunk_pos, frames, block, kind, randf / local_is_src), the ids are
#: the canonical token ids of the source / destination positions (see `VidToMeAttnProcessor`)
Decide = Callable[[dict[str, Any], Matching, Any, Any], Matching]


def match_tokens(metric: Any, src: Any, dst: Any, ratio: float) -> Matching:
    """Bipartite soft matching of the `ratio` most similar sources to their cosine-nearest destination.

    metric (B, N, C); src (S,), dst (D,) disjoint index sets of the sequence. The matching is shared
    across the batch ("align_batch"): a source's score is its best similarity over every sample's
    destinations; sources are merged in descending order of that score (official order).
    """
    feats = metric / metric.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    a, b = feats[:, src], feats[:, dst]  # (B, S, C), (B, D, C)
    import torch

    scores = torch.cat(list(a @ b.transpose(-1, -2)), dim=-1)  # (S, B*D): aligned over the batch
    best, best_idx = scores.max(dim=-1)
    r = min(src.numel(), int(src.numel() * ratio))
    order = best.argsort(dim=-1, descending=True)
    return Matching(order[r:], order[:r], best_idx[order[:r]] % dst.numel())


def apply_matching(n: int, src: Any, dst: Any, m: Matching) -> TokenMerge:
    """The replace-mode merge of a length-n sequence: [unmerged sources, destinations]."""
    import torch

    device = src.device
    keep = torch.cat([src[m.unmerged], dst])
    back = torch.empty(n, dtype=torch.long, device=device)
    u = m.unmerged.numel()
    back[dst] = u + torch.arange(dst.numel(), device=device)
    back[src[m.unmerged]] = torch.arange(u, device=device)
    back[src[m.merged]] = u + m.target
    return TokenMerge(keep, back)


def bipartite_merge(metric: Any, src: Any, dst: Any, ratio: float) -> TokenMerge:
    """Merge the `ratio` most similar source tokens into their cosine-nearest destination token
    (`match_tokens` + `apply_matching`)."""
    return apply_matching(metric.shape[1], src, dst, match_tokens(metric, src, dst, ratio))


def _draw_int(high: int, generator: Any) -> int:
    import torch

    return int(torch.randint(0, high, (1,), generator=generator, device=generator.device))


def local_merge(x: Any, frames: int, ratio: float, stride: int, generator: Any,
                decide: Callable[[int, Matching, Any, Any], Matching] | None = None) -> TokenMerge:
    """VidToMe local merging of a chunk's joined tokens x (B, frames*N, C).

    Rounds: with curF frame sets (plus E leftover tokens in front), a random target frame per
    `stride` frames is the destination (with the leftovers); the other frames' tokens are the
    sources. Until one frame set is left. `decide(randf, matching, src, dst)` may replace a round's
    matching (positions of src / dst are token positions of this round's sequence).
    """
    import torch

    total = TokenMerge.identity(x.shape[1], x.device)
    if ratio <= 0 or frames <= 1:
        return total
    n = x.shape[1] // frames
    extra, cur_f = 0, frames
    tokens = x
    while cur_f > 1:
        s = min(stride, cur_f)
        target = _draw_int(s, generator)
        frame_of = torch.arange(cur_f * n, device=x.device) // n
        is_dst = (frame_of % s) == target
        idx = torch.arange(cur_f * n, device=x.device) + extra
        src = idx[~is_dst]
        dst = torch.cat([torch.arange(extra, device=x.device), idx[is_dst]])  # leftovers stay in front
        m = match_tokens(tokens, src, dst, ratio)
        if decide is not None:
            m = decide(target, m, src, dst)
        step = apply_matching(tokens.shape[1], src, dst, m)
        tokens = step.merge(tokens)
        total = total.then(step)
        extra = tokens.shape[1] - int(is_dst.sum())
        cur_f = int(is_dst.sum()) // n
    return total


def global_merge(local: Any, glob: Any, ratio: float, local_is_src: bool,
                 decide: Callable[[Matching, Any, Any], Matching] | None = None) -> tuple[TokenMerge, slice]:
    """Merge a chunk's tokens with the global set: the sequence is [local, global] when the chunk is
    the source side, else [global, local]. Returns the merge over that sequence and the slice of the
    local tokens in it. `decide(matching, src, dst)` may replace the matching."""
    import torch

    L, G = local.shape[1], glob.shape[1]
    seq = torch.cat([local, glob], 1) if local_is_src else torch.cat([glob, local], 1)
    src_len = L if local_is_src else G
    idx = torch.arange(L + G, device=local.device)
    src, dst = idx[:src_len], idx[src_len:]
    m = match_tokens(seq, src, dst, ratio)
    if decide is not None:
        m = decide(m, src, dst)
    return apply_matching(L + G, src, dst, m), (slice(0, L) if local_is_src else slice(G, G + L))


# ------------------------------------------------------------------------------------------------
# the attention processor
# ------------------------------------------------------------------------------------------------
@dataclass
class VidToMeState:
    latent_tokens: int = 0  # h*w of the latent (to tell the layers' resolution)
    inject_attn: bool = False
    inject_conv: bool = False
    generator: Any = None  # draws "independent": the one generator of every layer
    fork_from: Any = None  # draws "official": the generator each block forks at its first call
    seed: int = 0
    opts: dict[str, Any] = field(default_factory=dict)
    processors: list[Any] = field(default_factory=list)
    last_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # layer -> (tokens in, merged)
    decide: Decide | None = None
    # where the loop is (set by `denoise` before each UNet call) and what was drawn
    step: int = 0
    chunk_pos: int = 0
    frames: list[int] = field(default_factory=list)
    chunk_log: list[dict[str, Any]] = field(default_factory=list)  # per step: the chunking draws
    calls: list[dict[str, Any]] = field(default_factory=list)  # per merge call, in call order

    def generator_for(self, proc: "VidToMeAttnProcessor", device: Any) -> Any:
        """The layer's merge generator: the shared one, or (official) the block's own fork."""
        if self.fork_from is None:
            return self.generator
        if proc.generator is None:
            import torch

            if str(device).startswith("cuda"):  # official init_generator forks the (untouched) CUDA RNG
                proc.generator = torch.Generator(device=device).manual_seed(self.seed)
            else:
                proc.generator = torch.Generator().set_state(self.fork_from.get_state())
        return proc.generator


class VidToMeAttnProcessor:
    """Self-attention with VidToMe token merging; batch = 3 branches x F frames, [source, uncond, cond].

    Canonical token ids (for `decide` and the recorded calls): a chunk's tokens are joined frame-major,
    id = f * N + n (f: position of the frame in the chunk, n: row-major token index); the global set's
    slots carry the ids of the previous chunk's local tokens."""

    def __init__(self, state: VidToMeState, name: str, inject: bool):
        self.state, self.name, self.inject = state, name, inject
        self.block = name.rsplit(".attn1", 1)[0]
        self.global_tokens: Any = None
        self.global_ids: Any = None
        self.generator: Any = None

    def _attend(self, attn: Any, x: Any, n: int) -> Any:
        import torch.nn.functional as F

        q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
        if self.inject and self.state.inject_attn:
            q, k = pnp_qk(q, k, n)
        heads = attn.heads
        d = q.shape[-1] // heads

        def split(t: Any) -> Any:
            return t.view(t.shape[0], -1, heads, d).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(q), split(k), split(v))
        out = out.transpose(1, 2).reshape(x.shape[0], -1, heads * d).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + x
        return out / attn.rescale_output_factor

    def _call(self, kind: str, **extra: Any) -> dict[str, Any]:
        s = self.state
        call = {"step": s.step, "chunk_pos": s.chunk_pos, "frames": list(s.frames), "block": self.block,
                "kind": kind, **extra}
        s.calls.append(call)
        return call

    def _decided(self, call: dict[str, Any], m: Matching, src_ids: Any, dst_ids: Any) -> Matching:
        if self.state.decide is not None:
            m = self.state.decide(call, m, src_ids, dst_ids)
        call["r"] = int(m.merged.numel())
        return m

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None, attention_mask: Any = None,
                 temb: Any = None, *args: Any, **kwargs: Any) -> Any:
        import torch

        if encoder_hidden_states is not None or hidden_states.ndim != 3:
            raise RuntimeError("VidToMeAttnProcessor is for self-attention on (B, N, C) tokens")
        batch, tokens, dim = hidden_states.shape
        if batch % 3:
            raise RuntimeError(f"vidtome: UNet batch {batch} is not 3 branches x frames")
        frames = batch // 3
        opts, state = self.state.opts, self.state
        downsample = int(math.ceil(math.sqrt(state.latent_tokens // tokens))) if state.latent_tokens else 1
        if downsample > int(opts["max_downsample"]):
            return self._attend(attn, hidden_states, frames)

        generator = state.generator_for(self, hidden_states.device)
        joined = hidden_states.reshape(3, frames * tokens, dim)  # the chunk's frames as one token set

        def decide_local(randf: int, m: Matching, src: Any, dst: Any) -> Matching:
            call = self._call("local", F=frames, tokens_per_frame=tokens, randf=randf)
            return self._decided(call, m, src, dst)

        m_local = local_merge(joined, frames, float(opts["local_merge_ratio"]), int(opts["target_stride"]),
                              generator, decide_local)
        merged = m_local.merge(joined)
        local_ids = m_local.keep
        m_global, local_slice = None, slice(0, merged.shape[1])
        if opts["merge_global"]:
            if self.global_tokens is not None:
                local_is_src = bool(torch.rand(1, generator=generator, device=generator.device)
                                    > float(opts["global_rand"]))
                glob = self.global_tokens.to(merged)
                seq_ids = torch.cat([local_ids, self.global_ids] if local_is_src else [self.global_ids, local_ids])
                call = self._call("global", local_is_src=local_is_src, local_len=int(merged.shape[1]),
                                  global_len=int(glob.shape[1]))

                def decide_global(m: Matching, src: Any, dst: Any) -> Matching:
                    return self._decided(call, m, seq_ids[src], seq_ids[dst])

                m_global, local_slice = global_merge(merged, glob, float(opts["global_merge_ratio"]), local_is_src,
                                                     decide_global)
                seq = torch.cat([merged, glob], 1) if local_is_src else torch.cat([glob, merged], 1)
                merged = m_global.merge(seq)
                self.global_tokens = m_global.unmerge(merged)[:, local_slice].detach()
            else:
                self.global_tokens = merged.detach()
            self.global_ids = local_ids
        state.last_counts[self.name] = (frames * tokens, merged.shape[1])
        out = self._attend(attn, merged, 1)
        if m_global is not None:
            out = m_global.unmerge(out)[:, local_slice]
        out = m_local.unmerge(out)
        return out.reshape(batch, tokens, -1)


@contextmanager
def vidtome_unet(unet: Any, opts: dict[str, Any], generator: Any, fork_from: Any = None, seed: int = 0,
                 decide: Decide | None = None) -> Iterator[VidToMeState]:
    """Install VidToMe processors on every attn1 plus the PnP conv injection; restore on exit.

    `generator`: one generator for every layer; or `fork_from`: each block forks it at its first call."""
    state = VidToMeState(generator=generator, fork_from=fork_from, seed=int(seed), opts=dict(opts), decide=decide)
    saved = dict(unet.attn_processors)
    inject = injection_layers(list(saved))
    procs: dict[str, Any] = {}
    for name, proc in saved.items():
        if name.endswith("attn1.processor"):
            procs[name] = VidToMeAttnProcessor(state, name, name in inject)
            state.processors.append(procs[name])
        else:
            procs[name] = proc
    with conv_injection(unet, lambda: state.inject_conv, "vidtome"):
        unet.set_attn_processor(procs)
        try:
            yield state
        finally:
            unet.set_attn_processor(saved)


# ------------------------------------------------------------------------------------------------
# chunks
# ------------------------------------------------------------------------------------------------
class IndependentDraws:
    """Chunking draws from one `numpy.random.Generator` (ours)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def first_len(self, chunk_size: int) -> int:
        return int(self.rng.integers(0, chunk_size)) + 1

    def uniform(self) -> float:
        return float(self.rng.random())

    def permutation(self, n: int) -> list[int]:
        return [int(i) for i in self.rng.permutation(n)]


class OfficialDraws:
    """Chunking draws of the official code after `seed_everything(seed)`: the legacy global numpy
    generator for the first length and the reversal, the global torch (CPU) generator for `randperm`.
    `torch_generator` is what the official blocks fork at their first forward."""

    def __init__(self, seed: int):
        self.np = np.random.RandomState(int(seed))
        self.torch_generator = cpu_generator(seed)

    def first_len(self, chunk_size: int) -> int:
        return int(self.np.randint(0, chunk_size)) + 1

    def uniform(self) -> float:
        return float(self.np.rand())

    def permutation(self, n: int) -> list[int]:
        import torch

        return torch.randperm(n, generator=self.torch_generator).tolist()


def video_chunks(num_frames: int, chunk_size: int, rng: Any, order: str = "mix-4",
                 shuffle: bool = True, log: dict[str, Any] | None = None) -> list[np.ndarray]:
    """The official chunking: a first chunk of random length 1..chunk_size, then chunk_size each,
    reversed with probability 0.5; then ordered 'seq', 'rand' or 'mix-K' (a random 1/K of the chunks
    first, the rest in sequence, starting from the end nearer the last random chunk).

    `rng`: `IndependentDraws` / `OfficialDraws` (a numpy Generator is wrapped in IndependentDraws);
    `log` (optional) receives the draws and the chunks."""
    draws = IndependentDraws(rng) if isinstance(rng, np.random.Generator) else rng
    log = {} if log is None else log
    idx = np.arange(num_frames)
    first = draws.first_len(chunk_size)
    chunks = [idx[:first]] + [idx[i:i + chunk_size] for i in range(first, num_frames, chunk_size)]
    u = draws.uniform()
    if u > 0.5:
        chunks = chunks[::-1]
    log.update(rand_first=first, rand_u=u, reversed=u > 0.5, chunks_before_order=[c.tolist() for c in chunks])
    if not shuffle or order == "seq":
        log["chunks_in_order"] = log["chunks_before_order"]
        return chunks
    perm = draws.permutation(len(chunks))
    log["randperm"] = list(perm)
    if order == "rand":
        out = [chunks[i] for i in perm]
    else:
        div = float(order.split("-")[1]) if order.startswith("mix-") else 3.0
        k = int(len(perm) / div)
        rest = sorted(perm[k:])
        if k > 0:
            head = perm[:k]
            if abs(rest[-1] - head[-1]) < abs(rest[0] - head[-1]):
                rest = rest[::-1]
            perm = head + rest
        else:
            perm = rest
        out = [chunks[i] for i in perm]
    log["chunks_in_order"] = [c.tolist() for c in out]
    return out


# ------------------------------------------------------------------------------------------------
# frames: the official resize
# ------------------------------------------------------------------------------------------------
def official_size(height: int, width: int, resolution: int | None) -> tuple[int, int]:
    """The official target (h, w): `resolution` x `resolution` (None: the source's sides), floored to 64."""
    h, w = (height, width) if not resolution else (int(resolution), int(resolution))
    h, w = (h // 64) * 64, (w // 64) * 64
    if h < 64 or w < 64:
        raise VidEditBenchError(f"vidtome: resize=official needs sides of at least 64 px, got {h}x{w} "
                                "(set resolution >= 64)")
    return h, w


def official_resize(frames: Any, size: tuple[int, int]) -> Any:
    """Official `process_frames` on float (T, 3, H, W): resize to cover `size` (torchvision's tensor
    `Resize`: bilinear, antialiased), then centre crop (torchvision's rounding)."""
    import torch.nn.functional as F

    fh, fw = frames.shape[-2:]
    h, w = size
    nw = int(fw / fh * h)
    cover = (h, nw) if nw >= w else (int(fh / fw * w), w)
    if tuple(cover) != (fh, fw):
        frames = F.interpolate(frames, size=cover, mode="bilinear", align_corners=False, antialias=True)
    top, left = int(round((cover[0] - h) / 2.0)), int(round((cover[1] - w) / 2.0))
    return frames[..., top:top + h, left:left + w]


# ------------------------------------------------------------------------------------------------
# the adapter
# ------------------------------------------------------------------------------------------------
class VidToMe(SourceInverted):
    name: ClassVar[str] = "vidtome"
    description: ClassVar[str] = ("VidToMe: PnP editing with self-attention tokens merged across the frames of a "
                                  "chunk and with a global token set shared by the chunks")
    min_gpu_memory_gb: ClassVar[float] = 10.0
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name or local SD 1.5 folder; None = stable-diffusion-v1-5
        "resolution": 512,
        "num_inference_steps": 50,
        "num_inversion_steps": 50,
        "guidance_scale": 7.5,
        "negative_prompt": NEGATIVE_PROMPT,
        "inversion_prompt": "",  # "{source_prompt}": the sample's source caption (inverted in edit)
        "pnp_attn_t": 0.5,
        "pnp_f_t": 0.8,
        "chunk_size": 4,
        "chunk_order": "mix-4",  # seq | rand | mix-K
        "local_merge_ratio": 0.9,
        "merge_global": True,
        "global_merge_ratio": 0.8,
        "global_rand": 0.5,  # probability that the global set is the source side (merged into the chunk)
        "max_downsample": 2,  # merge in layers at most this many times below the latent resolution
        "target_stride": 4,  # one destination frame per target_stride frames
        "inversion_batch_size": 8,
        "vae_batch_size": 8,
        "draws": "independent",  # official: the official code's generators (per-block forks); see the docstring
        "resize": "shorter_side",  # official: cover resolution x resolution, centre crop
        "uint8": "round",  # floor: the official truncation
    }

    def __init__(self, device: str = "cpu", seed: int = 0, **config: Any):
        super().__init__(device=device, seed=seed, **config)
        for key, valid in (("draws", DRAWS), ("resize", RESIZES), ("uint8", UINT8)):
            if self.cfg[key] not in valid:
                raise VidEditBenchError(f"vidtome: option {key} must be one of {', '.join(valid)}, "
                                        f"got {self.cfg[key]!r}")

    def _merge_opts(self) -> dict[str, Any]:
        keys = ("local_merge_ratio", "merge_global", "global_merge_ratio", "global_rand", "max_downsample",
                "target_stride")
        return {k: self.cfg[k] for k in keys}

    # frames ------------------------------------------------------------------------------------
    def _size_for(self, video: Video) -> tuple[int, int]:
        if self.cfg["resize"] == "official":
            return official_size(video.height, video.width, self.cfg.get("resolution"))
        return super()._size_for(video)

    def _frames_tensor(self, video: Video) -> Any:
        if self.cfg["resize"] != "official":
            return super()._frames_tensor(video)
        import torch

        x = torch.from_numpy(np.ascontiguousarray(video.frames)).permute(0, 3, 1, 2).float() / 255.0
        return official_resize(x, self._size_for(video)) * 2.0 - 1.0

    def _finish(self, frames: np.ndarray, video: Video) -> np.ndarray:
        if self.cfg["uint8"] == "floor" and np.asarray(frames).dtype != np.uint8:
            frames = np.floor(np.clip(np.asarray(frames, dtype=np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
        return super()._finish(frames, video)

    # editing -----------------------------------------------------------------------------------
    def denoise(self, source: Any, prompt: str, decide: Decide | None = None,
                on_step: Callable[[int, int, Any, Any], None] | None = None) -> tuple[Any, VidToMeState]:
        """source (S, T, 4, h, w): inverted latents per editing timestep -> (x_0, the merging state).

        `decide` replaces merge decisions (see `Decide`), `on_step(i, t, eps, x)` sees every step's
        guided noise and the latents after it."""
        import torch

        order = str(self.cfg["chunk_order"])
        if order not in ("seq", "rand") and not (order.startswith("mix-") and order[4:].replace(".", "", 1).isdigit()):
            raise VidEditBenchError(f"vidtome: chunk_order must be seq, rand or mix-K, got {order!r}")
        sched = self._scheduler()
        unet = self.pipe.unet
        steps = len(sched.timesteps)
        n = source.shape[1]
        guidance = float(self.cfg["guidance_scale"])
        conv_steps = int(steps * float(self.cfg["pnp_f_t"]))
        attn_steps = int(steps * float(self.cfg["pnp_attn_t"]))
        texts = [self._embed(""), self._embed(str(self.cfg["negative_prompt"])), self._embed(prompt)]
        if self.cfg["draws"] == "official":
            draws: Any = OfficialDraws(self.seed)
            shared, fork_from = None, draws.torch_generator
        else:
            draws, shared, fork_from = IndependentDraws(np.random.default_rng(self.seed)), cpu_generator(self.seed), None
        x = source[0].clone()
        with vidtome_unet(unet, self._merge_opts(), shared, fork_from, self.seed, decide) as state:
            state.latent_tokens = int(x.shape[-2] * x.shape[-1])
            for i, t in enumerate(sched.timesteps):
                state.step = i
                state.inject_conv, state.inject_attn = i < conv_steps, i < attn_steps
                for proc in state.processors:  # the global token set lives for one step
                    proc.global_tokens = proc.global_ids = None
                log: dict[str, Any] = {"step": i, "t": int(t)}
                chunks = video_chunks(n, int(self.cfg["chunk_size"]), draws, order,
                                      shuffle=bool(self.cfg["merge_global"]), log=log)
                state.chunk_log.append(log)
                eps = torch.zeros_like(x)
                for pos, chunk in enumerate(chunks):
                    state.chunk_pos, state.frames = pos, [int(f) for f in chunk]
                    idx = torch.as_tensor(chunk, device=x.device)
                    m = len(chunk)
                    text = torch.cat([e.expand(m, -1, -1) for e in texts]).to(unet.dtype)
                    inp = torch.cat([source[i][idx], x[idx], x[idx]]).to(unet.dtype)
                    _, eps_u, eps_c = unet(inp, t, encoder_hidden_states=text, return_dict=False)[0].float().chunk(3)
                    eps[idx] = eps_u + guidance * (eps_c - eps_u)
                x = sched.step(eps, t, x).prev_sample
                if on_step is not None:
                    on_step(i, int(t), eps, x)
        return x, state

    def edit(
        self,
        video: Video,
        *,
        prompt: str | None = None,
        reference: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        prepared: Any = None,
        source_prompt: str | None = None,
    ) -> np.ndarray:
        import torch

        text = self._require_prompt(prompt)
        self.setup()
        latents = self.source_latents(video, prepared, source_prompt)
        with torch.inference_mode():
            x0, _ = self.denoise(latents, text)
        return self.decode(x0, video)
