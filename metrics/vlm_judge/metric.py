"""The `vlm_judge` metric: a vision-language model answers questions about the edit.

protocol=five_acc (FiVE-Bench FiVE-Acc): yes/no and multiple-choice questions (questions.py) on 4
uniformly sampled edited frames (the centres of 4 equal segments; a local model gets them as one
video, as FiVE-Bench feeds Qwen2.5-VL, an API as 4 images). Per sample:
yes_no = 1 when the target question is answered YES and the source question (if any) NO;
multi_choice = 1 when the expected option is chosen; union = yes_no OR multi_choice; inter = AND;
`vlm_judge` = FiVE-Acc = mean of the four, in [0, 1] (FiVE-Bench's tables show x100).

protocol=editverse (EditVerseBench): for 3 frame pairs (source frame, edited frame) at indices
i * (T // 3), the judge scores prompt following, edit quality and background consistency 0-3;
`vlm_judge` = the mean over pairs of their sum (0-9), plus the three means. (EditVerse's own loop
steps by T // 3 and so visits a 4th frame when T is not a multiple of 3; here it is always 3.)

Known differences: FiVE-Bench's loop takes every (T // (T // 4))-th frame from half a stride on
(4 frames only for some T) and passes fps=10 through qwen-vl-utils, which sets Qwen2.5-VL's temporal
position step; here the video gets the processor's default timing. EditVerse asks GPT-4o a second
time to extract the total from the first answer; here the three scores are parsed directly.

Every answer is parsed and validated (parse.py); an unparseable one is asked again, with a format
reminder, up to `parse_retries` times, then the sample becomes an error row carrying the raw text.
Answers are cached in the run's store (bench/store/judge_cache.py); calls and tokens are recorded per
run in `judge_usage` and per sample in the score row's details, with the questions and answers.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Callable, ClassVar

import numpy as np

from bench.errors import VidEditBenchError
from bench.api.hashing import hash_array
from bench.store.judge_cache import CachedAnswer, JudgeCache, Usage, cache_key
from bench.metric import Metric, OutputInfo, Scores
from bench.types import EvalItem
from metrics.vlm_judge.backends import JudgeRequest
from metrics.vlm_judge.parse import Unparseable, parse_editverse, parse_multi_choice, parse_yes_no
from metrics.vlm_judge.questions import Question, editverse_questions, five_acc_questions, retry_prompt, templates_text

DEFAULT_HF_MODEL = "qwen2.5-vl-7b-instruct"  # weights registry name of Qwen/Qwen2.5-VL-7B-Instruct
DEFAULT_API_MODEL = "gpt-4o-2024-11-20"  # EditVerseBench's judge
DEFAULT_MAX_NEW_TOKENS = {"five_acc": 128, "editverse": 512}
RAW_IN_MESSAGE = 300

FIVE_ACC_OUTPUTS = (
    OutputInfo("vlm_judge", True, (0.0, 1.0), "", "FiVE-Acc: mean of yes/no, multiple-choice, union, intersection"),
    OutputInfo("vlm_judge_yes_no", True, (0.0, 1.0), "", "FiVE-YN: target answered YES and source NO"),
    OutputInfo("vlm_judge_multi_choice", True, (0.0, 1.0), "", "FiVE-MC: the target option chosen"),
    OutputInfo("vlm_judge_union", True, (0.0, 1.0), "", "FiVE-U: yes/no or multiple choice right"),
    OutputInfo("vlm_judge_inter", True, (0.0, 1.0), "", "FiVE-I: yes/no and multiple choice right"),
)
EDITVERSE_OUTPUTS = (
    OutputInfo("vlm_judge", True, (0.0, 9.0), "", "EditVerse VLM score: prompt following + edit quality + background"),
    OutputInfo("vlm_judge_prompt_following", True, (0.0, 3.0), "", "EditVerse prompt following (0-3)"),
    OutputInfo("vlm_judge_edit_quality", True, (0.0, 3.0), "", "EditVerse edit quality (0-3)"),
    OutputInfo("vlm_judge_background_consistency", True, (0.0, 3.0), "", "EditVerse background consistency (0-3)"),
)


class _ProtocolOutputs:
    """`outputs()` per protocol on an instance; all of them on the class (for listings)."""

    def __get__(self, obj: Any, objtype: Any = None) -> Callable[[], tuple[OutputInfo, ...]]:
        if obj is None:
            return lambda: FIVE_ACC_OUTPUTS + EDITVERSE_OUTPUTS[1:]
        return lambda: FIVE_ACC_OUTPUTS if obj.options["protocol"] == "five_acc" else EDITVERSE_OUTPUTS


class JudgeAnswerError(VidEditBenchError):
    def __init__(self, message: str, details: dict[str, Any]):
        super().__init__(message)
        self.details = details


def uniform_indices(n_frames: int, k: int) -> list[int]:
    """The centres of k equal segments of n_frames (all frames when there are fewer than k)."""
    if n_frames <= k:
        return list(range(n_frames))
    return [int((i + 0.5) * n_frames / k) for i in range(k)]


def pair_indices(n_frames: int, k: int) -> list[int]:
    step = max(1, n_frames // k)
    return [min(i * step, n_frames - 1) for i in range(min(k, n_frames))]


class VlmJudge(Metric):
    name = "vlm_judge"
    description = ("VLM judge: FiVE-Acc yes/no + multiple-choice accuracy (protocol=five_acc, [0,1]) or EditVerse "
                   "0-3 scores and their sum (protocol=editverse, 0-9); backend=hf (local) or openai (API)")
    higher_is_better = True
    value_range = (0.0, 1.0)
    needs = frozenset({"source", "text"})
    outputs = _ProtocolOutputs()  # type: ignore[assignment]
    defaults: ClassVar[dict[str, Any]] = {
        "protocol": "five_acc", "backend": "hf", "model": None, "num_frames": 4, "num_pairs": 3,
        "max_new_tokens": None, "parse_retries": 2, "dtype": "auto", "frames_as": None,
        "base_url": "https://api.openai.com/v1", "api_key_env": "OPENAI_API_KEY", "timeout": 60.0,
        "http_retries": 4, "backoff": 2.0, "requests_per_minute": 0, "jpeg_quality": 95,
    }
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"protocol": ("five_acc", "editverse"), "backend": ("hf", "openai"),
                                                     "frames_as": (None, "video", "images")}
    #: options that change how answers are fetched, not what they are (kept out of the variant)
    OPERATIONAL = frozenset({"parse_retries", "base_url", "api_key_env", "timeout", "http_retries", "backoff",
                             "requests_per_minute"})

    @classmethod
    def details_text(cls) -> str:
        """Shown by `videditbench list metrics --details`."""
        return "question templates (metrics/vlm_judge/templates.yaml):\n" + templates_text()

    def __init__(self, device: str = "cpu", batch_size: int | None = None, **options: Any):
        super().__init__(device=device, batch_size=batch_size, **options)
        _ = self.frames_as  # validate the combination now (one clear line), not mid-run
        self._backend: Any = None
        self._cache: JudgeCache | None = None
        self._log: Callable[[str], None] = lambda msg: None
        self.usage = Usage()
        self._started = time.time()

    # --- variant -------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        m = self.options["model"]
        if m:
            return str(m)
        return DEFAULT_HF_MODEL if self.options["backend"] == "hf" else DEFAULT_API_MODEL

    @property
    def max_new_tokens(self) -> int:
        return int(self.options["max_new_tokens"] or DEFAULT_MAX_NEW_TOKENS[self.options["protocol"]])

    @property
    def frames_as(self) -> str:
        """five_acc on a local model: the 4 frames as one video (as FiVE-Bench); otherwise separate images."""
        f = self.options["frames_as"]
        if f is None:
            f = "video" if self.options["protocol"] == "five_acc" and self.options["backend"] == "hf" else "images"
        if f == "video" and (self.options["backend"] != "hf" or self.options["protocol"] != "five_acc"):
            raise VidEditBenchError("vlm_judge: frames_as=video needs backend=hf and protocol=five_acc "
                                    "(EditVerse pairs and API requests are images)")
        return f

    def _generation(self) -> dict[str, Any]:
        g: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "frames_as": self.frames_as}
        if self.options["backend"] == "hf":
            g["dtype"] = self.options["dtype"]
        else:
            g["jpeg_quality"] = int(self.options["jpeg_quality"])
        return g

    def variant(self) -> dict[str, Any]:
        p = self.options["protocol"]
        v: dict[str, Any] = {"protocol": p, "backend": self.options["backend"], "model": self.model_id,
                             **self._generation(),
                             "templates": hashlib.sha256(templates_text().encode()).hexdigest()[:8]}
        v["num_frames" if p == "five_acc" else "num_pairs"] = int(self.options["num_frames" if p == "five_acc" else "num_pairs"])
        return dict(sorted(v.items()))

    def required_weights(self) -> list[str]:
        if self.options["backend"] != "hf":
            return []
        from metrics._embed import registry_weight_names

        return registry_weight_names(self._hf_weights_ref())

    def _hf_weights_ref(self) -> str:
        """A registry name or a local path; a hub id maps to the registry entry with that source."""
        from pathlib import Path

        from bench.weights import all_specs

        ref = self.model_id
        if Path(ref).expanduser().exists():
            return ref
        for spec in all_specs():
            if ref in (spec.name, spec.source):
                return spec.name
        raise VidEditBenchError(
            f"vlm_judge: model '{ref}' is neither a local folder nor a registered weights name or hub id; "
            "register it in bench/weights/catalog.py or pass --metric-opt vlm_judge.model=<local folder>"
        )

    # --- run plumbing -----------------------------------------------------------------------------
    def bind_run(self, store: Any, log: Callable[[str], None]) -> None:
        """Called by the runner: answers are cached in the run's store, usage is recorded there."""
        self._cache = JudgeCache(store.conn)
        self._log = log

    @property
    def cache(self) -> JudgeCache:
        if self._cache is None:
            self._cache = JudgeCache()
        return self._cache

    def setup(self) -> None:
        if self._backend is not None:
            return
        if self.options["backend"] == "hf":
            from bench.models import resolve_path
            from metrics.vlm_judge.hf import HFJudge

            path = resolve_path(self._hf_weights_ref())
            self._backend = HFJudge(path, self.device, self.options["dtype"], self.max_new_tokens, self.batch_size)
        else:
            from metrics.vlm_judge.openai_api import OpenAIJudge

            o = self.options
            self._backend = OpenAIJudge(o["base_url"], self.model_id, o["api_key_env"], o["timeout"], o["http_retries"],
                                        o["backoff"], o["requests_per_minute"], self.max_new_tokens, o["jpeg_quality"],
                                        log=self._log)
        self._started = time.time()

    def teardown(self) -> None:
        if self.usage.samples:
            self.cache.record_usage(started=self._started, metric=self.name, variant_id=self.variant_id(),
                                    backend=self.options["backend"], model=self.model_id,
                                    protocol=self.options["protocol"], usage=self.usage)
            u = self.usage
            self._log(f"vlm_judge ({self.options['backend']} {self.model_id}, {self.options['protocol']}): "
                      f"{u.samples} samples, {u.calls} calls, {u.cache_hits} cached answers, "
                      f"{u.prompt_tokens} prompt + {u.completion_tokens} completion tokens")
        self.usage = Usage()
        self._backend = None

    # --- asking -------------------------------------------------------------------------------------
    def _parse(self, q: Question, text: str) -> Any:
        if q.kind == "yes_no":
            return parse_yes_no(text)
        if q.kind == "multi_choice":
            return parse_multi_choice(text, q.options)
        return parse_editverse(text)

    def ask(self, questions: list[Question], images: list[list[np.ndarray]]) -> tuple[dict[str, Any], list[dict]]:
        """Parsed answers by question id, and a record per question (raises JudgeAnswerError)."""
        if self._backend is None:
            self.setup()
        hashes = [[hash_array(im) for im in ims] for ims in images]
        backend, model, protocol = self.options["backend"], self.model_id, self.options["protocol"]
        gen = self._generation()
        parsed: dict[str, Any] = {}
        records = {q.qid: {"qid": q.qid, "kind": q.kind, "question": q.question, "expected": q.expected,
                           "answers": [], "cached": []} for q in questions}
        pending = list(range(len(questions)))
        errors: dict[str, str] = {}
        for attempt in range(int(self.options["parse_retries"]) + 1):
            if not pending:
                break
            prompts = {i: retry_prompt(questions[i], attempt) for i in pending}
            # the try number is part of the key: a retry is a new question (the same prompt may answer
            # differently), and a re-run replays every try from the cache
            keys = {i: cache_key(backend, model, protocol, prompts[i], hashes[i], {**gen, "try": attempt})
                    for i in pending}
            answers: dict[int, CachedAnswer] = {}
            misses = []
            for i in pending:
                hit = self.cache.get(keys[i])
                if hit is not None:
                    answers[i] = hit
                    self.usage.cache_hits += 1
                else:
                    misses.append(i)
            if misses:
                as_video = self.frames_as == "video"
                replies = self._backend.generate([JudgeRequest(prompts[i], images[i], as_video) for i in misses])
                for i, rep in zip(misses, replies):
                    ans = CachedAnswer(rep.text, rep.prompt_tokens, rep.completion_tokens)
                    self.cache.put(keys[i], backend=backend, model=model, protocol=protocol, prompt=prompts[i],
                                   frame_hashes=hashes[i], answer=ans)
                    answers[i] = ans
                    self.usage.calls += rep.calls
                    self.usage.prompt_tokens += rep.prompt_tokens
                    self.usage.completion_tokens += rep.completion_tokens
            still = []
            for i in pending:
                q, ans = questions[i], answers[i]
                rec = records[q.qid]
                rec["answers"].append(ans.text)
                rec["cached"].append(i not in misses)
                try:
                    parsed[q.qid] = self._parse(q, ans.text)
                    rec["parsed"] = parsed[q.qid].__dict__ if hasattr(parsed[q.qid], "__dict__") else parsed[q.qid]
                except Unparseable as e:
                    self.usage.unparseable += 1
                    errors[q.qid] = str(e)
                    still.append(i)
            pending = still
        recs = list(records.values())
        if pending:
            q = questions[pending[0]]
            raw = records[q.qid]["answers"][-1]
            raw_short = raw if len(raw) <= RAW_IN_MESSAGE else raw[:RAW_IN_MESSAGE] + "…"
            raise JudgeAnswerError(
                f"vlm_judge: unparseable answer to {q.qid} after {int(self.options['parse_retries']) + 1} tries "
                f"({errors[q.qid]}); raw answer: {raw_short!r}",
                self._details(recs, error=True),
            )
        return parsed, recs

    def _details(self, records: list[dict], error: bool = False, **extra: Any) -> dict[str, Any]:
        return {"protocol": self.options["protocol"], "backend": self.options["backend"], "model": self.model_id,
                "questions": records, **extra, **({"error": True} if error else {})}

    # --- scoring ------------------------------------------------------------------------------------
    def compute(self, item: EvalItem) -> dict[str, float]:
        before = Usage(**self.usage.as_dict())
        self.usage.samples += 1
        if self.options["protocol"] == "five_acc":
            values, recs, frames = self._five_acc(item)
        else:
            values, recs, frames = self._editverse(item)
        spent = {k: v - getattr(before, k) for k, v in self.usage.as_dict().items() if k != "samples"}
        return Scores(values, self._details(recs, frames=frames, usage=spent))

    def _five_acc(self, item: EvalItem) -> tuple[dict[str, float], list[dict], list[int]]:
        questions = five_acc_questions(item.sample)
        idx = uniform_indices(item.edited.num_frames, int(self.options["num_frames"]))
        frames = [item.edited.frames[i] for i in idx]
        parsed, recs = self.ask(questions, [frames] * len(questions))
        yes_no = parsed["target_yes_no"] == "yes" and parsed.get("source_yes_no", "no") == "no"
        mc = parsed["multi_choice"] == next(q.expected for q in questions if q.qid == "multi_choice")
        parts = [float(yes_no), float(mc), float(yes_no or mc), float(yes_no and mc)]
        return ({"vlm_judge": float(np.mean(parts)), "vlm_judge_yes_no": parts[0], "vlm_judge_multi_choice": parts[1],
                 "vlm_judge_union": parts[2], "vlm_judge_inter": parts[3]}, recs, idx)

    def _editverse(self, item: EvalItem) -> tuple[dict[str, float], list[dict], list[int]]:
        n = min(item.source.num_frames, item.edited.num_frames)
        idx = pair_indices(n, int(self.options["num_pairs"]))
        questions = editverse_questions(item.sample, len(idx))
        images = [[item.source.frames[i], item.edited.frames[i]] for i in idx]
        parsed, recs = self.ask(questions, images)
        scores = [parsed[q.qid] for q in questions]
        return ({"vlm_judge": float(np.mean([s.total for s in scores])),
                 "vlm_judge_prompt_following": float(np.mean([s.prompt_following for s in scores])),
                 "vlm_judge_edit_quality": float(np.mean([s.edit_quality for s in scores])),
                 "vlm_judge_background_consistency": float(np.mean([s.background_consistency for s in scores]))},
                recs, idx)


__all__ = ["VlmJudge", "JudgeAnswerError", "uniform_indices", "pair_indices"]
