"""Stable-Baselines3 on the token env: an LLM actor-critic policy and a dense-reward callback.

    from stable_baselines3 import PPO
    from agents.sb3 import DenseRewardBackfill, EpisodeRolloutBuffer, LLMActorCriticPolicy

    model = PPO(LLMActorCriticPolicy, env, policy_kwargs=dict(model="bundled"), gamma=1.0,
                learning_rate=1e-5, rollout_buffer_class=EpisodeRolloutBuffer)  # the buffer is optional
    model.learn(4096, callback=DenseRewardBackfill())

- ``LLMActorCriticPolicy``: the actor is a causal LM (next-token logits after the prompt and the
  response so far, temperature 1, the whole vocabulary as actions); the critic is a linear value
  head on the LM's last hidden state. Evaluating a minibatch runs one forward per distinct
  sequence: transitions of one episode are prefixes of its longest transition, so they share it.
- ``EpisodeRolloutBuffer``: PPO minibatches made of whole episodes (SB3's default samples single
  transitions at random), so the shared forward above covers every transition of an episode.
- ``DenseRewardBackfill``: writes each finished episode's ``info["token_rewards"]`` into the
  rollout buffer before SB3 computes returns and advantages; see its docstring for the episodes
  that cross a rollout boundary.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any, Optional

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import DictRolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import DictRolloutBufferSamples, Schedule
from torch import nn

from g2r_env.models import BUNDLED_NAME, load_model

OBSERVATION_KEYS = ("prompt_ids", "prompt_mask", "response_ids", "response_mask")
_FLOAT32_EXACT_INTS = 2**24  # SB3 stores observations as float32: token ids must stay exact


class TokenIdsExtractor(BaseFeaturesExtractor):
    """Turns SB3's float observation tensors back into long token ids and masks.

    SB3 preprocesses Box observations to float (and its rollout buffer stores them as float32);
    the LM does all the feature work, so this only converts. ``features_dim`` is nominal.

    Args:
        observation_space: the env's Dict space with ``prompt_ids``, ``prompt_mask``,
            ``response_ids`` and ``response_mask``.
    """

    def __init__(self, observation_space: spaces.Dict) -> None:
        super().__init__(observation_space, features_dim=1)

    def forward(self, observations: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {key: observations[key].long() for key in OBSERVATION_KEYS}


def prefix_groups(ids: torch.Tensor, mask: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """For each row, the index of a row whose sequence contains it as a prefix (itself if none does).

    Rows are left-padded prompts followed by responses, so two rows with the same prompt are
    aligned column by column and row j contains row i when their real tokens agree up to
    ``last[i]``. The longest such row is chosen, so all rows of one episode map to the same row.

    Args:
        ids: [B, W] token ids.
        mask: [B, W] 1 on real tokens.
        last: [B] column of each row's last real token.

    Returns:
        [B] long tensor on the device of ``ids``: the representative row of each row.
    """
    ids_np = ids.cpu().numpy()
    first = mask.argmax(1).cpu().numpy()
    last_np = last.cpu().numpy()
    owner: dict[tuple[int, bytes], int] = {}  # (first column, token bytes) of every prefix seen -> row
    groups = np.empty(len(ids_np), dtype=np.int64)
    for i in np.argsort(-last_np, kind="stable"):
        start, end = int(first[i]), int(last_np[i]) + 1
        row = ids_np[i]
        rep = owner.get((start, row[start:end].tobytes()))
        if rep is None:
            rep = int(i)
            for stop in range(end, start, -1):
                key = (start, row[start:stop].tobytes())
                if key in owner:  # its shorter prefixes are registered already
                    break
                owner[key] = rep
        groups[i] = rep
    return torch.as_tensor(groups, device=ids.device)


class LLMActorCriticPolicy(ActorCriticPolicy):
    """An SB3 actor-critic policy whose actor is a causal LM and whose critic is a value head on it.

    The observation's prompt (left-padded) and response so far (right-padded) are laid side by
    side; attention masks and position ids come from the masks, so padding is never attended and
    a padded row scores as it would alone. The action distribution is the LM's next-token
    softmax at the last real token (temperature 1, the full vocabulary); the value is a linear
    head on the last hidden state there, initialised to output 0. The LM and the value head are
    trained together by SB3's optimizer.

    Evaluating a minibatch (``evaluate_actions``, the PPO update) runs the LM once per distinct
    sequence instead of once per transition: a transition of an episode is a prefix of the
    episode's later transitions, and a causal LM's output at a position does not depend on what
    follows, so its logits are read from the longest one. Use ``EpisodeRolloutBuffer`` to make
    minibatches of whole episodes, where this saves most.

    Args:
        observation_space: the env's Dict observation space.
        action_space: ``Discrete(vocab size)``; at most the LM's vocabulary.
        lr_schedule: SB3's learning-rate schedule.
        model: the LM: "bundled" (default), a local Hugging Face folder or a hub id; it must use
            the env's tokenizer.
        dtype: the LM's parameter dtype (default float32; bf16 halves memory on GPU).
        share_prefix: evaluate one forward per distinct sequence (default True); False runs one
            forward per transition (for comparison).
        **kwargs: further ``ActorCriticPolicy`` arguments (optimizer_class, optimizer_kwargs, ...);
            net_arch and ortho_init have no effect.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        model: str | os.PathLike = BUNDLED_NAME,
        dtype: torch.dtype = torch.float32,
        share_prefix: bool = True,
        **kwargs: Any,
    ) -> None:
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"LLMActorCriticPolicy needs a Discrete action space (token ids), got {action_space}")
        if not isinstance(observation_space, spaces.Dict) or set(OBSERVATION_KEYS) - set(observation_space.spaces):
            raise ValueError(
                f"LLMActorCriticPolicy needs a Dict observation with keys {OBSERVATION_KEYS}, got {observation_space}"
            )
        if action_space.n >= _FLOAT32_EXACT_INTS:
            raise ValueError(
                f"a vocabulary of {action_space.n} tokens does not fit SB3's float32 observations "
                f"(token ids must be below {_FLOAT32_EXACT_INTS})"
            )
        self.model_source = str(model)
        self.lm_dtype = dtype
        self.share_prefix = share_prefix
        kwargs.setdefault("features_extractor_class", TokenIdsExtractor)
        kwargs["ortho_init"] = False
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        self.lm, _ = load_model(self.model_source, device="cpu", dtype=self.lm_dtype)
        if getattr(self.lm.config, "final_logit_softcapping", None):
            # logits are computed here as output_embeddings(hidden state), which skips the soft-capping
            raise ValueError(f"the model {self.model_source!r} soft-caps its logits, which this policy does not apply")
        head = self.lm.get_output_embeddings()
        if head.out_features < self.action_space.n:
            raise ValueError(
                f"the model {self.model_source!r} has {head.out_features} output tokens, fewer than the "
                f"env's {self.action_space.n} actions: the policy must use the env's tokenizer"
            )
        self.value_head = nn.Linear(head.in_features, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(model=self.model_source, dtype=self.lm_dtype, share_prefix=self.share_prefix)
        return data

    # ----------------------------------------------------------------------------------------
    def _sequences(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ids, mask, last): prompt and response side by side, and the column of each last real token."""
        ids = torch.cat([obs["prompt_ids"], obs["response_ids"]], dim=1)
        mask = torch.cat([obs["prompt_mask"], obs["response_mask"]], dim=1)
        last = obs["prompt_ids"].shape[1] + obs["response_mask"].sum(1) - 1
        return ids * mask, mask, last

    def _hidden(self, ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """Run the LM on every row of ids and return its last hidden state at (rows[i], columns[i])."""
        # skip the columns that are padding in every row (early in an episode most of the response)
        start = int(mask.any(0).nonzero()[0])
        end = int(columns.max()) + 1
        ids, mask = ids[:, start:end], mask[:, start:end]
        position_ids = (mask.cumsum(1) - 1).clamp(min=0)
        hidden = self.lm.base_model(
            input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=False
        ).last_hidden_state
        return hidden[rows, columns - start]

    def _heads(self, hidden: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        """The action distribution and the value [B, 1] from last hidden states [B, H]."""
        logits = self.lm.get_output_embeddings()(hidden)[:, : self.action_space.n].float()
        values = self.value_head(hidden.float())
        return self.action_dist.proba_distribution(action_logits=logits), values

    def _evaluate(self, obs: dict[str, torch.Tensor]) -> tuple[Distribution, torch.Tensor]:
        features = self.extract_features(obs)
        ids, mask, last = self._sequences(features)
        if not self.share_prefix:
            rows = torch.arange(len(ids), device=ids.device)
            return self._heads(self._hidden(ids, mask, rows, last))
        unique, rows = torch.unique(prefix_groups(ids, mask, last), return_inverse=True)
        return self._heads(self._hidden(ids[unique], mask[unique], rows, last))

    # ----------------------------------------------------------------------------------------
    def forward(
        self, obs: dict[str, torch.Tensor], deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or, deterministic, take the argmax) next tokens; returns (actions, values, log_probs)."""
        distribution, values = self._evaluate(obs)
        actions = distribution.get_actions(deterministic=deterministic)
        return actions, values, distribution.log_prob(actions)

    def evaluate_actions(
        self, obs: dict[str, torch.Tensor], actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Values, log-probs of ``actions`` and entropies for a minibatch of transitions."""
        distribution, values = self._evaluate(obs)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: dict[str, torch.Tensor]) -> Distribution:
        return self._evaluate(obs)[0]

    def predict_values(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._evaluate(obs)[1]


class EpisodeRolloutBuffer(DictRolloutBuffer):
    """A rollout buffer whose minibatches are whole episodes, shuffled.

    Episodes (the runs of one env's column between episode starts, cut at the rollout's edges)
    are packed in random order into minibatches of at most ``batch_size`` transitions (an episode
    longer than that gets a minibatch of its own), so ``LLMActorCriticPolicy`` evaluates each
    episode with one forward. Pass it as ``PPO(..., rollout_buffer_class=EpisodeRolloutBuffer)``.
    """

    def get(self, batch_size: Optional[int] = None) -> Generator[DictRolloutBufferSamples, None, None]:
        assert self.full, "the rollout buffer is not full"
        total = self.buffer_size * self.n_envs
        batch_size = batch_size or total
        # SB3 flattens env-major (index = env * buffer_size + step): an episode is a contiguous range
        starts = self.episode_starts.T.reshape(-1).astype(bool)
        starts[:: self.buffer_size] = True
        bounds = np.append(np.flatnonzero(starts), total)
        episodes = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        if not self.generator_ready:
            next(super().get(batch_size=1))  # lets SB3 flatten its arrays in place
        batch: list[np.ndarray] = []
        size = 0
        for e in np.random.permutation(len(episodes)):
            if batch and size + len(episodes[e]) > batch_size:
                yield self._get_samples(np.concatenate(batch))
                batch, size = [], 0
            batch.append(episodes[e])
            size += len(episodes[e])
        if batch:
            yield self._get_samples(np.concatenate(batch))


class DenseRewardBackfill(BaseCallback):
    """Puts each finished episode's ``info["token_rewards"]`` into the rollout buffer.

    The env gives R on an episode's last step and 0 before it; the judge's per-token rewards
    arrive in the last step's info. SB3 calls ``_on_step`` after ``env.step`` and before it adds
    the step to the buffer, and computes returns and advantages only after the last step of the
    rollout, so writing here is in time: the episode's earlier rows (already in the buffer at
    ``pos - n + 1 .. pos - 1`` of its env's column) get ``token_rewards[:-1]`` and the reward SB3
    is about to add gets ``token_rewards[-1]``.

    A judged episode is over: truncation at ``max_new_tokens`` is the end of the task, not a time
    limit, so the callback clears ``TimeLimit.truncated`` and SB3 does not add a bootstrap value
    to the last reward. (An episode cut by an outer TimeLimit wrapper is not judged, has no
    ``token_rewards`` and keeps SB3's bootstrap.)

    Episodes that cross a rollout boundary: rewards are not known before the episode ends, and
    an episode's length (a stop token ends it early) cannot be aligned with the rollout length,
    so some episodes start in one rollout and end in the next. Their rows in the earlier rollout
    keep the env's 0 rewards and SB3 bootstraps them with the value of the state at the rollout's
    end, as for any unfinished episode. Their rows in the later rollout get the matching tail of
    ``token_rewards``, which makes every return-to-go there exact; the head's token rewards
    cannot be added to an update that has already happened and are dropped. At most
    ``n_envs * (max_new_tokens - 1)`` of every ``n_envs * n_steps`` rows are such heads, so make
    ``n_steps`` several times ``max_new_tokens``.

    Rewards must reach the callback unscaled (no VecNormalize with ``norm_reward=True``).

    Args:
        verbose: SB3's verbosity level.
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.backfilled_episodes = 0

    def _on_step(self) -> bool:
        buffer = self.model.rollout_buffer
        row = buffer.pos
        rewards = self.locals["rewards"]
        for env_index, (done, info) in enumerate(zip(self.locals["dones"], self.locals["infos"])):
            token_rewards = info.get("token_rewards") if done else None
            if token_rewards is None:
                continue
            first = row - len(token_rewards) + 1
            # the episode's rows already in the buffer: only the first (if in this rollout) starts an episode
            starts = buffer.episode_starts[max(0, first) : row, env_index].astype(bool)
            if not np.array_equal(starts, (np.arange(len(starts)) == 0) & (first >= 0)):
                raise RuntimeError(
                    f"env {env_index}: an episode of {len(token_rewards)} token rewards ended at rollout row {row}, "
                    f"but the buffer's episode starts disagree; a wrapper between the env and SB3 must keep "
                    f"one step per token"
                )
            kept = token_rewards[max(0, -first) :]
            buffer.rewards[max(0, first) : row, env_index] = kept[:-1]
            rewards[env_index] = kept[-1]
            info["TimeLimit.truncated"] = False
            self.backfilled_episodes += 1
        return True
