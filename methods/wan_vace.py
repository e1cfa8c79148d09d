"""Wan2.1-VACE (Jiang et al., "VACE: All-in-One Video Creation and Editing", 2025) through diffusers' `WanVACEPipeline`.

VACE conditions a Wan 2.1 model on a "video condition unit": a context video, a per-pixel mask
(white = generate, black = keep) and optional reference images. The context is split by the mask
into an inactive part (kept pixels) and a reactive part (pixels to regenerate), both VAE-encoded,
plus the mask folded to latent resolution; reference images are encoded as extra leading latent
frames (dropped from the output).

How samples map onto it:
* image-guided samples (reference image + mask): the source clip with the masked pixels set to
  gray 128 (what VACE's inpainting annotators produce, so the model cannot copy the old object), the sample's mask
  (True = edit = white) and the reference image; the target prompt if the sample has one, else
  `default_prompt`;
* text-guided samples with a mask: the same without a reference (masked repainting);
* text-guided samples without a mask: not applicable by default. Regenerating the whole clip with
  the raw source as full-mask context is not a task VACE defines (VACE edits a video's content
  through its annotators, e.g. depth or pose); `unmasked_text: regenerate` runs it anyway (our
  baseline, not VACE's).

Frame count: the clip is padded to 4k+1 frames by repeating the last frame (dropped afterwards),
size to multiples of 16 (methods.video_common); mask frames are padded the same way.
Defaults are the official VACE settings of Wan 2.1's generate.py: 50 steps, guidance 5.0, sample
shift 16, the official negative prompt, 480p; context scale 1.0. `weights` picks
`wan2.1-vace-1.3b` (default) or `wan2.1-vace-14b` (or a local folder). bf16 on CUDA, VAE float32.

Official mode: declared differences (preset `official`).

Differences from the official code that change output frames:
* size: shorter side 480 with the aspect ratio kept, sides multiples of 16 (official Wan: the preset's fixed area, aspect kept by area); the `official` preset fixes 832x480
* frame rate: the sample's frames as they are (official: resampled to 16 fps)
* frame count: padded to 4k+1 frames with copies of the last frame, dropped afterwards (official: the clip's frames as given)
* masked pixels: gray 128 (VACE's inpainting annotator colour), applied by us instead of the annotator
* random draws: a CPU generator seeded with the run's seed (official: a device generator)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bench.api.errors import NotApplicable
from bench.api.types import Video
from methods.diffusion_common import image_to_pil, masks_to_pil, own_pipeline
from methods.video_common import VIDEO_MODEL_OPTIONS, VideoModelMethod
from methods.wan_v2v import WAN_NEGATIVE_PROMPT, scheduler_overrides

#: the fill of masked pixels: VACE's inpainting annotators' MASK_COLOR (about 0 in the VAE's [-1, 1] range)
GRAY = 128
UNMASKED_TEXT_REASON = ("{name}: a text-guided sample without a mask is not a task VACE defines (it edits through "
                        "annotators such as depth); set unmasked_text=regenerate to regenerate the whole clip anyway")


def vace_context(frames: np.ndarray, mask: np.ndarray | None, gray_masked: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(context frames uint8 (T,H,W,3), mask bool (T,H,W) with True = generate).

    No mask: everything is generated and the context is the clip itself. With a mask, masked
    pixels become gray when `gray_masked` (VACE's inpainting input)."""
    frames = np.asarray(frames)
    if mask is None:
        return frames, np.ones(frames.shape[:3], dtype=bool)
    m = np.asarray(mask).astype(bool)
    if m.shape != frames.shape[:3]:
        raise ValueError(f"mask shape {m.shape} does not match the video {frames.shape[:3]}")
    ctx = frames.copy()
    if gray_masked:
        ctx[m] = GRAY
    return ctx, m


class WanVACE(VideoModelMethod):
    name: ClassVar[str] = "wan-vace"
    description: ClassVar[str] = ("Wan2.1-VACE (1.3B; 14B option): masked video repainting with a reference image "
                                  "(image-guided) or the prompt (text-guided); white = generate, black = keep")
    tasks: ClassVar[frozenset[str]] = frozenset({"text", "image"})
    needs: ClassVar[frozenset[str]] = frozenset()
    weights: ClassVar[tuple[str, ...]] = ("wan2.1-vace-1.3b",)
    min_gpu_memory_gb: ClassVar[float] = 14.0
    pipeline_class: ClassVar[str] = "WanVACEPipeline"
    frame_multiple: ClassVar[int] = 4
    size_multiple: ClassVar[int] = 16
    fp32_components: ClassVar[tuple[str, ...]] = ("vae",)
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name (wan2.1-vace-1.3b / wan2.1-vace-14b) or a local diffusers folder
        "resolution": 480,
        **VIDEO_MODEL_OPTIONS,
        "num_inference_steps": 50,
        "guidance_scale": 5.0,
        "flow_shift": 16.0,  # official VACE sample shift; None = the checkpoint scheduler's
        "conditioning_scale": 1.0,
        "negative_prompt": WAN_NEGATIVE_PROMPT,
        "gray_masked": True,  # masked pixels of the context become gray (VACE inpainting input)
        "use_reference": True,  # pass the sample's reference image (image-guided samples)
        "default_prompt": "",  # prompt for image-guided samples without one
        "unmasked_text": "not_applicable",  # or "regenerate": text-guided samples without a mask (not a VACE task)
    }

    def applicable(self, sample_task: str, has_prompt: bool, has_reference: bool, has_mask: bool) -> str | None:
        reason = super().applicable(sample_task, has_prompt, has_reference, has_mask)
        if reason is None and sample_task == "text" and not has_mask and self._unmasked_not_applicable():
            return UNMASKED_TEXT_REASON.format(name=self.name)
        return reason

    def _unmasked_not_applicable(self) -> bool:
        mode = str(self.cfg["unmasked_text"])
        if mode not in ("not_applicable", "regenerate"):
            from bench.api.errors import VidEditBenchError

            raise VidEditBenchError(f"{self.name}: option 'unmasked_text' is {mode!r}; valid: not_applicable, regenerate")
        return mode == "not_applicable"

    def _load(self) -> Any:
        return own_pipeline(super()._load(), "default", **scheduler_overrides(self.cfg["flow_shift"]))

    def vace_inputs(self, video: Video, mask: np.ndarray | None, reference: np.ndarray | None
                    ) -> tuple[Any, tuple[int, int], list[Any], list[Any], list[Any] | None]:
        """(frame plan, size, context frames, masks, reference images) as the pipeline takes them."""
        plan = self.frame_plan(video.num_frames)
        size = self._size_for(video)
        ctx, m = vace_context(video.frames, mask, bool(self.cfg["gray_masked"]))
        frames = [image_to_pil(f, size) for f in plan.to_model(ctx)]
        masks = [im.convert("RGB") for im in masks_to_pil(plan.to_model(m), size)]
        refs = [image_to_pil(reference)] if reference is not None and self.cfg["use_reference"] else None
        return plan, size, frames, masks, refs

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

        if prompt is None or not str(prompt).strip():
            if reference is None:
                raise NotApplicable(f"{self.name} needs a target prompt or a reference image; the sample has neither")
            prompt = str(self.cfg["default_prompt"])
        if mask is None and reference is None and self._unmasked_not_applicable():
            raise NotApplicable(UNMASKED_TEXT_REASON.format(name=self.name))
        self.setup()
        plan, (h, w), frames, masks, refs = self.vace_inputs(video, mask, reference)
        with torch.inference_mode():
            result = self.pipe(
                prompt=str(prompt),
                negative_prompt=self.cfg["negative_prompt"] or None,
                video=frames,
                mask=masks,
                reference_images=refs,
                conditioning_scale=float(self.cfg["conditioning_scale"]),
                height=h,
                width=w,
                num_frames=plan.model_frames,
                num_inference_steps=int(self.cfg["num_inference_steps"]),
                guidance_scale=float(self.cfg["guidance_scale"]),
                generator=self.generator(),
                output_type="np",
            )
        return self.finish_video(result.frames[0], plan, video)
