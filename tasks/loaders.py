"""Loaders for task files: our own JSONL, the RaR rubric format and the HealthBench format.

Every loader reads JSON Lines (one task per line, blank lines ignored) and reports a bad line as
``file:line: what is wrong``. A folder is read file by file (``*.jsonl`` in name order).

Own format (``format="g2r"``), one object per line::

    {"id": "expl-001", "prompt": "Explain ...", "domain": "explanation", "split": "train",
     "criteria": [{"criterion": "Mentions ...", "weight": 2},
                  {"criterion": "Gives unsafe advice", "weight": -3}]}

``prompt`` may also be a list of chat messages ``[{"role": "user", "content": "..."}]``;
``split`` defaults to "train", ``domain`` to "", ``weight`` to 1.

RaR (``format="rar"``): ``{"question": ..., "rubric": [{"title", "description", "weight"}]}``
(an id is taken from ``id``/``prompt_id`` when present, else ``<file stem>-<line>``).

HealthBench (``format="healthbench"``): ``{"prompt_id": ..., "prompt": [messages],
"rubrics": [{"criterion", "points", "tags"}]}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .types import Criterion, Task, TaskSet

BUNDLED_DIR = Path(__file__).parent / "data"
BUNDLED = {folder.name: folder for folder in sorted(BUNDLED_DIR.iterdir()) if folder.is_dir()}
"""The bundled task sets by name: every folder of tasks/data (openended-mini, judge-extra)."""
TaskParser = Callable[[dict, str, str], Task]
FORMATS: dict[str, TaskParser] = {}
"""Task formats by name; each parses one row (the row, ``file:line`` for errors, a default id)."""


def register_format(name: str) -> Callable[[TaskParser], TaskParser]:
    """Register a row parser under a format name (``load_taskset(..., format=name)``)."""

    def decorator(parser: TaskParser) -> TaskParser:
        FORMATS[name] = parser
        return parser

    return decorator


class TaskFormatError(ValueError):
    """A task file that cannot be read; the message starts with ``file:line:``."""


def _require(row: dict, key: str, where: str) -> Any:
    if key not in row:
        raise TaskFormatError(f"{where}: missing field {key!r} (fields present: {sorted(row)})")
    return row[key]


def _task_id(value: Any, where: str, key: str = "id") -> str:
    """An id from a string or an integer; anything else (null, a float, a list) is an error."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or (isinstance(value, str) and not value.strip()):
        raise TaskFormatError(f"{where}: {key!r} must be a non-empty string or an integer, got {value!r}")
    return str(value)


def _prompt(value: Any, where: str) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return tuple(value)
    raise TaskFormatError(f"{where}: 'prompt' must be a string or a list of {{role, content}} messages, got {value!r}")


def _weight(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise TaskFormatError(f"{where}: {what} must be a number, got {value!r}")
    return float(value)


def _criteria(
    items: Any, where: str, text_of: Callable[[dict], str], weight_key: str, default_weight: float | None = None
) -> list[Criterion]:
    if not isinstance(items, list) or not items:
        raise TaskFormatError(f"{where}: the rubric must be a non-empty list")
    criteria = []
    for k, item in enumerate(items):
        if not isinstance(item, dict):
            raise TaskFormatError(f"{where}: rubric item {k} must be an object, got {item!r}")
        text = text_of(item)
        if not isinstance(text, str) or not text.strip():
            raise TaskFormatError(f"{where}: rubric item {k} has no criterion text")
        if weight_key in item:
            weight = _weight(item[weight_key], where, f"rubric item {k} {weight_key!r}")
        elif default_weight is not None:
            weight = default_weight
        else:
            raise TaskFormatError(f"{where}: rubric item {k} is missing field {weight_key!r}")
        tags = item.get("tags")
        if tags is None:
            tags = []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise TaskFormatError(f"{where}: rubric item {k} tags must be a list of strings, got {tags!r}")
        criteria.append(Criterion(text.strip(), weight, tuple(tags)))
    return criteria


@register_format("g2r")
def _parse_g2r(row: dict, where: str, default_id: str) -> Task:
    task_id = _task_id(_require(row, "id", where), where)
    prompt = _prompt(_require(row, "prompt", where), where)
    criteria = _criteria(
        _require(row, "criteria", where), where, lambda item: item.get("criterion"), "weight", default_weight=1.0
    )
    split = row.get("split", "train")
    if split not in ("train", "test"):
        raise TaskFormatError(f"{where}: split must be 'train' or 'test', got {split!r}")
    return Task(
        task_id,
        prompt,
        tuple(criteria),
        split=split,
        domain=str(row.get("domain", "")),
        metadata={k: v for k, v in row.items() if k not in ("id", "prompt", "criteria", "split", "domain")},
    )


def _rar_text(item: dict) -> str:
    # RaR descriptions are self-contained ("Essential Criteria: ..."); the title only names them
    return item.get("description") or item.get("title")


@register_format("rar")
def _parse_rar(row: dict, where: str, default_id: str) -> Task:
    question = _require(row, "question", where)
    criteria = _criteria(_require(row, "rubric", where), where, _rar_text, "weight")
    key = "id" if "id" in row else "prompt_id" if "prompt_id" in row else None
    task_id = _task_id(row[key], where, key) if key else default_id
    return Task(
        task_id,
        question,
        tuple(criteria),
        split=row.get("split", "train"),
        domain=str(row.get("domain", row.get("category", ""))),
        metadata={"reference_answer": row.get("reference_answer")},
    )


@register_format("healthbench")
def _parse_healthbench(row: dict, where: str, default_id: str) -> Task:
    prompt = _require(row, "prompt", where)
    if not isinstance(prompt, list) or not all(isinstance(m, dict) and "role" in m and "content" in m for m in prompt):
        raise TaskFormatError(f"{where}: 'prompt' must be a list of {{role, content}} messages")
    criteria = _criteria(_require(row, "rubrics", where), where, lambda item: item.get("criterion"), "points")
    task_id = _task_id(row["prompt_id"], where, "prompt_id") if "prompt_id" in row else default_id
    tags = row.get("example_tags") or []
    domain = next((t.split(":", 1)[1] for t in tags if isinstance(t, str) and t.startswith("theme:")), "health")
    return Task(
        task_id,
        tuple(prompt),
        tuple(criteria),
        split=row.get("split", "train"),
        domain=domain,
        metadata={"example_tags": tags},
    )


def parse_task(row: dict, where: str = "task", default_id: str = "task", format: str = "g2r") -> Task:
    """One task from a parsed row in ``format`` ("g2r", "rar" or "healthbench"); errors name ``where``."""
    if format not in FORMATS:
        raise ValueError(f"unknown task format {format!r}; choose one of {list(FORMATS)}")
    return FORMATS[format](row, where, default_id)


def detect_format(row: dict) -> str:
    """Guess the format of one parsed line from its fields."""
    if "rubrics" in row and "prompt" in row:
        return "healthbench"
    if "rubric" in row and "question" in row:
        return "rar"
    return "g2r"


def iter_tasks(path: str | os.PathLike, format: str = "auto") -> Iterable[Task]:
    """Yield the tasks of one JSONL file, raising TaskFormatError with file and line on bad input."""
    for _, task in _numbered_tasks(Path(path), format):
        yield task


def read_rows(path: Path) -> Iterable[tuple[str, dict]]:
    """(``file:line``, object) for every non-blank line of a JSON Lines file.

    A UTF-8 byte-order mark is accepted; bad UTF-8, bad JSON and lines that are not objects raise
    TaskFormatError naming the file and line.
    """
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            where = f"{path}:{line_no}"
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise TaskFormatError(f"{where}: not valid UTF-8 (byte {err.start + 1} of the line)") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise TaskFormatError(f"{where}: bad JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(row, dict):
                raise TaskFormatError(f"{where}: each line must be a JSON object, got {type(row).__name__}")
            yield where, row


def _numbered_tasks(path: Path, format: str) -> Iterable[tuple[str, Task]]:
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"unknown task format {format!r}; choose one of {list(FORMATS)} or 'auto'")
    for where, row in read_rows(path):
        fmt = detect_format(row) if format == "auto" else format
        try:
            yield where, parse_task(row, where, f"{path.stem}-{where.rsplit(':', 1)[-1]}", fmt)
        except TaskFormatError:
            raise
        except (ValueError, TypeError) as err:
            raise TaskFormatError(f"{where}: {err}") from None


def load_taskset(source: str | os.PathLike = "openended-mini", format: str = "auto", split: str = "all") -> TaskSet:
    """Load a task set.

    Args:
        source: a bundled set's name (``"openended-mini"``), a JSONL file, or a folder of them.
        format: "g2r", "rar", "healthbench" or "auto" (decided per line from its fields).
        split: "train", "test" or "all".

    Raises:
        TaskFormatError: a line is bad JSON, lacks a field, has a non-numeric weight or a rubric
            with no positive weight, or repeats an id; the message names file and line.
        FileNotFoundError: neither a bundled name nor an existing path.
    """
    if isinstance(source, TaskSet):
        return source.split(split)
    name = str(source)
    path = BUNDLED.get(name, Path(name))
    if not path.exists():
        raise FileNotFoundError(
            f"no task set {name!r}: not a bundled set ({', '.join(BUNDLED)}) nor an existing file or folder"
        )
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{path} holds no *.jsonl file")
    tasks: list[Task] = []
    first_seen: dict[str, str] = {}
    for file in files:
        for where, task in _numbered_tasks(file, format):
            if task.task_id in first_seen:
                raise TaskFormatError(
                    f"{where}: duplicate task id {task.task_id!r} (first at {first_seen[task.task_id]})"
                )
            first_seen[task.task_id] = where
            tasks.append(task)
    return TaskSet(tasks, name if name in BUNDLED else path.name).split(split)
