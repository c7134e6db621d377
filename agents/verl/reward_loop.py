"""``grad2reward`` in verl 0.9's reward loop, the path its PPO trainer (``verl.trainer.main_ppo``) takes.

verl 0.9 builds reward managers by ``reward.reward_manager.name`` from the reward-loop registry
(``verl.experimental.reward_loop.reward_manager``) and calls ``run_single`` once per response,
concurrently, in ``reward.num_workers`` Ray actors. This manager gathers the rows handed to it in
one turn of its event loop and judges them in one ``score_batch`` call (on the shared judge pool),
so the judge still sees batches.

Which path carries token rewards (verl 0.9.1):

- Colocated reward path (``reward.reward_model.enable=True``): verl hands each worker a chunk of
  the batch and builds ``rm_scores`` with this class's ``assemble_rm_scores``, so every response
  gets its token rewards at its own positions: the dense reward. This path also makes verl start
  an inference server for ``reward.reward_model.model_path`` that Grad2Reward does not use, and it
  reaches ``run_single`` only when ``reward.custom_reward_function.path`` is set (to this file:
  its ``compute_score`` is never called). ``examples/verl/run_paper_setting.sh`` sets all three.
- Streaming path (no reward model): verl keeps one number per response (``reward_score`` is a
  float there) and puts it on the last token, so the manager returns the sequence reward: the
  sparse baseline, whatever the estimator.

The manager's options come from ``reward.reward_kwargs`` (the ``Grad2RewardManager`` arguments:
``judge``, ``num_judges``, ``attribution``, ...).
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any, Optional

import torch
from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from .reward import EXTRA_INFO_KEYS, REWARD_MANAGER_NAME, Grad2RewardManager, extra_info


def compute_score(*args: Any, **kwargs: Any) -> float:
    """Never called: verl needs a ``custom_reward_function`` to route the colocated path to
    ``run_single``, and this file is the one the launch script names."""
    raise RuntimeError("grad2reward scores with its judge; this compute_score only routes verl to the manager")


@register(REWARD_MANAGER_NAME)
class Grad2RewardLoopManager(RewardManagerBase):
    """Grad2Reward token rewards through verl's reward loop (see the module docstring).

    Args:
        config: verl's trainer config; ``reward.reward_kwargs`` holds this manager's options and
            ``reward.reward_model.enable`` says which path verl takes.
        tokenizer: the policy's tokenizer.
        compute_score: verl's scoring function; unused.
        scorer: a scorer handed in (tests); None builds the shared judge pool on first use.
    """

    def __init__(
        self,
        config,
        tokenizer,
        compute_score=None,
        reward_router_address: Optional[str] = None,
        reward_model_tokenizer=None,
        scorer=None,
    ) -> None:
        super().__init__(config, tokenizer, compute_score)
        options = dict(config.reward.get("reward_kwargs") or {})
        self.batch_manager = Grad2RewardManager(tokenizer, scorer=scorer, **options)
        self.dense = bool(config.reward.reward_model.enable)
        if not self.dense:
            warnings.warn(
                "grad2reward on verl's streaming reward path: verl keeps one reward per response there, "
                "so responses get their sequence reward on the last token (sparse); turn on the colocated "
                "path for token rewards (README, 'Beyond one machine: verl')",
                stacklevel=2,
            )
        self._pending: list[tuple[Any, list[int], asyncio.Future]] = []

    async def run_single(self, data: DataProto) -> dict:
        rows, tasks, response_ids = self.batch_manager.judged_rows(data[-1:])
        if not rows:  # an empty response: nothing to reward
            return {"reward_score": [] if self.dense else 0.0, "reward_extra_info": dict.fromkeys(EXTRA_INFO_KEYS, 0)}
        future = self.loop.create_future()
        self._pending.append((tasks[0], response_ids[0], future))
        if len(self._pending) == 1:  # the first row of this loop turn: judge once all have arrived
            self.loop.call_soon(lambda: asyncio.ensure_future(self._judge_pending()))
        return await future

    async def _judge_pending(self) -> None:
        pending, self._pending = self._pending, []
        tasks = [task for task, _, _ in pending]
        responses = [ids for _, ids, _ in pending]
        try:
            results = await self.loop.run_in_executor(
                None, lambda: self.batch_manager.scorer.score_batch(tasks, responses, dense=self.dense)
            )
        except Exception as err:  # every waiting row fails with the judge's error, none gets a reward
            for _, _, future in pending:
                future.set_exception(err)
            return
        for (_, _, future), result in zip(pending, results):
            score = result.token_rewards.tolist() if self.dense else result.sequence_reward
            future.set_result({"reward_score": score, "reward_extra_info": extra_info(result)})

    @classmethod
    def assemble_rm_scores(cls, data: DataProto, scores: list) -> torch.Tensor:
        """verl's ``rm_scores`` for the batch: each row's token rewards at its response positions
        (a float score, from the streaming path, goes on the last valid token as verl does)."""
        if scores and not isinstance(scores[0], list):
            return super().assemble_rm_scores(data, scores)
        rm_scores = torch.zeros_like(data.batch["responses"], dtype=torch.float32)
        for row, token_rewards in enumerate(scores):
            rm_scores[row, : len(token_rewards)] = torch.tensor(token_rewards, dtype=torch.float32)
        return rm_scores
