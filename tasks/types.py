"""Task and rubric types.

A task is a prompt plus a rubric: a list of criteria with weights. A negative weight marks a
pitfall ("gives unsafe advice"): the judge decides whether the pitfall is present, and when it is,
the weight is subtracted from the reward.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Optional, Union

import numpy as np

from .checks import Check, recognise

Message = dict  # {"role": "user" | "system" | "assistant", "content": str}


@dataclass(frozen=True)
class Criterion:
    """One rubric item.

    Args:
        criterion: a statement about the response that a judge can decide True or False from the
            response text alone.
        weight: points for meeting it; negative for a pitfall.
        tags: free-form labels (e.g. the HealthBench axis).
        check: an exact check (``tasks.checks.Check``) that decides the criterion from the response
            text; the scorer then takes the verdict from it instead of the judge. None: the scorer
            recognises one from the wording where it can (``tasks.checks.recognise``), else judges.
    """

    criterion: str
    weight: float = 1.0
    tags: tuple[str, ...] = ()
    check: Optional[Check] = None

    def __post_init__(self) -> None:
        if not isinstance(self.criterion, str) or not self.criterion.strip():
            raise ValueError("a criterion needs a non-empty text")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)):
            raise ValueError(f"criterion {self.criterion!r}: weight must be a number, got {self.weight!r}")
        if not math.isfinite(self.weight):
            raise ValueError(f"criterion {self.criterion!r}: weight must be finite, got {self.weight!r}")
        object.__setattr__(self, "weight", float(self.weight))
        if isinstance(self.tags, str) or not all(isinstance(t, str) for t in self.tags):
            raise ValueError(f"criterion {self.criterion!r}: tags must be a list of strings, got {self.tags!r}")
        object.__setattr__(self, "tags", tuple(self.tags))
        if self.check is not None and not isinstance(self.check, Check):
            raise ValueError(f"criterion {self.criterion!r}: check must be a tasks.checks.Check, got {self.check!r}")

    @property
    def exact_check(self) -> Optional[Check]:
        """The check that decides this criterion: its own ``check``, else the one its wording states
        exactly (``tasks.checks.recognise``), else None (a judge decides it)."""
        return self.check if self.check is not None else recognise(self.criterion)


MAX_PENALTY_RATIO = 1e6
"""The most the negative weights of a rubric may outweigh its positive ones: the lowest sequence
reward sum(negative w) / sum(positive w) must be at least -MAX_PENALTY_RATIO (beyond it, float32
token rewards lose the positive criteria's credit, and at float overflow the reward is NaN)."""


@dataclass(frozen=True)
class Task:
    """A prompt and its rubric.

    Args:
        task_id: unique id within its task set.
        prompt: the user's request, as a string or as a list of chat messages.
        criteria: the rubric; at least one criterion with a positive weight.
        split: the split's name ("train", "val", "test" or any other a dataset uses).
        domain: a label such as "explanation" or "health" (HealthBench: the theme).
        metadata: anything else the row carried (not compared).
        tags: labels of the whole task (HealthBench's ``example_tags``, e.g. "theme:hedging").
    """

    task_id: str
    prompt: Union[str, tuple[Message, ...]]
    criteria: tuple[Criterion, ...]
    split: str = "train"
    domain: str = ""
    metadata: dict = field(default_factory=dict, compare=False, hash=False)
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.task_id, str) or not self.task_id:
            raise ValueError("a task needs a non-empty string id")
        object.__setattr__(self, "tags", tuple(self.tags))
        prompt = self.prompt
        if isinstance(prompt, (list, tuple)):
            for n, message in enumerate(prompt):
                if not (
                    isinstance(message, dict)
                    and isinstance(message.get("role"), str)
                    and isinstance(message.get("content"), str)
                ):
                    raise ValueError(
                        f"task {self.task_id}: prompt message {n} must be an object with string "
                        f"'role' and 'content', got {message!r}"
                    )
            if not prompt:
                raise ValueError(f"task {self.task_id}: the prompt has no messages")
            object.__setattr__(self, "prompt", tuple(dict(m) for m in prompt))
        elif not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(
                f"task {self.task_id}: prompt must be a non-empty string or a list of messages, got {prompt!r}"
            )
        criteria = tuple(self.criteria)
        if not criteria:
            raise ValueError(f"task {self.task_id}: the rubric has no criteria")
        if not any(c.weight > 0 for c in criteria):
            raise ValueError(f"task {self.task_id}: the rubric has no criterion with a positive weight")
        if not math.isfinite(sum(max(c.weight, 0.0) for c in criteria)):
            raise ValueError(
                f"task {self.task_id}: the positive weights sum to infinity (every reward would be 0); "
                f"use smaller weights"
            )
        lowest = sum(min(c.weight, 0.0) for c in criteria) / sum(max(c.weight, 0.0) for c in criteria)
        if not math.isfinite(lowest) or lowest < -MAX_PENALTY_RATIO:
            raise ValueError(
                f"task {self.task_id}: the negative weights outweigh the positive ones {-lowest:.3g}-fold (the "
                f"lowest reward would be {lowest:.3g}, beyond -{MAX_PENALTY_RATIO:g}); rescale the weights"
            )
        object.__setattr__(self, "criteria", criteria)

    @property
    def messages(self) -> list[Message]:
        """The prompt as chat messages."""
        if isinstance(self.prompt, str):
            return [{"role": "user", "content": self.prompt}]
        return [dict(m) for m in self.prompt]

    @property
    def question(self) -> str:
        """The prompt as plain text, as the judge reads it (earlier turns labelled by role)."""
        if isinstance(self.prompt, str):
            return self.prompt
        if len(self.prompt) == 1:
            return self.prompt[0]["content"]
        return "\n\n".join(f"{m['role']}: {m['content']}" for m in self.prompt)

    @property
    def max_score(self) -> float:
        """Sum of the positive weights: the normaliser of the sequence reward."""
        return sum(max(c.weight, 0.0) for c in self.criteria)


class TaskSet(Sequence[Task]):
    """An ordered, id-indexed collection of tasks."""

    def __init__(self, tasks: Sequence[Task], name: str = "tasks") -> None:
        self.name = name
        self._tasks = list(tasks)
        self._by_id: dict[str, Task] = {}
        for task in self._tasks:
            if task.task_id in self._by_id:
                raise ValueError(f"{name}: duplicate task id {task.task_id!r}")
            self._by_id[task.task_id] = task

    def __len__(self) -> int:
        return len(self._tasks)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return TaskSet(self._tasks[index], self.name)
        return self._tasks[index]

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._by_id

    def get(self, task_id: str) -> Task:
        """The task with this id (KeyError naming the set if absent)."""
        try:
            return self._by_id[task_id]
        except KeyError:
            raise KeyError(f"no task {task_id!r} in {self.name} ({len(self)} tasks)") from None

    def draw(self, rng: np.random.Generator) -> Task:
        """A task chosen uniformly at random with ``rng`` (how an env picks its next task)."""
        return self._tasks[int(rng.integers(len(self._tasks)))]

    @property
    def splits(self) -> list[str]:
        """The split names of the tasks, in order of first appearance."""
        return list(dict.fromkeys(t.split for t in self._tasks))

    def split(self, name: str) -> TaskSet:
        """The tasks of one split (any name in ``splits``); all tasks for "all"."""
        if name == "all":
            return self
        subset = [t for t in self._tasks if t.split == name]
        if not subset:
            raise ValueError(f"{self.name} has no task in split {name!r} (splits: {self.splits}, or 'all')")
        return TaskSet(subset, f"{self.name}[{name}]")

    def select(self, task_ids: Sequence[str] = (), domains: Sequence[str] = (), tags: Sequence[str] = ()) -> TaskSet:
        """The tasks with these ids (in the order given), of one of these domains, and carrying one
        of these task tags (HealthBench themes: ``tags=["theme:hedging"]``); empty keeps all.

        Raises:
            ValueError: an id not in the set, or a selection that keeps no task.
        """
        missing = [t for t in task_ids if t not in self._by_id]
        if missing:
            raise ValueError(
                f"{self.name} has no task {missing[0]!r} ({len(missing)} unknown id(s)); "
                f"ids look like {self._tasks[0].task_id!r}"
                if self._tasks
                else f"{self.name} is empty"
            )
        chosen = [self._by_id[t] for t in dict.fromkeys(task_ids)] if task_ids else list(self._tasks)
        if domains:
            chosen = [t for t in chosen if t.domain in set(domains)]
        if tags:
            chosen = [t for t in chosen if set(t.tags) & set(tags)]
        if not chosen:
            domains_here = sorted({t.domain for t in self._tasks})
            tags_here = sorted({tag for t in self._tasks for tag in t.tags})
            raise ValueError(
                f"the selection keeps no task of {self.name} (domains here: {domains_here}; "
                f"task tags here: {tags_here[:20]}{' ...' if len(tags_here) > 20 else ''})"
            )
        label = ",".join(list(task_ids)[:3] + list(domains) + list(tags)) + ("..." if len(task_ids) > 3 else "")
        return TaskSet(chosen, f"{self.name}[{label}]" if label else self.name)

    def filter_criteria(self, tags: Sequence[str]) -> TaskSet:
        """Every task with only its criteria that carry one of ``tags`` (e.g. ``["axis:accuracy"]``);
        a task left without a criterion of positive weight is dropped.

        Raises:
            ValueError: no tags given, or no task keeps a criterion of positive weight.
        """
        if isinstance(tags, str) or not tags:
            raise ValueError(f"filter_criteria takes a non-empty list of tags, got {tags!r}")
        wanted = set(tags)
        kept = []
        for task in self._tasks:
            criteria = tuple(c for c in task.criteria if wanted & set(c.tags))
            if any(c.weight > 0 for c in criteria):
                kept.append(replace(task, criteria=criteria))
        if not kept:
            tags_here = sorted({tag for t in self._tasks for c in t.criteria for tag in c.tags})
            raise ValueError(
                f"no task of {self.name} keeps a criterion of positive weight tagged {sorted(wanted)} "
                f"(criterion tags here: {tags_here[:20]}{' ...' if len(tags_here) > 20 else ''})"
            )
        return TaskSet(kept, f"{self.name}[criteria:{','.join(tags)}]")

    def __repr__(self) -> str:
        return f"TaskSet({self.name!r}, {len(self)} tasks)"
