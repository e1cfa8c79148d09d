"""VidToMe: video token merging for zero-shot video editing (Li et al., CVPR 2024).

Our implementation on diffusers primitives (SD 1.5 UNet, VAE, DDIM, CLIP text encoder), following the
paper and the official `generate.py`, `vidtome/patch.py` and `configs/default.yaml` (PnP control):

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

Defaults (official `configs/default.yaml`): 50 DDIM steps, 50 inversion steps, guidance 7.5, negative
prompt "ugly, blurry, low res", PnP (pnp_attn_t 0.5, pnp_f_t 0.8), chunk_size 4, order mix-4,
local_merge_ratio 0.9, global merging on with global_merge_ratio 0.8, global_rand 0.5,
max_downsample 2, target_stride 4, SD 1.5, 512 px (shorter side here).

Differences from the official code: merging is in "replace" mode as the official default, written as
index maps (merge = gather of the kept tokens, unmerge = gather of each token's representative), so
repeated local rounds keep the not-merged tokens in one block in front (the official concatenation
order differs from the third round on, i.e. only for chunks of more than 8 frames); the inversion
prompt is "" by default (prepared once per video; the official code inverts with a source caption or
BLIP's: `inversion_prompt: "{source_prompt}"`, preset `official`, uses the sample's source caption);
randomness (chunking, target frames, global side) comes from our seeded generators, not the global
RNG state.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import numpy as np

from bench.types import Video
from methods.diffusion_common import cpu_generator
from methods.pnp import SourceInverted, conv_injection, injection_layers, pnp_qk

NEGATIVE_PROMPT = "ugly, blurry, low res"


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


def bipartite_merge(metric: Any, src: Any, dst: Any, ratio: float) -> TokenMerge:
    """Merge the `ratio` most similar source tokens into their cosine-nearest destination token.

    metric (B, N, C); src (S,), dst (D,) disjoint index sets covering the sequence. The matching is
    shared across the batch: a source token's score is its best similarity over every sample's
    destinations. The merged sequence is [unmerged sources (in source order), destinations].
    """
    import torch

    feats = metric.float()
    feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    a, b = feats[:, src], feats[:, dst]  # (B, S, C), (B, D, C)
    scores = torch.cat(list(a @ b.transpose(-1, -2)), dim=-1)  # (S, B*D): aligned over the batch
    best, best_idx = scores.max(dim=-1)
    best_idx = best_idx % dst.numel()
    r = min(src.numel(), int(src.numel() * ratio))
    order = best.argsort(descending=True)
    merged, unmerged = order[:r], order[r:].sort().values
    keep = torch.cat([src[unmerged], dst])
    back = torch.empty(metric.shape[1], dtype=torch.long, device=metric.device)
    u = unmerged.numel()
    back[dst] = u + torch.arange(dst.numel(), device=metric.device)
    back[src[unmerged]] = torch.arange(u, device=metric.device)
    back[src[merged]] = u + best_idx[merged]
    return TokenMerge(keep, back)


def local_merge(x: Any, frames: int, ratio: float, stride: int, generator: Any) -> TokenMerge:
    """VidToMe local merging of a chunk's joined tokens x (B, frames*N, C).

    Rounds: with curF frame sets (plus E leftover tokens in front), a random target frame per
    `stride` frames is the destination (with the leftovers); the other frames' tokens are the
    sources. Until one frame set is left.
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
        target = int(torch.randint(0, s, (1,), generator=generator))
        frame_of = torch.arange(cur_f * n, device=x.device) // n
        is_dst = (frame_of % s) == target
        idx = torch.arange(cur_f * n, device=x.device) + extra
        src = idx[~is_dst]
        dst = torch.cat([torch.arange(extra, device=x.device), idx[is_dst]])  # leftovers stay in front
        step = bipartite_merge(tokens, src, dst, ratio)
        tokens = step.merge(tokens)
        total = total.then(step)
        extra = tokens.shape[1] - int(is_dst.sum())
        cur_f = int(is_dst.sum()) // n
    return total


def global_merge(local: Any, glob: Any, ratio: float, local_is_src: bool) -> tuple[TokenMerge, slice]:
    """Merge a chunk's tokens with the global set: the sequence is [local, global] when the chunk is
    the source side, else [global, local]. Returns the merge over that sequence and the slice of the
    local tokens in it."""
    import torch

    L, G = local.shape[1], glob.shape[1]
    seq = torch.cat([local, glob], 1) if local_is_src else torch.cat([glob, local], 1)
    src_len = L if local_is_src else G
    idx = torch.arange(L + G, device=local.device)
    m = bipartite_merge(seq, idx[:src_len], idx[src_len:], ratio)
    return m, (slice(0, L) if local_is_src else slice(G, G + L))


# ------------------------------------------------------------------------------------------------
# the attention processor
# ------------------------------------------------------------------------------------------------
@dataclass
class VidToMeState:
    latent_tokens: int = 0  # h*w of the latent (to tell the layers' resolution)
    inject_attn: bool = False
    inject_conv: bool = False
    generator: Any = None
    opts: dict[str, Any] = field(default_factory=dict)
    processors: list[Any] = field(default_factory=list)
    last_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # layer -> (tokens in, merged)


class VidToMeAttnProcessor:
    """Self-attention with VidToMe token merging; batch = 3 branches x F frames, [source, uncond, cond]."""

    def __init__(self, state: VidToMeState, name: str, inject: bool):
        self.state, self.name, self.inject = state, name, inject
        self.global_tokens: Any = None

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

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None, attention_mask: Any = None,
                 temb: Any = None, *args: Any, **kwargs: Any) -> Any:
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

        joined = hidden_states.reshape(3, frames * tokens, dim)  # the chunk's frames as one token set
        m_local = local_merge(joined, frames, float(opts["local_merge_ratio"]), int(opts["target_stride"]),
                              state.generator)
        merged = m_local.merge(joined)
        m_global, local_slice = None, slice(0, merged.shape[1])
        if opts["merge_global"]:
            if self.global_tokens is not None:
                import torch

                local_is_src = bool(torch.rand(1, generator=state.generator) > float(opts["global_rand"]))
                glob = self.global_tokens.to(merged)
                m_global, local_slice = global_merge(merged, glob, float(opts["global_merge_ratio"]), local_is_src)
                seq = torch.cat([merged, glob], 1) if local_is_src else torch.cat([glob, merged], 1)
                merged = m_global.merge(seq)
                self.global_tokens = m_global.unmerge(merged)[:, local_slice].detach()
            else:
                self.global_tokens = merged.detach()
        state.last_counts[self.name] = (frames * tokens, merged.shape[1])
        out = self._attend(attn, merged, 1)
        if m_global is not None:
            out = m_global.unmerge(out)[:, local_slice]
        out = m_local.unmerge(out)
        return out.reshape(batch, tokens, -1)


@contextmanager
def vidtome_unet(unet: Any, opts: dict[str, Any], generator: Any) -> Iterator[VidToMeState]:
    """Install VidToMe processors on every attn1 plus the PnP conv injection; restore on exit."""
    state = VidToMeState(generator=generator, opts=dict(opts))
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
def video_chunks(num_frames: int, chunk_size: int, rng: np.random.Generator, order: str = "mix-4",
                 shuffle: bool = True) -> list[np.ndarray]:
    """The official chunking: a first chunk of random length 1..chunk_size, then chunk_size each,
    reversed with probability 0.5; then ordered 'seq', 'rand' or 'mix-K' (a random 1/K of the chunks
    first, the rest in sequence, starting from the end nearer the last random chunk)."""
    idx = np.arange(num_frames)
    first = int(rng.integers(0, chunk_size)) + 1
    chunks = [idx[:first]] + [idx[i:i + chunk_size] for i in range(first, num_frames, chunk_size)]
    if rng.random() > 0.5:
        chunks = chunks[::-1]
    if not shuffle or order == "seq":
        return chunks
    perm = [int(i) for i in rng.permutation(len(chunks))]
    if order == "rand":
        return [chunks[i] for i in perm]
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
    return [chunks[i] for i in perm]


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
    }

    def _merge_opts(self) -> dict[str, Any]:
        keys = ("local_merge_ratio", "merge_global", "global_merge_ratio", "global_rand", "max_downsample",
                "target_stride")
        return {k: self.cfg[k] for k in keys}

    def denoise(self, source: Any, prompt: str) -> tuple[Any, VidToMeState]:
        """source (S, T, 4, h, w): inverted latents per editing timestep -> (x_0, the merging state)."""
        import torch

        order = str(self.cfg["chunk_order"])
        if order not in ("seq", "rand") and not (order.startswith("mix-") and order[4:].replace(".", "", 1).isdigit()):
            from bench.errors import VidEditBenchError

            raise VidEditBenchError(f"vidtome: chunk_order must be seq, rand or mix-K, got {order!r}")
        sched = self._scheduler()
        unet = self.pipe.unet
        steps = len(sched.timesteps)
        n = source.shape[1]
        guidance = float(self.cfg["guidance_scale"])
        conv_steps = int(steps * float(self.cfg["pnp_f_t"]))
        attn_steps = int(steps * float(self.cfg["pnp_attn_t"]))
        texts = [self._embed(""), self._embed(str(self.cfg["negative_prompt"])), self._embed(prompt)]
        rng = np.random.default_rng(self.seed)
        x = source[0].clone()
        with vidtome_unet(unet, self._merge_opts(), cpu_generator(self.seed)) as state:
            state.latent_tokens = int(x.shape[-2] * x.shape[-1])
            for i, t in enumerate(sched.timesteps):
                state.inject_conv, state.inject_attn = i < conv_steps, i < attn_steps
                for proc in state.processors:  # the global token set lives for one step
                    proc.global_tokens = None
                eps = torch.zeros_like(x)
                for chunk in video_chunks(n, int(self.cfg["chunk_size"]), rng, order,
                                          shuffle=bool(self.cfg["merge_global"])):
                    idx = torch.as_tensor(chunk, device=x.device)
                    m = len(chunk)
                    text = torch.cat([e.expand(m, -1, -1) for e in texts]).to(unet.dtype)
                    inp = torch.cat([source[i][idx], x[idx], x[idx]]).to(unet.dtype)
                    _, eps_u, eps_c = unet(inp, t, encoder_hidden_states=text, return_dict=False)[0].float().chunk(3)
                    eps[idx] = eps_u + guidance * (eps_c - eps_u)
                x = sched.step(eps, t, x).prev_sample
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
