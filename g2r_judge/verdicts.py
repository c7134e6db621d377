"""Labelled verdict files: graded (prompt, response, criterion) rows for training and testing judges.

One JSON object per line (or one parquet row), in any of three shapes::

    {"prompt": "...", "response": "...", "criterion": "...", "label": true}
    {"prompt": "...", "response": "...", "criteria": [{"criterion": "...", "met": false}, ...]}
    {"prompt": [messages], "completion": "...", "rubric": "...", "binary_labels": [true, false, true],
     "anonymized_physician_ids": [...], "category": "...", "prompt_id": "...", "completion_id": "..."}

``prompt`` is a string or a list of chat messages; the verdict is ``label`` or ``met`` (true/false,
1/0). Optional fields: ``id`` (a string or integer), ``domain`` (a string), ``kind`` (content,
structure, pitfall), ``weight`` (a finite number), and ``evidence``: the parts of the response that
make the criterion met, as exact substrings or ``[start, end]`` integer character spans (used to
measure where a judge's credit lands); ``grader_labels`` (several graders' verdicts; ``label`` is
then their majority, false on a tied vote) and ``grader_ids`` (who gave them), as ``write_verdicts``
writes meta-evaluation cases. A row has either ``criterion`` or ``criteria``, not both.

Within a file, a (prompt, response, criterion) judged twice with the same verdict is kept once (a
warning counts the repeats); judged twice with different verdicts it is an error naming both lines.

The third shape is a HealthBench meta-evaluation row: physicians' verdicts on whether a completion
meets one rubric criterion. The case's label is the majority of ``binary_labels``, its
``agreement`` the share of physicians who gave it, ``grader_labels`` every verdict (and
``grader_ids`` the ``anonymized_physician_ids``), its domain the
row's ``category``, its task id ``prompt_id`` and its group ``completion_id``. A tied vote has no
majority: ``load_verdicts`` leaves such rows out (with a warning giving their number), unless
``ties="keep"``, which keeps them with label False and agreement 0.5 (``g2r judge eval`` uses them
for the physicians' agreement only). A bad row is reported as ``file:line: what is wrong``.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tasks.loaders import TaskFormatError, read_rows, row_position
from tasks.loaders import _row_id as row_id

from .cases import JudgedCase, task_for_prompt

TIES = ("drop", "keep")
"""What to do with a meta-evaluation row whose graders split evenly."""


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
            and all(isinstance(v, int) and not isinstance(v, bool) for v in item)
            and 0 <= item[0] < item[1] <= len(response)
        ):
            spans.append((item[0], item[1]))
        else:
            raise VerdictFormatError(
                f"{where}: bad evidence item {item!r} (a substring or [start, end] "
                f"within the response's {len(response)} characters)"
            )
    return tuple(spans)


def is_meta_eval_row(row: dict) -> bool:
    """Whether a row is a HealthBench meta-evaluation row (graders' ``binary_labels`` on a completion)."""
    return "binary_labels" in row and "completion" in row


def _text(row: dict, key: str, where: str) -> str:
    if key not in row:
        raise VerdictFormatError(f"{where}: missing field {key!r} (fields present: {sorted(row)})")
    value = row[key]
    if not isinstance(value, str) or not value.strip():
        raise VerdictFormatError(f"{where}: {key!r} must be a non-empty string, got {str(value)[:60]!r}")
    return value


def parse_meta_eval_row(row: dict, where: str, default_id: str, ties: str = "drop") -> list[JudgedCase]:
    """The judged case of one HealthBench meta-evaluation row (module doc); [] for a dropped tie."""
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    if "prompt" not in row:
        raise VerdictFormatError(f"{where}: missing field 'prompt' (fields present: {sorted(row)})")
    completion = _text(row, "completion", where)
    criterion = _text(row, "rubric", where)
    labels = row["binary_labels"]
    if not isinstance(labels, list) or not labels:
        raise VerdictFormatError(f"{where}: 'binary_labels' must be a non-empty list of true/false")
    labels = tuple(_label(value, f"{where}: binary_labels[{k}]") for k, value in enumerate(labels))
    graders = row.get("anonymized_physician_ids")
    if graders is not None and (not isinstance(graders, list) or len(graders) != len(labels)):
        raise VerdictFormatError(
            f"{where}: 'anonymized_physician_ids' must list one grader per label "
            f"({len(labels)} labels, got {graders!r})"
        )
    met = sum(labels)
    if 2 * met == len(labels) and ties == "drop":
        return []
    grader_ids = () if graders is None else tuple(str(g) for g in graders)
    category = row.get("category") or ""
    task_id = row.get("prompt_id") or default_id
    try:
        task = task_for_prompt(row["prompt"], str(task_id), str(category))
    except (TypeError, ValueError) as err:
        raise VerdictFormatError(f"{where}: bad prompt: {err}") from None
    label = 2 * met > len(labels)
    return [
        JudgedCase(
            task,
            completion,
            criterion.strip(),
            label,
            negative="" if label else "in-task",
            group=str(row.get("completion_id") or default_id),
            agreement=max(met, len(labels) - met) / len(labels),
            grader_labels=labels,
            grader_ids=grader_ids,
        )
    ]


def _grader_fields(item: dict, label: bool, where: str) -> dict:
    """``grader_labels``, ``grader_ids`` and ``agreement`` of a verdict row that lists its graders
    (as ``write_verdicts`` writes them); {} for one without. The row's label must be the graders'
    majority (False on a tied vote, as meta-evaluation rows load with ``ties="keep"``)."""
    if item.get("grader_labels") is None:
        return {}
    labels = item["grader_labels"]
    if not isinstance(labels, list) or not labels:
        raise VerdictFormatError(f"{where}: 'grader_labels' must be a non-empty list of true/false")
    labels = tuple(_label(value, f"{where}: grader_labels[{k}]") for k, value in enumerate(labels))
    ids = item.get("grader_ids") or []
    if not isinstance(ids, list) or (ids and len(ids) != len(labels)):
        raise VerdictFormatError(f"{where}: 'grader_ids' must list one grader per label ({len(labels)} labels)")
    met = sum(labels)
    if label != (2 * met > len(labels)):
        raise VerdictFormatError(
            f"{where}: label {label} is not the majority of grader_labels {list(labels)} "
            "(a tied vote is written with label false)"
        )
    return {
        "grader_labels": labels,
        "grader_ids": tuple(str(g) for g in ids),
        "agreement": max(met, len(labels) - met) / len(labels),
    }


def parse_verdict_row(row: dict, where: str, default_id: str, ties: str = "drop") -> list[JudgedCase]:
    """The judged cases of one verdict row (one, or one per entry of ``criteria``)."""
    if is_meta_eval_row(row):
        return parse_meta_eval_row(row, where, default_id, ties)
    for key in ("prompt", "response"):
        if key not in row:
            raise VerdictFormatError(f"{where}: missing field {key!r} (fields present: {sorted(row)})")
    response = row["response"]
    if not isinstance(response, str) or not response.strip():
        raise VerdictFormatError(f"{where}: 'response' must be a non-empty string")
    domain = row.get("domain", "")
    if not isinstance(domain, str):
        raise VerdictFormatError(f"{where}: 'domain' must be a string, got {domain!r}")
    try:
        task_id = row_id(row, ("id",), where) or default_id
    except TaskFormatError as err:
        raise VerdictFormatError(str(err)) from None
    try:
        task = task_for_prompt(row["prompt"], task_id, domain)
    except (TypeError, ValueError) as err:
        raise VerdictFormatError(f"{where}: bad prompt: {err}") from None
    both = sorted({"criterion", "label", "met"} & set(row))
    if "criteria" in row and both:
        raise VerdictFormatError(
            f"{where}: the row has both 'criteria' and {both}; give one criterion with its verdict, or a "
            f"'criteria' list, not both"
        )
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
        graders = _grader_fields(item, label, at)
        if graders and graders["agreement"] == 0.5 and ties == "drop":
            continue
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise VerdictFormatError(f"{at}: weight must be a finite number, got {weight!r}")
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
                **graders,
            )
        )
    return cases


def iter_verdicts(path: str | Path, ties: str = "drop") -> Iterable[JudgedCase]:
    """The judged cases of a verdict file (JSONL or parquet), raising with file and line."""
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    path = Path(path)
    tied, repeats = 0, []
    seen: dict[tuple, tuple[str, bool]] = {}
    for where, row in read_rows(path):
        cases = parse_verdict_row(row, where, f"{path.stem}-{row_position(where)}", ties)
        tied += not cases
        for case in cases:
            key = (case.task.question, case.response, case.criterion)
            if case.grader_labels:  # graders' rows are each a vote of their own
                yield case
                continue
            if key in seen:
                first, label = seen[key]
                if label != case.label:
                    raise VerdictFormatError(
                        f"{where}: the criterion {case.criterion[:50]!r} on this response is judged {case.label} "
                        f"here and {label} at {first}; keep one verdict"
                    )
                repeats.append((where, first))
                continue
            seen[key] = (where, case.label)
            yield case
    if repeats:
        warnings.warn(
            f"{path}: {len(repeats)} verdict(s) repeat an earlier one with the same label (first: {repeats[0][0]} "
            f"repeats {repeats[0][1]}); kept once",
            stacklevel=2,
        )
    if tied:
        warnings.warn(
            f"{path}: {tied} row(s) have a tied grader vote and no majority label; left out "
            "(load_verdicts(..., ties='keep') keeps them for grader-agreement statistics)",
            stacklevel=2,
        )


def load_verdicts(path: str | Path, ties: str = "drop") -> list[JudgedCase]:
    """All judged cases of a verdict file (``ties``: what to do with tied meta-evaluation votes)."""
    cases = list(iter_verdicts(path, ties))
    if not cases:
        raise VerdictFormatError(f"{path}: no verdict rows")
    return cases


def _grader_columns(case: JudgedCase) -> dict:
    """The grader fields of a case's verdict row (none for a case without graders)."""
    if not case.grader_labels:
        return {}
    return {"grader_labels": list(case.grader_labels), "grader_ids": list(case.grader_ids)}


def write_verdicts(path: str | Path, cases: Iterable[JudgedCase]) -> Path:
    """Write judged cases as a verdict file (one row per case, evidence as spans, and the graders'
    ``grader_labels`` / ``grader_ids`` where the case has them; ``load_verdicts`` reads them back)."""
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
                        **_grader_columns(case),
                    }
                )
                + "\n"
            )
    return path
