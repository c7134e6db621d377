"""A native vector env: N episodes in one process, one batched judge call per step.

Every episode that ends on a step is judged in the same ``score_batch`` call, so the judge runs
padded micro-batches over all of them instead of one pass per sub-env. ``step_sequences`` takes
whole responses (as a sampler such as vLLM returns them) and gives what stepping them token by
token would give, with a single judge call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from tasks import TaskSet

from .env import EnvOptions, Episode, TokenEnvBase, check_action, check_render_mode, token_env_parts


def _gather_infos(infos: Sequence[dict], num_envs: int) -> dict[str, Any]:
    """Per-env info dicts to Gymnasium's dict of arrays with ``_key`` masks.

    Arrays of differing length (``token_rewards``, ``response_ids``) and lists go into object
    arrays, one entry per sub-env.
    """
    out: dict[str, Any] = {}
    for n, info in enumerate(infos):
        for key, value in info.items():
            if key not in out:
                numeric = isinstance(value, (bool, int, float, np.number))
                out[key] = np.zeros(num_envs, dtype=type(value)) if numeric else np.full(num_envs, None, dtype=object)
                out[f"_{key}"] = np.zeros(num_envs, dtype=bool)
            out[key][n] = value
            out[f"_{key}"][n] = True
    return out


class OpenEndedVectorEnv(TokenEnvBase, VectorEnv):
    """``num_envs`` token-level episodes judged together; see ``OpenEndedEnv`` for the spaces.

    Autoreset follows Gymnasium's default (next step): the step after an episode ends resets that
    sub-env, ignoring its action, and returns the new prompt with reward 0.

    Args:
        num_envs: number of sub-envs.
        group_size: consecutive groups of this many sub-envs get the same task at reset (G
            responses per prompt, as GRPO needs); ``num_envs`` must be a multiple of it.
        render_mode: None or "ansi".
        **env_kwargs: the other arguments of ``OpenEndedEnv`` (tasks, model, judge, max_new_tokens,
            ...); the sub-envs share its ``tasks``, ``tokenizer``, ``prompts`` and ``scorer``,
            public here too.
    """

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        group_size: int = 1,
        render_mode: Optional[str] = None,
        max_episode_steps: Optional[int] = None,
        **env_kwargs,
    ) -> None:
        # max_episode_steps: make_vec passes the spec's; the env truncates itself at max_new_tokens
        if num_envs < 1 or group_size < 1 or num_envs % group_size:
            raise ValueError(f"num_envs ({num_envs}) must be a positive multiple of group_size ({group_size})")
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.parts = token_env_parts(EnvOptions.from_keywords("OpenEndedVectorEnv", env_kwargs))
        if not isinstance(self.tasks, TaskSet):
            raise ValueError(
                f"the vector env draws from a task set held in memory; {self.tasks!r} is streamed: "
                "use the single env (gym.make) for it, or load the set without streaming"
            )
        self.num_envs = num_envs
        self.group_size = group_size
        self.single_observation_space = self.parts.observation_space
        self.single_action_space = self.parts.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = spaces.MultiDiscrete(np.full(num_envs, self.parts.vocab_size, dtype=np.int64))
        self.episodes = [Episode(self.parts.prompt_width, self.max_new_tokens, self.stop_ids) for _ in range(num_envs)]
        self._autoreset = np.zeros(num_envs, dtype=bool)

    # ----------------------------------------------------------------------------------------
    def _observations(self) -> dict[str, np.ndarray]:
        return {
            key: np.stack([getattr(e, key) for e in self.episodes])
            for key in ("prompt_ids", "prompt_mask", "response_ids", "response_mask")
        }

    def _start(self, n: int, task) -> dict:
        self.episodes[n].start(task, self.prompts[task.task_id])
        return {"task_id": task.task_id, "prompt": task.question}

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        """Reset every sub-env: random tasks (shared within groups), or ``options["task_ids"]``."""
        super().reset(seed=seed)
        task_ids = (options or {}).get("task_ids")
        if task_ids is not None:
            if len(task_ids) != self.num_envs:
                raise ValueError(f"options['task_ids'] has {len(task_ids)} ids for {self.num_envs} sub-envs")
            tasks = [self.tasks.get(t) for t in task_ids]
        else:
            picks = self.np_random.integers(len(self.tasks), size=self.num_envs // self.group_size)
            tasks = [self.tasks[int(p)] for p in picks for _ in range(self.group_size)]
        infos = [self._start(n, task) for n, task in enumerate(tasks)]
        self._autoreset[:] = False
        return self._observations(), _gather_infos(infos, self.num_envs)

    def _new_task(self):
        return self.tasks[int(self.np_random.integers(len(self.tasks)))]

    def step(self, actions):
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {actions.shape}")
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        ended = []
        for n, (episode, action) in enumerate(zip(self.episodes, actions)):
            if episode.task is None:
                raise RuntimeError("call reset() before step()")
            if self._autoreset[n]:
                infos[n] = self._start(n, self._new_task())
                continue
            terminated[n], truncated[n] = episode.push(check_action(action, self.parts.vocab_size))
            if episode.done:
                ended.append(n)
        self._judge(ended, rewards, infos)
        self._autoreset = terminated | truncated
        return self._observations(), rewards, terminated, truncated, _gather_infos(infos, self.num_envs)

    def _judge(self, ended: list[int], rewards: np.ndarray, infos: list[dict]) -> None:
        """One batched judge call for every episode in ``ended``."""
        if not ended:
            return
        results = self.scorer.score_batch(
            [self.episodes[n].task for n in ended], [self.episodes[n].response for n in ended], dense=self.parts.dense
        )
        for n, result in zip(ended, results):
            infos[n] = self.episodes[n].final_info(result)
            rewards[n] = result.sequence_reward

    def step_sequences(self, responses: Sequence[Sequence[int]]):
        """Play whole responses in every sub-env; equal to stepping them token by token.

        Each sub-env must be at the start of its episode (just reset). A response is played up to
        and including its first stop token, or up to ``max_new_tokens`` tokens; tokens after that
        are ignored. A response that ends before either raises ValueError, since its episode
        would not be over.

        Returns:
            (observations, rewards, terminated, truncated, infos): the batched observation after
            each sub-env's last token; a list of per-step reward arrays (one float32 array per
            sub-env, as the single env would have returned step by step); the final flags; the
            final infos as a dict of arrays. The sub-envs autoreset on the next ``step``.
        """
        if len(responses) != self.num_envs:
            raise ValueError(f"got {len(responses)} responses for {self.num_envs} sub-envs")
        step_rewards, ended = [], []
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        for n, (episode, response) in enumerate(zip(self.episodes, responses)):
            if episode.task is None or episode.length or self._autoreset[n]:
                raise RuntimeError(f"sub-env {n} is not at the start of an episode: call reset() first")
            for token in response:
                terminated[n], truncated[n] = episode.push(check_action(token, self.parts.vocab_size))
                if episode.done:
                    break
            if not episode.done:
                raise ValueError(
                    f"response {n} has {len(response)} tokens and no stop token: it ends before "
                    f"the episode does (max_new_tokens={self.max_new_tokens})"
                )
            step_rewards.append(np.zeros(episode.length, dtype=np.float32))
            ended.append(n)
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        self._judge(ended, rewards, infos)
        for n in ended:
            step_rewards[n][-1] = rewards[n]
        self._autoreset = terminated | truncated
        return self._observations(), step_rewards, terminated, truncated, _gather_infos(infos, self.num_envs)

    def render(self):
        if self.render_mode != "ansi":
            return None
        from .rendering import render_ansi

        return "\n\n".join(
            render_ansi(self.tokenizer, e.task, e.response, e.result) for e in self.episodes if e.task is not None
        )
