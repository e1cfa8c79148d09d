"""Built-in weight specs. Add a spec here (or call `register_weight` from a plug-in) for new models."""

from __future__ import annotations

from bench.weights import WeightSpec, register_weight

_HF_MODEL_FILES = ("*.json", "*.txt", "*.safetensors", "*.model")

for _spec in (
    # ---- metrics -------------------------------------------------------------------------------
    WeightSpec("clip-vit-large-patch14", "hf", "openai/clip-vit-large-patch14", licence="MIT",
               used_by=("clip_text", "clip_consistency", "clip_image", "aesthetic"), size_mb=1710,
               allow_patterns=_HF_MODEL_FILES),
    WeightSpec("clip-vit-base-patch32", "hf", "openai/clip-vit-base-patch32", licence="MIT",
               used_by=("background_consistency",), size_mb=605, allow_patterns=("*.json", "*.txt", "pytorch_model.bin"),
               notes="the repo's main branch has no safetensors; transformers loads pytorch_model.bin"),
    WeightSpec("dinov2-base", "hf", "facebook/dinov2-base", licence="Apache-2.0",
               used_by=("dino_consistency", "dino_image"), size_mb=346, allow_patterns=_HF_MODEL_FILES),
    WeightSpec("dino-vitb16", "hf", "facebook/dino-vitb16", licence="Apache-2.0",
               used_by=("subject_consistency",), size_mb=343, allow_patterns=("*.json", "pytorch_model.bin"),
               notes="the repo's main branch has no safetensors; transformers loads pytorch_model.bin"),
    WeightSpec("laion-aesthetic-v2", "url",
               "https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/sac+logos+ava1-l14-linearMSE.pth",
               filename="sac+logos+ava1-l14-linearMSE.pth", licence="Apache-2.0", used_by=("aesthetic",), size_mb=3.7),
    WeightSpec("pickscore-v1", "hf", "yuvalkirstain/PickScore_v1", licence="MIT", used_by=("pick_score",),
               size_mb=3940, allow_patterns=_HF_MODEL_FILES),
    WeightSpec("clip-vit-h-14-laion-processor", "hf", "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", licence="MIT",
               used_by=("pick_score",), size_mb=4, allow_patterns=("*.json", "*.txt"),
               notes="only the processor (tokenizer + image processor) files"),
    WeightSpec("musiq-koniq", "hf-file", "chaofengc/IQA-PyTorch-Weights", filename="musiq_koniq_ckpt-e95806b9.pth",
               sha256="e95806b9eae5f3814c410f574ba8e552362bd5bc63d758ed5b97860f5d6185aa",
               licence="CC BY-NC-SA 4.0 (pyiqa weights, non-commercial)", used_by=("imaging_quality",), size_mb=104,
               notes="MUSIQ KonIQ-10k checkpoint used by VBench imaging_quality; needs the optional extra pyiqa"),
    WeightSpec("dover", "url", "https://github.com/VQAssessment/DOVER/releases/download/v0.1.0/DOVER.pth",
               filename="DOVER.pth", licence="S-Lab License 1.0 (non-commercial)", used_by=("dover",), size_mb=236),
    WeightSpec("fid-inception", "url",
               "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
               filename="pt_inception-2015-12-05-6726825d.pth", licence="Apache-2.0", used_by=("fid",), size_mb=91),
    WeightSpec("gmflow-sintel", "url",
               "https://github.com/hmorimitsu/ptlflow/releases/download/weights1/gmflow-sintel-d6f83ccd.ckpt",
               filename="gmflow-sintel-d6f83ccd.ckpt", licence="Apache-2.0", used_by=("motion_alignment", "warp_error"),
               size_mb=19,
               notes="ptlflow's GMFlow Sintel checkpoint (file name carries its sha256 prefix d6f83ccd); V2VBench's "
                     "original gmflow_sintel-0c07dcb3.pth ({'model': ...}) also loads via $VIDEDITBENCH_WEIGHT_GMFLOW_SINTEL"),
    WeightSpec("raft-sintel", "url",
               "https://github.com/hmorimitsu/ptlflow/releases/download/weights1/raft-sintel-fb44381e.ckpt",
               filename="raft-sintel-fb44381e.ckpt", licence="BSD-3-Clause", used_by=("motion_alignment", "warp_error"),
               size_mb=21, notes="ptlflow's RAFT Sintel checkpoint (file name carries its sha256 prefix fb44381e)"),
    # ---- VBench dimensions (issue 12) -------------------------------------------------------------
    WeightSpec("amt-s", "hf-file", "lalala125/AMT", filename="amt-s.pth",
               licence="CC BY-NC 4.0 (AMT, non-commercial)", used_by=("motion_smoothness",), size_mb=12,
               notes="AMT-S frame interpolation as VBench downloads it ({'state_dict': ...}); our own AMT-S code"),
    WeightSpec("raft-things", "url", "https://dl.dropboxusercontent.com/s/4j4z58wuv8o0mfz/models.zip",
               filename="raft-things.pth", licence="BSD-3-Clause", used_by=("dynamic_degree",), size_mb=21,
               extra={"zip_member": "models/raft-things.pth"},
               notes="the original RAFT's FlyingThings checkpoint VBench uses (keys prefixed 'module.'); taken from "
                     "the RAFT release's models.zip (81 MB download), loaded into ptlflow's RAFT"),
    # ---- editing methods (Stable Diffusion 1.5 family, as V2VBench) ------------------------------
    WeightSpec("stable-diffusion-v1-5", "hf", "stable-diffusion-v1-5/stable-diffusion-v1-5",
               licence="CreativeML OpenRAIL-M", used_by=("framewise-sdedit", "controlnet-depth", "rave", "animatediff-v2v"),
               size_mb=5200, allow_patterns=("*.json", "*.txt", "*.fp16.safetensors", "tokenizer/*")),
    WeightSpec("instruct-pix2pix", "hf", "timbrooks/instruct-pix2pix", licence="MIT",
               used_by=("framewise-ip2p", "text2video-zero"), size_mb=5200,
               allow_patterns=("*.json", "*.txt", "*.safetensors", "tokenizer/*")),
    WeightSpec("controlnet-depth-sd15", "hf", "lllyasviel/control_v11f1p_sd15_depth", licence="OpenRAIL",
               used_by=("controlnet-depth", "rave"), size_mb=723,
               allow_patterns=("config.json", "diffusion_pytorch_model.fp16.safetensors"),
               notes="fp16 weights only (loaded as float32 on CPU)"),
    WeightSpec("dpt-hybrid-midas", "hf", "Intel/dpt-hybrid-midas", licence="Apache-2.0",
               used_by=("controlnet-depth", "rave"), size_mb=490, allow_patterns=("*.json", "*.safetensors"),
               revision="refs/pr/5",
               notes="the hub's safetensors conversion (main ships only a pickled pytorch_model.bin)"),
    WeightSpec("animatediff-motion-adapter-v1-5-2", "hf", "guoyww/animatediff-motion-adapter-v1-5-2",
               licence="Apache-2.0", used_by=("animatediff-v2v",), size_mb=1820, allow_patterns=_HF_MODEL_FILES),
    WeightSpec("paint-by-example", "hf", "Fantasy-Studio/Paint-by-Example", licence="CreativeML OpenRAIL-M",
               used_by=("framewise-paint-by-example",), size_mb=6300,
               allow_patterns=("*.json", "*.txt", "*.safetensors")),
):
    register_weight(_spec)
