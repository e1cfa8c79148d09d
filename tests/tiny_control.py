"""Tiny random-weight structure-control models for CPU tests, saved in the hub layout.

* `build_tiny_dpt(path)`: a transformers DPT depth model (`config.json`, `model.safetensors`,
  `preprocessor_config.json`) that `methods.depth.load_depth_model` loads like `Intel/dpt-hybrid-midas`.
* `build_tiny_controlnet(path)`: the tiny diffusers `ControlNetModel` of `tests.tiny_diffusers` (it
  matches the tiny SD 1.5 UNet there), with its zero-convolutions re-initialised to small random values
  so that the control image actually changes the UNet's prediction (a fresh ControlNet is a no-op).
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_dpt(path: str | Path, seed: int = 0, image_size: int = 32, hybrid: bool = False) -> Path:
    """A tiny DPT depth model; `hybrid=True` gives the DPT-Hybrid layout of `Intel/dpt-hybrid-midas`
    (a BiT convolutional stem whose stages feed the first two reassemble stages)."""
    import torch
    from transformers import BitConfig, DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    path = Path(path)
    common = dict(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
                  image_size=image_size, backbone_out_indices=[0, 1, 2, 3], fusion_hidden_size=16,
                  use_auxiliary_head=False, initializer_range=0.5)  # large init: depth that varies with the frame
    if hybrid:
        backbone = BitConfig(global_padding="same", layer_type="bottleneck", depths=[1, 1, 1], embedding_size=8,
                             hidden_sizes=[8, 16, 32], out_features=["stage1", "stage2", "stage3"], num_groups=2)
        cfg = DPTConfig(is_hybrid=True, backbone_config=backbone, backbone_featmap_shape=[1, 32, 2, 2], patch_size=16,
                        neck_hidden_sizes=[8, 16, 16, 16], reassemble_factors=[1, 1, 1, 0.5],
                        neck_ignore_stages=[0, 1], **common)
    else:
        cfg = DPTConfig(patch_size=8, neck_hidden_sizes=[8, 8, 16, 16], **common)
    torch.manual_seed(seed)
    model = DPTForDepthEstimation(cfg).eval()
    with torch.no_grad():
        model.head.head[-2].bias.fill_(0.5)  # keep the final ReLU mostly active: a non-flat depth map
    processor = DPTImageProcessor(size={"height": image_size, "width": image_size}, keep_aspect_ratio=False,
                                  image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_controlnet(path: str | Path, seed: int = 0, zero_conv_std: float = 0.5, fp16: bool = False) -> Path:
    """`tiny_diffusers.tiny_controlnet()` (matches the tiny SD UNet) with live zero-convolutions.

    The conditioning-embedding convolutions get He (fan-in) initialisation so that different control
    images give clearly different residuals (with the default init the tiny stack washes them out).
    `fp16=True` saves only `diffusion_pytorch_model.fp16.safetensors`, like the downloaded spec.
    """
    import torch

    from tiny_diffusers import tiny_controlnet  # tests/ is on sys.path (pytest's rootdir-less import mode)

    path = Path(path)
    controlnet = tiny_controlnet(seed)
    gen = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        embedding = controlnet.controlnet_cond_embedding
        for conv in [embedding.conv_in, *embedding.blocks]:
            fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            conv.bias.zero_()
        zero_convs = list(controlnet.controlnet_down_blocks) + [controlnet.controlnet_mid_block,
                                                                controlnet.controlnet_cond_embedding.conv_out]
        for conv in zero_convs:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * zero_conv_std)
            if conv.bias is not None:
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen) * zero_conv_std)
    if fp16:
        controlnet.half().save_pretrained(path, safe_serialization=True, variant="fp16")
    else:
        controlnet.save_pretrained(path, safe_serialization=True)
    return path
