"""Tasks written out for other trainers: one task as a JSON object of our own format, tasks found
again by their prompt, and task sets as the datasets TRL reads.

- ``task_to_json`` / ``task_from_json``: a task as one JSON line of the ``g2r`` format
  (``tasks.loaders``), metadata included, read back exactly (verl's ``reward_model.ground_truth``,
  TRL's ``task`` column).
- ``prompt_key`` / ``index_by_prompt``: tasks by their chat messages, for rows that carry only
  the prompt.
- ``trl_rows`` / ``to_hf_dataset`` / ``write_trl_parquet``: TRL's conversational prompt format, one
  row per task: ``prompt`` (a list of ``{role, content}`` messages; TRL applies the policy's chat
  template) and ``task`` (the task as JSON). TRL hands every dataset column to its reward
  functions, so a row's task reaches the judge with its completion.
- ``write_split_parquet``: ``<out_dir>/<split>.parquet`` per split, the writer of every export format.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .loaders import parse_task
from .stream import TaskStream
from .types import Criterion, Message, Task, TaskSet

_TASK_FIELDS = ("id", "prompt", "criteria", "split", "domain", "tags")


def _criterion_row(criterion: Criterion) -> dict:
    row = {"criterion": criterion.criterion, "weight": criterion.weight, "tags": list(criterion.tags)}
    if criterion.check is not None:
        row["check"] = criterion.check.to_spec()
    return row


def task_to_row(task: Task) -> dict:
    """The task as one object of our own JSONL format (``tasks.loaders``), metadata included.

    Raises:
        ValueError: metadata that is not JSON-able or that uses a field name of the format.
    """
    clash = sorted(set(task.metadata) & set(_TASK_FIELDS))
    if clash:
        raise ValueError(f"task {task.task_id}: metadata keys {clash} clash with task fields; rename them")
    row = {
        "id": task.task_id,
        "prompt": task.prompt if isinstance(task.prompt, str) else [dict(m) for m in task.prompt],
        "criteria": [_criterion_row(c) for c in task.criteria],
        "split": task.split,
        "domain": task.domain,
        "tags": list(task.tags),
        **task.metadata,
    }
    try:
        text = json.dumps(row, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"task {task.task_id}: its metadata cannot be written as JSON ({err})") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"task {task.task_id}: its text holds {text[err.start]!r}, a lone surrogate that is not valid "
            f"UTF-8 (near {text[max(err.start - 20, 0) : err.start]!r}); fix the text or its file's encoding"
        ) from None
    return row


def task_from_json(text: str, where: str = "task", field: str = "the task") -> Task:
    """The task of a string written by ``task_to_json``; errors name ``where`` and the ``field`` read."""
    try:
        row = json.loads(text)
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{where}: {field} is not a Grad2Reward task as JSON ({err})") from None
    if not isinstance(row, dict):
        raise ValueError(f"{where}: {field} must hold a JSON object, got {type(row).__name__}")
    return parse_task(row, where, where, format="g2r")


def task_to_json(task: Task) -> str:
    """The task as one JSON line of our own format, checked to read back as the same task.

    Raises:
        ValueError: a task that would not come back the same (a split our format does not know,
            metadata that JSON cannot hold, ...), naming its id.
    """
    text = json.dumps(task_to_row(task), ensure_ascii=False, allow_nan=False)
    try:
        back = task_from_json(text, f"task {task.task_id}")
    except ValueError as err:
        raise ValueError(f"cannot export task {task.task_id}: {err}") from None
    if not (back == task and back.metadata == task.metadata):
        raise ValueError(f"cannot export task {task.task_id}: it does not read back as the same task")
    return text


def prompt_key(messages: Sequence[Message] | str) -> str:
    """A prompt's chat messages (role and content) as one string, to find its task by; a plain
    string is the one user message it stands for (as ``Task.messages`` makes it)."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False)


def index_by_prompt(tasks: Iterable[Task], source: str = "tasks") -> dict[str, Task]:
    """Tasks by ``prompt_key`` of their messages.

    Raises:
        ValueError: two tasks of ``source`` with the same prompt and different rubrics (a prompt
            alone cannot tell them apart).
    """
    index: dict[str, Task] = {}
    for task in tasks:
        key = prompt_key(task.messages)
        if key in index and index[key] != task:
            raise ValueError(
                f"{source}: tasks {index[key].task_id} and {task.task_id} have the same prompt and "
                "different rubrics; rows that carry only the prompt cannot be matched to one of them"
            )
        index[key] = task
    return index


def trl_rows(tasks: Iterable[Task]) -> list[dict]:
    """One row of TRL's conversational format per task: ``prompt`` (messages) and ``task`` (JSON)."""
    return [
        {"prompt": [{"role": m["role"], "content": m["content"]} for m in task.messages], "task": task_to_json(task)}
        for task in tasks
    ]


def to_hf_dataset(tasks: TaskSet, split: str = "train"):
    """The tasks of ``split`` ("all" for every split) as a ``datasets.Dataset`` TRL trains on.

    Columns: ``prompt`` (a list of ``{role, content}`` messages, TRL's conversational format) and
    ``task`` (the task as one JSON line of our own format, which ``Grad2RewardFunction`` reads).

    Raises:
        ValueError: no task in ``split``, or a task that cannot be exported exactly.
        ImportError: the ``datasets`` package is missing (``pip install -e ".[data]"``).
    """
    try:
        import datasets
    except ImportError:
        raise ImportError('to_hf_dataset needs the datasets package: pip install -e ".[data]"') from None
    chosen = tasks.split(split)
    return datasets.Dataset.from_list(trl_rows(chosen), split=None if split == "all" else split)


EXPORT_BATCH_ROWS = 1024
"""Rows converted and written at a time by ``write_split_parquet``."""


def write_split_parquet(
    tasks: TaskSet | TaskStream,
    out_dir: str | os.PathLike,
    splits: Sequence[str],
    rows: Callable[[list[Task], int], list[dict]],
) -> dict[str, Path]:
    """Write ``<out_dir>/<split>.parquet`` of ``rows(tasks, index of the first)`` for each split that
    has tasks ("all": every task in one file), ``EXPORT_BATCH_ROWS`` tasks at a time (one lazy pass
    over a streamed set per split); returns the files by split.

    Raises:
        ValueError: no task in any of ``splits``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    written: dict[str, Path] = {}
    for split in splits:
        chosen = (t for t in tasks if split == "all" or t.split == split)
        path = out / f"{split}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        writer, count = None, 0
        try:
            while batch := list(itertools.islice(chosen, EXPORT_BATCH_ROWS)):
                table = pa.Table.from_pylist(rows(batch, count), schema=None if writer is None else writer.schema)
                if writer is None:
                    out.mkdir(parents=True, exist_ok=True)
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                count += len(batch)
        except BaseException:
            if writer is not None:
                writer.close()
                tmp.unlink(missing_ok=True)  # a bad task leaves no file behind
            raise
        if writer is None:
            continue
        writer.close()
        os.replace(tmp, path)  # a killed export leaves no half-written file under the final name
        written[split] = path
    if not written:
        present = sorted({t.split for t in tasks})
        raise ValueError(f"{tasks.name} has no task in splits {list(splits)} (splits present: {present})")
    return written


def write_trl_parquet(
    tasks: TaskSet, out_dir: str | os.PathLike, splits: Sequence[str] = ("train", "test")
) -> dict[str, Path]:
    """Write ``<out_dir>/<split>.parquet`` in TRL's conversational format (``trl_rows``); load them
    with ``datasets.load_dataset("parquet", data_files=...)``. Returns the files by split.

    Raises:
        ValueError: no task in any of ``splits``, or a task that cannot be exported exactly.
    """
    return write_split_parquet(tasks, out_dir, splits, lambda chosen, start: trl_rows(chosen))
