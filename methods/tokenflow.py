"""TokenFlow: consistent diffusion features for consistent video editing (Geyer et al., ICLR 2024).

Our implementation on diffusers primitives (UNet2DConditionModel, AutoencoderKL, DDIMScheduler, CLIP
text encoder), following the paper and the official `run_tokenflow_pnp.py` / `preprocess.py`:

* `prepare`: the frames' VAE latents (posterior mean) are DDIM-inverted with the inversion prompt
  (no guidance, `num_inversion_steps` steps) and the inverted latent x_t is kept at every timestep
  t the editing will visit; editing starts from the most noisy one.
* every denoising step runs the UNet on three branches, `[source x_t, edit (unconditional), edit
  (conditional)]` with text `[inversion prompt, negative prompt, target prompt]`, and applies
  Plug-and-Play injection: in the first `pnp_f_t` of the steps the residual features of decoder
  block `up_blocks[1].resnets[1]` of both edit branches are replaced by the source branch's; in the
  first `pnp_attn_t` of the steps the self-attention queries and keys of every decoder attention
  layer but the first (lowest resolution) are replaced by the source branch's;
* keyframes: one random frame per batch of `batch_size` frames (re-drawn every step, seeded) is
  denoised jointly with the other keyframes, self-attention of the edit branches extended to the
  keys/values of ALL keyframes (the source branch attends within its frame);
* TokenFlow propagation: for every other frame and every self-attention layer, each token finds
  its nearest neighbour (cosine similarity of the SOURCE branch's self-attention inputs, i.e. the
  source video's diffusion features at this step) in the previous and in the next keyframe; the
  frame's self-attention output is the keyframes' outputs at those tokens, linearly combined by
  temporal distance (w = d_next / (d_prev + d_next) on the previous keyframe; convex). The
  propagated frames are then denoised in batches of `batch_size` with those outputs.

Defaults (official `configs/config_pnp.yaml` + `preprocess.py`): 50 DDIM steps, 500 inversion steps,
guidance 7.5, negative prompt "ugly, blurry, low res, unrealistic, unaesthetic", pnp_attn_t 0.5,
pnp_f_t 0.8, batch_size 8, shorter side 512. The default checkpoint is SD 1.5
(`stable-diffusion-v1-5`; the official default SD 2.1 base repo was removed from the hub):
`weights: stable-diffusion-2-1-base` (or a local folder) selects 2.1.

Differences from the official code: (1) propagation weights use the actual previous/next keyframes
of each frame, w linear in the distance (the paper's formulation; the official code uses the
keyframes of the frame's batch and of the batch before, distances to the batch CENTRES and a sigmoid
of the ratio); (2) the inversion prompt is "" by default, so the inversion is prepared (and cached)
once per source video; the official code inverts with a description of the source, which
`inversion_prompt: "{source_prompt}"` (preset `official`) does with the sample's source caption,
inverting inside `edit`; (3) clips whose length is not
a multiple of `batch_size` keep every frame (the last batch is shorter) where the official code
drops the remainder; (4) the random generator is our seeded CPU generator.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import numpy as np

from bench.types import Video
from methods.diffusion_common import batches, cpu_generator
from methods.pnp import SourceInverted, conv_injection, injection_layers, pnp_qk

NEGATIVE_PROMPT = "ugly, blurry, low res, unrealistic, unaesthetic"


# ------------------------------------------------------------------------------------------------
# keyframes and propagation (pure functions, unit-tested)
# ------------------------------------------------------------------------------------------------
def sample_keyframes(num_frames: int, batch_size: int, generator: Any) -> np.ndarray:
    """One random frame per batch of `batch_size` consecutive frames (ascending)."""
    import torch

    out = []
    for b in batches(num_frames, batch_size):
        out.append(b.start + int(torch.randint(len(b), (1,), generator=generator)))
    return np.asarray(out, dtype=np.int64)


def keyframe_neighbours(num_frames: int, keyframes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every frame: index (into `keyframes`) of the previous and next keyframe, and the weight of
    the previous one, w = d_next / (d_prev + d_next) (1 on a keyframe or past the last one)."""
    keys = np.asarray(keyframes)
    frames = np.arange(num_frames)
    nxt = np.searchsorted(keys, frames, side="left")  # first keyframe >= f
    prev = np.searchsorted(keys, frames, side="right") - 1  # last keyframe <= f
    prev = np.where(prev < 0, nxt, prev)
    nxt = np.where(nxt >= len(keys), prev, nxt)
    d_prev = np.abs(frames - keys[prev]).astype(np.float64)
    d_next = np.abs(keys[nxt] - frames).astype(np.float64)
    total = d_prev + d_next
    w = np.where(total > 0, d_next / np.where(total > 0, total, 1.0), 1.0)
    return prev.astype(np.int64), nxt.astype(np.int64), w.astype(np.float32)


def nearest_tokens(query: Any, keys: Any) -> Any:
    """(N, C), (M, C) -> (N,) index of each query token's cosine nearest neighbour among `keys`."""
    q = query.float()
    k = keys.float()
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    k = k / k.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (q @ k.T).argmax(dim=-1)


def propagate(key_out: Any, key_src: Any, frame_src: Any, prev: Any, nxt: Any, w: Any) -> tuple[Any, Any, Any]:
    """TokenFlow propagation of keyframe features to frames.

    key_out (G, K, N, C): the keyframes' self-attention outputs per branch; key_src (K, N, C): the
    keyframes' source features; frame_src (F, N, C): the frames' source features; prev, nxt (F,):
    keyframe indices; w (F,): weight of prev. Returns (out (G, F, N, C), nn_prev (F, N), nn_next (F, N)):
    out[g, f, i] = w[f] key_out[g, prev[f], nn_prev[f, i]] + (1 - w[f]) key_out[g, nxt[f], nn_next[f, i]].
    """
    import torch

    outs, nn_p, nn_n = [], [], []
    for f in range(frame_src.shape[0]):
        p, n = int(prev[f]), int(nxt[f])
        ip = nearest_tokens(frame_src[f], key_src[p])
        inn = ip if n == p else nearest_tokens(frame_src[f], key_src[n])
        wf = float(w[f])
        outs.append(wf * key_out[:, p, ip] + (1.0 - wf) * key_out[:, n, inn])
        nn_p.append(ip)
        nn_n.append(inn)
    return torch.stack(outs, dim=1), torch.stack(nn_p), torch.stack(nn_n)


# ------------------------------------------------------------------------------------------------
# UNet hooks: PnP injection, extended attention, propagation
# ------------------------------------------------------------------------------------------------
@dataclass
class TokenFlowState:
    mode: str = "plain"  # "keyframes" | "propagate" | "plain"
    inject_attn: bool = False
    inject_conv: bool = False
    prev: Any = None  # per frame of the current batch: keyframe indices and weights
    nxt: Any = None
    w: Any = None
    processors: list[Any] = field(default_factory=list)


class TokenFlowAttnProcessor:
    """Self-attention (attn1) processor: batch = 3 branches x n frames, [source, uncond, cond]."""

    def __init__(self, state: TokenFlowState, inject: bool):
        self.state = state
        self.inject = inject  # a PnP query/key injection layer
        self.key_src: Any = None  # (K, N, C) keyframe source features
        self.key_out: Any = None  # (3, K, N, C) keyframe attention outputs

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None, attention_mask: Any = None,
                 temb: Any = None, *args: Any, **kwargs: Any) -> Any:
        import torch
        import torch.nn.functional as F

        if encoder_hidden_states is not None or hidden_states.ndim != 3:
            raise RuntimeError("TokenFlowAttnProcessor is for self-attention on (B, N, C) tokens")
        batch, tokens, dim = hidden_states.shape
        if batch % 3:
            raise RuntimeError(f"tokenflow: UNet batch {batch} is not 3 branches x frames")
        n = batch // 3
        state = self.state
        if state.mode == "propagate":
            out, _, _ = propagate(self.key_out, self.key_src, hidden_states[:n], state.prev, state.nxt, state.w)
            return out.reshape(batch, tokens, -1).to(hidden_states.dtype)

        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        if self.inject and state.inject_attn:
            q, k = pnp_qk(q, k, n)
        heads = attn.heads
        head_dim = q.shape[-1] // heads

        def split(x: Any) -> Any:
            return x.view(x.shape[0], -1, heads, head_dim).transpose(1, 2)

        outs = [F.scaled_dot_product_attention(split(q[:n]), split(k[:n]), split(v[:n]))]  # source: per frame
        for g in (1, 2):
            sl = slice(g * n, (g + 1) * n)
            if state.mode == "keyframes":  # extended attention over all keyframes of the branch
                k_ext = split(k[sl].reshape(1, n * tokens, -1))
                v_ext = split(v[sl].reshape(1, n * tokens, -1))
                outs.append(torch.cat([F.scaled_dot_product_attention(split(q[sl][f:f + 1]), k_ext, v_ext)
                                       for f in range(n)]))
            else:
                outs.append(F.scaled_dot_product_attention(split(q[sl]), split(k[sl]), split(v[sl])))
        out = torch.cat(outs).transpose(1, 2).reshape(batch, tokens, heads * head_dim).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        out = out / attn.rescale_output_factor
        if state.mode == "keyframes":
            self.key_src = hidden_states[:n].detach()
            self.key_out = out.detach().view(3, n, tokens, -1)
        return out


@contextmanager
def tokenflow_unet(unet: Any) -> Iterator[TokenFlowState]:
    """Install TokenFlow's attention processors on every attn1 and the PnP conv injection; restore on exit."""
    state = TokenFlowState()
    saved = dict(unet.attn_processors)
    inject = injection_layers(list(saved))
    procs: dict[str, Any] = {}
    for name, proc in saved.items():
        if name.endswith("attn1.processor"):
            procs[name] = TokenFlowAttnProcessor(state, name in inject)
            state.processors.append(procs[name])
        else:
            procs[name] = proc
    with conv_injection(unet, lambda: state.inject_conv and state.mode != "plain", "tokenflow"):
        unet.set_attn_processor(procs)
        try:
            yield state
        finally:
            unet.set_attn_processor(saved)


# ------------------------------------------------------------------------------------------------
# the adapter
# ------------------------------------------------------------------------------------------------
class TokenFlow(SourceInverted):
    name: ClassVar[str] = "tokenflow"
    description: ClassVar[str] = ("TokenFlow: PnP-edited keyframes with extended attention, other frames' features "
                                  "propagated by nearest neighbours of the source's diffusion features")
    min_gpu_memory_gb: ClassVar[float] = 12.0
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name or local folder; None = stable-diffusion-v1-5 (SD 2.1: stable-diffusion-2-1-base)
        "resolution": 512,  # shorter side while editing (multiples of 8); None = source size
        "num_inference_steps": 50,
        "num_inversion_steps": 500,
        "guidance_scale": 7.5,
        "negative_prompt": NEGATIVE_PROMPT,
        "inversion_prompt": "",  # "{source_prompt}": the sample's source caption (inverted in edit)
        "pnp_attn_t": 0.5,  # fraction of the steps with self-attention query/key injection
        "pnp_f_t": 0.8,  # fraction of the steps with residual (conv) feature injection
        "batch_size": 8,  # frames per batch; one keyframe per batch
        "inversion_batch_size": 8,
        "vae_batch_size": 8,
    }

    # --- edit ------------------------------------------------------------------------------------
    def denoise(self, source: Any, prompt: str, generator: Any, inversion_prompt: str = "") -> tuple[Any, list[np.ndarray]]:
        """source (S, T, 4, h, w): inverted latents per editing timestep. Returns (x_0, keyframes per step).
        The source branch is conditioned on the inversion prompt, as in the official code."""
        import torch

        sched = self._scheduler()
        unet = self.pipe.unet
        steps = len(sched.timesteps)
        n = source.shape[1]
        bs = max(1, int(self.cfg["batch_size"]))
        guidance = float(self.cfg["guidance_scale"])
        conv_steps = int(steps * float(self.cfg["pnp_f_t"]))
        attn_steps = int(steps * float(self.cfg["pnp_attn_t"]))
        texts = [self._embed(inversion_prompt), self._embed(str(self.cfg["negative_prompt"])),
                 self._embed(prompt)]

        def run(src: Any, x: Any, t: Any) -> Any:
            m = len(x)
            text = torch.cat([e.expand(m, -1, -1) for e in texts]).to(unet.dtype)
            inp = torch.cat([src, x, x]).to(unet.dtype)
            return unet(inp, t, encoder_hidden_states=text, return_dict=False)[0].float()

        x = source[0].clone()
        chosen: list[np.ndarray] = []
        with tokenflow_unet(unet) as state:
            for i, t in enumerate(sched.timesteps):
                state.inject_conv, state.inject_attn = i < conv_steps, i < attn_steps
                src = source[i]
                keys = sample_keyframes(n, bs, generator)
                chosen.append(keys)
                idx = torch.as_tensor(keys, device=x.device)
                state.mode = "keyframes"
                run(src[idx], x[idx], t)
                prev, nxt, w = keyframe_neighbours(n, keys)
                state.mode = "propagate"
                out = []
                for b in batches(n, bs):
                    state.prev, state.nxt, state.w = prev[b.start:b.stop], nxt[b.start:b.stop], w[b.start:b.stop]
                    _, eps_u, eps_c = run(src[b.start:b.stop], x[b.start:b.stop], t).chunk(3)
                    eps = eps_u + guidance * (eps_c - eps_u)
                    out.append(sched.step(eps, t, x[b.start:b.stop]).prev_sample)
                x = torch.cat(out)
                state.mode = "plain"
        return x, chosen

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
            x0, _ = self.denoise(latents, text, cpu_generator(self.seed), self.inversion_text(source_prompt))
        return self.decode(x0, video)


__all__ = ["TokenFlow", "keyframe_neighbours", "nearest_tokens", "propagate", "sample_keyframes", "tokenflow_unet"]
