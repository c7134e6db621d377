"""Grad2Reward inside TRL: a reward function for ``GRPOTrainer`` and a trainer with token-level credit.

- ``Grad2RewardFunction``: a TRL reward function (``reward_funcs=[...]``) that judges a batch of
  completions against their rubrics in one ``Grad2Reward.score_batch`` call, forward only, and
  returns the sequence reward R of each (README, "The reward", step 3).
- ``TokenGRPOTrainer``: ``GRPOTrainer`` with the same constructor and ``GRPOConfig``, whose
  advantages are per token: Grad2Reward's token rewards (steps 4-5) turned into advantages by any
  estimator of ``agents.advantages`` (``token_grpo`` by default), used in TRL's own loss in place
  of its sequence advantage, so TRL's clipping, KL term and loss types apply unchanged.

Each completion's task comes from the dataset's ``task`` column (``tasks.to_hf_dataset``,
``g2r export --format trl``) or, for datasets with a prompt only, from the prompt's messages
(``tasks.export.prompt_key``, as verl's reward manager finds them).

Tested with TRL 1.16.0 (the ``trl`` extra), single process, generation with ``transformers``'
``generate`` (vLLM and tool calling untested). This is the only module that imports trl.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Optional

import torch
from trl import GRPOTrainer

from g2r_env import Grad2Reward, Judge
from g2r_env.attribution import Tau
from g2r_env.scorer import ScoreResult
from tasks import Task, TaskSet, load_taskset
from tasks.export import index_by_prompt, prompt_key, task_from_json

from .advantages import ADVANTAGES, compute_advantages

REWARD_NAME = "grad2reward"
"""The reward function's ``__name__``: TRL logs its rewards as ``rewards/grad2reward/mean``."""
METRIC_PREFIX = "grad2reward/"
"""Metrics logged through TRL's ``log_metric``: ``grad2reward/criteria_met`` (the share of
positive-weight criteria met) and ``grad2reward/pitfalls_met`` (the share of negative-weight ones)."""


def met_rates(results: Sequence[ScoreResult]) -> dict[str, float]:
    """The share of criteria met in a batch, per kind: ``criteria`` (positive weight) and
    ``pitfalls`` (negative weight); a kind the batch's rubrics lack is left out."""
    rates = {}
    for kind, keep in (("criteria", lambda w: w > 0), ("pitfalls", lambda w: w < 0)):
        verdicts = [c["met"] for r in results for c in r.criteria if keep(c["weight"])]
        if verdicts:
            rates[kind] = sum(verdicts) / len(verdicts)
    return rates


class Grad2RewardFunction:
    """A TRL reward function: each completion's sequence reward R from a rubric judge.

    TRL calls it with ``prompts``, ``completions``, ``completion_ids`` and every dataset column as
    keyword lists, one entry per completion. It finds each completion's task, judges all of them
    in one ``Grad2Reward.score_batch`` call and returns R per completion. With ``dense`` False
    (the default) the judge runs forward only, since ``GRPOTrainer`` uses R alone;
    ``TokenGRPOTrainer`` turns ``dense`` on while it scores its own batches, and reads the token
    rewards from ``last_results``. Met rates per criterion kind go to TRL's logs through its
    ``log_metric`` hook (``METRIC_PREFIX``).

    Args:
        tasks: the tasks, to find a completion's task by its prompt when the dataset has no
            ``task`` column: a TaskSet, a list of tasks, or anything ``load_taskset`` takes (a
            bundled set's name, a path). None: every row must carry ``task``.
        judge: the judge (``Judge.load("bundled-judge")``, ``Judge(model, tokenizer)``).
        attribution: the attribution method by name (``g2r_env.attribution``); used for token
            credit (``TokenGRPOTrainer``), never for R.
        tau: the attribution's softmax temperature ("auto": the std of the scores).
        soft: use p_true instead of the 0/1 verdict in the rewards.
        checks: decide criteria with an exact check by code, not by the judge (``Grad2Reward``).
        policy_tokenizer: the policy's tokenizer when it differs from the judge's (responses are
            then re-tokenized for the judge); None when they share one.
        scorer: anything with ``score_batch(tasks, responses, dense)`` in place of ``judge``
            (a ``Grad2Reward`` already built, a judge pool).
    """

    def __init__(
        self,
        tasks: TaskSet | Iterable[Task] | str | None = None,
        judge: Optional[Judge] = None,
        attribution: str = "grad_x_embed",
        tau: Tau = "auto",
        soft: bool = False,
        policy_tokenizer: Any = None,
        scorer: Any = None,
        checks: bool = True,
    ) -> None:
        if (judge is None) == (scorer is None):
            raise ValueError("Grad2RewardFunction takes a judge=Judge(...) or a scorer=..., exactly one of them")
        self.__name__ = REWARD_NAME
        self.scorer = scorer or Grad2Reward(judge, attribution, tau, soft, policy_tokenizer, checks=checks)
        if isinstance(tasks, str):
            tasks = load_taskset(tasks)
        task_list = list(tasks or [])
        self._by_prompt = index_by_prompt(task_list, getattr(tasks, "name", "tasks"))
        self._task_count = len(task_list)
        self._parsed: dict[str, Task] = {}
        self.dense = False
        self.last_results: Optional[list[ScoreResult]] = None

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Optional[Sequence[Sequence[int]]] = None,
        task: Optional[Sequence[Optional[str]]] = None,
        log_metric: Optional[Callable[[str, float], None]] = None,
        **kwargs: Any,
    ) -> list[float]:
        """R per completion, in order (TRL's reward-function signature)."""
        if completion_ids is None:
            raise ValueError(
                "Grad2RewardFunction judges the completion's token ids and got none; it runs inside "
                "TRL's GRPOTrainer (which passes completion_ids), or pass completion_ids=... yourself"
            )
        tasks = [self.task_of(prompt, None if task is None else task[i], i) for i, prompt in enumerate(prompts)]
        self.last_results = None
        results = self.scorer.score_batch(tasks, completion_ids, dense=self.dense)
        self.last_results = results
        if log_metric is not None:
            for kind, rate in met_rates(results).items():
                log_metric(f"{METRIC_PREFIX}{kind}_met", rate)
        return [r.sequence_reward for r in results]

    def task_of(self, prompt: Any, task_json: Optional[str] = None, row: int = 0) -> Task:
        """The task of one completion: from its ``task`` column when the row has one, else by its prompt.

        Raises:
            ValueError: no ``task`` and a prompt that is no task's prompt (the message shows it).
        """
        if task_json is not None:
            if task_json not in self._parsed:
                self._parsed[task_json] = task_from_json(task_json, f"completion {row}", field="the 'task' column")
            return self._parsed[task_json]
        key = prompt_key(prompt)
        if key not in self._by_prompt:
            shown = key if len(key) <= 200 else key[:200] + "..."
            raise ValueError(
                f"completion {row}: its prompt {shown} is not the prompt of any of the {self._task_count} tasks "
                "given with tasks=..., and its dataset row has no 'task' column; build the dataset with "
                "tasks.to_hf_dataset(...) or g2r export --format trl, or pass the task set as tasks=..."
            )
        return self._by_prompt[key]


class TokenGRPOTrainer(GRPOTrainer):
    """TRL's ``GRPOTrainer`` with per-token advantages from Grad2Reward's token rewards.

    Same constructor and ``GRPOConfig`` as ``GRPOTrainer``, plus ``advantage``. ``reward_funcs``
    must hold one ``Grad2RewardFunction``; its token rewards (attribution chosen on it) become
    the advantages of every completion token through ``agents.advantages``. Any other reward
    function's reward (times its ``reward_weights`` entry) is added to the last token of the
    completion, so it counts in every estimator's returns as a sequence reward does.

    TRL hooks used (tested with TRL 1.16.0):

    - ``_calculate_rewards``: runs TRL's own, with the Grad2Reward function set to dense scoring
      (forward and backward through the judge, still one ``score_batch`` call per batch), and
      keeps its token rewards and every function's rewards.
    - ``_generate_and_score_completions``: runs TRL's own (generation, reference and old log
      probabilities, logging), then replaces its ``advantages`` of shape [B] with [B, T].
    - ``_compute_loss`` is TRL's, unchanged: it takes [B, T] advantages as they are (it adds a
      token axis only to [B] ones), so clipping (``epsilon``, ``epsilon_high``, ``delta``), the
      KL term (``beta``), importance sampling and ``loss_type`` work as with sequence advantages.

    Not used: ``scale_rewards`` (each estimator normalizes in its own way) and
    ``multi_objective_aggregation="normalize_then_sum"`` (refused).

    Args:
        *args, **kwargs: those of ``GRPOTrainer``.
        advantage: an estimator of ``agents.advantages.ADVANTAGES`` by name: "token_grpo"
            (default, the paper's), "token_rloo", "grpo_credit", "grpo" (sequence-level, on R), "rloo", ...
    """

    def __init__(self, *args: Any, advantage: str = "token_grpo", **kwargs: Any) -> None:
        if advantage not in ADVANTAGES:
            raise ValueError(f"unknown advantage estimator {advantage!r}; choose one of {sorted(ADVANTAGES)}")
        super().__init__(*args, **kwargs)
        found = [i for i, f in enumerate(self.reward_funcs) if isinstance(f, Grad2RewardFunction)]
        if len(found) != 1:
            raise ValueError(
                f"TokenGRPOTrainer needs exactly one Grad2RewardFunction in reward_funcs (found {len(found)}): "
                "the token rewards come from it"
            )
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(
                f"TokenGRPOTrainer adds the reward functions' rewards before its estimator; "
                f"multi_objective_aggregation={self.multi_objective_aggregation!r} is not supported, "
                "use 'sum_then_normalize'"
            )
        self.advantage = advantage
        self.grad2reward_index = found[0]
        self.grad2reward: Grad2RewardFunction = self.reward_funcs[found[0]]
        self._scored: Optional[tuple[list, torch.Tensor]] = None

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        self.grad2reward.dense = True
        try:
            rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        finally:
            self.grad2reward.dense = False
        token_rewards = [r.token_rewards for r in self.grad2reward.last_results]
        self._scored = (token_rewards, rewards_per_func)
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        mask = output["completion_mask"]
        if "tool_mask" in output:
            mask = mask * output["tool_mask"]
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        output["advantages"] = self.token_advantages(mask, group_size)
        return output

    def token_advantages(self, mask: torch.Tensor, group_size: int) -> torch.Tensor:
        """[B, T] advantages of this process's completions from the last scored batch.

        Token rewards of every process are gathered first, since a prompt's group can span
        processes (TRL's sequence advantages are computed the same way).
        """
        token_rewards, rewards_per_func = self._scored
        self._scored = None
        local = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
        for row, rewards in enumerate(token_rewards):
            local[row, : len(rewards)] = torch.as_tensor(rewards, dtype=torch.float32)
        width = local.shape[1]
        gather, pad = self.accelerator.gather, self.accelerator.pad_across_processes
        rewards = gather(pad(local, dim=1))
        valid = gather(pad(mask.to(torch.float32), dim=1)) > 0
        weights = self.reward_weights.to(rewards.device)
        rewards = rewards * weights[self.grad2reward_index]
        others = [j for j in range(rewards_per_func.shape[1]) if j != self.grad2reward_index]
        if others:
            extra = (rewards_per_func[:, others].nan_to_num(0.0) * weights[others]).sum(-1).to(rewards.device)
            positions = torch.arange(rewards.shape[1], device=rewards.device)
            last = torch.where(valid, positions, -1).amax(-1)
            has_tokens = last >= 0
            rewards[has_tokens, last[has_tokens]] += extra[has_tokens]
        advantages = compute_advantages(self.advantage, rewards, valid, group_size)
        start = self.accelerator.process_index * mask.shape[0]
        return advantages[start : start + mask.shape[0], :width]
