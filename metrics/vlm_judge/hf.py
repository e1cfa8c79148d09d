"""Local judge: a vision-language model through transformers' auto classes, greedy, batched.

`AutoProcessor` + `AutoModelForImageTextToText` (Qwen2.5-VL, Qwen2-VL, and other chat VLMs whose
processor has a chat template). Each request is one user turn: its images (in order) or its frames
as one video (`frames_as=video`, FiVE-Bench's way of showing Qwen2.5-VL the clip), then the text. Prompts are left-padded and decoded greedily (`do_sample=False`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import VidEditBenchError
from metrics.vlm_judge.backends import JudgeReply, JudgeRequest


def _dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise VidEditBenchError(f"vlm_judge: bad dtype '{name}'; valid: auto, float32, bfloat16, float16") from None


def load_vlm(path: Path, device: str, dtype: str = "auto") -> tuple[Any, Any]:
    """(model, processor) from a local folder (a hub snapshot or save_pretrained output)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(str(path))
    model = AutoModelForImageTextToText.from_pretrained(str(path), dtype=_dtype(dtype, device))
    model.to(device).eval()
    if getattr(processor, "chat_template", None) is None:
        raise VidEditBenchError(f"vlm_judge: the processor in {path} has no chat template; use an instruction-tuned VLM")
    processor.tokenizer.padding_side = "left"
    return model, processor


class HFJudge:
    name = "hf"

    def __init__(self, model_ref: Path, device: str, dtype: str, max_new_tokens: int, batch_size: int):
        from bench.models import create_model

        self.model, self.processor = create_model(model_ref, load_vlm, device, dtype=dtype)
        self.device = device
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = max(1, int(batch_size))

    def _texts(self, requests: list[JudgeRequest]) -> list[str]:
        out = []
        for r in requests:
            visual = [{"type": "video"}] if r.as_video else [{"type": "image"} for _ in r.images]
            content = visual + [{"type": "text", "text": r.prompt}]
            out.append(self.processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                          add_generation_prompt=True))
        return out

    def generate(self, requests: list[JudgeRequest]) -> list[JudgeReply]:
        replies: list[JudgeReply] = []
        for i in range(0, len(requests), self.batch_size):
            replies += self._generate_batch(requests[i:i + self.batch_size])
        return replies

    def _generate_batch(self, requests: list[JudgeRequest]) -> list[JudgeReply]:
        import torch
        from PIL import Image

        texts = self._texts(requests)
        if any(r.as_video for r in requests):
            videos = [np.stack(r.images) for r in requests]
            try:  # qwen-vl-utils' per-frame pixel cap (what FiVE-Bench ran), where the processor has the switch
                inputs = self.processor(text=texts, videos=videos, padding=True, return_tensors="pt",
                                        do_sample_frames=False, cap_pixels_per_frame=True)
            except (TypeError, ValueError):
                inputs = self.processor(text=texts, videos=videos, padding=True, return_tensors="pt",
                                        do_sample_frames=False)
        else:
            images = [Image.fromarray(np.ascontiguousarray(im)) for r in requests for im in r.images]
            inputs = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        inputs = inputs.to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        prompt_len = inputs["input_ids"].shape[1]
        new = out[:, prompt_len:]
        texts = self.processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        replies = []
        for row, text, mask in zip(new.tolist(), texts, inputs["attention_mask"].tolist()):
            n = next((j + 1 for j, t in enumerate(row) if t in eos_ids), len(row))  # up to and including EOS
            replies.append(JudgeReply(text=text.strip(), prompt_tokens=int(sum(mask)), completion_tokens=n))
        return replies
