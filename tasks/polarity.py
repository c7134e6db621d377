"""Rubric polarity: negative-weight criteria phrased as avoidances.

A negative weight means "met is bad": the judge decides whether the criterion holds, and when it
does the weight is subtracted. A criterion phrased as an avoidance ("Avoids ...", "Does not ...",
"Doesn't ...", "Never ...", "Refrains from ...", after an optional RaR label such as "Pitfall
Criteria: ") describes what a good response does, so with a negative weight it punishes the
response that avoids the pitfall: the sign reads the other way round. Some public rubric data
writes its pitfalls this way.

``load_taskset(..., polarity=...)`` decides what happens to such criteria:

- ``"warn"`` (default): loaded as they are; one warning per file with their number and three
  examples (``file:line``, the text);
- ``"error"``: TaskFormatError at the first one (``file:line``, the criterion);
- ``"flip"``: the weight becomes its absolute value and the text is kept, so the criterion is read
  as written: avoiding the pitfall earns |w| points (and raises the task's ``max_score`` by |w|).
  For a task whose pitfall was meant as "the response does the bad thing, minus |w|", the flipped
  score is the intended score plus |w| and the reward (score / max_score) an increasing affine map
  of the intended reward: the same order of responses within a task, so group-normalised
  advantages (GRPO) are unchanged. The task keeps its id. Flip only data whose avoidance-phrased
  pitfalls are all mis-signed: a criterion such as "Does not mention emergency services" with a
  negative weight may be meant as written ("failing to mention it is bad"), and flipping would
  then reward the omission;
- ``"ignore"``: no check.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import replace

from .types import Criterion, Task

POLARITIES = ("warn", "error", "flip", "ignore")
"""What ``load_taskset`` does with an avoidance-phrased negative criterion (module doc)."""
_LABEL = re.compile(r"^\s*(?:[A-Za-z]+\s+)?criteria\s*:\s*", re.IGNORECASE)
_AVOIDANCE = re.compile(r"^(?:avoids?|does\s+not|doesn[’']t|do\s+not|don[’']t|never|refrains?\s+from)\b", re.IGNORECASE)
EXAMPLES_SHOWN = 3
"""Examples a polarity warning quotes."""


def is_avoidance(text: str) -> bool:
    """Whether a criterion is phrased as an avoidance (module doc), after an optional RaR label."""
    return bool(_AVOIDANCE.match(_LABEL.sub("", text, count=1).lstrip()))


def reversed_criteria(task: Task) -> list[tuple[int, Criterion]]:
    """(index, criterion) of each negative-weight criterion of ``task`` phrased as an avoidance."""
    return [(k, c) for k, c in enumerate(task.criteria) if c.weight < 0 and is_avoidance(c.criterion)]


def check_polarity(polarity: str) -> str:
    """``polarity``, or a ValueError naming the choices."""
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    return polarity


class PolarityCheck:
    """Applies a polarity policy to loaded tasks, one source file at a time, and warns once per file.

    Call it on each ``(where, task)`` (``where`` is ``file:line`` or ``file:row N``) and ``finish()``
    at the end (a warning per file that had any, under ``"warn"`` and ``"flip"``).
    """

    def __init__(self, polarity: str = "warn") -> None:
        self.polarity = check_polarity(polarity)
        self.found: dict[str, list[tuple[str, str]]] = {}

    def __call__(self, where: str, task: Task) -> Task:
        if self.polarity == "ignore":
            return task
        found = reversed_criteria(task)
        if not found:
            return task
        if self.polarity == "error":
            k, criterion = found[0]
            raise _format_error(
                f"{where}: rubric item {k} {criterion.criterion!r} has weight {criterion.weight:g} but is "
                "phrased as an avoidance, so meeting it (avoiding the pitfall) would cost points; fix its "
                "sign, or load with polarity='flip' (count it as a positive criterion) or 'ignore'"
            )
        source = where.rsplit(":", 1)[0]
        self.found.setdefault(source, []).extend((where, c.criterion) for _, c in found)
        if self.polarity == "flip":
            flipped = {k for k, _ in found}
            criteria = tuple(
                replace(c, weight=abs(c.weight)) if k in flipped else c for k, c in enumerate(task.criteria)
            )
            return replace(task, criteria=criteria)
        return task

    def finish(self) -> None:
        """Warn once per file that had avoidance-phrased negative criteria."""
        for source, found in self.found.items():
            warnings.warn(polarity_message(source, found, self.polarity), stacklevel=3)
        self.found = {}


def polarity_message(source: str, found: Sequence[tuple[str, str]], polarity: str = "warn") -> str:
    """The warning for a file's avoidance-phrased negative criteria ((where, text) pairs)."""
    examples = "; ".join(f"{where}: {text[:80]!r}" for where, text in found[:EXAMPLES_SHOWN])
    done = (
        "their weights were made positive (polarity='flip')"
        if polarity == "flip"
        else "loaded as they are; polarity='flip' counts them as positive criteria, 'error' stops, 'ignore' is silent"
    )
    return (
        f"{source}: {len(found)} negative-weight criteria are phrased as avoidances (meeting them would "
        f"cost points), e.g. {examples}; {done}"
    )


def _format_error(message: str) -> Exception:
    from .loaders import TaskFormatError

    return TaskFormatError(message)
