"""Labelled verdict files: graded (prompt, response, criterion) rows for training and testing judges.

One JSON object per line, in either of two shapes::

    {"prompt": "...", "response": "...", "criterion": "...", "label": true}
    {"prompt": "...", "response": "...", "criteria": [{"criterion": "...", "met": false}, ...]}

``prompt`` is a string or a list of chat messages; the verdict is ``label`` or ``met`` (true/false,
1/0). Optional fields: ``id``, ``domain``, ``kind`` (content, structure, pitfall), ``weight``, and
``evidence``: the parts of the response that make the criterion met, as exact substrings or
``[start, end]`` character spans (used to measure where a judge's credit lands). A bad line is
reported as ``file:line: what is wrong``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .compose import JudgedCase, task_for_prompt
from .loaders import TaskFormatError, read_rows


class VerdictFormatError(TaskFormatError):
    """A verdict file that cannot be read; the message starts with ``file:line:``."""


def _label(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise VerdictFormatError(f"{where}: the verdict must be true/false (or 1/0), got {value!r}")


def _spans(response: str, evidence: Any, where: str) -> tuple[tuple[int, int], ...]:
    if evidence is None:
        return ()
    if not isinstance(evidence, list):
        raise VerdictFormatError(f"{where}: 'evidence' must be a list of substrings or [start, end] spans")
    spans = []
    for item in evidence:
        if isinstance(item, str):
            start = response.find(item)
            if start < 0 or not item:
                raise VerdictFormatError(f"{where}: evidence {item[:50]!r} does not occur in the response")
            spans.append((start, start + len(item)))
        elif (
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(v, int) for v in item)
            and 0 <= item[0] < item[1] <= len(response)
        ):
            spans.append((item[0], item[1]))
        else:
            raise VerdictFormatError(
                f"{where}: bad evidence item {item!r} (a substring or [start, end] "
                f"within the response's {len(response)} characters)"
            )
    return tuple(spans)


def parse_verdict_row(row: dict, where: str, default_id: str) -> list[JudgedCase]:
    """The judged cases of one verdict row (one, or one per entry of ``criteria``)."""
    for key in ("prompt", "response"):
        if key not in row:
            raise VerdictFormatError(f"{where}: missing field {key!r} (fields present: {sorted(row)})")
    response = row["response"]
    if not isinstance(response, str) or not response.strip():
        raise VerdictFormatError(f"{where}: 'response' must be a non-empty string")
    try:
        task = task_for_prompt(row["prompt"], str(row.get("id", default_id)), str(row.get("domain", "")))
    except (TypeError, ValueError) as err:
        raise VerdictFormatError(f"{where}: bad prompt: {err}") from None
    if "criteria" in row:
        items = row["criteria"]
        if not isinstance(items, list) or not items:
            raise VerdictFormatError(f"{where}: 'criteria' must be a non-empty list")
    else:
        items = [row]
    cases = []
    for k, item in enumerate(items):
        at = f"{where}: criterion {k}" if "criteria" in row else where
        if not isinstance(item, dict) or not isinstance(item.get("criterion"), str) or not item["criterion"].strip():
            raise VerdictFormatError(f"{at}: needs a non-empty 'criterion' string")
        key = "label" if "label" in item else "met"
        if key not in item:
            raise VerdictFormatError(f"{at}: needs a verdict, 'label' or 'met'")
        label = _label(item[key], at)
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise VerdictFormatError(f"{at}: weight must be a number, got {weight!r}")
        cases.append(
            JudgedCase(
                task,
                response,
                item["criterion"].strip(),
                label,
                str(item.get("kind", "")),
                "" if label else "in-task",
                _spans(response, item.get("evidence"), at),
                task.task_id,
                float(weight),
            )
        )
    return cases


def iter_verdicts(path: str | Path) -> Iterable[JudgedCase]:
    """The judged cases of a verdict file (JSONL or parquet), raising with file and line."""
    path = Path(path)
    for where, row in read_rows(path):
        yield from parse_verdict_row(row, where, f"{path.stem}-{where.rsplit(':', 1)[-1]}")


def load_verdicts(path: str | Path) -> list[JudgedCase]:
    """All judged cases of a verdict file."""
    cases = list(iter_verdicts(path))
    if not cases:
        raise VerdictFormatError(f"{path}: no verdict rows")
    return cases


def write_verdicts(path: str | Path, cases: Iterable[JudgedCase]) -> Path:
    """Write judged cases as a verdict file (one row per case, evidence as spans)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for case in cases:
            handle.write(
                json.dumps(
                    {
                        "id": case.group or case.task.task_id,
                        "domain": case.domain,
                        "prompt": case.task.prompt if isinstance(case.task.prompt, str) else list(case.task.prompt),
                        "response": case.response,
                        "criterion": case.criterion,
                        "label": case.label,
                        "kind": case.kind,
                        "weight": case.weight,
                        "evidence": [list(s) for s in case.evidence],
                    }
                )
                + "\n"
            )
    return path
