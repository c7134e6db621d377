"""Judged cases: a (task, response, criterion) with a known verdict, from the composer or a verdict file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tasks.checks import Check
from tasks.types import Criterion, Task


@dataclass(frozen=True)
class JudgedCase:
    """One (task, response, criterion) with a known verdict: a judge training or test example.

    Attributes:
        task: the task (its question is what the judge reads as the prompt).
        response: the response text.
        criterion: the criterion text shown to the judge (the original or a paraphrase).
        label: True when the response meets the criterion.
        kind: "content", "pitfall", "structure" (or "" when unknown).
        negative: for unmet criteria, "in-task" (a criterion of this task) or "mismatched" (a
            criterion of another task); "" for met ones.
        evidence: character spans [start, end) of the response that make the criterion met.
        group: an id shared by the criteria judged on the same response.
        weight: the criterion's rubric weight.
        agreement: share of graders who gave ``label`` (1.0 for constructed labels; 0.5 for a tied
            vote, whose ``label`` is then False and means nothing).
        grader_labels: each human grader's verdict, when graders labelled the case (HealthBench
            meta-evaluation: the physicians' ``binary_labels``).
        grader_ids: who gave each of ``grader_labels`` (HealthBench: ``anonymized_physician_ids``);
            empty when the graders are anonymous.
        check: the check that decides the criterion from the text (composed structure criteria),
            so that a changed response can be judged again exactly; None when unknown.
    """

    task: Task
    response: str
    criterion: str
    label: bool
    kind: str = ""
    negative: str = ""
    evidence: tuple[tuple[int, int], ...] = ()
    group: str = ""
    weight: float = 1.0
    agreement: float = 1.0
    grader_labels: tuple[bool, ...] = ()
    grader_ids: tuple[str, ...] = ()
    check: Optional[Check] = None

    @property
    def domain(self) -> str:
        return self.task.domain


def task_for_prompt(prompt, task_id: str = "case", domain: str = "", split: str = "test") -> Task:
    """A one-criterion stand-in task for a prompt (string or messages) judged outside a task set."""
    if not isinstance(prompt, str):
        prompt = tuple(prompt)
    return Task(task_id, prompt, (Criterion("(judged case)", 1.0),), split=split, domain=domain)
