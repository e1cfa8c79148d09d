"""The built-in methods and metrics, as lazy "module:attr" targets (nothing is imported here)."""

from __future__ import annotations

from bench.api.registry import Registry

BUILTIN_METHODS: dict[str, str] = {
    # weight-free (issue 2)
    "source": "methods.source:SourceMethod",
    "flow-propagate": "methods.flow_propagate:FlowPropagateComposite",
    "color-transfer": "methods.color_transfer:ReferenceColorTransfer",
    # diffusion (issue 4)
    "framewise-sdedit": "methods.sdedit:FramewiseSDEdit",
    "framewise-ip2p": "methods.ip2p:FramewiseInstructPix2Pix",
    "text2video-zero": "methods.text2video_zero:Text2VideoZero",
    "controlnet-depth": "methods.controlnet_depth:ControlNetDepth",
    "animatediff-v2v": "methods.animatediff_v2v:AnimateDiffV2V",
    "rave": "methods.rave:RAVE",
    "framewise-paint-by-example": "methods.paint_by_example:FramewisePaintByExample",
    # diffusion, feature-propagation family (issue 13)
    "tokenflow": "methods.tokenflow:TokenFlow",
    "vidtome": "methods.vidtome:VidToMe",
    "external": "methods.external:ExternalMethod",
    "precomputed": "methods.precomputed:PrecomputedMethod",
    # video diffusion models (issue 13)
    "wan-v2v": "methods.wan_v2v:WanV2V",
    "wan-vace": "methods.wan_vace:WanVACE",
    "anyv2v": "methods.anyv2v:AnyV2V",
    "cogvideox-v2v": "methods.cogvideox_v2v:CogVideoXV2V",
    "ltx-v2v": "methods.ltx_v2v:LTXV2V",
}

BUILTIN_METRICS: dict[str, str] = {
    # weight-free (issue 2)
    "generation_time": "metrics.efficiency:GenerationTime",
    "preprocess_time": "metrics.efficiency:PreprocessTime",
    "peak_memory": "metrics.efficiency:PeakMemory",
    "temporal_flickering": "metrics.flicker:TemporalFlickering",
    "bg_psnr": "metrics.background:BackgroundPSNR",
    "bg_ssim": "metrics.background:BackgroundSSIM",
    "bg_mse": "metrics.background:BackgroundMSE",
    # model-based (issue 3)
    "clip_text": "metrics.clip:ClipTextAlignment",
    "clip_consistency": "metrics.clip:ClipConsistency",
    "dino_consistency": "metrics.dino:DinoConsistency",
    "clip_image": "metrics.clip:ClipImageSimilarity",
    "dino_image": "metrics.dino:DinoImageSimilarity",
    "aesthetic": "metrics.aesthetic:LaionAesthetic",
    "pick_score": "metrics.pick_score:PickScore",
    "dover": "metrics.dover:DoverScore",
    "motion_alignment": "metrics.motion:MotionAlignment",
    "warp_error": "metrics.warp:WarpError",
    "fid": "metrics.fid:FrechetInceptionDistance",
    "subject_consistency": "metrics.vbench:SubjectConsistency",
    "background_consistency": "metrics.vbench:BackgroundConsistency",
    "imaging_quality": "metrics.vbench:ImagingQuality",
    # 2025-26 benchmarks' judges (issue 9)
    "vlm_judge": "metrics.vlm_judge:VlmJudge",
    "structure_distance": "metrics.structure:StructureDistance",
    "niqe": "metrics.niqe:NIQE",
    # seed-paper metrics (issue 12)
    "viclip": "metrics.viclip:ViClipTextAlignment",
    "lpips": "metrics.perceptual:LPIPSBackground",
    "box_miou": "metrics.motion_control:BoxMIoU",
    "centroid_distance": "metrics.motion_control:CentroidDistance",
    # VBench motion / aesthetic dimensions (issue 12)
    "motion_smoothness": "metrics.vbench_motion:MotionSmoothness",
    "dynamic_degree": "metrics.vbench_motion:DynamicDegree",
    "aesthetic_quality": "metrics.vbench_quality:AestheticQuality",
}

METHODS: Registry = Registry("method", "videditbench.methods", BUILTIN_METHODS)
METRICS: Registry = Registry("metric", "videditbench.metrics", BUILTIN_METRICS)
