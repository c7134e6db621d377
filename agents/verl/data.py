"""Task sets as the parquet files verl's RL dataset reads (``verl.utils.dataset.rl_dataset``).

One row per task:

- ``prompt``: the chat messages (``role``, ``content``); verl applies the policy's chat template.
- ``data_source``: ``grad2reward:<task set name>`` (verl groups its validation metrics by it).
- ``ability``: the task's domain.
- ``reward_model``: ``{"style": "rubric", "ground_truth": <the task as one JSON line of our own
  format (``tasks.export.task_to_json``)>}``; the reward manager rebuilds the task and its rubric from it, exactly.
- ``extra_info``: ``{"index", "task_id", "split", "domain"}`` for verl's bookkeeping.

The rubric travels as a JSON string rather than as nested parquet structs: parquet gives every row
of a column one schema, so rows whose metadata have different keys would come back with extra
null fields, and the round trip would not be exact.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tasks import Task, TaskSet, TaskStream, export

DATA_SOURCE_PREFIX = "grad2reward:"
REWARD_STYLE = "rubric"


def task_from_json(text: str, where: str = "task") -> Task:
    """The task of a ``ground_truth`` string written by ``verl_rows``; errors name ``where``."""
    return export.task_from_json(text, where, field="reward_model.ground_truth")


def verl_rows(tasks: Iterable[Task], data_source: str, start: int = 0) -> list[dict]:
    """One verl dataset row per task (see the module docstring); ``extra_info.index`` counts from ``start``.

    Every row is read back before it is returned, so a task that would not come back the same
    (a split our format does not know, say) fails here, at export, with its id.
    """
    return [
        {
            "data_source": data_source,
            "prompt": [{"role": m["role"], "content": m["content"]} for m in task.messages],
            "ability": task.domain,
            "reward_model": {"style": REWARD_STYLE, "ground_truth": export.task_to_json(task)},
            "extra_info": {"index": index, "task_id": task.task_id, "split": task.split, "domain": task.domain},
        }
        for index, task in enumerate(tasks, start=start)
    ]


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
    data_source = DATA_SOURCE_PREFIX + (name or tasks.name)
    return export.write_split_parquet(
        tasks, out_dir, splits, lambda chosen, start: verl_rows(chosen, data_source, start)
    )


def read_verl_parquet(path: str | os.PathLike) -> TaskSet:
    """The tasks of a parquet file written by ``write_verl_parquet``, in its row order."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["reward_model"])
    tasks = [
        task_from_json(cell["ground_truth"], f"{path}:row {row}")
        for row, cell in enumerate(table.column("reward_model").to_pylist())
    ]
    return TaskSet(tasks, Path(path).stem)
