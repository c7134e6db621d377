"""A pool of Grad2Reward judges in Ray actors: one judge per GPU (or per CPU slot), off the driver.

``JudgePool.score_batch`` has the signature of ``Grad2Reward.score_batch``: it splits the batch
into one contiguous-cost share per actor (whole responses, never a response's criteria apart),
scores the shares in parallel and returns the results in the order of the batch. An actor that
dies while scoring raises ``JudgeActorDied`` naming the actor and the rows it held; no reward is
made up for them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import ray
from ray.exceptions import RayActorError

from g2r_env import Grad2Reward, ScoreResult
from tasks import Task


@dataclass
class JudgeSpec:
    """How each actor builds its scorer (``g2r_env.build_scorer``); every field has a laptop default."""

    model: str = "bundled"
    """the policy: its tokenizer is the one the response ids are in"""
    judge: Optional[str] = None
    """the judge: None is the policy's default judge, "self" the frozen policy, else a model source"""
    device: str = "auto"
    """where each actor runs its judge ("auto": the actor's GPU when it has one, else the CPU)"""
    attribution: str = "grad_x_embed"
    """the attribution method, by its registered name"""
    tau: float | str = "auto"
    """attribution temperature ("auto": the std of the scores)"""
    soft: bool = False
    """reward p_true instead of the 0/1 verdict"""
    micro_batch_size: int = 8
    """(response, criterion) pairs per judge forward/backward"""
    dtype: Optional[str] = None
    """judge dtype by name; None: bf16 on CUDA, float32 on CPU"""
    threads: int = 0
    """torch CPU threads per actor (0: leave torch's default, which Ray sets to the actor's CPUs)"""
    checks: bool = True
    """decide criteria with an exact check by code, not by the judge (``Grad2Reward``)"""

    def build(self) -> Grad2Reward:
        """The scorer this spec describes, in this process."""
        import torch

        from g2r_env import build_scorer

        if self.threads:
            torch.set_num_threads(self.threads)
        return build_scorer(
            self.model,
            self.judge,
            self.device,
            self.attribution,
            self.tau,
            self.soft,
            self.micro_batch_size,
            self.dtype,
            self.checks,
        )


class JudgeActor:
    """One judge in one Ray actor (made remote by ``JudgePool``)."""

    def __init__(self, spec: JudgeSpec) -> None:
        self.scorer = spec.build()

    def score_batch(self, tasks: list[Task], responses: list[list[int]], dense: bool = True) -> list[ScoreResult]:
        return self.scorer.score_batch(tasks, responses, dense=dense)

    def pid(self) -> int:
        return os.getpid()


class JudgeActorDied(RuntimeError):
    """A judge actor died before it returned its share of a batch."""


@dataclass
class PendingScores:
    """A batch handed to the actors: one object ref per share and the batch rows of each share."""

    refs: list
    rows: list[list[int]]
    task_ids: list[list[str]] = field(default_factory=list)
    size: int = 0


def split_by_cost(costs: Sequence[float], parts: int) -> list[list[int]]:
    """Contiguous row ranges with about equal total cost each (fewer ranges than ``parts`` when the
    batch is shorter); contiguous keeps each actor's rows in batch order."""
    total = float(sum(costs))
    bounds, acc, start = [], 0.0, 0
    for row, cost in enumerate(costs):
        acc += cost
        if len(bounds) < parts - 1 and acc >= total * (len(bounds) + 1) / parts and row + 1 < len(costs):
            bounds.append(list(range(start, row + 1)))
            start = row + 1
    bounds.append(list(range(start, len(costs))))
    return [b for b in bounds if b]


class JudgePool:
    """Grad2Reward judges in ``num_judges`` Ray actors, used like one scorer.

    Args:
        spec: how each actor builds its judge.
        num_judges: actors in the pool (one per GPU on a GPU cluster).
        num_gpus_per_judge: GPUs Ray gives each actor; None is 1 when the cluster has GPUs and the
            spec's device is "auto" or CUDA, else 0.
        num_cpus_per_judge: CPUs Ray reserves for each actor.
        name: name the actors ``<name>-0`` .. and reuse them when they exist, so every pool of a
            Ray job with this name shares one set of judges; None: actors of this pool alone.

    Ray must be running (``ray.init``); verl starts it before it builds reward managers.
    """

    def __init__(
        self,
        spec: JudgeSpec,
        num_judges: int = 1,
        num_gpus_per_judge: Optional[float] = None,
        num_cpus_per_judge: float = 1,
        name: Optional[str] = None,
    ) -> None:
        if num_judges < 1:
            raise ValueError(f"num_judges must be >= 1, got {num_judges}")
        if not ray.is_initialized():
            raise RuntimeError("JudgePool needs a running Ray: call ray.init(...) first (verl does this itself)")
        if num_gpus_per_judge is None:
            has_gpus = ray.cluster_resources().get("GPU", 0) > 0
            num_gpus_per_judge = 1 if has_gpus and spec.device in ("auto", "cuda") else 0
        remote = ray.remote(JudgeActor).options(num_cpus=num_cpus_per_judge, num_gpus=num_gpus_per_judge)
        self.spec = spec
        if name is not None:
            self.actors = [
                remote.options(name=f"{name}-{k}", get_if_exists=True).remote(spec) for k in range(num_judges)
            ]
        else:
            self.actors = [remote.remote(spec) for _ in range(num_judges)]

    def submit(self, tasks: Sequence[Task], responses: Sequence[Sequence[int]], dense: bool = True) -> PendingScores:
        """Hand the batch to the actors and return at once; ``gather`` waits for the results."""
        if len(tasks) != len(responses):
            raise ValueError(f"got {len(tasks)} tasks for {len(responses)} responses")
        costs = [len(r) * len(t.criteria) for t, r in zip(tasks, responses)]
        shares = split_by_cost(costs, len(self.actors))
        refs = [
            actor.score_batch.remote([tasks[i] for i in rows], [[int(t) for t in responses[i]] for i in rows], dense)
            for actor, rows in zip(self.actors, shares)
        ]
        task_ids = [[tasks[i].task_id for i in rows] for rows in shares]
        return PendingScores(refs, shares, task_ids, len(tasks))

    def gather(self, pending: PendingScores) -> list[ScoreResult]:
        """The results of a submitted batch, in the batch's order.

        Raises:
            JudgeActorDied: an actor died before returning its share (the whole batch fails: a
                missing reward must not read as a zero reward).
        """
        results: list[Optional[ScoreResult]] = [None] * pending.size
        for k, (ref, rows) in enumerate(zip(pending.refs, pending.rows)):
            try:
                share = ray.get(ref)
            except RayActorError as err:
                ids = pending.task_ids[k]
                raise JudgeActorDied(
                    f"judge actor {k} of {len(self.actors)} died while scoring batch rows {rows[0]}..{rows[-1]} "
                    f"(tasks {', '.join(ids[:3])}{'...' if len(ids) > 3 else ''}); this batch has no reward. "
                    f"Look for the cause in the actor's log (out of memory is common), then rebuild the pool. "
                    f"Ray said: {str(err).splitlines()[0]}"
                ) from err
            for row, result in zip(rows, share):
                results[row] = result
        return results  # type: ignore[return-value]

    def score_batch(
        self, tasks: Sequence[Task], responses: Sequence[Sequence[int]], dense: bool = True
    ) -> list[ScoreResult]:
        """``Grad2Reward.score_batch`` across the actors; results in the batch's order."""
        return self.gather(self.submit(tasks, responses, dense))

    def shutdown(self) -> None:
        """Kill the actors (their judges' memory is freed)."""
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
