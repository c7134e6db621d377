"""A task set's summary: tasks per split, criteria per task, weights, polarity, tags, and the
criteria decided by an exact check (``Criterion.exact_check``) instead of the judge.

python -m tasks.inspect FILE_OR_FOLDER [--format rar] [--split test]
g2r tasks inspect FILE_OR_FOLDER
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Optional

import numpy as np

from .loaders import FORMATS, load_taskset
from .polarity import EXAMPLES_SHOWN, reversed_criteria
from .types import TaskSet

TOP_TAGS = 15
"""Tags listed per kind (the most frequent first)."""
CHECKED_SHOWN = 12
"""Distinct wordings of criteria decided by a check listed (the most frequent first)."""


def summarize(tasks: TaskSet) -> dict:
    """The summary of a task set as plain values (``format_summary`` prints it)."""
    per_task = np.array([len(t.criteria) for t in tasks])
    weights = np.array([c.weight for t in tasks for c in t.criteria])
    reversed_found = [(t.task_id, c.criterion) for t in tasks for _, c in reversed_criteria(t)]
    checked = Counter()
    checked_by: dict[str, str] = {}
    for criterion in (c for t in tasks for c in t.criteria):
        check = criterion.exact_check
        if check is not None:
            checked[criterion.criterion] += 1
            checked_by[criterion.criterion] = ("own " if criterion.check is not None else "") + json.dumps(
                check.to_spec()
            )
    return {
        "name": tasks.name,
        "tasks": len(tasks),
        "splits": dict(Counter(t.split for t in tasks)),
        "domains": dict(Counter(t.domain or "-" for t in tasks).most_common()),
        "criteria": int(per_task.sum()),
        "criteria_per_task": {
            "min": int(per_task.min()),
            "median": float(np.median(per_task)),
            "mean": float(per_task.mean()),
            "max": int(per_task.max()),
        },
        "weights": {
            "positive": int((weights > 0).sum()),
            "negative": int((weights < 0).sum()),
            "zero": int((weights == 0).sum()),
            "min": float(weights.min()),
            "max": float(weights.max()),
            "values": {f"{w:g}": n for w, n in sorted(Counter(weights.tolist()).items())},
            "tasks_with_negative": sum(any(c.weight < 0 for c in t.criteria) for t in tasks),
        },
        "polarity": {"reversed": len(reversed_found), "examples": reversed_found[:EXAMPLES_SHOWN]},
        "checked": {
            "criteria": sum(checked.values()),
            "own": sum(c.check is not None for t in tasks for c in t.criteria),
            "examples": [(text, n, checked_by[text]) for text, n in checked.most_common(CHECKED_SHOWN)],
        },
        "task_tags": dict(Counter(tag for t in tasks for tag in t.tags).most_common(TOP_TAGS)),
        "criterion_tags": dict(Counter(tag for t in tasks for c in t.criteria for tag in c.tags).most_common(TOP_TAGS)),
    }


def format_summary(summary: dict) -> str:
    """The summary as plain text."""
    per_task, weights, polarity = summary["criteria_per_task"], summary["weights"], summary["polarity"]
    lines = [
        f"{summary['name']}: {summary['tasks']} tasks, {summary['criteria']} criteria",
        "  splits: " + ", ".join(f"{name} {n}" for name, n in summary["splits"].items()),
        "  domains: " + ", ".join(f"{name} {n}" for name, n in summary["domains"].items()),
        f"  criteria per task: min {per_task['min']}, median {per_task['median']:g}, "
        f"mean {per_task['mean']:.2f}, max {per_task['max']}",
        f"  weights: {weights['positive']} positive, {weights['negative']} negative, {weights['zero']} zero "
        f"(min {weights['min']:g}, max {weights['max']:g}; {weights['tasks_with_negative']} tasks have a "
        "negative one)",
        "    values: " + ", ".join(f"{value}: {n}" for value, n in weights["values"].items()),
        f"  polarity: {polarity['reversed']} negative-weight criteria phrased as avoidances"
        + (
            " (meeting them costs points; load_taskset(..., polarity='flip') counts them as positive)"
            if polarity["reversed"]
            else ""
        ),
    ]
    lines += [f"    {task_id}: {text[:100]!r}" for task_id, text in polarity["examples"]]
    checked = summary["checked"]
    lines.append(
        f"  decided by code: {checked['criteria']} of {summary['criteria']} criteria have an exact check "
        f"({checked['own']} their own 'check', the rest recognised from the wording); the judge decides the "
        "rest (checks=False judges all)"
    )
    lines += [f"    {n} x {text[:80]!r}: {spec}" for text, n, spec in checked["examples"]]
    for kind in ("task_tags", "criterion_tags"):
        tags = summary[kind]
        shown = ", ".join(f"{tag} {n}" for tag, n in tags.items()) if tags else "none"
        lines.append(f"  {kind.replace('_', ' ')} (most frequent {TOP_TAGS}): {shown}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the summary of a task set; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="g2r tasks inspect", description="Summarise a task set: splits, criteria, weights, polarity, tags."
    )
    parser.add_argument("source", help="a bundled set's name, a JSONL or parquet file, or a folder of them")
    parser.add_argument("--format", default="auto", choices=["auto", *FORMATS], help="row format (default: auto)")
    parser.add_argument("--split", default="all", help="one split, or all (default)")
    args = parser.parse_args(argv)
    tasks = load_taskset(args.source, format=args.format, split=args.split, polarity="ignore")
    print(format_summary(summarize(tasks)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
