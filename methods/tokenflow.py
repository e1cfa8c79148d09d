"""TokenFlow: consistent diffusion features for consistent video editing (Geyer et al., ICLR 2024).

Our implementation on diffusers primitives (UNet2DConditionModel, AutoencoderKL, DDIMScheduler, CLIP
text encoder) of the official PnP code (omerbt/TokenFlow at 5dd6a69: `preprocess.py`,
`run_tokenflow_pnp.py`, `tokenflow_utils.py`), quirks included:

* `prepare`: the frames' VAE latents x0 (posterior mean) are DDIM-inverted with the inversion prompt
  (no guidance, `num_inversion_steps` steps); the inverted x_t is kept at every editing timestep (the
  source branch of PnP) and after the last (noisiest) inversion step.
* start (`start_latent: renoise`): editing starts from add_noise(x0, eps_N, t_first), where eps_N =
  (x_N - sqrt(a_N) x0) / sqrt(1 - a_N) is the noise implied by the noisiest inverted latent x_N (not
  from the inverted latent at t_first).
* every UNet call runs three branches, `[source x_t, edit (unconditional), edit (conditional)]` with
  text `[inversion prompt, negative prompt, target prompt]`; PnP injection: in the first `pnp_f_t` of
  the steps the output of `up_blocks[1].resnets[1].conv2` of both edit branches is replaced by the
  source branch's; in the first `pnp_attn_t` of the steps the self-attention queries and keys of every
  decoder attention layer but the first are replaced by the source branch's.
* every step: one random keyframe per batch of `batch_size` frames (re-drawn every step, the seed's
  CPU generator = the official global generator's draws); a pivotal pass denoises the keyframes with
  the edit branches' self-attention extended to ALL keyframes of the branch (the source branch attends
  within its frame), storing every layer's source self-attention input and the self-attention output
  of the three branches; its result is discarded. Then every batch of frames (keyframe included) is
  denoised with its self-attention replaced by propagation (`propagation: official`): each token's
  cosine nearest neighbour, from the source branch's CURRENT self-attention input, among the stored
  source tokens of the keyframe of its batch b and of batch b-1; the output is the stored output there,
  blended w1 * kf_b + (1 - w1) * kf_{b-1} with w1 = sigmoid(d2 / (d1 + d2)) of the frame's distances to
  the two batch CENTRES (b * batch_size + batch_size // 2), batch 0 its own keyframe only; the same
  indices and weights for all three branches (the source branch is propagated too); guidance and a
  DDIM step per batch.
* decode: VAE in chunks of `vae_batch_size`; `uint8: floor` truncates as the official `ToPILImage`.

`propagation: paper` is the paper's formulation (and our earlier default): a frame blends its actual
previous and next keyframes, w = d_next / (d_prev + d_next) on the previous one. `start_latent:
inverted` starts from the inverted latent at the first editing step.

Defaults (official `configs/config_pnp.yaml` + `preprocess.py`): 50 DDIM steps, 500 inversion steps,
guidance 7.5, negative prompt "ugly, blurry, low res, unrealistic, unaesthetic", pnp_attn_t 0.5,
pnp_f_t 0.8, batch_size 8, official propagation and starting latent. The default checkpoint is SD 1.5
(`stable-diffusion-v1-5`; the official default SD 2.1 base repo was removed from the hub):
`weights: stable-diffusion-2-1-base` (or a local folder) selects 2.1.

Equality with the official code (tests/test_method_goldens_tokenflow.py, on the method goldens: the
official code on tiny random-weight SD-1.5-layout models, float32 CPU): the keyframe draws are equal;
x0, the inverted latents, eps_N and the start latent within the RECIPE's 5e-5 / 2e-4; fed the golden
inversion, the step-0 nearest-neighbour fields are equal (all 112 fields) and, started from the golden's
previous x, every step is within 5e-5 of the golden but one: the first tensor that differs is the
latent after step 4 (t = 501), frame 14 only (max 0.065, around latent rows 4-5, columns 7-9). Its
cause is the official nearest-neighbour argmax (`tokenflow_utils.py:335-343`) over near-tied cosine
similarities: at that step frame 14's source features have top-2 margins of 1.8e-7
(down_blocks.0.attentions.0, previous keyframe), 2.6e-6 and 6.0e-6, and rounding differences of ~1e-7
relative pick the other token (our step 0 is 4.2e-5 from the golden, the size of the official code's own
1- vs 2-thread difference, even with the official per-head attention arithmetic used here). Free running
from the golden inversion the flip stays in that frame; end to end (own inversion) within the RECIPE's
loose bounds. The self-attention is computed as the official code does (per head: matmul, scale,
softmax), not with fused SDPA, whose rounding flipped another near-tie (frame 15, step 1).

Differences from the official code that change output frames, preset `official`: (1) the checkpoint
is SD 1.5 unless `weights` names SD 2.1 base; (2) the output is resized back to the source size
(Lanczos; official: kept at 512x512); (3) clips whose frame count is not a multiple of `batch_size`
are refused (`partial_batch: error`; official edits only the first multiple of `batch_size` frames);
(4) on CUDA the latents stay float32 between UNet calls (official: float16 frames, latents, noise and
DDIM steps under autocast); on CPU both are float32.
Default settings, in addition: (5) inversion prompt "" (prepared and cached once per source video;
official: a description of the source, `inversion_prompt: "{source_prompt}"`); (6) the shorter side
scaled to 512 with antialiased bicubic (official: H x W = 512 x 512, Lanczos, `resize: square`);
(7) uint8 by rounding (official: truncation, `uint8: floor`); (8) a clip whose length is not a multiple
of `batch_size` keeps every frame, its last batch shorter with its own keyframe (`partial_batch: keep`).

Official mode: equal to official code on goldens (tests/test_method_goldens_tokenflow.py).

Differences from the official code that change output frames:
* checkpoint: SD 1.5 unless `weights` names SD 2.1 base (official: SD 2.1 base).
* output size: resized back to the source size, Lanczos (official: kept at 512×512).
* partial batches: a clip whose frame count is not a multiple of `batch_size` is refused (official: edits only the first multiple).
* CUDA precision: latents stay float32 between UNet calls (official: float16 under autocast, CPU float32 in both).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from bench.api.errors import VidEditBenchError
from bench.api.types import Video
from methods.diffusion_common import batches, cpu_generator, frames_to_pil, processing_size
from methods.pnp import SourceInverted, conv_injection, injection_layers, pnp_qk

NEGATIVE_PROMPT = "ugly, blurry, low res, unrealistic, unaesthetic"
#: option -> its valid values (the first is the default)
CHOICES: dict[str, tuple[str, ...]] = {
    "propagation": ("official", "paper"),
    "start_latent": ("renoise", "inverted"),
    "resize": ("shorter-side", "square"),
    "uint8": ("round", "floor"),
    "partial_batch": ("keep", "error"),
}


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


def batch_weights(batch: int, batch_size: int, num: int) -> Any:
    """Official weight of the own batch's keyframe for the `num` frames of batch `batch` (> 0):
    w1 = sigmoid(d2 / (d1 + d2)), d1, d2 the distances to the centres of batches `batch` and `batch` - 1."""
    import torch

    s = torch.arange(num) + batch * batch_size
    d1 = (s - (batch * batch_size + batch_size // 2)).abs()
    d2 = (s - ((batch - 1) * batch_size + batch_size // 2)).abs()
    return torch.sigmoid(d2 / (d1 + d2))


def cosine_argmax(query: Any, keys: Any, parts: int = 1) -> list[Any]:
    """(N, C), (parts * M, C) -> per part, (N,) index of each query token's cosine nearest neighbour
    among that part's M keys (one similarity matrix over all parts, as the official code)."""
    q = query / query.norm(dim=-1, keepdim=True)
    k = keys / keys.norm(dim=-1, keepdim=True)
    return [sim.argmax(dim=-1) for sim in (q @ k.T).chunk(parts, dim=1)]


def propagate_batch(key_out: Any, key_src: Any, frame_src: Any, batch: int, w1: Any) -> tuple[Any, list[Any]]:
    """Official TokenFlow propagation for the frames of batch `batch`.

    key_out (G, K, N, C): keyframe self-attention outputs per branch (keyframe k is batch k's);
    key_src (K, N, C): their source features; frame_src (F, N, C): the batch's source features now;
    w1 (F,): weight of the own keyframe. Returns (out (G, F, N, C), [nn into kf_b, nn into kf_{b-1}]
    each (F * N,)): out = w1 kf_b[nn_b] + (1 - w1) kf_{b-1}[nn_{b-1}], or kf_0[nn_0] for batch 0.
    """
    import torch

    f, n, c = frame_src.shape
    which = [batch] + ([batch - 1] if batch > 0 else [])
    nn = cosine_argmax(frame_src.reshape(-1, c), key_src[which].reshape(-1, c), len(which))
    picked = [key_out[:, k][:, idx].view(len(key_out), f, n, -1) for k, idx in zip(which, nn)]
    if len(picked) == 1:
        return picked[0], nn
    w = w1.to(picked[0].dtype).view(1, f, 1, 1)
    return w * picked[0] + (1 - w) * picked[1], nn


def keyframe_neighbours(num_frames: int, keyframes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paper propagation: for every frame, index (into `keyframes`) of the previous and next keyframe,
    and the weight of the previous one, w = d_next / (d_prev + d_next) (1 on a keyframe or past the last one)."""
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
    return cosine_argmax(query.float(), keys.float())[0]


def propagate(key_out: Any, key_src: Any, frame_src: Any, prev: Any, nxt: Any, w: Any) -> tuple[Any, Any, Any]:
    """Paper propagation of keyframe features to frames.

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


def attention(q: Any, k: Any, v: Any) -> Any:
    """softmax(q k^T * scale) v on (B, heads, N, d) queries and (B, heads, M, d) keys/values, computed as
    the official code does (per head: a batched matmul, scaled after the product, softmax; up to 12
    frames per matmul, else one at a time), not with fused SDPA: near-tie nearest neighbours make the
    edit sensitive to float rounding."""
    import torch

    out = torch.empty_like(q)
    step = q.shape[0] if q.shape[0] <= 12 else 1
    scale = q.shape[-1] ** -0.5
    for f in range(0, q.shape[0], step):
        for j in range(q.shape[1]):
            sim = torch.bmm(q[f:f + step, j], k[f:f + step, j].transpose(-1, -2)) * scale
            out[f:f + step, j] = torch.bmm(sim.softmax(dim=-1), v[f:f + step, j])
    return out


def ddim_eps(x0: Any, noisiest: Any, alpha: Any) -> Any:
    """The noise that takes x0 to the noisiest inverted latent: (x_N - sqrt(a_N) x0) / sqrt(1 - a_N)."""
    return (noisiest - alpha ** 0.5 * x0) / (1 - alpha) ** 0.5


# ------------------------------------------------------------------------------------------------
# UNet hooks: PnP injection, extended attention, propagation
# ------------------------------------------------------------------------------------------------
@dataclass
class TokenFlowTrace:
    """Test hook: `method.trace = TokenFlowTrace()` records one edit's intermediates; `teacher` (x after
    each step) makes step i start from teacher[i - 1] instead of the own previous step (teacher forcing)."""

    start: Any = None  # x entering step 0
    keyframes: list[np.ndarray] = field(default_factory=list)
    steps: list[Any] = field(default_factory=list)  # x after each step
    nn: list[tuple[int, str, list[Any]]] = field(default_factory=list)  # step nn_step: (batch, layer, [nn_b, nn_b-1])
    nn_step: int = 0
    decoded: Any = None  # float frames (T, h, w, 3) in [0, 1] before uint8
    teacher: Sequence[Any] | None = None


@dataclass
class TokenFlowState:
    mode: str = "plain"  # "keyframes" | "propagate" | "plain"
    propagation: str = "official"
    inject_attn: bool = False
    inject_conv: bool = False
    batch: int = 0  # official: index of the current batch (= of its keyframe)
    w1: Any = None  # official: weight of the own batch's keyframe, per frame of the batch
    prev: Any = None  # paper: per frame of the current batch, keyframe indices and weights
    nxt: Any = None
    w: Any = None
    nn_log: list[Any] | None = None
    processors: list[Any] = field(default_factory=list)


class TokenFlowAttnProcessor:
    """Self-attention (attn1) processor: batch = 3 branches x n frames, [source, uncond, cond]."""

    def __init__(self, state: TokenFlowState, inject: bool, name: str = ""):
        self.state = state
        self.inject = inject  # a PnP query/key injection layer
        self.name = name
        self.key_src: Any = None  # (K, N, C) keyframe source features
        self.key_out: Any = None  # (3, K, N, C) keyframe attention outputs

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None, attention_mask: Any = None,
                 temb: Any = None, *args: Any, **kwargs: Any) -> Any:
        import torch

        if encoder_hidden_states is not None or hidden_states.ndim != 3:
            raise RuntimeError("TokenFlowAttnProcessor is for self-attention on (B, N, C) tokens")
        batch, tokens, dim = hidden_states.shape
        if batch % 3:
            raise RuntimeError(f"tokenflow: UNet batch {batch} is not 3 branches x frames")
        n = batch // 3
        state = self.state
        if state.mode == "propagate":
            if state.propagation == "official":
                out, nn = propagate_batch(self.key_out, self.key_src, hidden_states[:n], state.batch, state.w1)
                if state.nn_log is not None:
                    state.nn_log.append((state.batch, self.name, nn))
            else:
                out, _, _ = propagate(self.key_out, self.key_src, hidden_states[:n], state.prev, state.nxt, state.w)
            return out.reshape(batch, tokens, -1).to(hidden_states.dtype)

        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        if self.inject and state.inject_attn:
            q, k = pnp_qk(q, k, n)
        heads = attn.heads
        head_dim = q.shape[-1] // heads

        def split(x: Any) -> Any:  # (B, M, heads * d) -> contiguous (B, heads, M, d)
            return x.reshape(x.shape[0], -1, heads, head_dim).permute(0, 2, 1, 3).contiguous()

        def frames_of(x: Any) -> Any:  # extended attention: every frame sees the tokens of all n frames
            return x.reshape(1, n * tokens, -1).repeat(n, 1, 1) if state.mode == "keyframes" else x

        outs = [attention(split(q[:n]), split(k[:n]), split(v[:n]))]  # source: per frame
        for g in (1, 2):
            sl = slice(g * n, (g + 1) * n)
            outs.append(attention(split(q[sl]), split(frames_of(k[sl])), split(frames_of(v[sl]))))
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
            procs[name] = TokenFlowAttnProcessor(state, name in inject, name.removesuffix(".attn1.processor"))
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
        "resolution": 512,  # processing size (see `resize`); None = source size
        "resize": "shorter-side",  # "shorter-side": scale the shorter side to `resolution`; "square": official H = W
        "num_inference_steps": 50,
        "num_inversion_steps": 500,
        "guidance_scale": 7.5,
        "negative_prompt": NEGATIVE_PROMPT,
        "inversion_prompt": "",  # "{source_prompt}": the sample's source caption (inverted in edit)
        "pnp_attn_t": 0.5,  # fraction of the steps with self-attention query/key injection
        "pnp_f_t": 0.8,  # fraction of the steps with residual (conv) feature injection
        "batch_size": 8,  # frames per batch; one keyframe per batch
        "propagation": "official",  # "paper": actual previous/next keyframes, linear weights
        "start_latent": "renoise",  # official add_noise(x0, eps_N, t_first); "inverted": inverted x at t_first
        "partial_batch": "keep",  # "error": refuse clips that are not a multiple of batch_size (official drops)
        "uint8": "round",  # "floor": official truncation
        "inversion_batch_size": 8,
        "vae_batch_size": 8,
    }

    def __init__(self, device: str = "cpu", seed: int = 0, **config: Any):
        super().__init__(device=device, seed=seed, **config)
        for key, valid in CHOICES.items():
            if str(self.cfg[key]) not in valid:
                raise VidEditBenchError(f"method 'tokenflow': option '{key}' is {self.cfg[key]!r}; "
                                        f"valid: {', '.join(valid)}")
        self.trace: TokenFlowTrace | None = None

    # --- frames ----------------------------------------------------------------------------------
    def _size_for(self, video: Video) -> tuple[int, int]:
        res = self.cfg.get("resolution")
        if self.cfg["resize"] == "square" and res:
            return processing_size(int(res), int(res), None)
        return super()._size_for(video)

    def _frames_tensor(self, video: Video) -> Any:
        """Official `resize: square`: whole frames resized with PIL Lanczos (`util.save_video_frames`)."""
        import torch

        size = self._size_for(video)
        if self.cfg["resize"] != "square" or tuple(size) == (video.height, video.width):
            return super()._frames_tensor(video)
        frames = np.stack([np.asarray(img) for img in frames_to_pil(video.frames, size)])
        return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0 * 2.0 - 1.0

    def _finish(self, frames: np.ndarray, video: Video) -> np.ndarray:
        if self.trace is not None:
            self.trace.decoded = frames
        if self.cfg["uint8"] == "floor" and frames.dtype != np.uint8:  # official T.ToPILImage: byte(255 v)
            frames = (np.clip(frames, 0, 1).astype(np.float32) * np.float32(255)).astype(np.uint8)
        return super()._finish(frames, video)

    # --- edit ------------------------------------------------------------------------------------
    def start_latent(self, prepared: dict[str, Any], sched: Any) -> Any:
        """x entering the first step: official add_noise(x0, eps_N, t_first), or the inverted latent at t_first."""
        import torch

        as_t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32)).to(self.device)  # noqa: E731
        if self.cfg["start_latent"] == "inverted":
            return as_t(prepared["latents"][0])
        if not all(k in prepared for k in ("x0", "noisiest", "noisiest_t")):
            raise VidEditBenchError("tokenflow: prepared inversion has no x0 / noisiest latent (stale prepare cache?)")
        x0 = as_t(prepared["x0"])
        alpha = sched.alphas_cumprod[int(prepared["noisiest_t"])]
        eps = ddim_eps(x0, as_t(prepared["noisiest"]), alpha.to(x0.device))
        return sched.add_noise(x0, eps, sched.timesteps[:1])

    def denoise(self, source: Any, start: Any, prompt: str, generator: Any,
                inversion_prompt: str = "") -> tuple[Any, list[np.ndarray]]:
        """source (S, T, 4, h, w): inverted latents per editing timestep; start (T, 4, h, w): x entering
        the first step. Returns (x_0, keyframes per step). The source branch is conditioned on the
        inversion prompt, as in the official code."""
        import torch

        sched = self._scheduler()
        unet = self.pipe.unet
        n = source.shape[1]
        bs = max(1, int(self.cfg["batch_size"]))
        guidance = float(self.cfg["guidance_scale"])
        conv_steps = int(len(sched.timesteps) * float(self.cfg["pnp_f_t"]))
        attn_steps = int(len(sched.timesteps) * float(self.cfg["pnp_attn_t"]))
        texts = [self._embed(inversion_prompt), self._embed(str(self.cfg["negative_prompt"])), self._embed(prompt)]
        trace = self.trace

        def run(src: Any, x: Any, t: Any) -> Any:
            m = len(x)
            text = torch.cat([e.expand(m, -1, -1) for e in texts]).to(unet.dtype)
            inp = torch.cat([src, x, x]).to(unet.dtype)
            return unet(inp, t, encoder_hidden_states=text, return_dict=False)[0].float()

        x = start
        if trace is not None:
            trace.start = start.clone()
        chosen: list[np.ndarray] = []
        with tokenflow_unet(unet) as state:
            state.propagation = str(self.cfg["propagation"])
            for i, t in enumerate(sched.timesteps):
                if trace is not None and trace.teacher is not None and i > 0:
                    x = torch.as_tensor(np.asarray(trace.teacher[i - 1]), device=x.device)
                state.inject_conv, state.inject_attn = i < conv_steps, i < attn_steps
                state.nn_log = trace.nn if trace is not None and i == trace.nn_step else None
                src = source[i]
                keys = sample_keyframes(n, bs, generator)
                chosen.append(keys)
                state.mode = "keyframes"
                idx = torch.as_tensor(keys, device=x.device)
                run(src[idx], x[idx], t)  # the pivotal pass: its result is discarded
                prev, nxt, w = keyframe_neighbours(n, keys)
                state.mode = "propagate"
                out = []
                for b, frames in enumerate(batches(n, bs)):
                    sl = slice(frames.start, frames.stop)
                    state.batch, state.w1 = b, batch_weights(b, bs, len(frames)) if b > 0 else None
                    state.prev, state.nxt, state.w = prev[sl], nxt[sl], w[sl]
                    _, eps_u, eps_c = run(src[sl], x[sl], t).chunk(3)
                    eps = eps_u + guidance * (eps_c - eps_u)
                    out.append(sched.step(eps, t, x[sl]).prev_sample)
                x = torch.cat(out)
                state.mode = "plain"
                if trace is not None:
                    trace.keyframes.append(keys)
                    trace.steps.append(x.clone())
        return x, chosen

    def _check_frames(self, video: Video) -> None:
        bs = max(1, int(self.cfg["batch_size"]))
        if self.cfg["partial_batch"] == "error" and video.num_frames % bs:
            raise VidEditBenchError(
                f"tokenflow: {video.num_frames} frames are not a multiple of batch_size {bs}; the official code "
                f"edits only the first {video.num_frames - video.num_frames % bs} (set batch_size to a divisor of the "
                "frame count, or partial_batch=keep)")

    def prepare(self, video: Video) -> dict[str, np.ndarray] | None:
        self._check_frames(video)
        return super().prepare(video)

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
        self._check_frames(video)
        self.setup()
        inverted = self.source_prepared(video, prepared, source_prompt)
        latents = torch.from_numpy(np.asarray(inverted["latents"], dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            start = self.start_latent(inverted, self._scheduler())
            x0, _ = self.denoise(latents, start, text, cpu_generator(self.seed), self.inversion_text(source_prompt))
        return self.decode(x0, video)


__all__: Sequence[str] = ("TokenFlow", "TokenFlowTrace", "batch_weights", "cosine_argmax", "ddim_eps",
                          "keyframe_neighbours", "nearest_tokens", "propagate", "propagate_batch", "sample_keyframes",
                          "tokenflow_unet")
