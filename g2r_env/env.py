"""The token-level environment: one action is one token of the response to an open-ended task."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Optional

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from tasks import Task, TaskSet, TaskStream, load_taskset

from .attribution import Tau
from .judge import Judge
from .models import BUNDLED_JUDGE, BUNDLED_NAME, load_tokenizer, stop_token_ids
from .rendering import render_ansi
from .scorer import Grad2Reward, ScoreResult

REWARD_MODES = ("dense", "sparse")


SELF_JUDGE = "self"


@functools.cache
def _policy_tokenizer(source: str):
    return load_tokenizer(source)


def default_judge(model: str) -> str:
    """The judge a policy gets when none is named: the trained bundled judge for the bundled model,
    the frozen policy itself ("self", the paper's self-judging) for any other."""
    return BUNDLED_JUDGE if str(model) == BUNDLED_NAME else SELF_JUDGE


def build_scorer(
    model: str = BUNDLED_NAME,
    judge: Optional[str] = None,
    device: str = "auto",
    attribution: str = "grad_x_embed",
    tau: Tau = "auto",
    soft: bool = False,
    micro_batch_size: int = 8,
    dtype: Optional[str] = None,
    checks: bool = True,
) -> Grad2Reward:
    """The scorer for a policy ``model``: ``judge`` None is ``default_judge(model)``, "self" the
    frozen policy, anything else a judge model source (a model, or a trained judge adapter).
    ``checks``: criteria with an exact check are decided by it, not judged (``Grad2Reward``).

    The judge model is the process-wide shared copy (``g2r_env.models.shared_model``), so any
    number of envs and scorers in one process that name it hold one judge.
    """
    judge = default_judge(model) if judge is None else str(judge)
    source = model if judge == SELF_JUDGE else judge
    judge_model = Judge.load(source, device=device, dtype=parse_dtype(dtype), micro_batch_size=micro_batch_size)
    policy_tokenizer = None if source == model else _policy_tokenizer(str(model))
    return Grad2Reward(
        judge_model, attribution=attribution, tau=tau, soft=soft, policy_tokenizer=policy_tokenizer, checks=checks
    )


def parse_dtype(dtype: Optional[str | torch.dtype]) -> Optional[torch.dtype]:
    """None/"auto" (bf16 on CUDA, float32 on CPU), or a torch dtype by name ("float32", "bfloat16")."""
    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return None if dtype == "auto" else dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use 'auto', 'float32', 'bfloat16' or 'float16'")
    return value


class Episode:
    """One episode's state in preallocated arrays, so a step costs O(1).

    Shared by the single env and the vector env: ``start`` sets a task, ``push`` appends a token,
    ``observation`` gives the Box arrays, ``final_info`` the contract keys at the end.
    """

    def __init__(self, prompt_width: int, max_new_tokens: int, stop_ids: Sequence[int]) -> None:
        self.prompt_ids = np.zeros(prompt_width, dtype=np.int64)
        self.prompt_mask = np.zeros(prompt_width, dtype=np.int8)
        self.response_ids = np.zeros(max_new_tokens, dtype=np.int64)
        self.response_mask = np.zeros(max_new_tokens, dtype=np.int8)
        self.max_new_tokens = max_new_tokens
        self.stop_ids = frozenset(int(t) for t in stop_ids)
        self.task: Optional[Task] = None
        self.length = 0
        self.done = False
        self.result: Optional[ScoreResult] = None

    def start(self, task: Task, prompt_ids: Sequence[int]) -> None:
        width = len(self.prompt_ids)
        self.prompt_ids[:] = 0
        self.prompt_mask[:] = 0
        self.prompt_ids[width - len(prompt_ids) :] = (
            prompt_ids  # left-padded: the prompt ends where the response starts
        )
        self.prompt_mask[width - len(prompt_ids) :] = 1
        self.response_ids[:] = 0
        self.response_mask[:] = 0
        self.task, self.length, self.done, self.result = task, 0, False, None

    def push(self, token: int) -> tuple[bool, bool]:
        """Append a token; returns (terminated, truncated)."""
        self.response_ids[self.length] = token
        self.response_mask[self.length] = 1
        self.length += 1
        terminated = token in self.stop_ids
        truncated = not terminated and self.length >= self.max_new_tokens
        self.done = terminated or truncated
        return terminated, truncated

    @property
    def response(self) -> np.ndarray:
        return self.response_ids[: self.length]

    def observation(self) -> dict[str, np.ndarray]:
        return {
            "prompt_ids": self.prompt_ids.copy(),
            "prompt_mask": self.prompt_mask.copy(),
            "response_ids": self.response_ids.copy(),
            "response_mask": self.response_mask.copy(),
        }

    def final_info(self, result: ScoreResult) -> dict[str, Any]:
        self.result = result
        return {
            "task_id": result.task_id,
            "response_ids": result.response_ids.copy(),
            "token_rewards": result.token_rewards.copy(),
            "sequence_reward": result.sequence_reward,
            "criteria": [dict(c) for c in result.criteria],
        }


def check_action(action: Any, vocab_size: int) -> int:
    """The action as an int token id, or a ValueError that names it and the valid range."""
    try:
        token = int(np.asarray(action).item())
    except (TypeError, ValueError):
        raise ValueError(f"action must be one integer token id, got {action!r}") from None
    if not 0 <= token < vocab_size or np.asarray(action).dtype.kind not in "iu":
        raise ValueError(f"action {action!r} is not a token id in Discrete({vocab_size}) (0..{vocab_size - 1})")
    return token


def check_render_mode(render_mode: Optional[str], supported: Sequence[str]) -> Optional[str]:
    """The render mode, or None (with a warning) for one a text env cannot do."""
    if render_mode is not None and render_mode not in supported:
        # wrappers such as SB3's make_vec_env ask for "rgb_array" by default: a text env has none
        warnings.warn(f"render_mode {render_mode!r} is not supported (only {list(supported)}); rendering is off")
        return None
    return render_mode


def encode_prompt(tokenizer, task: Task) -> list[int]:
    """The policy's chat-templated prompt ids of a task, with the assistant turn opened."""
    ids = tokenizer.apply_chat_template(task.messages, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)


@dataclass
class EnvOptions:
    """The keywords of ``gym.make("Grad2Reward/OpenEnded-v0", ...)``, ``OpenEndedEnv`` and
    ``OpenEndedVectorEnv`` (besides ``render_mode``, and the vector env's ``num_envs`` and
    ``group_size``). Each field's docstring follows it."""

    tasks: Any = "openended-mini"
    """a TaskSet, a bundled set name, a task file/folder (JSONL or parquet, hub layout ``data/<split>-*``
    included) or a ``datasets`` object; a streamed one (``IterableDataset``, a TaskStream) is read as
    episodes draw it, through its buffer, and needs ``prompt_width``"""
    split: str = "train"
    """any split of the task set ("train", "val", "test", ...; ``TaskSet.splits`` lists them), or "all" """
    model: str = BUNDLED_NAME
    """the policy model whose tokenizer defines the actions"""
    judge: Optional[str] = None
    """None: the default judge of ``model`` ("bundled-judge" for the bundled model, "self" (the frozen
    policy) for any other); "self"; or a judge model source"""
    max_new_tokens: int = 64
    """response length limit in tokens; must leave room in the judge's context"""
    attribution: str = "grad_x_embed"
    """how a met criterion's credit is spread over the tokens: any name in ``g2r_env.ATTRIBUTIONS``"""
    tau: Tau = "auto"
    """attribution temperature, "auto" (the std of the scores) or a positive float"""
    soft: bool = False
    """rewards use p_true instead of the 0/1 verdict"""
    checks: bool = True
    """criteria with an exact check (a criterion's ``check``, or a wording such as "Is under 150 words"
    or "Uses the word 'tilt'": ``tasks.checks``) get their verdict from the check on the response
    text and their credit on the span that decides it, never from the judge; False judges every
    criterion"""
    reward_mode: str = "dense"
    """``"dense"`` (token rewards in ``info``) or ``"sparse"`` (the judge runs forward only, R on the last token)"""
    device: str = "auto"
    """where the judge runs ("auto": CUDA if present)"""
    dtype: Optional[str] = None
    """the judge's dtype: None/"auto" (bf16 on CUDA, float32 on CPU) or a name ("float32", ...)"""
    prompt_width: Optional[int] = None
    """prompt array size; None: the longest prompt of the whole task set (all splits), so train and
    test envs share one observation space"""
    micro_batch_size: int = 8
    """judge pairs per backward pass"""
    scorer: Optional[Grad2Reward] = None
    """a ready ``Grad2Reward`` to share (the judge keywords above are then unused)"""

    @classmethod
    def from_keywords(cls, owner: str, keywords: dict) -> EnvOptions:
        """The options of ``keywords``; TypeError naming an unknown keyword and the known ones."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(keywords) - set(known))
        if unknown:
            raise TypeError(f"{owner} got unknown keyword(s) {unknown}; known: {known} and render_mode")
        return cls(**keywords)


@dataclass
class TokenEnvParts:
    """What the single and the vector env share: the split's ``tasks``, the ``scorer``, the
    policy's ``tokenizer``, ``prompts`` (encoded, every split), the sizes, and the spaces of one
    episode."""

    tasks: TaskSet | TaskStream
    scorer: Grad2Reward
    tokenizer: Any
    prompts: dict[str, list[int]]
    prompt_width: int
    max_new_tokens: int
    reward_mode: str
    stop_ids: frozenset[int]
    observation_space: spaces.Dict
    action_space: spaces.Discrete

    @property
    def dense(self) -> bool:
        return self.reward_mode == "dense"

    @property
    def vocab_size(self) -> int:
        return int(self.action_space.n)

    def prompt_ids(self, task: Task) -> list[int]:
        """The encoded prompt of a task: encoded up front for a TaskSet, as drawn for a TaskStream
        (checked then against ``prompt_width`` and the judge's context)."""
        ids = self.prompts.get(task.task_id)
        if ids is not None:
            return ids
        self.scorer.check_room([task], self.max_new_tokens)
        ids = encode_prompt(self.tokenizer, task)
        if len(ids) > self.prompt_width:
            raise ValueError(
                f"task {task.task_id}: its prompt has {len(ids)} tokens, more than prompt_width={self.prompt_width}; "
                "pass a larger prompt_width or leave such tasks out of the stream (IterableDataset.filter)"
            )
        return ids


def token_env_parts(options: EnvOptions) -> TokenEnvParts:
    """Check ``options``, build or take the scorer, encode the prompts and declare the spaces."""
    if options.reward_mode not in REWARD_MODES:
        raise ValueError(f"reward_mode must be one of {REWARD_MODES}, got {options.reward_mode!r}")
    max_new_tokens = options.max_new_tokens
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a whole number >= 1, got {max_new_tokens!r}")
    all_tasks = load_taskset(options.tasks)
    streamed = isinstance(all_tasks, TaskStream)
    if streamed and options.prompt_width is None:
        raise ValueError(
            f"{all_tasks.name} is streamed (read as drawn), so its longest prompt is not known up front: "
            "pass prompt_width= (the policy's prompt tokens an observation holds)"
        )
    tasks = all_tasks.split(options.split)
    scorer = options.scorer
    if scorer is None:
        scorer = build_scorer(
            options.model,
            options.judge,
            options.device,
            options.attribution,
            options.tau,
            options.soft,
            options.micro_batch_size,
            options.dtype,
            options.checks,
        )
    tokenizer = scorer.policy_tokenizer or scorer.judge.tokenizer
    prompts: dict[str, list[int]] = {}  # a streamed set's prompts are encoded as its tasks are drawn
    prompt_width = options.prompt_width
    if not streamed:
        scorer.check_room(all_tasks, max_new_tokens)
        prompts = {t.task_id: encode_prompt(tokenizer, t) for t in all_tasks}
        longest = max(prompts, key=lambda k: len(prompts[k]))
        prompt_width = prompt_width or len(prompts[longest])
        if len(prompts[longest]) > prompt_width:
            raise ValueError(
                f"task {longest}: its prompt has {len(prompts[longest])} tokens, more than prompt_width={prompt_width}"
            )
    vocab = len(tokenizer)
    observation_space = spaces.Dict(
        {
            "prompt_ids": spaces.Box(0, vocab - 1, (prompt_width,), np.int64),
            "prompt_mask": spaces.Box(0, 1, (prompt_width,), np.int8),
            "response_ids": spaces.Box(0, vocab - 1, (max_new_tokens,), np.int64),
            "response_mask": spaces.Box(0, 1, (max_new_tokens,), np.int8),
        }
    )
    return TokenEnvParts(
        tasks=tasks,
        scorer=scorer,
        tokenizer=tokenizer,
        prompts=prompts,
        prompt_width=prompt_width,
        max_new_tokens=max_new_tokens,
        reward_mode=options.reward_mode,
        stop_ids=frozenset(stop_token_ids(tokenizer)),
        observation_space=observation_space,
        action_space=spaces.Discrete(vocab),
    )


class TokenEnvBase:
    """Read access to the ``parts`` the single and the vector env share."""

    parts: TokenEnvParts

    tasks = property(lambda self: self.parts.tasks, doc="the tasks of the env's split")
    scorer = property(lambda self: self.parts.scorer, doc="the Grad2Reward that judges every episode")
    tokenizer = property(lambda self: self.parts.tokenizer, doc="the policy's tokenizer (the actions)")
    prompts = property(lambda self: self.parts.prompts, doc="task id -> the policy's prompt ids")
    max_new_tokens = property(lambda self: self.parts.max_new_tokens, doc="response length limit")
    reward_mode = property(lambda self: self.parts.reward_mode, doc='"dense" or "sparse"')
    stop_ids = property(lambda self: self.parts.stop_ids, doc="the token ids that end an episode")


class OpenEndedEnv(TokenEnvBase, gym.Env):
    """Write a response to an open-ended task, one token per step; a rubric judge scores it.

    ## Observation
    A Dict of fixed-size int arrays: ``prompt_ids`` (the policy's chat-templated prompt, left-padded
    to ``prompt_width``), ``prompt_mask``, ``response_ids`` (the tokens chosen so far, right-padded
    to ``max_new_tokens``) and ``response_mask``. Padding is 0 with mask 0.

    ## Action
    ``Discrete(vocab_size)``: the next token id of the policy's tokenizer.

    ## Reward
    At the episode's end the judge decides every rubric criterion and Grad2Reward spreads the
    sequence reward R = sum_k w_k met_k / sum_k max(w_k, 0) over the tokens. The last step's reward
    is R and earlier steps' are 0; ``info["token_rewards"]`` (one per step, summing to R) is what a
    backfill (the bundled trainer, the vector env's users, the SB3 callback) puts in their place.
    In ``reward_mode="sparse"`` the judge runs without a backward pass and ``token_rewards`` puts R
    on the last token, so there is nothing to backfill.

    ## Episode end
    Terminated when the action is an end-of-turn or EOS token; truncated after ``max_new_tokens``
    tokens. Stepping again before ``reset`` raises RuntimeError.

    ## Info
    ``reset``: ``task_id``, ``prompt``. Last step: ``task_id``, ``response_ids``,
    ``token_rewards`` (float32), ``sequence_reward``, ``criteria`` (dicts with ``criterion``,
    ``weight``, ``met``, ``p_true``, ``alpha``, ``decided_by``: "judge", or "check" for a
    criterion decided by its exact check).

    ## Arguments
    ``render_mode`` (None or "ansi": the response coloured by token reward) and the keywords of
    ``EnvOptions`` (``tasks``, ``split``, ``model``, ``judge``, ``max_new_tokens``, ``attribution``,
    ``tau``, ``soft``, ``checks``, ``reward_mode``, ``device``, ``dtype``, ``prompt_width``,
    ``micro_batch_size``, ``scorer``), each documented there.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, render_mode: Optional[str] = None, **options: Any) -> None:
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.parts = token_env_parts(EnvOptions.from_keywords("OpenEndedEnv", options))
        self.observation_space = self.parts.observation_space
        self.action_space = self.parts.action_space
        self.episode = Episode(self.parts.prompt_width, self.max_new_tokens, self.stop_ids)

    def choose_task(self, options: Optional[dict]) -> Task:
        if options and options.get("task_id") is not None:
            return self.tasks.get(options["task_id"])
        return self.tasks.draw(self.np_random)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        """Start a new episode on a random task of the split, or ``options["task_id"]``."""
        super().reset(seed=seed)
        task = self.choose_task(options)
        self.episode.start(task, self.parts.prompt_ids(task))
        return self.episode.observation(), {"task_id": task.task_id, "prompt": task.question}

    def step(self, action):
        episode = self.episode
        if episode.task is None:
            raise RuntimeError("call reset() before step()")
        if episode.done:
            raise RuntimeError("the episode has ended (terminated or truncated): call reset() before step()")
        terminated, truncated = episode.push(check_action(action, self.parts.vocab_size))
        reward, info = 0.0, {}
        if episode.done:
            [result] = self.scorer.score_batch([episode.task], [episode.response], dense=self.parts.dense)
            info = episode.final_info(result)
            reward = info["sequence_reward"]
        return episode.observation(), reward, terminated, truncated, info

    def render(self) -> Optional[str]:
        if self.render_mode != "ansi" or self.episode.task is None:
            return None
        return render_ansi(self.tokenizer, self.episode.task, self.episode.response, self.episode.result)
