"""Task sets as the parquet files verl's RL dataset reads (``verl.utils.dataset.rl_dataset``).

One row per task:

- ``prompt``: the chat messages (``role``, ``content``); verl applies the policy's chat template.
- ``data_source``: ``grad2reward:<task set name>`` (verl groups its validation metrics by it).
- ``ability``: the task's domain.
- ``reward_model``: ``{"style": "rubric", "ground_truth": <the task as one JSON line of our own
  format>}``; the reward manager rebuilds the task and its rubric from it, exactly.
- ``extra_info``: ``{"index", "task_id", "split", "domain"}`` for verl's bookkeeping.

The rubric travels as a JSON string rather than as nested parquet structs: parquet gives every row
of a column one schema, so rows whose metadata have different keys would come back with extra
null fields, and the round trip would not be exact.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tasks import Task, TaskSet, TaskStream, parse_task

DATA_SOURCE_PREFIX = "grad2reward:"
REWARD_STYLE = "rubric"
_TASK_FIELDS = ("id", "prompt", "criteria", "split", "domain", "tags")


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
        "criteria": [{"criterion": c.criterion, "weight": c.weight, "tags": list(c.tags)} for c in task.criteria],
        "split": task.split,
        "domain": task.domain,
        "tags": list(task.tags),
        **task.metadata,
    }
    try:
        json.dumps(row, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"task {task.task_id}: its metadata cannot be written as JSON ({err})") from None
    return row


def task_from_json(text: str, where: str = "task") -> Task:
    """The task of a ``ground_truth`` string written by ``verl_rows``; errors name ``where``."""
    try:
        row = json.loads(text)
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{where}: reward_model.ground_truth is not a Grad2Reward task as JSON ({err})") from None
    if not isinstance(row, dict):
        raise ValueError(f"{where}: reward_model.ground_truth must hold a JSON object, got {type(row).__name__}")
    return parse_task(row, where, where, format="g2r")


def _same_task(a: Task, b: Task) -> bool:
    return a == b and a.metadata == b.metadata


def verl_rows(tasks: Iterable[Task], data_source: str, start: int = 0) -> list[dict]:
    """One verl dataset row per task (see the module docstring); ``extra_info.index`` counts from ``start``.

    Every row is read back before it is returned, so a task that would not come back the same
    (a split our format does not know, say) fails here, at export, with its id.
    """
    rows = []
    for index, task in enumerate(tasks, start=start):
        ground_truth = json.dumps(task_to_row(task), ensure_ascii=False, allow_nan=False)
        try:
            back = task_from_json(ground_truth, f"task {task.task_id}")
        except ValueError as err:
            raise ValueError(f"cannot export task {task.task_id}: {err}") from None
        if not _same_task(back, task):
            raise ValueError(f"cannot export task {task.task_id}: it does not read back as the same task")
        rows.append(
            {
                "data_source": data_source,
                "prompt": [{"role": m["role"], "content": m["content"]} for m in task.messages],
                "ability": task.domain,
                "reward_model": {"style": REWARD_STYLE, "ground_truth": ground_truth},
                "extra_info": {"index": index, "task_id": task.task_id, "split": task.split, "domain": task.domain},
            }
        )
    return rows


EXPORT_BATCH_ROWS = 1024
"""Rows converted and written at a time by ``write_verl_parquet``."""


def write_verl_parquet(
    tasks: TaskSet | TaskStream,
    out_dir: str | os.PathLike,
    splits: Sequence[str] = ("train", "test"),
    name: str | None = None,
) -> dict[str, Path]:
    """Write ``<out_dir>/<split>.parquet`` for each split that has tasks; returns the files by split.

    Args:
        tasks: the task set (bundled, own JSONL, RaR or HealthBench: any loaded TaskSet), or a
            TaskStream, read once per split and written ``EXPORT_BATCH_ROWS`` rows at a time.
        out_dir: the folder to write to (created).
        splits: the splits to write; a split without tasks is skipped.
        name: the task set's name in ``data_source`` (default: ``tasks.name``).

    Raises:
        ValueError: no task in any of ``splits``, or a task that cannot be exported exactly.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    data_source = DATA_SOURCE_PREFIX + (name or tasks.name)
    written: dict[str, Path] = {}
    for split in splits:
        chosen = (t for t in tasks if split == "all" or t.split == split)  # one pass, lazily for a stream
        path = out / f"{split}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        writer, count = None, 0
        while batch := list(itertools.islice(chosen, EXPORT_BATCH_ROWS)):
            table = pa.Table.from_pylist(
                verl_rows(batch, data_source, start=count), schema=None if writer is None else writer.schema
            )
            if writer is None:
                out.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            count += len(batch)
        if writer is None:
            continue
        writer.close()
        os.replace(tmp, path)  # a killed export leaves no half-written file under the final name
        written[split] = path
    if not written:
        present = sorted({t.split for t in tasks})
        raise ValueError(f"{tasks.name} has no task in splits {list(splits)} (splits present: {present})")
    return written


def read_verl_parquet(path: str | os.PathLike) -> TaskSet:
    """The tasks of a parquet file written by ``write_verl_parquet``, in its row order."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["reward_model"])
    tasks = [
        task_from_json(cell["ground_truth"], f"{path}:row {row}")
        for row, cell in enumerate(table.column("reward_model").to_pylist())
    ]
    return TaskSet(tasks, Path(path).stem)
