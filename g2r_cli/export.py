"""``g2r export``: write a task set in another trainer's data format.

g2r export --format verl --tasks openended-mini --out data/verl        # train.parquet, test.parquet
g2r export --format verl --tasks my_rubrics.jsonl --task-format rar --out data/verl
g2r export --format trl --tasks openended-mini --out data/trl          # prompt + task columns, for TRL
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import Optional

EXPORT_FORMATS = {
    "verl": ("agents.verl.data:write_verl_parquet", "the parquet files verl's RL dataset reads"),
    "trl": ("tasks.export:write_trl_parquet", "parquet files in TRL's conversational format (prompt, task)"),
}
"""Export formats by name: the writer ``(tasks, out_dir, splits) -> {split: path}`` and what it writes."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="g2r export", description="Write a task set in another trainer's data format.")
    p.add_argument("--format", required=True, choices=sorted(EXPORT_FORMATS), help="the format to write")
    p.add_argument(
        "--tasks", default="openended-mini", help="task set name, JSONL file or folder (default: %(default)s)"
    )
    p.add_argument(
        "--task-format",
        default="auto",
        help="format of --tasks files: auto, g2r, rar or healthbench (default: %(default)s)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--splits",
        default="train,test",
        help="comma-separated splits to write, one file each, or 'all' for one file (default: %(default)s)",
    )
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``g2r export``; returns the exit status."""
    args = _parser().parse_args(argv)
    from tasks import load_taskset

    tasks = load_taskset(args.tasks, format=args.task_format)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    module, _, function = EXPORT_FORMATS[args.format][0].partition(":")
    written = getattr(importlib.import_module(module), function)(tasks, args.out, splits)
    for split, path in written.items():
        count = len(tasks) if split == "all" else len(tasks.split(split))
        print(f"wrote {path} ({count} tasks, split {split})")
    return 0
