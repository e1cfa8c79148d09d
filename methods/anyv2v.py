"""AnyV2V (Ku et al., TMLR 2024): edit the first frame with any image editor, then propagate the edit
with an image-to-video model (I2VGen-XL) started from the DDIM-inverted source and guided by the
source's features (plug-and-play injection).

Our implementation on the I2VGen-XL components (diffusers `I2VGenXLUNet`, `AutoencoderKL`, CLIP
text and vision encoders, `DDIMScheduler`; the deprecated `I2VGenXLPipeline` class is not used):

* `prepare` (source only, cached): DDIM inversion of the source clip's latents (VAE posterior samples)
  with the source's first frame as the image condition, the inversion prompt (empty) and no
  guidance, `num_inversion_steps` steps; the inverted latents at the editing timesteps are kept.
* the first frame is edited by the registered image method `image_editor` (default
  `framewise-ip2p`, i.e. InstructPix2Pix; `image_editor_options` are its options) with the target
  prompt; any registered text-guided method works.
* editing: DDIM sampling from the inverted latent at editing step `init_step` (index into the
  50-step schedule, official 1 = t 961), conditioned on the edited first frame and the target
  prompt with classifier-free guidance. Each UNet call runs three branches in one batch: the source
  (inverted latent at t, source first frame, inversion prompt), negative and positive. While t is
  among the first `pnp_conv` / `pnp_spatial_attn` / `pnp_temporal_attn` fractions of the schedule,
  the source branch's features replace the edited branches': the residual of decoder
  `up_blocks[1].resnets[1]` (convolution injection) and the queries and keys of the self-attention
  of the spatial and the temporal transformer blocks of decoder blocks 1-3 (all but the first layer
  of block 1). Paper/official thresholds: 0.2, 0.2, 0.5.

Frames: the model generates `num_frames` (official 16) frames at a time. The first window is the
clip's first 16 frames, exactly the official input; a longer clip gets further 16-frame windows (each
inverted on its own), each conditioned on the frame the previous window generated at its start
(`frame_windows`), so every output frame is generated and none is a copy. A shorter clip is padded
with its last frame and the padded outputs are dropped. `num_frames: null` runs the whole clip at once.
Size: official 512x512 (`height`/`width`, aspect ratio ignored as the official LANCZOS resize);
null = from `resolution`. Defaults (official i2vgen-xl configs): 50 steps, guidance 9.0, fps 8, the
official negative prompt, 500 inversion steps, init step 1, no random latent blending, VAE
posterior samples, fp16 on CUDA. The inversion follows diffusers' DDIMInverseScheduler (the official
one): the step to timestep t evaluates the UNet at t on the latent of the previous (lower) timestep.
The CLIP image crop is the official `_center_crop_wide` (BOX resize to cover width x width, centre
crop, bilinear to the encoder's size).

Official mode: equal to official code on goldens (preset `official`; tests/test_method_goldens_anyv2v.py).

Differences from the official code that change output frames:
* random draws: VAE posterior samples come from a CPU generator seeded with the run's seed (official: the global CUDA RNG after `seed_everything(8888)`); `vae_sampling: mean` is the goldens' shim
* first-frame editor: the registered `framewise-ip2p` at its shorter-side-512 resize and the run's seed (official `edit_image.py`: InstructPix2Pix at the frame's own size, seed 42); its steps, guidance and negative prompt are official
* frames past 16: further windows started from a generated frame (official: only the first 16 frames)
* output size: frames resized back to the source size (official: saved at 512x512)
* inverted steps: an editing step that is not an inversion step takes the nearest inverted latent (official: asserts the file exists; equal with the official 500/50 steps)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from bench.api.errors import VidEditBenchError
from bench.api.types import Video
from methods.diffusion_common import (
    DiffusersMethod,
    _load_error,
    cpu_generator,
    detect_variant,
    dtype_kwarg,
    processing_size,
    resize_frames,
    to_uint8,
    torch_dtype_for,
)
from methods.video_common import model_size

ANYV2V_NEGATIVE_PROMPT = ("Distorted, discontinuous, Ugly, blurry, low resolution, motionless, static, disfigured, "
                          "disconnected limbs, Ugly faces, incomplete arms")
#: decoder layers whose self-attention queries/keys are injected: {up block: [layer indices]}
ATTENTION_LAYERS = {1: (1, 2), 2: (0, 1, 2), 3: (0, 1, 2)}
CONV_LAYER = (1, 1)  # up_blocks[1].resnets[1]
#: the first-frame editor's negative prompt in the official `edit_image.py` (its default)
EDITOR_NEGATIVE_PROMPT = "worst quality, normal quality, low quality, low res, blurry, watermark, jpeg artifacts"
VAE_SAMPLING = ("sample", "mean")


def frame_windows(num_frames: int, window: int | None) -> list[tuple[int, int]]:
    """Source-frame ranges [start, stop) the model generates, in order, covering every frame once or more.

    The first window is the clip's first `window` frames (the official code keeps exactly these);
    each later one starts on a frame the previous window generated (the last one, or further back so
    that the final window ends on the clip's last frame). `None` = one window of the whole clip; a
    clip shorter than the window is one window (padded with its last frame by the caller).
    """
    t = int(num_frames)
    n = int(window) if window else t
    if t < 1 or n < 2:
        raise VidEditBenchError(f"anyv2v: need at least 1 frame and a window of at least 2, got {t} and {n}")
    starts = [0]
    while starts[-1] + n < t:
        starts.append(min(starts[-1] + n - 1, t - n))
    return [(s, min(s + n, t)) for s in starts]


def center_crop_wide(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The official pipeline's crop: scale by min(W/width, H/height) (sides floor-divided, BOX
    resampling) so the image covers width x height, then cut the centre width x height."""
    from PIL import Image

    h, w = image.shape[:2]
    scale = min(w / width, h / height)
    nw, nh = round(w // scale), round(h // scale)
    pil = Image.fromarray(np.ascontiguousarray(image))
    if (nw, nh) != (w, h):
        pil = pil.resize((nw, nh), resample=Image.BOX)
    x1, y1 = (nw - width) // 2, (nh - height) // 2
    return np.asarray(pil.crop((x1, y1, x1 + width, y1 + height)))


@dataclass
class I2VGenXLParts:
    vae: Any
    text_encoder: Any
    tokenizer: Any
    image_encoder: Any
    feature_extractor: Any
    unet: Any
    scheduler_config: Any


def _load_i2vgen_xl(path: Path, device: str, dtype: str) -> I2VGenXLParts:
    import diffusers
    import torch
    from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

    torch_dtype = getattr(torch, dtype)
    variant = {"variant": "fp16"} if detect_variant(path, "unet") else {}
    common = {"local_files_only": True, **dtype_kwarg(torch_dtype)}
    tcommon = {"local_files_only": True, **dtype_kwarg(torch_dtype, "transformers"), **variant}
    try:
        parts = I2VGenXLParts(
            vae=diffusers.AutoencoderKL.from_pretrained(str(path / "vae"), **common, **variant),
            text_encoder=CLIPTextModel.from_pretrained(str(path / "text_encoder"), **tcommon),
            tokenizer=CLIPTokenizer.from_pretrained(str(path / "tokenizer")),
            image_encoder=CLIPVisionModelWithProjection.from_pretrained(str(path / "image_encoder"), **tcommon),
            feature_extractor=CLIPImageProcessor.from_pretrained(str(path / "feature_extractor")),
            unet=diffusers.I2VGenXLUNet.from_pretrained(str(path / "unet"), **common, **variant),
            scheduler_config=diffusers.DDIMScheduler.load_config(str(path / "scheduler")),
        )
    except (OSError, ValueError, EnvironmentError) as exc:
        raise _load_error(path, "I2VGen-XL", exc) from exc
    for m in (parts.vae, parts.text_encoder, parts.image_encoder, parts.unet):
        m.to(device).eval()
    return parts


def load_i2vgen_xl(weights: str, device: str) -> I2VGenXLParts:
    from bench.models import create_model

    return create_model(weights, _load_i2vgen_xl, device, dtype=str(torch_dtype_for(device)).replace("torch.", ""))


def injection_steps(timesteps: list[int], fraction: float) -> set[int]:
    """The official schedule: the first int(n * fraction) timesteps of the n-step schedule."""
    return set(int(t) for t in timesteps[: max(0, int(len(timesteps) * float(fraction)))])


class FeatureInjector:
    """Forward hooks that copy the source branch (first third of the batch) into the two edited
    branches at the convolution / spatial-attention / temporal-attention injection points while the
    current timestep is in the respective schedule."""

    def __init__(self, unet: Any, conv: set[int], spatial: set[int], temporal: set[int]):
        self.schedules = {"conv": conv, "spatial": spatial, "temporal": temporal}
        self.t: int | None = None
        self.handles: list[Any] = []
        self.calls = {"conv": 0, "spatial": 0, "temporal": 0}
        blocks = unet.up_blocks
        b, r = CONV_LAYER
        if len(blocks) > b and len(getattr(blocks[b], "resnets", [])) > r:
            self._hook(blocks[b].resnets[r].conv2, "conv")
        for bi, layers in ATTENTION_LAYERS.items():
            if bi >= len(blocks) or not hasattr(blocks[bi], "attentions"):
                continue
            for li in layers:
                if li < len(blocks[bi].attentions):
                    attn = blocks[bi].attentions[li].transformer_blocks[0].attn1
                    self._hook(attn.to_q, "spatial")
                    self._hook(attn.to_k, "spatial")
                if li < len(blocks[bi].temp_attentions):
                    attn = blocks[bi].temp_attentions[li].transformer_blocks[0].attn1
                    self._hook(attn.to_q, "temporal")
                    self._hook(attn.to_k, "temporal")

    def _hook(self, module: Any, kind: str) -> None:
        def hook(_module: Any, _inputs: Any, output: Any) -> Any:
            if self.t is None or self.t not in self.schedules[kind]:
                return output
            n = output.shape[0] // 3
            out = output.clone()
            out[n: 2 * n] = output[:n]
            out[2 * n:] = output[:n]
            self.calls[kind] += 1
            return out

        self.handles.append(module.register_forward_hook(hook))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


class AnyV2V(DiffusersMethod):
    name: ClassVar[str] = "anyv2v"
    description: ClassVar[str] = ("AnyV2V: first frame edited by an image editor (InstructPix2Pix), propagated by "
                                  "I2VGen-XL from DDIM-inverted latents with conv/attention feature injection")
    tasks: ClassVar[frozenset[str]] = frozenset({"text"})
    needs: ClassVar[frozenset[str]] = frozenset({"text"})
    weights: ClassVar[tuple[str, ...]] = ("i2vgen-xl",)
    min_gpu_memory_gb: ClassVar[float] = 20.0
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name or local I2VGen-XL folder; None = i2vgen-xl
        "image_editor": "framewise-ip2p",  # any registered text-guided method, run on the first frame
        "image_editor_options": {"negative_prompt": EDITOR_NEGATIVE_PROMPT},
        "resolution": 512,
        "height": 512,  # official 512x512; null = from resolution (aspect kept, multiples of 8)
        "width": 512,
        "num_frames": 16,  # I2VGen-XL's clip length (windows of it cover longer clips); null = the whole clip at once
        "num_inference_steps": 50,
        "num_inversion_steps": 500,
        "init_step": 1,  # start from the inverted latent at this index of the editing schedule
        "guidance_scale": 9.0,
        "target_fps": 8,
        "negative_prompt": ANYV2V_NEGATIVE_PROMPT,
        "inversion_prompt": "",
        "pnp_conv": 0.2,
        "pnp_spatial_attn": 0.2,
        "pnp_temporal_attn": 0.5,
        "random_ratio": 0.0,  # blend of random noise into the initial latent (official 0)
        "vae_sampling": "sample",  # VAE encodings: a posterior sample (official) or the posterior mean
    }

    def __init__(self, device: str = "cpu", seed: int = 0, **config: Any):
        super().__init__(device=device, seed=seed, **config)
        self._editor: Any = None

    # --- setup ------------------------------------------------------------------------------------
    def image_editor(self) -> Any:
        if self._editor is None:
            from bench.api.catalog import METHODS

            name = str(self.cfg["image_editor"])
            try:
                cls = METHODS.get(name)
            except Exception as exc:  # unknown name: one clear line
                raise VidEditBenchError(f"anyv2v: option 'image_editor' is '{name}', not a registered method ({exc})") from exc
            if "text" not in cls.tasks:
                raise VidEditBenchError(f"anyv2v: image_editor '{name}' does not do text-guided edits")
            self._editor = cls(device=self.device, seed=self.seed, **dict(self.cfg["image_editor_options"] or {}))
        return self._editor

    def required_weights(self) -> list[str]:
        return super().required_weights() + list(self.image_editor().required_weights())

    def _load(self) -> Any:
        return load_i2vgen_xl(self.weight_source(), self.device)

    def teardown(self) -> None:
        super().teardown()
        if self._editor is not None:
            self._editor.teardown()

    # --- pieces -----------------------------------------------------------------------------------
    def _size(self, video: Video) -> tuple[int, int]:
        if self.cfg.get("height") or self.cfg.get("width"):
            return model_size(video.height, video.width, resolution=None, multiple=8,
                              target_height=self.cfg.get("height"), target_width=self.cfg.get("width"))
        return processing_size(video.height, video.width, self.cfg.get("resolution"))

    def windows(self, num_frames: int) -> list[tuple[int, int]]:
        """The source frames each model run generates (see `frame_windows`); every output frame is generated."""
        return frame_windows(num_frames, self.cfg.get("num_frames"))

    def _window_frames(self, video: Video, start: int, stop: int, size: tuple[int, int]) -> np.ndarray:
        """The model's input frames of one window: the source frames, padded with the last one to the window length."""
        n = int(self.cfg.get("num_frames") or video.num_frames)
        idx = list(range(start, stop)) + [stop - 1] * (n - (stop - start))
        return resize_frames(np.asarray(video.frames)[idx], size)

    def _scheduler(self, steps: int) -> Any:
        from diffusers import DDIMScheduler

        sched = DDIMScheduler.from_config(self.pipe.scheduler_config)
        sched.set_timesteps(int(steps), device=self.device)
        return sched

    def _text(self, text: str) -> Any:
        """CLIP penultimate hidden states + final layer norm (I2VGen-XL's clip_skip=1)."""
        p = self.pipe
        ids = p.tokenizer(text, padding="max_length", max_length=p.tokenizer.model_max_length, truncation=True,
                          return_tensors="pt").input_ids.to(self.device)
        out = p.text_encoder(ids, output_hidden_states=True)
        text_model = getattr(p.text_encoder, "text_model", p.text_encoder)  # transformers < 5 nests it
        return text_model.final_layer_norm(out.hidden_states[-2])

    def _pixels(self, frames: np.ndarray) -> Any:
        """uint8 (N, h, w, 3) -> float (N, 3, h, w) in [-1, 1] on the device."""
        import torch

        x = torch.from_numpy(np.array(frames, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return x.to(self.device, self.pipe.vae.dtype)

    def _image_embedding(self, image: np.ndarray) -> Any:
        """CLIP image embedding (1, 1, D): the official `_center_crop_wide` to width x width, then
        bilinear to the encoder's crop size."""
        import torch
        from PIL import Image

        p = self.pipe
        crop = center_crop_wide(image, image.shape[1], image.shape[1])
        cs = p.feature_extractor.crop_size
        pil = Image.fromarray(np.ascontiguousarray(crop)).resize((cs["width"], cs["height"]), Image.BILINEAR)
        x = torch.from_numpy(np.array(pil)).permute(2, 0, 1)[None].float() / 255.0
        pixel = p.feature_extractor(images=x, do_normalize=True, do_center_crop=False, do_resize=False,
                                    do_rescale=False, return_tensors="pt").pixel_values
        dtype = next(p.image_encoder.parameters()).dtype
        return p.image_encoder(pixel.to(self.device, dtype)).image_embeds[:, None]

    def _encode(self, frames: np.ndarray, generator: Any) -> Any:
        """VAE latents (N, 4, h, w) of uint8 frames, one frame per call (as official), times the scaling
        factor: a posterior sample from `generator` (official) or the posterior mean (`vae_sampling`)."""
        import torch

        vae = self.pipe.vae
        how = str(self.cfg["vae_sampling"])
        if how not in VAE_SAMPLING:
            raise VidEditBenchError(f"anyv2v: option 'vae_sampling' is {how!r}; valid: {', '.join(VAE_SAMPLING)}")
        out = []
        for i in range(len(frames)):
            dist = vae.encode(self._pixels(frames[i:i + 1])).latent_dist
            out.append(dist.sample(generator=generator) if how == "sample" else dist.mean)
        return torch.cat(out).float() * float(vae.config.scaling_factor)

    def _image_latents(self, image: np.ndarray, num_frames: int, generator: Any = None) -> Any:
        """(1, 4, F, h, w): the image's latent followed by position masks (i+1)/(F-1), as I2VGen-XL."""
        import torch

        lat = self._encode(image[None], generator)
        lat = lat[:, :, None]
        masks = [torch.ones_like(lat) * ((i + 1) / (num_frames - 1)) for i in range(num_frames - 1)]
        return torch.cat([lat, *masks], dim=2) if masks else lat

    def _unet(self, x: Any, t: Any, text: Any, image_latents: Any, image_emb: Any) -> Any:
        import torch

        unet = self.pipe.unet
        fps = torch.full((x.shape[0],), int(self.cfg["target_fps"]), device=self.device)
        return unet(x.to(unet.dtype), t, encoder_hidden_states=text.to(unet.dtype), fps=fps,
                    image_latents=image_latents.to(unet.dtype), image_embeddings=image_emb.to(unet.dtype),
                    return_dict=False)[0].float()

    @staticmethod
    def _x0_eps(out: Any, x: Any, alpha: Any, prediction: str) -> tuple[Any, Any]:
        if prediction == "v_prediction":
            return alpha.sqrt() * x - (1 - alpha).sqrt() * out, alpha.sqrt() * out + (1 - alpha).sqrt() * x
        if prediction == "epsilon":
            return (x - (1 - alpha).sqrt() * out) / alpha.sqrt(), out
        raise VidEditBenchError(f"anyv2v: unsupported scheduler prediction_type {prediction!r}")

    # --- prepare: DDIM inversion of the source ----------------------------------------------------------
    def prepare(self, video: Video) -> dict[str, Any]:
        """DDIM inversion of every window of the source (see `windows`)."""
        self.setup()
        size = self._size(video)
        wins = [self.invert(self._window_frames(video, start, stop, size)) | {"start": start, "stop": stop}
                for start, stop in self.windows(video.num_frames)]
        return {"windows": wins, "size": size, "num_frames": video.num_frames}

    def invert(self, frames: np.ndarray) -> dict[str, Any]:
        """DDIM inversion of one window's model frames (uint8 (F, h, w, 3) at the model size):
        {"latents": {editing t: (4, F, h, w) inverted latent}, "first_frame", "frames": F}."""
        import torch

        edit_ts = [int(t) for t in self._scheduler(int(self.cfg["num_inference_steps"])).timesteps]
        sched = self._scheduler(int(self.cfg["num_inversion_steps"]))
        inv_ts = [int(t) for t in sched.timesteps.flip(0)]
        keep: dict[int, list[int]] = {}  # inverted step -> the editing steps that take its latent (the nearest)
        for t in edit_ts:
            keep.setdefault(min(inv_ts, key=lambda s: abs(s - t)), []).append(t)
        alphas = sched.alphas_cumprod.to(self.device, torch.float32)
        prediction = sched.config.prediction_type
        generator = cpu_generator(self.seed)  # the official script seeds the global RNG before its draws
        with torch.inference_mode():
            x = self._encode(frames, generator).permute(1, 0, 2, 3)[None]  # (1, 4, F, h, w)
            text = self._text(str(self.cfg["inversion_prompt"]))
            img_lat = self._image_latents(frames[0], len(frames), generator)
            img_emb = self._image_embedding(frames[0])
            a_cur = sched.final_alpha_cumprod.to(self.device, torch.float32)
            saved: dict[int, np.ndarray] = {}
            for t in inv_ts:
                out = self._unet(x, torch.tensor(t, device=self.device), text, img_lat, img_emb)
                x0, eps = self._x0_eps(out, x, a_cur, prediction)
                a_next = alphas[t]
                x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
                a_cur = a_next
                for edit_t in keep.get(t, ()):
                    saved[edit_t] = x[0].cpu().numpy().astype(np.float32)
        return {"latents": saved, "first_frame": frames[0], "frames": len(frames)}

    # --- edit ------------------------------------------------------------------------------------------
    def edit_first_frame(self, frame: np.ndarray, prompt: str) -> np.ndarray:
        """The image editor's output for the first frame (uint8 (h, w, 3) at the frame's size)."""
        out = self.image_editor().edit(Video(frame[None], fps=8.0), prompt=prompt)
        out = out.frames if isinstance(out, Video) else out
        return np.asarray(out)[0]

    def edit(
        self,
        video: Video,
        *,
        prompt: str | None = None,
        reference: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        prepared: Any = None,
        source_prompt: str | None = None,
        edited_first_frame: np.ndarray | None = None,
    ) -> np.ndarray:
        text = self._require_prompt(prompt)
        self.setup()
        if not (isinstance(prepared, dict) and "windows" in prepared):
            prepared = self.prepare(video)
        size = self._size(video)
        spans = [(w["start"], w["stop"]) for w in prepared["windows"]]
        if tuple(prepared["size"]) != tuple(size) or spans != self.windows(video.num_frames):
            raise VidEditBenchError("anyv2v: prepared inversion does not match this video (stale prepare cache?)")
        if edited_first_frame is None:  # the editor sees the clip's first frame at its own size (edit_image.py)
            edited_first_frame = self.edit_first_frame(np.asarray(video.frames[0]), text)
        cond = resize_frames(np.asarray(edited_first_frame, dtype=np.uint8)[None], size)[0]
        out = np.zeros((video.num_frames, *size, 3), dtype=np.uint8)
        done = 0
        for win in prepared["windows"]:
            start, stop = int(win["start"]), int(win["stop"])
            if start > 0:  # a later window continues from the frame the previous one generated there
                cond = out[start]
            latents, _ = self.sample(win, cond, text)
            frames = to_uint8(((self.decode(latents) / 2 + 0.5).clamp(0, 1)).permute(0, 2, 3, 1))
            out[done:stop] = frames[done - start:stop - start]
            done = stop
        return self._finish(out, video)

    def decode(self, latents: Any) -> Any:
        """(1, 4, F, h, w) scaled latents -> float (F, 3, H, W) VAE output in [-1, 1] (one frame per call)."""
        import torch

        vae = self.pipe.vae
        with torch.inference_mode():
            z = latents[0].permute(1, 0, 2, 3) / float(vae.config.scaling_factor)  # (F, 4, h, w)
            return torch.cat([vae.decode(z[i:i + 1].to(vae.dtype), return_dict=False)[0].float()
                              for i in range(len(z))])

    def sample(self, window: dict[str, Any], first_frame: np.ndarray, prompt: str,
               on_step: Callable[[int, Any], None] | None = None) -> tuple[Any, dict[str, int]]:
        """DDIM sampling with PnP injection from one window's inverted latents (`invert`); returns
        (latents (1, 4, F, h, w), injection call counts). `on_step(t, latents)` sees every step's result."""
        import torch

        sched = self._scheduler(int(self.cfg["num_inference_steps"]))
        all_ts = [int(t) for t in sched.timesteps]
        start = int(self.cfg["init_step"])
        if not 0 <= start < len(all_ts):
            raise VidEditBenchError(f"anyv2v: init_step={start} is outside the {len(all_ts)}-step schedule")
        inverted = {int(k): torch.from_numpy(v)[None].to(self.device) for k, v in window["latents"].items()}
        n = int(window["frames"])
        x = inverted[all_ts[start]].clone()
        generator = cpu_generator(self.seed)  # the official editing script re-seeds before its draws
        ratio = float(self.cfg["random_ratio"])
        if ratio > 0:
            x = torch.randn(x.shape, generator=generator).to(self.device) * ratio + x * (1 - ratio)
        injector = FeatureInjector(self.pipe.unet, injection_steps(all_ts, self.cfg["pnp_conv"]),
                                   injection_steps(all_ts, self.cfg["pnp_spatial_attn"]),
                                   injection_steps(all_ts, self.cfg["pnp_temporal_attn"]))
        guidance = float(self.cfg["guidance_scale"])
        try:
            with torch.inference_mode():
                src_first = np.asarray(window["first_frame"])
                text = torch.cat([self._text(str(self.cfg["inversion_prompt"])),
                                  self._text(str(self.cfg["negative_prompt"] or "")), self._text(prompt)])
                src_lat = self._image_latents(src_first, n, generator)
                edit_lat = self._image_latents(first_frame, n, generator)
                img_lat = torch.cat([src_lat, edit_lat, edit_lat])
                edit_emb = self._image_embedding(first_frame)
                img_emb = torch.cat([self._image_embedding(src_first), torch.zeros_like(edit_emb), edit_emb])
                for t in all_ts[start:]:
                    injector.t = t
                    batch = torch.cat([inverted[t], x, x])
                    out = self._unet(batch, torch.tensor(t, device=self.device), text, img_lat, img_emb)
                    _, uncond, cond = out.chunk(3)
                    guided = uncond + guidance * (cond - uncond)
                    b, c, f, h, w = x.shape
                    step = sched.step(guided.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w), t,
                                      x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)).prev_sample
                    x = step.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)
                    if on_step is not None:
                        on_step(t, x)
        finally:
            injector.remove()
        return x, dict(injector.calls)
