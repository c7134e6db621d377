"""Token-level GRPO on Grad2Reward token rewards: the bundled trainer, written out like CleanRL.

One training step, one method per phase (``Trainer.train_step`` reads top to bottom):

1. ``rollout``: reset the vector env (``prompts_per_step`` tasks of the train split, each in
   ``group_size`` consecutive sub-envs), take the prompts from the observation, sample
   ``group_size`` responses per prompt, play them with ``step_sequences`` (the judge scores all
   of them in one batched call) and read ``info["token_rewards"]``.
2. ``compute_advantages(config.advantage, token_rewards, mask, group_size)``.
3. ``update``: ``update_epochs`` passes of minibatch PPO-clip updates; each minibatch accumulates
   gradients over micro-batches, then clips the gradient norm and steps AdamW.
4. ``sync_weights``: the new weights (a LoRA adapter merged in) go to the sampler.

PPO's behaviour log-probs are recomputed by the policy right before the update, not taken from the
sampler. vLLM computes log-probs with its own kernels (bf16 on GPU), so its numbers differ a little
from the trainer's forward pass; as the ratio's denominator they would make the first ratio differ
from 1 and clip tokens that never moved. The mean gap is logged as ``sampler_logprob_gap``.

The trainer builds its judge and scorer once (``g2r_env.build_scorer``: the trained bundled judge
for the bundled policy, the frozen initial policy, the paper's self-judging, for any other) and
hands the same scorer to its train and eval envs. The judge is a frozen, process-wide shared model,
a different module from the trainable policy, so training never moves it; a self-judge doubles as
the KL reference when ``kl_coef > 0``.

Checkpoints (``agents.checkpoint``), the policy's loading and export (``agents.policy``) and the
metrics log (``g2r_env.runlog``) live in their own modules.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from g2r_env import Grad2Reward, OpenEndedVectorEnv, ScoreResult, build_scorer
from g2r_env.env import SELF_JUDGE, default_judge
from g2r_env.models import load_model, resolve_device
from g2r_env.runlog import MetricsLog, check_resume, claim_run_dir, latest_checkpoint, record_resume
from tasks import load_taskset
from tasks.checks import rubric_echo

from .advantages import compute_advantages
from .checkpoint import load_checkpoint, save_checkpoint
from .config import RESUMABLE_FIELDS, TrainConfig
from .losses import policy_loss, token_logprobs
from .policy import export_policy, load_policy, merged_state_dict
from .sampling import Sampler, make_sampler


@dataclass
class Rollout:
    """One step's responses as padded tensors; rows i*G .. i*G+G-1 answer prompt i.

    Attributes:
        prompt_ids: [B, W] chat-templated prompts, left-padded (as the env observes them).
        prompt_mask: [B, W] 1 on prompt tokens.
        response_ids: [B, T] responses as the env played them (up to the first stop token),
            right-padded.
        response_mask: [B, T] bool, True on response tokens.
        token_rewards: [B, T] float32 ``info["token_rewards"]``; row sums are the sequence rewards.
        sequence_rewards: [B] float32 judge score R of each response.
        sampler_logprobs: [B, T] the sampler's log-probs of the response tokens.
        finished: [B] bool, the response ended on a stop token.
        task_ids: [B] the task of each row.
    """

    prompt_ids: Tensor
    prompt_mask: Tensor
    response_ids: Tensor
    response_mask: Tensor
    token_rewards: Tensor
    sequence_rewards: Tensor
    sampler_logprobs: Tensor
    finished: Tensor
    task_ids: list[str]


def pad_rows(rows: Sequence[Sequence[float]], value: float = 0.0, dtype=torch.float32) -> Tensor:
    """Right-pad lists into a [len(rows), longest] tensor."""
    out = torch.full((len(rows), max(len(r) for r in rows)), value, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(np.asarray(row), dtype=dtype)
    return out


def eval_envs(tasks, scorer: Grad2Reward, max_new_tokens: int, responses: int = 1) -> OpenEndedVectorEnv:
    """A vector env of ``responses`` sub-envs per task of ``tasks`` (any split), judged forward only:
    where ``evaluate_policy`` plays one greedy response per task (``play_responses`` samples several)."""
    return OpenEndedVectorEnv(
        num_envs=len(tasks) * responses,
        tasks=tasks,
        split="all",
        max_new_tokens=max_new_tokens,
        reward_mode="sparse",
        scorer=scorer,
    )


def evaluate_policy(sampler: Sampler, envs: OpenEndedVectorEnv, max_new_tokens: int) -> dict[str, float]:
    """The judge score of one greedy response per task of ``envs`` (one sub-env per task).

    Args:
        sampler: draws the responses (temperature 0).
        envs: a vector env with one sub-env per task to score, e.g. ``reward_mode="sparse"``
            (the judge then runs forward only; the sequence reward is the same).
        max_new_tokens: response length limit (the env's).

    Returns:
        {task_id: sequence reward}.
    """
    return {task_id: score for task_id, _, score, _ in greedy_responses(sampler, envs, max_new_tokens)}


def greedy_responses(
    sampler: Sampler, envs: OpenEndedVectorEnv, max_new_tokens: int
) -> list[tuple[str, list[int], float, list[dict]]]:
    """(task_id, response ids as played, judge score, per-criterion verdicts as in ``ScoreResult.criteria``)
    of one greedy response per task of ``envs``."""
    return play_responses(sampler, envs, max_new_tokens)


def play_responses(
    sampler: Sampler,
    envs: OpenEndedVectorEnv,
    max_new_tokens: int,
    n: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
) -> list[tuple[str, list[int], float, list[dict]]]:
    """As ``greedy_responses``, for ``n`` responses per task drawn with the given sampling settings
    (``envs`` from ``eval_envs(..., responses=n)``), task by task; ``seed`` makes the draw
    reproducible, so runs that share it share their randomness (a paired comparison)."""
    if envs.num_envs % n:
        raise ValueError(f"{envs.num_envs} sub-envs do not hold {n} responses per task")
    tasks = [t.task_id for t in envs.tasks][: envs.num_envs // n]
    task_ids = [task_id for task_id in tasks for _ in range(n)]
    obs, _ = envs.reset(options={"task_ids": task_ids})
    groups = sampler.generate(
        prompts_of(obs, n), n=n, temperature=temperature, top_p=top_p, top_k=top_k, max_tokens=max_new_tokens, seed=seed
    )
    _, _, _, _, infos = envs.step_sequences([sample.token_ids for group in groups for sample in group])
    rows = zip(task_ids, infos["response_ids"], infos["sequence_reward"], infos["criteria"])
    return [(t, list(r), float(s), list(c)) for t, r, s, c in rows]


def hacking_metrics(texts: Sequence[str], verdicts: Sequence[Sequence[dict]]) -> dict[str, float]:
    """Signs of a policy learning its judges rather than its tasks, over eval responses:
    ``eval/rubric_echo``, the mean share of response words in word 4-grams copied from the task's
    criteria (``tasks.checks.rubric_echo``); ``eval/checks_passed``, the share of code-decided
    criteria (``decided_by == "check"``) with the outcome the rubric wants (met for a positive
    weight, unmet for a pitfall), absent when no criterion has a check. A rising echo flags hacking
    even where both judges rise; checks cannot be talked round."""
    echo = [rubric_echo(text, [c["criterion"] for c in criteria]) for text, criteria in zip(texts, verdicts)]
    metrics = {"eval/rubric_echo": float(np.mean(echo))}
    checked = [c["met"] == (c["weight"] > 0) for criteria in verdicts for c in criteria if c["decided_by"] == "check"]
    if checked:
        metrics["eval/checks_passed"] = float(np.mean(checked))
    return metrics


def soft_score(criteria: Sequence[dict]) -> float:
    """A response's score with each criterion's p_true in place of its verdict: sum_k w_k p_k /
    sum_k max(w_k, 0) over ``ScoreResult.criteria`` (a code-decided criterion's p_true is 0 or 1)."""
    norm = sum(max(c["weight"], 0.0) for c in criteria)
    return sum(c["weight"] * c["p_true"] for c in criteria) / norm if norm > 0 else 0.0


def prompts_of(obs: dict, group_size: int) -> list[list[int]]:
    """The prompt token ids of every group's first sub-env, from the left-padded observation."""
    ids, mask = obs["prompt_ids"][::group_size], obs["prompt_mask"][::group_size]
    return [row[m == 1].tolist() for row, m in zip(ids, mask)]


class Trainer:
    """Trains a policy LLM with token-level GRPO on Grad2Reward token rewards.

    Args:
        config: the run's TrainConfig.
        sampler: a ready Sampler; None builds the one ``config.sampler`` names.
        initial_eval: the step-0 eval metrics when already measured: greedy responses of the initial
            policy, judged forward only, depend on neither the seed nor the credit assignment, so a
            study of many runs with the same model, tasks, judges and length measures them once. Its
            ``"eval_responses"`` entry, when there, is the step-0 record of ``eval_responses.jsonl``.
        overwrite: a fresh run into a folder that already holds one moves the old run aside to
            ``<run_dir>.old-<timestamp>``; without it that is an error (``g2r_env.runlog.claim_run_dir``).
        resuming: set by ``Trainer.resume``: the run folder holds the run this trainer continues.

    Attributes:
        envs: the training vector env (``prompts_per_step * group_size`` sub-envs).
        policy: the trainable model (a peft model when ``lora_rank > 0``).
        judge_model: the frozen judge (self-judging: a copy of the initial policy).
        global_step: training steps done.
    """

    def __init__(
        self,
        config: TrainConfig,
        sampler: Optional[Sampler] = None,
        initial_eval: Optional[dict] = None,
        overwrite: bool = False,
        resuming: bool = False,
    ) -> None:
        config.validate()
        self.config = config
        self.initial_eval = initial_eval
        self.run_dir = Path(config.run_dir)
        if resuming:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        else:
            claim_run_dir(self.run_dir, overwrite, resume_hint=f"g2r train --resume {self.run_dir}")
        self.device, self.autocast = self._seed_and_device()
        self.tasks = load_taskset(config.tasks).select(config.task_ids, config.domains)
        self.scorer, self.envs = self._build_train_envs()
        self.eval_scorer, self.eval_envs = self._build_eval_envs()
        self.sampled_eval_envs = None  # eval_samples responses per eval task, sampled (see evaluate)
        if config.eval_samples and self.eval_envs is not None:
            self.sampled_eval_envs = eval_envs(
                self.eval_envs.tasks, self.eval_scorer, config.max_new_tokens, responses=config.eval_samples
            )
        self.judge_model = self.scorer.judge.model
        self.tokenizer = self.envs.tokenizer
        self.policy = load_policy(config, self.device)
        self.reference = self._build_reference()
        self.optimizer = torch.optim.AdamW(
            [p for p in self.policy.parameters() if p.requires_grad],
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )
        self.sampler = self._build_sampler(sampler)
        self.global_step = 0
        self.writer = None
        self.metrics_log = MetricsLog(self.run_dir / "metrics.jsonl")
        self.eval_log = MetricsLog(self.run_dir / "eval_responses.jsonl")
        self.history: list[dict] = []
        self.last_eval_responses: list[list[int]] = []  # the greedy responses of the last evaluate()

    # ---- building the run's parts, in the order __init__ calls them ----------------------------
    def _seed_and_device(self) -> tuple[torch.device, object]:
        """Seed every generator; the device, CPU threads and the autocast context of the policy."""
        config = self.config
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        device = resolve_device(config.device)
        if config.cpu_threads and not torch.cuda.is_available():
            os.environ["OMP_NUM_THREADS"] = str(config.cpu_threads)  # read by vLLM when it starts
            torch.set_num_threads(config.cpu_threads)
        bf16 = device.type == "cuda" if config.bf16 is None else config.bf16
        return device, torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()

    def _build_train_envs(self) -> tuple[Grad2Reward, OpenEndedVectorEnv]:
        """The training judge's scorer (built once) and the vector env of the train split over it."""
        config = self.config
        scorer = build_scorer(
            config.model,
            config.judge,
            config.device,
            config.attribution,
            config.tau,
            config.soft,
            config.judge_micro_batch_size,
            checks=config.checks,
        )
        envs = OpenEndedVectorEnv(
            num_envs=config.prompts_per_step * config.group_size,
            group_size=config.group_size,
            tasks=self.tasks,
            split="train",
            max_new_tokens=config.max_new_tokens,
            reward_mode=config.reward_mode,
            scorer=scorer,
        )
        return scorer, envs

    def _build_eval_envs(self) -> tuple[Grad2Reward, Optional[OpenEndedVectorEnv]]:
        """The eval score's scorer (the training judge's unless ``eval_judge`` names one) and a vector
        env of one sub-env per eval task (greedy responses, judged forward only); None without evals."""
        config = self.config
        scorer = self.scorer
        if config.eval_judge is not None:
            scorer = build_scorer(
                config.model,
                config.eval_judge,
                config.device,
                soft=config.soft,
                micro_batch_size=config.judge_micro_batch_size,
                checks=config.checks,
            )
        if not (config.eval_every or config.report):
            return scorer, None
        if config.eval_task_ids:
            eval_tasks = load_taskset(config.tasks).select(config.eval_task_ids)
            trained = sorted({t.task_id for t in self.envs.tasks} & set(config.eval_task_ids))
            if trained:
                raise ValueError(f"eval_task_ids holds {trained}, which are trained on; evaluate on other tasks")
        else:
            try:
                eval_tasks = self.tasks.split(config.eval_split)
            except ValueError as err:
                raise ValueError(
                    f"eval_split={config.eval_split!r}: {err}; choose another eval_split, "
                    f"add tasks of that split, or set eval_every=0 and report=false"
                ) from None
        eval_tasks = eval_tasks[: config.eval_tasks or len(eval_tasks)]
        return scorer, eval_envs(eval_tasks, scorer, config.max_new_tokens)

    def _build_reference(self) -> Optional[torch.nn.Module]:
        """The frozen KL reference when ``kl_coef > 0``: a self-judge is the initial policy already."""
        config = self.config
        if config.kl_coef <= 0:
            return None
        if (config.judge or default_judge(config.model)) in (SELF_JUDGE, config.model):
            return self.judge_model
        return load_model(config.model, self.device)[0].requires_grad_(False)

    def _build_sampler(self, sampler: Optional[Sampler]) -> Sampler:
        """The given sampler, synced to this policy's weights, or the one ``config.sampler`` names."""
        if sampler is not None:  # a sampler reused from another run may hold other weights
            self.sampler = sampler
            self.sync_weights()
            return sampler
        config = self.config
        return make_sampler(
            config.sampler,
            config.model,
            config.device,
            seed=config.seed,
            vllm_kwargs=config.vllm_kwargs,
            policy=self.policy,
            tokenizer=self.tokenizer,
        )

    # ---- phase 1: rollout ----------------------------------------------------------------------
    def sample_seed(self, step: int) -> int:
        """The sampling seed of a step: reproducible from (seed, step) alone, so a resumed run
        draws the same responses as an uninterrupted one."""
        return (self.config.seed * 1_000_003 + step * 10_007) % 2**31  # a stride above any prompt count

    def rollout(self, step: int) -> tuple[Rollout, dict[str, float]]:
        """Sample G responses per prompt and score them; returns the batch and phase timings."""
        config, envs = self.config, self.envs
        obs, _ = envs.reset(seed=config.seed if step == 0 else None)
        start = time.perf_counter()
        groups = self.sampler.generate(
            prompts_of(obs, config.group_size),
            n=config.group_size,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            max_tokens=config.max_new_tokens,
            seed=self.sample_seed(step),
        )
        samples = [sample for group in groups for sample in group]
        sampled = time.perf_counter()
        _, _, terminated, _, infos = envs.step_sequences([s.token_ids for s in samples])
        judged = time.perf_counter()

        responses = list(infos["response_ids"])  # up to the env's first stop token
        lengths = [len(r) for r in responses]
        batch = Rollout(
            prompt_ids=torch.as_tensor(obs["prompt_ids"]),
            prompt_mask=torch.as_tensor(obs["prompt_mask"]).long(),
            response_ids=pad_rows(responses, self.tokenizer.pad_token_id, torch.long),
            response_mask=pad_rows([[1] * n for n in lengths], 0, torch.bool),
            token_rewards=pad_rows(list(infos["token_rewards"])),
            sequence_rewards=torch.as_tensor(np.asarray(infos["sequence_reward"], dtype=np.float32)),
            sampler_logprobs=pad_rows([s.logprobs[:n] for s, n in zip(samples, lengths)]),
            finished=torch.as_tensor(terminated),
            task_ids=list(infos["task_id"]),
        )
        return batch, {"time/sampling": sampled - start, "time/judging": judged - sampled}

    # ---- phase 2: advantages ------------------------------------------------------------------
    def advantages(self, batch: Rollout) -> Tensor:
        """[B, T] advantages of ``config.advantage`` on the batch's token rewards."""
        return compute_advantages(
            self.config.advantage, batch.token_rewards, batch.response_mask, self.config.group_size
        )

    # ---- phase 3: policy update ----------------------------------------------------------------
    def logprobs(self, model, batch: Rollout, rows: Tensor) -> Tensor:
        """[len(rows), T] log-probs of the response tokens of ``rows`` under ``model``.

        Columns that are padding for every row of the micro-batch are dropped before the forward
        pass and padded back after it.
        """
        prompt_mask, response_mask = batch.prompt_mask[rows], batch.response_mask[rows]
        first = int(prompt_mask.any(0).long().argmax())  # first prompt column with a real token
        length = int(response_mask.any(0).long().sum())
        input_ids = torch.cat([batch.prompt_ids[rows, first:], batch.response_ids[rows, :length]], 1)
        attention_mask = torch.cat([prompt_mask[:, first:], response_mask[:, :length].long()], 1)
        with self.autocast:
            values = token_logprobs(model, input_ids.to(self.device), attention_mask.to(self.device), length)
        out = torch.zeros(len(rows), batch.response_ids.shape[1], device=values.device)
        out[:, :length] = values.float()
        return out

    @torch.no_grad()
    def response_logprobs(self, model, batch: Rollout) -> Tensor:
        """Log-probs of every response token under ``model``, without gradients, micro-batch by
        micro-batch (the policy's before the update: PPO's behaviour log-probs; the reference's)."""
        rows = torch.arange(len(batch.task_ids))
        return torch.cat([self.logprobs(model, batch, r) for r in rows.split(self.config.micro_batch_size)])

    def update(self, batch: Rollout, advantages: Tensor, step: int) -> dict[str, float]:
        """``update_epochs`` passes of minibatch PPO-clip updates with gradient accumulation."""
        config, device = self.config, self.device
        size = len(batch.task_ids)
        minibatch = config.minibatch_size or size
        mask, advantages = batch.response_mask.to(device), advantages.to(device)
        behaviour = self.response_logprobs(self.policy, batch)
        reference = None if self.reference is None else self.response_logprobs(self.reference, batch)
        for group in self.optimizer.param_groups:
            group["lr"] = config.learning_rate * min(1.0, (step + 1) / (config.warmup_steps + 1))
        generator = torch.Generator().manual_seed(self.sample_seed(step))  # reproducible on resume
        stats: dict[str, list[float]] = {}
        for _ in range(config.update_epochs):
            order = torch.randperm(size, generator=generator)
            for start in range(0, size, minibatch):
                indices = order[start : start + minibatch]
                self.optimizer.zero_grad(set_to_none=True)
                for rows in indices.split(config.micro_batch_size):
                    logprobs = self.logprobs(self.policy, batch, rows)
                    loss, info = policy_loss(
                        logprobs,
                        behaviour[rows],
                        advantages[rows],
                        mask[rows],
                        None if reference is None else reference[rows],
                        config.clip_eps,
                        config.kl_coef,
                    )
                    (loss * len(rows) / len(indices)).backward()  # the minibatch mean over responses
                    for key, value in {"loss": loss.item(), **info}.items():
                        stats.setdefault(key, []).append(value)
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    [p for p in self.policy.parameters() if p.requires_grad], config.max_grad_norm
                )
                stats.setdefault("grad_norm", []).append(float(grad_norm))
                self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        out = {f"train/{key}": float(np.mean(values)) for key, values in stats.items()}
        valid = batch.response_mask
        out["train/sampler_logprob_gap"] = float((behaviour.cpu() - batch.sampler_logprobs)[valid].abs().mean())
        out["train/learning_rate"] = self.optimizer.param_groups[0]["lr"]
        return out

    # ---- phase 4: weight sync ------------------------------------------------------------------
    def policy_state_dict(self) -> dict[str, Tensor]:
        """The policy's weights under HF names, a LoRA adapter merged in (``agents.policy``)."""
        return merged_state_dict(self.policy)

    def sync_weights(self) -> None:
        """Send the new weights to the sampler (nothing to send when it samples with the policy)."""
        if getattr(self.sampler, "model", None) is not self.policy:
            self.sampler.update_weights(self.policy_state_dict())

    # ---- the loop ------------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        """One step: rollout, advantages, update, sync. Returns the step's metrics."""
        config, step = self.config, self.global_step
        start = time.perf_counter()
        batch, timings = self.rollout(step)
        advantages = self.advantages(batch)
        updated = time.perf_counter()
        metrics = self.update(batch, advantages, step)
        synced = time.perf_counter()
        self.sync_weights()
        end = time.perf_counter()
        self.global_step += 1

        lengths = batch.response_mask.sum(1).float()
        rewards = batch.sequence_rewards
        metrics.update(
            {
                "step": self.global_step,
                "train/reward": float(rewards.mean()),
                "train/reward_std": float(rewards.std(correction=0)),
                "train/reward_group_std": float(rewards.view(-1, config.group_size).std(1, correction=0).mean()),
                "train/response_length": float(lengths.mean()),
                "train/finished": float(batch.finished.float().mean()),
                "train/advantage_abs": float(advantages[batch.response_mask].abs().mean()),
                **timings,
                "time/update": synced - updated,
                "time/sync": end - synced,
                "time/step": end - start,
                "tokens_per_s": float(lengths.sum()) / (end - start),
            }
        )
        return metrics

    def evaluate(self) -> dict[str, float]:
        """Mean judge score of greedy responses to the eval tasks (``eval_split`` of the selected
        tasks), by the eval judge; with a separate ``eval_judge``, also the training judge's score of
        the same responses (``eval/reward_judge_score``: a rise there without one in
        ``eval/judge_score`` is the policy learning the training judge, not the task), and the
        hacking metrics of ``hacking_metrics`` (rubric echo, code-checked verdicts).

        ``eval/judge_soft_score`` is the eval judge's score with each verdict's p_true in place of
        met (p_true > 0.5): no threshold, so less noise from verdicts near 0.5. With ``eval_samples``,
        the same three scores of that many sampled responses per task (``eval/sampled_score``,
        ``eval/sampled_soft_score``, ``eval/sampled_reward_judge_score``). The responses, with every
        criterion's p_true by the eval judge, are appended to ``eval_responses.jsonl`` (one record per
        eval, the sampled ones under "sampled": a study can judge them again with another judge
        without training again).
        """
        config = self.config
        played = greedy_responses(self.sampler, self.eval_envs, config.max_new_tokens)
        self.last_eval_responses = [response for _, response, _, _ in played]
        metrics, record = {}, {"step": self.global_step}
        plays = [("judge", "responses", "eval/reward_judge_score", played)]  # score name, record field, ...
        if self.sampled_eval_envs is not None:
            sampled = play_responses(
                self.sampler,
                self.sampled_eval_envs,
                config.max_new_tokens,
                n=config.eval_samples,
                temperature=config.temperature,
                top_p=config.top_p,
                top_k=config.top_k,
                seed=self.global_step,
            )
            plays.append(("sampled", "sampled", "eval/sampled_reward_judge_score", sampled))
        for name, field_name, reward_key, rows in plays:
            texts = self.tokenizer.batch_decode([response for _, response, _, _ in rows], skip_special_tokens=True)
            metrics[f"eval/{name}_score"] = float(np.mean([score for _, _, score, _ in rows]))
            metrics[f"eval/{name}_soft_score"] = float(np.mean([soft_score(criteria) for _, _, _, criteria in rows]))
            if name == "judge":
                metrics.update(hacking_metrics(texts, [criteria for _, _, _, criteria in rows]))
            record[field_name] = [
                {
                    "task_id": task_id,
                    "text": text,
                    "response_ids": [int(t) for t in response],
                    "score": score,
                    "p_true": [float(c["p_true"]) for c in criteria],
                    "checked": [n for n, c in enumerate(criteria) if c["decided_by"] == "check"],
                }
                for (task_id, response, score, criteria), text in zip(rows, texts)
            ]
            if self.eval_envs.scorer is not self.scorer:
                results = self.scorer.score_batch(
                    [self.eval_envs.tasks.get(t) for t, _, _, _ in rows], [r for _, r, _, _ in rows], dense=False
                )
                metrics[reward_key] = float(np.mean([r.sequence_reward for r in results]))
        self.eval_log.append(record)
        return metrics

    def train(self) -> list[dict]:
        """Run (or continue) training to ``config.total_steps``; returns the metrics of every logged step."""
        from tqdm.auto import tqdm

        config = self.config
        self._open_logs()
        if self.global_step == 0:
            if config.report:
                self.snapshot("before")
            if config.eval_every:
                if self.initial_eval:
                    initial = dict(self.initial_eval)
                    if "eval_responses" in initial:
                        self.eval_log.append(initial.pop("eval_responses"))
                else:
                    initial = self.evaluate()
                self.log({"step": 0, **initial})
        bar = tqdm(
            total=config.total_steps,
            initial=self.global_step,
            desc="train",
            unit="step",
            disable=not config.progress,
            dynamic_ncols=True,
        )
        while self.global_step < config.total_steps:
            metrics = self.train_step()
            step = self.global_step
            if config.eval_every and (step % config.eval_every == 0 or step == config.total_steps):
                metrics.update(self.evaluate())
            self.log(metrics)
            if step == config.total_steps or (config.checkpoint_every and step % config.checkpoint_every == 0):
                self.save_checkpoint()
            bar.update(1)
            bar.set_postfix(
                reward=f"{metrics['train/reward']:.3f}",
                tok_s=f"{metrics['tokens_per_s']:.0f}",
                **({"eval": f"{metrics['eval/judge_score']:.3f}"} if "eval/judge_score" in metrics else {}),
            )
        bar.close()
        self.export_model(self.run_dir / "model")
        if config.report:
            self.snapshot("after")
            from .report import write_report

            write_report(self.run_dir, self.tokenizer, self.tasks)
        self.close()
        return self.history

    # ---- logging -------------------------------------------------------------------------------
    def _open_logs(self) -> None:
        if self.config.tensorboard and self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=self.global_step + 1)
        (self.run_dir / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2))

    def log(self, metrics: dict) -> None:
        """Append one record to metrics.jsonl and TensorBoard."""
        self.history.append(metrics)
        self.metrics_log.append(metrics)
        if self.writer is not None:
            for key, value in metrics.items():
                if key != "step":
                    self.writer.add_scalar(key, value, metrics["step"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def snapshot(self, name: str) -> list[ScoreResult]:
        """Greedy responses to the first ``report_prompts`` eval tasks with dense token rewards by the
        training judge, saved to report/<name>.json for the before/after heatmaps."""
        from .report import save_results

        envs = self.eval_envs
        task_ids = [t.task_id for t in envs.tasks][: self.config.report_prompts]
        groups = self.sampler.generate(
            [envs.prompts[t] for t in task_ids], n=1, temperature=0.0, max_tokens=self.config.max_new_tokens, seed=0
        )
        # the run's attribution, dense even for a sparse run (its scorer still has one; sparse runs call it
        # with dense=False), so the heatmaps show where this judge would put the credit
        results = self.scorer.score_batch(
            [envs.tasks.get(t) for t in task_ids], [g[0].token_ids for g in groups], dense=True
        )
        save_results(self.run_dir / "report" / f"{name}.json", results, step=self.global_step)
        return results

    # ---- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Write run_dir/checkpoint atomically: policy weights, optimizer, random states (python,
        numpy, torch, the env's task draws), step and config; nothing pickled."""
        return save_checkpoint(
            self.run_dir,
            self.policy,
            self.optimizer,
            self.global_step,
            self.envs.np_random.bit_generator.state,
            self.config.to_dict(),
        )

    def export_model(self, folder: Path) -> None:
        """Save the policy (LoRA merged) and tokenizer as a plain HF model folder."""
        export_policy(self.policy, self.tokenizer, folder)

    def load_checkpoint(self, folder: str | Path) -> None:
        """Restore everything ``save_checkpoint`` wrote and sync the weights to the sampler.

        metrics.jsonl keeps only the records up to the checkpoint's step, so steps run after the
        checkpoint by a killed run are not logged twice.
        """
        state = load_checkpoint(folder, self.policy, self.optimizer)
        self.envs.np_random.bit_generator.state = state["env_rng"]
        self.global_step = int(state["step"])
        self.sync_weights()
        self.history = self.metrics_log.truncate(self.global_step)
        self.eval_log.truncate(self.global_step)

    @classmethod
    def resume(cls, run_dir: str | Path, overrides: Sequence[str] = (), sampler: Optional[Sampler] = None) -> Trainer:
        """A trainer that continues the run in ``run_dir`` from its newest complete checkpoint.

        Args:
            run_dir: the run folder (holding ``checkpoint/``) or the checkpoint folder itself.
            overrides: ``key=value`` changes to the saved config (e.g. ``total_steps=400``): only the
                fields of ``agents.config.RESUMABLE_FIELDS`` may change, and each change is recorded in
                ``run_dir/resumes.jsonl``; the saved ``vllm_kwargs`` keep only engine settings that run
                no code unless given here.
            sampler: a ready Sampler; None builds the configured one.

        Raises:
            ValueError: an override changes a field that defines the run (model, LoRA shape, seed,
                tasks...), before any model loads.
        """
        folder = resolve_checkpoint(run_dir)
        saved = json.loads((folder / "config.json").read_text())
        saved["vllm_kwargs"] = safe_vllm_kwargs(saved.get("vllm_kwargs") or {}, str(folder / "config.json"))
        saved_config = TrainConfig.from_dict(saved, where=str(folder / "config.json"))
        config = saved_config.with_overrides([f"run_dir={folder.parent}", *overrides])
        changed = check_resume(saved_config.to_dict(), config.to_dict(), RESUMABLE_FIELDS, str(folder.parent))
        trainer = cls(config, sampler=sampler, resuming=True)
        trainer.load_checkpoint(folder)
        changed.pop("run_dir", None)
        if changed:
            record_resume(trainer.run_dir, trainer.global_step, changed)
        return trainer


SAFE_VLLM_KWARGS = (
    "gpu_memory_utilization",
    "max_model_len",
    "kv_cache_memory_bytes",
    "enforce_eager",
    "dtype",
    "seed",
    "max_num_seqs",
    "swap_space",
    "block_size",
    "tensor_parallel_size",
)
"""Engine settings a saved config may carry into a resumed run; anything else (trust_remote_code,
a tokenizer mode that runs code, ...) must be given again on the command line."""


def safe_vllm_kwargs(values: dict, where: str) -> dict:
    """The settings of ``values`` in SAFE_VLLM_KWARGS; the others are dropped with a warning."""
    import warnings

    dropped = sorted(set(values) - set(SAFE_VLLM_KWARGS))
    if dropped:
        warnings.warn(
            f"{where}: vllm_kwargs {dropped} from the saved config are not applied on resume; "
            f"pass them again with --set vllm_kwargs=... if you trust them"
        )
    return {k: v for k, v in values.items() if k in SAFE_VLLM_KWARGS}


def resolve_checkpoint(run_dir: str | Path) -> Path:
    """The newest complete checkpoint of a run folder (or the checkpoint folder itself), checked
    before any model loads."""
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"no run folder {run_dir}")
    folder = path if (path / "state.json").is_file() else latest_checkpoint(path)
    if folder is None:
        raise FileNotFoundError(
            f"no complete checkpoint in {run_dir} (expected {path}/checkpoint/state.json); "
            f"runs write one every checkpoint_every steps"
        )
    for name in ("state.json", "config.json", "policy.safetensors", "optimizer.safetensors", "rng.safetensors"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"checkpoint {folder} lacks {name}: it is incomplete or from an older version")
    metrics = (folder.parent if folder.parent != path.parent or folder != path else path) / "metrics.jsonl"
    if metrics.exists():
        from g2r_env.runlog import read_metrics

        read_metrics(metrics)  # a damaged log fails here, before models load (a torn last line is dropped)
    return folder


def train(config: TrainConfig) -> Trainer:
    """Train a policy from scratch with ``config``; returns the finished Trainer (see
    ``Trainer.resume`` to continue a run from its checkpoint)."""
    trainer = Trainer(config)
    trainer.train()
    return trainer
