"""The LLM judge: builds the judge input for (task, criterion, response) and reads its verdict.

The judge input is the chat template of a grading instruction that holds the question, the
response and the criterion, with the assistant turn opened right after it (README, "The reward", step 1). The
response goes in as token ids, so when judge and policy share a tokenizer every response position
of the judge input is one policy token. The verdict is read from the next-token distribution at the
last position: p_true = P(True) / (P(True) + P(False)) (same section, step 1).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Optional

import torch

from tasks import Task

from .models import BUNDLED_NAME, shared_model

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


class Judge:
    """A frozen causal LM used as a rubric judge.

    Args:
        model: a Hugging Face causal LM; its parameters are frozen here.
        tokenizer: its tokenizer, with a chat template.
        micro_batch_size: (response, criterion) pairs per backward pass (the credited pairs).
        batch_tokens: tokens per verdict-only forward pass, the criteria of one response packed
            after their shared prefix (``g2r_env.packing``); bounds its memory.
        system_prompt: the grader's system message (dropped if the template has no system role).
        user_template: the grading request, with ``{question}``, ``{response}``, ``{criterion}``.
        true_word / false_word: the verdict words; each must start with a token of its own.
        freeze: make the model's parameters not require gradients and put it in eval mode (False
            only for judge training, which owns the model's training state).
    """

    def __init__(
        self,
        model,
        tokenizer,
        micro_batch_size: int = 8,
        batch_tokens: int = 8192,
        system_prompt: str = SYSTEM_PROMPT,
        user_template: str = USER_TEMPLATE,
        true_word: str = "True",
        false_word: str = "False",
        freeze: bool = True,
    ) -> None:
        if micro_batch_size < 1:
            raise ValueError(f"micro_batch_size must be >= 1, got {micro_batch_size}")
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be >= 1, got {batch_tokens}")
        self.model = model
        if freeze:
            self.model.requires_grad_(False)
            self.model.eval()
        self.tokenizer = tokenizer
        self.micro_batch_size = micro_batch_size
        self.batch_tokens = batch_tokens
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

    @classmethod
    def load(
        cls, source: str | os.PathLike = BUNDLED_NAME, device: str = "auto", dtype: torch.dtype | None = None, **kwargs
    ) -> Judge:
        """A judge on the process-wide shared copy of a model ("bundled", an HF id or a folder)."""
        model, tokenizer = shared_model(source, device, dtype)
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
            f"response), longer than the judge's context of {self.max_length}"
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

    def answer_logits(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Next-token logits (at least float32) at the last position of left-padded sequences only.

        Positions are counted from each sequence's first real token, so a sequence scores the same
        alone as in a padded batch.
        """
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            logits_to_keep=1,
            use_cache=False,
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

    def p_true(self, logits: torch.Tensor) -> torch.Tensor:
        """P(True) / (P(True) + P(False)) from answer logits [B, V]."""
        true_id, false_id = self._verdict_ids
        return torch.sigmoid(logits[:, true_id] - logits[:, false_id])
