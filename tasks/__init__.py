"""Tasks and rubrics: types, loaders, the bundled task sets, and exports for other trainers."""

from .export import to_hf_dataset
from .loaders import TaskFormatError, iter_tasks, load_taskset, parse_task
from .stream import TaskStream
from .types import Criterion, Task, TaskSet

__all__ = [
    "Criterion",
    "Task",
    "TaskSet",
    "TaskStream",
    "TaskFormatError",
    "iter_tasks",
    "load_taskset",
    "parse_task",
    "to_hf_dataset",
]
