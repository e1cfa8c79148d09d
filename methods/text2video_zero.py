"""Text2Video-Zero video editing (Khachatryan et al., ICCV 2023): InstructPix2Pix + cross-frame attention.

Text2Video-Zero edits a video with InstructPix2Pix in which every self-attention layer of the UNet
lets each frame attend to the keys and values of the FIRST frame (instead of its own), so every
frame is edited "like frame 0" and appearance stays consistent. Frames are processed in chunks;
each chunk is prefixed with frame 0 so that the anchor is present in every chunk (its duplicate
output is dropped).

Noise (`noise` option):

* `official` (default), as the official `Model.inference`: chunks are `[0] + frames[s:s+chunk_size-1]`
  for s = 0, chunk_size-1, ... (so the first chunk holds frame 0 twice: the anchor and frame 0's
  own output), and ONE generator, re-seeded with the seed before every chunk, draws the noise of
  the whole chunk batch (initial latents and the Euler-ancestral step noise). Frames inside a chunk
  get different noise; the anchor always gets the chunk's first draw, so it is recomputed
  identically in every chunk; frame k of every chunk gets the same draw as frame k of the others.
* `same`: every frame gets its own generator seeded identically (identical noise per frame, as the
  frame-wise baselines); chunks `[0, 1..chunk_size-1], [0, ...]`, frame 0's output is the anchor's.

Defaults follow the official `process_pix2pix`: 50 Euler-ancestral steps, image guidance 1.0,
text guidance 7.5, chunks of 8 frames, resolution 512. Built on diffusers'
`StableDiffusionInstructPix2PixPipeline` with our own attention processor; diffusers' (deprecated)
`TextToVideoZeroPipeline` is not used.

The attention processor is installed on the (shared, cached) UNet only for the duration of an edit
and the previous processors are restored afterwards, so other methods using the same checkpoint in
the same process (e.g. framewise-ip2p) are unaffected.

Official mode: declared differences.

Differences from the official code that change output frames:
* random draws: a CPU generator (official: the GPU generator), same seeding scheme
* resize: shorter side scaled to 512, multiples of 8 (official `prepare_video`: longer side 512, multiples of 64)
* prompts: the sample's target prompt goes to InstructPix2Pix as the instruction (`instruction_template` "{prompt}"); benchmark prompts are often descriptions, the official demo's are instructions
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, ClassVar, Iterator

import numpy as np

from bench.api.types import Video
from methods.diffusion_common import cpu_generator, frames_to_pil
from methods.ip2p import FramewiseInstructPix2Pix


class FirstFrameAttnProcessor:
    """Self-attention in which every frame's queries attend to the first frame's keys/values.

    The UNet batch is `groups x num_frames` (groups = classifier-free-guidance branches, 3 for
    InstructPix2Pix: text+image, image only, unconditional), frames consecutive inside a group,
    which is how diffusers concatenates the CFG copies. Cross-attention calls (with
    `encoder_hidden_states`) are computed normally.
    """

    def __init__(self, num_frames: int = 1):
        self.num_frames = int(num_frames)

    def _anchor(self, x: Any) -> Any:
        """(groups*F, N, C): replace every frame's tokens by those of frame 0 of its group."""
        batch, tokens, dim = x.shape
        f = self.num_frames
        first = x.view(batch // f, f, tokens, dim)[:, :1]
        return first.expand(batch // f, f, tokens, dim).reshape(batch, tokens, dim)

    def __call__(
        self,
        attn: Any,
        hidden_states: Any,
        encoder_hidden_states: Any = None,
        attention_mask: Any = None,
        temb: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        import torch.nn.functional as F

        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        spatial = hidden_states.ndim == 4
        if spatial:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        batch = hidden_states.shape[0]
        self_attention = encoder_hidden_states is None
        context_len = hidden_states.shape[1] if self_attention else encoder_hidden_states.shape[1]
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, context_len, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        if self_attention:
            context = hidden_states
        else:
            context = attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states
        key = attn.to_k(context)
        value = attn.to_v(context)
        if self_attention and self.num_frames > 1:
            if batch % self.num_frames:
                raise RuntimeError(f"cross-frame attention: batch {batch} is not a multiple of {self.num_frames} frames")
            key, value = self._anchor(key), self._anchor(value)

        head_dim = key.shape[-1] // attn.heads

        def heads(x: Any) -> Any:
            return x.view(batch, -1, attn.heads, head_dim).transpose(1, 2)

        query, key, value = heads(query), heads(key), heads(value)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if spatial:
            out = out.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def chunk_frame_ids(num_frames: int, chunk_size: int) -> list[list[int]]:
    """Chunks of frame indices, each starting with the anchor frame 0 and holding <= chunk_size ids.

    Frames 1..T-1 are split into runs of chunk_size - 1; frame 0 leads every chunk (the first
    chunk's frame 0 is the output of frame 0).
    """
    if num_frames < 1:
        raise ValueError("need at least one frame")
    step = max(1, int(chunk_size) - 1)
    rest = list(range(1, num_frames))
    if not rest:
        return [[0]]
    return [[0] + rest[i : i + step] for i in range(0, len(rest), step)]


def official_chunk_frame_ids(num_frames: int, chunk_size: int) -> list[list[int]]:
    """The official Text2Video-Zero chunks: `[0] + range(s, e)` for s in 0, c-1, 2(c-1), ...

    Element 0 of every chunk is the anchor (its output is dropped); elements 1.. are the frames the
    chunk produces, so the first chunk is `[0, 0, 1, ..., c-2]`.
    """
    if num_frames < 1:
        raise ValueError("need at least one frame")
    step = max(1, int(chunk_size) - 1)
    starts = list(range(0, num_frames, step))
    return [[0] + list(range(s, starts[i + 1] if i + 1 < len(starts) else num_frames)) for i, s in enumerate(starts)]


@contextmanager
def cross_frame_attention(unet: Any, num_frames: int) -> Iterator[FirstFrameAttnProcessor]:
    """Install a FirstFrameAttnProcessor on every self-attention (attn1) layer; restore on exit."""
    saved = dict(unet.attn_processors)
    proc = FirstFrameAttnProcessor(num_frames)
    unet.set_attn_processor({name: (proc if name.endswith("attn1.processor") else p) for name, p in saved.items()})
    try:
        yield proc
    finally:
        unet.set_attn_processor(saved)


class Text2VideoZero(FramewiseInstructPix2Pix):
    name: ClassVar[str] = "text2video-zero"
    description: ClassVar[str] = "Text2Video-Zero video editing: InstructPix2Pix with cross-frame attention to frame 0"
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name or local pipeline folder; None = instruct-pix2pix
        "resolution": 512,
        "num_inference_steps": 50,
        "guidance_scale": 7.5,
        "image_guidance_scale": 1.0,
        "negative_prompt": "",
        "instruction_template": "{prompt}",
        "scheduler": "euler_ancestral",
        "chunk_size": 8,  # frames per pipeline call, anchor frame 0 included
        "noise": "official",  # official: one generator re-seeded per chunk; same: identical noise per frame
    }

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

        text = self.instruction(prompt)
        mode = str(self.cfg["noise"])
        if mode not in ("official", "same"):
            from bench.api.errors import VidEditBenchError

            raise VidEditBenchError(f"text2video-zero: option 'noise' must be 'official' or 'same', got {mode!r}")
        self.setup()
        images = frames_to_pil(video.frames, self._size_for(video))
        results: dict[int, np.ndarray] = {}
        with torch.inference_mode():
            if mode == "official":
                for ids in official_chunk_frame_ids(len(images), self.cfg["chunk_size"]):
                    with cross_frame_attention(self.pipe.unet, len(ids)):
                        out = self._run([images[i] for i in ids], text, generator=cpu_generator(self.seed))
                    for j, frame_id in enumerate(ids[1:], start=1):
                        results[frame_id] = out[j]
            else:
                for ids in chunk_frame_ids(len(images), self.cfg["chunk_size"]):
                    with cross_frame_attention(self.pipe.unet, len(ids)):
                        out = self._run([images[i] for i in ids], text)
                    for j, frame_id in enumerate(ids):
                        results.setdefault(frame_id, out[j])  # frame 0 from the first chunk
        return self._finish(np.stack([results[i] for i in range(len(images))]), video)
