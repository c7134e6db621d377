"""``g2r export``: write a task set in another trainer's data format.

g2r export --format verl --tasks openended-mini --out data/verl        # train.parquet, test.parquet
g2r export --format verl --tasks my_rubrics.jsonl --task-format rar --out data/verl
g2r export --format verl --tasks openended-mini --out data/verl --overwrite   # replace an earlier export
g2r export --format trl --tasks openended-mini --out data/trl          # prompt + task columns, for TRL

An export is written into a fresh temporary folder beside ``--out`` and swapped in only when every
file is written (``fresh_out_dir``), so the folder never holds files of two exports or half of one.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
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
    p.add_argument("--out", required=True, help="output folder (absent or empty, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace what --out holds (an earlier export)")
    p.add_argument(
        "--splits",
        default="train,test",
        help="comma-separated splits to write, one file each, or 'all' for one file (default: %(default)s)",
    )
    return p


@contextmanager
def fresh_out_dir(out: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``out`` for an export to fill; when the block ends
    without an error it becomes ``out`` (an earlier ``out`` is removed only then), and on an error it
    is removed and ``out`` is left as it was. Any export format writes through this.

    Raises:
        FileExistsError: ``out`` is a file, or a folder that holds files and ``overwrite`` is False.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; name a folder to write the export into")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        held = ", ".join(sorted(p.name for p in out.iterdir())[:4])
        raise FileExistsError(
            f"--out {out} already holds files ({held}); pass --overwrite to replace them, or choose a new folder"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``g2r export``; returns the exit status."""
    args = _parser().parse_args(argv)
    from tasks import load_taskset

    tasks = load_taskset(args.tasks, format=args.task_format)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    module, _, function = EXPORT_FORMATS[args.format][0].partition(":")
    out = Path(args.out)
    with fresh_out_dir(out, args.overwrite) as folder:
        written = getattr(importlib.import_module(module), function)(tasks, folder, splits)
    written = {split: out / Path(path).relative_to(folder) for split, path in written.items()}
    for split, path in written.items():
        count = len(tasks) if split == "all" else len(tasks.split(split))
        print(f"wrote {path} ({count} tasks, split {split})")
    return 0
