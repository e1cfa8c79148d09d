"""Plug-and-Play (Tumanyan et al., CVPR 2023) pieces shared by TokenFlow and VidToMe.

* `SourceInverted`: a Stable Diffusion adapter whose `prepare` DDIM-inverts the source frames (VAE
  posterior mean, inversion prompt, no guidance) and keeps the inverted latent x_t at every timestep
  the editing visits (the source branch of PnP), and whose `edit` decodes the edited latents. An
  inversion prompt containing `{source_prompt}` (the sample's source caption, as the official codes
  invert with a description of the source) cannot be prepared per video without its caption: the
  inversion then runs inside `edit` (counted as generation time), once per (video, caption); a
  sample without a source caption is an error naming it, never an inversion with "".
* `injection_layers`: the PnP self-attention injection layers (every decoder self-attention but
  the first, i.e. SD's decoder blocks 4-11, as both official codes).
* `conv_injection`: the PnP residual-feature injection at decoder block `up_blocks[1].resnets[1]`:
  a forward hook on its last convolution copies the source branch's features into the edit
  branches (batch = [source, unconditional, conditional] x frames) while `active()` is true.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, ClassVar, Iterator

import numpy as np

from bench.api.errors import VidEditBenchError
from bench.api.types import Video
from methods.controlnet_depth import SD_WEIGHTS, ddim_from
from methods.diffusion_common import DiffusersMethod, batches, ddim_invert, load_pipeline


def injection_layers(names: list[str]) -> set[str]:
    """The PnP attention-injection layers among attention-processor names: every decoder
    self-attention except the first one (all but up_blocks[1].attentions[0] in SD)."""
    decoder = []
    for name in names:
        parts = name.split(".")
        if parts[0] == "up_blocks" and "attn1" in parts and "attentions" in parts:
            decoder.append(((int(parts[1]), int(parts[parts.index("attentions") + 1])), name))
    if not decoder:
        return set()
    first = min(pos for pos, _ in decoder)
    return {name for pos, name in decoder if pos != first}


@contextmanager
def conv_injection(unet: Any, active: Callable[[], bool], method: str) -> Iterator[None]:
    """While `active()`, the edit branches of `up_blocks[1].resnets[1]` get the source branch's features."""
    import torch

    if len(unet.up_blocks) < 2 or len(getattr(unet.up_blocks[1], "resnets", [])) < 2:
        raise VidEditBenchError(f"{method}: the UNet has no decoder block up_blocks[1].resnets[1] to inject features into")

    def hook(module: Any, args: Any, output: Any) -> Any:
        if not active():
            return output
        n = output.shape[0] // 3
        return torch.cat([output[:n]] * 3)

    handle = unet.up_blocks[1].resnets[1].conv2.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def pnp_qk(q: Any, k: Any, n: int) -> tuple[Any, Any]:
    """PnP query/key injection: the edit branches' queries and keys become the source branch's."""
    import torch

    return torch.cat([q[:n]] * 3), torch.cat([k[:n]] * 3)


class SourceInverted(DiffusersMethod):
    """SD 1.5-family adapter with DDIM-inverted source latents at the editing timesteps (`prepare`)."""

    tasks: ClassVar[frozenset[str]] = frozenset({"text"})
    needs: ClassVar[frozenset[str]] = frozenset({"text"})
    weights: ClassVar[tuple[str, ...]] = (SD_WEIGHTS,)

    def _load(self) -> Any:
        # the same cache entry as framewise-sdedit / controlnet-depth / rave: one set of SD modules per process
        return load_pipeline("StableDiffusionImg2ImgPipeline", self.weight_source(), self.device)

    def _embed(self, text: str) -> Any:
        embeds, _ = self.pipe.encode_prompt(text, self.device, 1, False)
        return embeds

    def _scheduler(self) -> Any:
        kind = self.pipe.scheduler.config.get("prediction_type", "epsilon")
        if kind != "epsilon":
            raise VidEditBenchError(f"{self.name}: the checkpoint predicts '{kind}'; DDIM inversion here needs an "
                                    "epsilon-prediction model (e.g. SD 1.5 or SD 2.1 *base*, not the 768 v-model)")
        sched = ddim_from(self.pipe.scheduler.config)
        sched.set_timesteps(int(self.cfg["num_inference_steps"]), device=self.device)
        return sched

    def _frames_tensor(self, video: Video) -> Any:
        """uint8 (T, H, W, 3) -> float (T, 3, h, w) in [-1, 1] at the processing size (bicubic, antialiased)."""
        import torch
        import torch.nn.functional as F

        size = self._size_for(video)
        x = torch.from_numpy(np.ascontiguousarray(video.frames)).permute(0, 3, 1, 2).float() / 255.0
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        return x * 2.0 - 1.0

    def inversion_text(self, source_prompt: str | None, video: Video | None = None) -> str:
        """The inversion prompt, `{source_prompt}` filled in with the sample's caption; a sample without
        one is an error (inverting with "" instead would silently change the method)."""
        template = str(self.cfg["inversion_prompt"] or "")
        if "{source_prompt}" in template and not str(source_prompt or "").strip():
            where = f"the sample of {video.path}" if video is not None and video.path else "this sample"
            raise VidEditBenchError(
                f"{self.name}: {where} has no source caption, but inversion_prompt {template!r} inverts with "
                "{source_prompt}; add source_prompt to the sample in the suite manifest, or set "
                f"--method-opt {self.name}.inversion_prompt=\"\" to invert without one")
        return template.replace("{source_prompt}", str(source_prompt or ""))

    def _needs_caption(self) -> bool:
        return "{source_prompt}" in str(self.cfg["inversion_prompt"] or "")

    def prepare(self, video: Video) -> dict[str, np.ndarray] | None:
        """{"latents": (S, T, 4, h/8, w/8) inverted x_t per editing timestep (denoising order), "timesteps": (S,),
        "x0": (T, 4, h/8, w/8) the clean latents, "noisiest": x_t after the last inversion step, "noisiest_t": its t};
        None when the inversion prompt needs the sample's caption (then `edit` inverts)."""
        if self._needs_caption():
            return None
        return self.invert(video, self.inversion_text(None))

    def invert(self, video: Video, prompt: str) -> dict[str, np.ndarray]:
        import torch

        self.setup()
        vae, unet = self.pipe.vae, self.pipe.unet
        frames = self._frames_tensor(video)
        per_vae = max(1, int(self.cfg.get("vae_batch_size", 8)))
        per_call = max(1, int(self.cfg.get("inversion_batch_size", 8)))
        timesteps = [int(t) for t in self._scheduler().timesteps]
        with torch.inference_mode():
            latents = torch.cat([
                vae.encode(frames[i:i + per_vae].to(self.device, vae.dtype)).latent_dist.mean.float()
                for i in range(0, len(frames), per_vae)
            ]) * float(vae.config.scaling_factor)
            cond = self._embed(prompt)
            parts, last = [], []
            inverse = ddim_from(self.pipe.scheduler.config)
            for b in batches(len(latents), per_call):
                text = cond.expand(len(b), -1, -1).to(unet.dtype)

                def eps(x: Any, t: Any, text: Any = text) -> Any:
                    return unet(x.to(unet.dtype), t, encoder_hidden_states=text, return_dict=False)[0].float()

                x_last, saved = ddim_invert(eps, latents[b.start:b.stop], inverse, int(self.cfg["num_inversion_steps"]),
                                            save_at=timesteps)
                parts.append(torch.stack([saved[t] for t in timesteps]))
                last.append(x_last)
        stacked = torch.cat(parts, dim=1)
        as_np = lambda x: x.cpu().numpy().astype(np.float32)  # noqa: E731
        return {"latents": as_np(stacked), "timesteps": np.asarray(timesteps, np.int64),
                "x0": as_np(latents), "noisiest": as_np(torch.cat(last)),
                "noisiest_t": np.asarray(int(inverse.timesteps.max()), np.int64)}

    def source_latents(self, video: Video, prepared: Any, source_prompt: str | None = None) -> Any:
        """The prepared latents as a tensor on the device, checked against this video and these steps."""
        import torch

        latents = np.asarray(self.source_prepared(video, prepared, source_prompt)["latents"], dtype=np.float32)
        return torch.from_numpy(latents).to(self.device)

    def source_prepared(self, video: Video, prepared: Any, source_prompt: str | None = None) -> dict[str, Any]:
        """The inversion of this video (`prepared`, or inverted now), checked against this video and these steps."""
        import hashlib

        if self._needs_caption():
            key = (hashlib.sha1(np.ascontiguousarray(video.frames).tobytes()).hexdigest(),
                   self.inversion_text(source_prompt, video))
            if getattr(self, "_inverted", (None, None))[0] != key:  # one video at a time: the runner groups by video
                self._inverted = (key, self.invert(video, key[1]))
            prepared = self._inverted[1]
        elif not (isinstance(prepared, dict) and "latents" in prepared):
            prepared = self.prepare(video)
        h, w = self._size_for(video)
        factor = int(self.pipe.vae_scale_factor)
        shape = np.shape(prepared["latents"])
        timesteps = [int(t) for t in self._scheduler().timesteps]
        if (shape[1] != video.num_frames or tuple(shape[-2:]) != (h // factor, w // factor)
                or [int(t) for t in np.asarray(prepared.get("timesteps", []))] != timesteps):
            raise VidEditBenchError(f"{self.name}: prepared latents {tuple(shape)} do not match this video / "
                                    "these steps (stale prepare cache?)")
        return prepared

    def decode(self, latents: Any, video: Video) -> np.ndarray:
        import torch

        vae = self.pipe.vae
        per_vae = max(1, int(self.cfg.get("vae_batch_size", 8)))
        with torch.inference_mode():
            images = torch.cat([
                vae.decode(latents[i:i + per_vae].to(vae.dtype) / float(vae.config.scaling_factor),
                           return_dict=False)[0].float()
                for i in range(0, len(latents), per_vae)
            ])
        return self._finish(((images / 2 + 0.5).clamp(0, 1)).permute(0, 2, 3, 1).cpu().numpy(), video)
