"""Tasks and rubrics: types, loaders and the bundled task sets."""

from .loaders import TaskFormatError, iter_tasks, load_taskset, parse_task
from .stream import TaskStream
from .types import Criterion, Task, TaskSet

__all__ = ["Criterion", "Task", "TaskSet", "TaskStream", "TaskFormatError", "iter_tasks", "load_taskset", "parse_task"]
