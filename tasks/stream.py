"""Task sets read lazily: a ``datasets.IterableDataset`` (``load_dataset(..., streaming=True)``) as
tasks, parsed as they are read, with memory bounded by a shuffle buffer.

An env draws from a ``TaskStream`` as from a ``TaskSet`` (``draw(rng)``): the stream fills a buffer
of ``buffer_size`` tasks, each draw takes a random one and puts the next task read in its place, and
when the stream ends a new pass starts (the buffer refills from the beginning). So a draw reads at
most one row, the first draw ``buffer_size`` rows, and the set is never held whole. Exporters read
it once, in order (iterate it). A stream has no length and no duplicate-id check (a repeated row
repeats its content id); a polarity warning or RaR ``rubric_list`` warning comes at the end of a pass.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Optional

import numpy as np

from .types import Task

DEFAULT_BUFFER = 1024
"""Tasks a stream holds to draw from (its shuffle buffer)."""


class TaskStream:
    """A task set read lazily from a stream of rows (module doc).

    Args:
        name: the set's name (in errors and reprs).
        parts: (split name or None, a function giving a fresh iterator of tasks) per part.
        buffer_size: tasks held to draw from; 1 draws in stream order.
        only_split: keep only the tasks of this split (a row's own ``split``, else its part's).
        keyed: the parts are a ``datasets.IterableDatasetDict``'s splits, so ``split(name)`` reads
            only part ``name``.
    """

    def __init__(
        self,
        name: str,
        parts: list[tuple[Optional[str], Callable[[], Iterator[Task]]]],
        buffer_size: int = DEFAULT_BUFFER,
        only_split: Optional[str] = None,
        keyed: bool = False,
    ) -> None:
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
            raise ValueError(f"buffer_size must be a whole number >= 1, got {buffer_size!r}")
        self.name = name
        self.parts = parts
        self.buffer_size = buffer_size
        self.only_split = only_split
        self.keyed = keyed
        self.rows_read = 0
        """Tasks read from the stream so far (every pass)."""
        self._buffer: list[Task] = []
        self._source: Optional[Iterator[Task]] = None
        self._recent: OrderedDict[str, Task] = OrderedDict()

    def __iter__(self) -> Iterator[Task]:
        """One pass over the stream, in order."""
        for _, make in self.parts:
            for task in make():
                self.rows_read += 1
                if self.only_split is None or task.split == self.only_split:
                    yield task

    @property
    def splits(self) -> list[str]:
        """The split names the source declares (an ``IterableDatasetDict``'s keys); [] when only its
        rows know (they are not read to find out)."""
        return [split for split, _ in self.parts] if self.keyed else []

    def split(self, name: str) -> TaskStream:
        """The tasks of one split (read lazily as well); all tasks for "all"."""
        if name == "all":
            return self
        parts = self.parts
        if self.keyed:
            parts = [(split, make) for split, make in self.parts if split == name]
            if not parts:
                raise ValueError(f"{self.name} has no split {name!r} (splits: {self.splits}, or 'all')")
        return TaskStream(f"{self.name}[{name}]", parts, self.buffer_size, only_split=name, keyed=self.keyed)

    def draw(self, rng: np.random.Generator) -> Task:
        """A random task of the buffer, replaced by the next task read (module doc)."""
        if not self._buffer:
            self._fill()
        k = int(rng.integers(len(self._buffer)))
        task = self._buffer[k]
        following = self._next()
        if following is None:
            self._buffer[k] = self._buffer[-1]
            self._buffer.pop()
        else:
            self._buffer[k] = following
        self._recent[task.task_id] = task
        self._recent.move_to_end(task.task_id)
        if len(self._recent) > self.buffer_size:
            self._recent.popitem(last=False)
        return task

    def get(self, task_id: str) -> Task:
        """A task held now: in the buffer or among the last ``buffer_size`` drawn."""
        if task_id in self._recent:
            return self._recent[task_id]
        for task in self._buffer:
            if task.task_id == task_id:
                return task
        raise KeyError(
            f"task {task_id!r} is not held by the stream {self.name} (it holds the next {len(self._buffer)} "
            "tasks and the last ones drawn); load the set without streaming to look tasks up by id"
        )

    def _next(self) -> Optional[Task]:
        if self._source is None:
            return None
        task = next(self._source, None)
        if task is None:
            self._source = None
        return task

    def _fill(self) -> None:
        self._source = iter(self)  # a new pass
        while len(self._buffer) < self.buffer_size and (task := self._next()) is not None:
            self._buffer.append(task)
        if not self._buffer:
            raise ValueError(f"{self.name} has no task" + (f" in split {self.only_split!r}" if self.only_split else ""))

    def __repr__(self) -> str:
        return f"TaskStream({self.name!r}, buffer {self.buffer_size})"


def iterable_parts(source: Any) -> Optional[tuple[str, list[tuple[Optional[str], Any]], bool]]:
    """(name, [(split or None, IterableDataset)], keyed) of a ``datasets`` streaming object (keyed:
    an ``IterableDatasetDict``, whose keys are the splits); None for anything else."""
    try:
        import datasets
    except ImportError:
        return None
    if isinstance(source, datasets.IterableDatasetDict):
        parts, keyed = [(str(split), ds) for split, ds in source.items()], True
    elif isinstance(source, datasets.IterableDataset):
        parts, keyed = [(None if source.split is None else str(source.split), source)], False
    else:
        return None
    names = [ds.info.dataset_name for _, ds in parts if getattr(ds.info, "dataset_name", None)]
    return (names[0] if names else "stream"), parts, keyed
