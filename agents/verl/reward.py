"""``grad2reward``: a verl reward manager that gives judge-gradient token rewards (README, "The reward").

Registered by name in verl's reward manager registry (``verl.workers.reward_manager.register``),
with verl's signature: ``manager(data: DataProto, return_dict=False)``. From the batch it reads
the response token ids (``responses``, right-padded), their valid length (the response part of
``attention_mask``, as verl's own managers do) and each row's task (``reward_model.ground_truth``,
written by ``g2r export --format verl``). It decodes nothing: the ids go to the judge as they are
when judge and policy share a tokenizer, and through the scorer's character-overlap path when they
do not. It returns a float32 ``[batch, response_length]`` tensor holding each response's token
rewards at its own positions (0 on padding), so each row sums to that response's sequence reward,
and per row ``sequence_reward``, ``criteria_met`` and ``pitfalls_met`` for verl's logging.

The judge runs where the manager is told: a ``JudgePool`` of Ray actors by default (one judge
per GPU), or any object with ``score_batch`` handed in as ``scorer=`` (an in-process
``Grad2Reward`` in tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import torch
from verl import DataProto
from verl.workers.reward_manager import register
from verl.workers.reward_manager.abstract import AbstractRewardManager

from tasks import Task
from tasks.export import index_by_prompt, prompt_key

from .data import read_verl_parquet, task_from_json
from .judge_pool import JudgePool, JudgeSpec

REWARD_MANAGER_NAME = "grad2reward"
EXTRA_INFO_KEYS = ("sequence_reward", "criteria_met", "pitfalls_met")


def extra_info(result) -> dict:
    """What verl logs per response: the sequence reward and how many criteria and pitfalls were met."""
    return {
        "sequence_reward": result.sequence_reward,
        "criteria_met": sum(1 for c in result.criteria if c["met"] and c["weight"] > 0),
        "pitfalls_met": sum(1 for c in result.criteria if c["met"] and c["weight"] < 0),
    }


def prompt_index(paths: Sequence[str]) -> dict[str, Task]:
    """Tasks of exported parquet files by ``prompt_key`` of their messages.

    Raises:
        ValueError: two tasks with the same prompt and different rubrics (a prompt alone cannot
            tell them apart).
    """
    return index_by_prompt((task for path in paths for task in read_verl_parquet(path)), ", ".join(map(str, paths)))


@register(REWARD_MANAGER_NAME)
class Grad2RewardManager(AbstractRewardManager):
    """Token-level Grad2Reward rewards for a verl batch.

    Args:
        tokenizer: the policy's tokenizer (verl passes it); its ``name_or_path`` is the policy
            model when ``model`` is not given.
        num_examine: batches whose first row is printed (task, sequence reward, verdicts).
        compute_score: verl's rule-based scoring function; unused (the judge scores).
        reward_fn_key: the non-tensor column naming the data source (printed with examples).
        scorer: anything with ``score_batch(tasks, responses, dense)`` (a ``Grad2Reward``, a
            ``JudgePool``); None builds a ``JudgePool`` from the fields below on first use.
        model, judge, device, attribution, tau, soft, micro_batch_size, dtype, threads_per_judge, checks:
            the ``JudgeSpec`` of that pool (``model`` defaults to the tokenizer's source).
        num_judges: actors in that pool (one per GPU set aside for judging).
        num_gpus_per_judge: GPUs per actor (None: 1 on a cluster with GPUs, else 0).
        pool_name: the pool's actors are named after it, so every manager of a Ray job that names
            the same pool shares its judges (verl builds one manager per reward worker); None
            gives this manager a pool of its own.
        dense: False puts the sequence reward on the last token (the sparse baseline).
        tasks: parquet files written by ``g2r export --format verl``; rows that carry no
            ``reward_model`` column (verl 0.9's v1 trainer hands its colocated reward path only
            ``raw_prompt``) are matched to their task by the prompt's messages.
    """

    def __init__(
        self,
        tokenizer: Any,
        num_examine: int = 0,
        compute_score: Any = None,
        reward_fn_key: str = "data_source",
        scorer: Any = None,
        model: Optional[str] = None,
        judge: Optional[str] = None,
        device: str = "auto",
        attribution: str = "grad_x_embed",
        tau: float | str = "auto",
        soft: bool = False,
        micro_batch_size: int = 8,
        dtype: Optional[str] = None,
        num_judges: int = 1,
        num_gpus_per_judge: Optional[float] = None,
        threads_per_judge: int = 0,
        dense: bool = True,
        pool_name: Optional[str] = "grad2reward-judge",
        tasks: Optional[str | Sequence[str]] = None,
        checks: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.num_examine = num_examine
        self.reward_fn_key = reward_fn_key
        self.dense = dense
        self._scorer = scorer
        model = model or getattr(tokenizer, "name_or_path", None)
        if scorer is None and not model:
            raise ValueError("Grad2RewardManager: name the policy with model=... (the tokenizer has no name_or_path)")
        self.spec = JudgeSpec(
            model, judge, device, attribution, tau, soft, micro_batch_size, dtype, threads_per_judge, checks
        )
        self.num_judges = num_judges
        self.num_gpus_per_judge = num_gpus_per_judge
        self.pool_name = pool_name
        self._tasks: dict[str, Task] = {}
        self._by_prompt = prompt_index([tasks] if isinstance(tasks, str) else tasks or [])
        self._examined = 0

    @property
    def scorer(self):
        """The judge (built as a ``JudgePool`` on first use when none was handed in)."""
        if self._scorer is None:
            self._scorer = JudgePool(self.spec, self.num_judges, self.num_gpus_per_judge, name=self.pool_name)
        return self._scorer

    def __call__(self, data: DataProto, return_dict: bool = False) -> torch.Tensor | dict[str, Any]:
        rows, tasks, response_ids = self.judged_rows(data)
        results = self.scorer.score_batch(tasks, response_ids, dense=self.dense) if rows else []
        reward_tensor = torch.zeros_like(data.batch["responses"], dtype=torch.float32)
        extra: dict[str, list] = {key: [0] * len(data) for key in EXTRA_INFO_KEYS}
        for i, ids, result in zip(rows, response_ids, results):
            reward_tensor[i, : len(ids)] = torch.tensor(result.token_rewards)  # a copy: Ray's arrays are read-only
            for key, value in extra_info(result).items():
                extra[key][i] = value
        self._examine(data, rows, results)
        if return_dict:
            return {"reward_tensor": reward_tensor, "reward_extra_info": extra}
        return reward_tensor

    def judged_rows(self, data: DataProto) -> tuple[list[int], list[Task], list[list[int]]]:
        """(rows with a response, their tasks, their response ids) of a verl batch; the valid response
        length is the response part of ``attention_mask`` (verl's own managers read it the same way)."""
        prompt_length = data.batch["prompts"].shape[-1]
        lengths = data.batch["attention_mask"][:, prompt_length:].sum(-1).tolist()
        rows = [i for i, n in enumerate(lengths) if n > 0]  # an empty response has no token to reward
        responses = data.batch["responses"]
        return rows, [self._task(data, i) for i in rows], [responses[i, : lengths[i]].tolist() for i in rows]

    def _task(self, data: DataProto, row: int) -> Task:
        """The task of a batch row, from its ``reward_model.ground_truth`` (parsed once per text)."""
        column = data.non_tensor_batch.get("reward_model")
        if column is None and "raw_prompt" in data.non_tensor_batch and self._by_prompt:
            key = prompt_key(data.non_tensor_batch["raw_prompt"][row])
            if key not in self._by_prompt:
                raise KeyError(f"batch row {row}: its prompt is not the prompt of any task in the tasks= files")
            return self._by_prompt[key]
        if column is None:
            raise KeyError(
                "the batch has no 'reward_model' column; write the dataset with g2r export --format verl "
                "so each row carries its task and rubric (or, where verl passes only raw_prompt, name the "
                "exported files with tasks=...)"
            )
        cell = column[row]
        text = cell.get("ground_truth") if isinstance(cell, dict) else None
        if text not in self._tasks:
            self._tasks[text] = task_from_json(text, f"batch row {row}")
        return self._tasks[text]

    def _examine(self, data: DataProto, rows: Sequence[int], results: Sequence) -> None:
        if self._examined >= self.num_examine or not results:
            return
        self._examined += 1
        source = data.non_tensor_batch.get(self.reward_fn_key, np.array(["?"] * (max(rows) + 1)))[rows[0]]
        result = results[0]
        print(f"[grad2reward] {source} task {result.task_id}: sequence reward {result.sequence_reward:+.3f}")
        for c in result.criteria:
            print(f"    {'met ' if c['met'] else 'not '} p={c['p_true']:.2f} w={c['weight']:+g} {c['criterion']}")
