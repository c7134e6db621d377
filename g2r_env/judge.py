"""The LLM judge: builds the judge input for (task, criterion, response) and reads its verdict.

The judge input is the chat template of a grading instruction that holds the question, the
response and the criterion, with the assistant turn opened right after it (README, "The reward", step 1). The
response goes in as token ids, so when judge and policy share a tokenizer every response position
of the judge input is one policy token. The verdict is read from the next-token distribution at the
last position: p_true = P(True) / (P(True) + P(False)) (same section, step 1), or, for a judge with a
calibration, sigmoid(scale * m + bias) of its verdict margin m = logit(True) - logit(False)
(``Calibration``; ``Judge.p_true`` is the one place it is applied).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Optional, Union

import torch
from transformers import DynamicCache

from tasks import Task

from .models import BUNDLED_NAME, judge_record, shared_model

SYSTEM_PROMPT = (
    "You are a strict grader. You read a question, a response to it and one criterion. "
    "Answer True if the response meets the criterion, otherwise answer False."
)
USER_TEMPLATE = (
    "Question:\n{question}\n\n"
    "Response:\n{response}\n\n"
    "Criterion: {criterion}\n\n"
    "Does the response meet the criterion? Answer with one word: True or False."
)
_SLOT = "\ue000G2R-RESPONSE\ue000"  # a private-use marker no tokenizer merges with its neighbours


@dataclass(frozen=True)
class Calibration:
    """An affine map of the verdict margin m = logit(True) - logit(False): p_true = sigmoid(scale * m + bias).

    Fitted by logistic regression of the verdicts on m over composed cases of tasks the judge neither
    trained nor was tested on (``g2r judge calibrate``), and stored under ``"calibration"`` in a judge
    folder's ``g2r-judge.json``.

    Attributes:
        scale: a, finite and > 0 (a calibration keeps the order of the margins).
        bias: b, finite.
        fitted_on: what it was fitted on (task sets and split).
        cases: how many judged cases it was fitted on.
    """

    scale: float
    bias: float
    fitted_on: str = ""
    cases: int = 0

    def __post_init__(self) -> None:
        for name in ("scale", "bias"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"calibration {name} must be a finite number, got {value!r}")
        if self.scale <= 0:
            raise ValueError(
                f"calibration scale must be > 0 (a negative scale would reverse the verdicts), got {self.scale!r}"
            )

    @classmethod
    def from_record(cls, value: Mapping, where: str = "calibration") -> Calibration:
        """A calibration from its record ``{"scale", "bias", "fitted_on", "cases"}``; ValueError names ``where``."""
        if not isinstance(value, Mapping) or "scale" not in value or "bias" not in value:
            raise ValueError(f"{where}: a calibration needs 'scale' and 'bias', got {value!r}")
        unknown = sorted(set(value) - {"scale", "bias", "fitted_on", "cases"})
        if unknown:
            raise ValueError(f"{where}: unknown calibration field(s) {unknown}")
        try:
            return cls(value["scale"], value["bias"], str(value.get("fitted_on", "")), int(value.get("cases", 0)))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None

    def as_record(self) -> dict:
        return asdict(self)


class Judge:
    """A frozen causal LM used as a rubric judge.

    Args:
        model: a Hugging Face causal LM; its parameters are frozen here.
        tokenizer: its tokenizer, with a chat template.
        micro_batch_size: (response, criterion) pairs per backward pass on the scorer's ``"pairs"``
            credit path.
        credit_tokens: tokens per backward pass on the scorer's ``"cached"`` credit path (credited
            pairs times their padded width after the shared frame and question); bounds its memory.
        batch_tokens: tokens per verdict-only forward pass, the criteria of one response packed
            after their shared prefix (``g2r_env.packing``); bounds its memory.
        system_prompt: the grader's system message (dropped if the template has no system role).
        user_template: the grading request, with ``{question}``, ``{response}``, ``{criterion}``.
        true_word / false_word: the verdict words; each must start with a token of its own.
        freeze: make the model's parameters not require gradients and put it in eval mode (False
            only for judge training, which owns the model's training state).
        calibration: a ``Calibration`` (or its record as a dict) applied to every p_true the judge
            gives; None gives the raw p_true = sigmoid(logit(True) - logit(False)).
    """

    def __init__(
        self,
        model,
        tokenizer,
        micro_batch_size: int = 8,
        batch_tokens: int = 8192,
        credit_tokens: int = 2048,
        system_prompt: str = SYSTEM_PROMPT,
        user_template: str = USER_TEMPLATE,
        true_word: str = "True",
        false_word: str = "False",
        freeze: bool = True,
        calibration: Union[Calibration, Mapping, None] = None,
    ) -> None:
        if micro_batch_size < 1:
            raise ValueError(f"micro_batch_size must be >= 1, got {micro_batch_size}")
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be >= 1, got {batch_tokens}")
        if credit_tokens < 1:
            raise ValueError(f"credit_tokens must be >= 1, got {credit_tokens}")
        self.model = model
        if freeze:
            self.model.requires_grad_(False)
            self.model.eval()
        self.tokenizer = tokenizer
        self.micro_batch_size = micro_batch_size
        self.batch_tokens = batch_tokens
        self.credit_tokens = credit_tokens
        self.system_prompt = system_prompt
        self.user_template = user_template
        true_ids = tokenizer.encode(true_word, add_special_tokens=False)
        false_ids = tokenizer.encode(false_word, add_special_tokens=False)
        if not true_ids or not false_ids or true_ids[0] == false_ids[0]:
            raise ValueError(
                f"the judge tokenizer cannot tell {true_word!r} from {false_word!r} "
                f"by their first token ({true_ids} vs {false_ids})"
            )
        self._verdict_ids = (true_ids[0], false_ids[0])
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._frames: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
        if calibration is not None and not isinstance(calibration, Calibration):
            calibration = Calibration.from_record(calibration)
        self.calibration: Optional[Calibration] = calibration

    @classmethod
    def load(
        cls,
        source: str | os.PathLike = BUNDLED_NAME,
        device: str = "auto",
        dtype: torch.dtype | None = None,
        calibrated: bool = True,
        **kwargs,
    ) -> Judge:
        """A judge on the process-wide shared copy of a model ("bundled", an HF id or a folder).

        ``calibrated``: apply the calibration recorded in the judge folder's ``g2r-judge.json`` (when
        it has one); False reads raw verdicts. A ``calibration=`` keyword overrides the record.
        """
        model, tokenizer = shared_model(source, device, dtype)
        if "calibration" not in kwargs:
            record = judge_record(source) or {}
            where = f"{source}: g2r-judge.json"
            kwargs["calibration"] = (
                Calibration.from_record(record["calibration"], where)
                if calibrated and record.get("calibration") is not None
                else None
            )
        return cls(model, tokenizer, **kwargs)

    @property
    def verdict_ids(self) -> tuple[int, int]:
        """(true_id, false_id): the first tokens of the verdict words."""
        return self._verdict_ids

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def max_length(self) -> int:
        """The judge's context length in tokens."""
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", None) or self.tokenizer.model_max_length)

    def frame(self, task: Task, criterion: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the response slot, cached per (question, criterion)."""
        for name, text in (("question", task.question), ("criterion", criterion)):
            if _SLOT in text:
                raise ValueError(
                    f"task {task.task_id}: the {name} contains the judge's reserved response marker "
                    f"{_SLOT!r}; remove it"
                )
        key = (task.question, criterion)
        frame = self._frames.get(key)
        if frame is None:
            user = self.user_template.format(question=task.question, response=_SLOT, criterion=criterion)
            messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]
            try:
                text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # templates without a system role
                messages = [{"role": "user", "content": f"{self.system_prompt}\n\n{user}"}]
                text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            before, after = text.split(_SLOT)
            frame = (
                self.tokenizer.encode(before, add_special_tokens=False),
                self.tokenizer.encode(after, add_special_tokens=False),
            )
            if len(self._frames) > 4096:
                self._frames.clear()
            self._frames[key] = frame
        return frame

    def context_error(self, task: Task, criterion: str, response_tokens: int) -> Optional[str]:
        """Why the judge input of ``criterion`` and a response of ``response_tokens`` judge tokens does
        not fit the judge's context, or None when it fits (the check the scorer makes on every pair)."""
        before, after = self.frame(task, criterion)
        frame = len(before) + len(after)
        if frame + response_tokens <= self.max_length:
            return None
        if frame >= self.max_length:
            return (
                f"task {task.task_id}: with criterion {criterion[:60]!r}... the judge input is {frame} tokens "
                f"before any response, beyond the judge's context of {self.max_length}; shorten the criterion "
                f"or the question"
            )
        return (
            f"task {task.task_id}: the judge input is {frame + response_tokens} tokens ({response_tokens} of "
            f"response), longer than the judge's context of {self.max_length}; lower max_new_tokens or use a "
            f"judge with a longer context"
        )

    def build_input(self, task: Task, criterion: str, response_ids: Sequence[int]) -> tuple[list[int], slice]:
        """Judge input ids for one (task, criterion, response) and the slice of the response in them.

        ``response_ids`` are inserted as they are: judge and policy share a tokenizer (the bundled model
        and its judges, or self-judging).
        """
        before, after = self.frame(task, criterion)
        ids = before + [int(t) for t in response_ids] + after
        return ids, slice(len(before), len(before) + len(response_ids))

    @property
    def decoder_layers(self) -> torch.nn.ModuleList:
        """The model's stack of decoder layers (the ModuleList as long as its number of layers)."""
        count = self.model.config.num_hidden_layers
        for module in self.model.modules():
            if isinstance(module, torch.nn.ModuleList) and len(module) == count:
                return module
        raise ValueError(f"cannot find the {count} decoder layers of {type(self.model).__name__}")

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(input_ids)

    def null_embedding(self) -> torch.Tensor:
        """The mean input embedding over the vocabulary [H]: a neutral input for baselines."""
        if getattr(self, "_null", None) is None:
            with torch.no_grad():
                self._null = self.model.get_input_embeddings().weight.float().mean(0)
        return self._null

    def prefix_states(self, input_ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Key/values per layer of one sequence ``input_ids`` [1, P], without a graph: a prefix that
        ``answer_logits(..., past=...)`` continues."""
        with torch.no_grad():
            out = self.model(input_ids=input_ids, use_cache=True, logits_to_keep=1)
        return [(layer.keys, layer.values) for layer in out.past_key_values.layers]

    def cache_of(self, past: Optional[list], rows: int) -> Optional[DynamicCache]:
        """A key/value cache of ``rows`` rows that all continue the one sequence ``past``
        (``prefix_states``); None for no past. Extending it leaves ``past`` as it is."""
        if not past:
            return None
        return DynamicCache(
            ddp_cache_data=[(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in past],
            config=self.model.config,
        )

    def answer_logits(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, past: Optional[list] = None
    ) -> torch.Tensor:
        """Next-token logits (at least float32) at the last position of left-padded sequences only.

        Positions are counted from each sequence's first real token, so a sequence scores the same
        alone as in a padded batch. ``past``: key/values of a prefix every row continues
        (``prefix_states``, one sequence's, not changed here); a row then scores as prefix + row would.
        """
        rows, start = inputs_embeds.shape[0], 0 if not past else past[0][0].shape[-2]
        position_ids = start + (attention_mask.cumsum(-1) - 1).clamp(min=0)
        cache = self.cache_of(past, rows)
        if past:
            attention_mask = torch.cat([attention_mask.new_ones(rows, start), attention_mask], dim=1)
        out = self.model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=cache,
            logits_to_keep=1,
            use_cache=cache is not None,
        )
        logits = out.logits[:, -1, :]
        return logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 -> fp32, fp64 stays

    def pad_batch(self, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-pad id lists into (input_ids, attention_mask) on the judge's device."""
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, width - len(seq) :] = torch.as_tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def margin(self, logits: torch.Tensor) -> torch.Tensor:
        """The verdict margin m = logit(True) - logit(False) from answer logits [B, V]."""
        true_id, false_id = self._verdict_ids
        return logits[:, true_id] - logits[:, false_id]

    def margin_to_p_true(self, margins: torch.Tensor, calibrated: bool = True) -> torch.Tensor:
        """p_true of verdict margins: sigmoid(scale * m + bias) with the judge's calibration, else (or
        with ``calibrated=False``) sigmoid(m)."""
        if self.calibration is None or not calibrated:
            return torch.sigmoid(margins)
        return torch.sigmoid(self.calibration.scale * margins + self.calibration.bias)

    def p_true(self, logits: torch.Tensor) -> torch.Tensor:
        """p_true from answer logits [B, V]: the calibrated P(True) / (P(True) + P(False)) (the raw
        value when the judge has no calibration; ``raw_p_true`` reads it always)."""
        return self.margin_to_p_true(self.margin(logits))

    def raw_p_true(self, logits: torch.Tensor) -> torch.Tensor:
        """P(True) / (P(True) + P(False)) from answer logits [B, V], without the calibration."""
        return self.margin_to_p_true(self.margin(logits), calibrated=False)
