"""Run folders: the metrics log and atomically written checkpoints, shared by every trainer.

A checkpoint is written into ``.checkpoint.tmp``, the previous one is moved to ``.checkpoint.old``,
and the new one is renamed to ``checkpoint``; a run killed at any point leaves at least one complete
checkpoint among the three, which ``latest_checkpoint`` finds (a complete checkpoint holds a
``COMPLETE`` marker, written last).
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import torch

CHECKPOINT = "checkpoint"
_COMPLETE = "COMPLETE"


def read_metrics(path: str | Path, drop_torn: bool = True) -> list[dict]:
    """The records of a metrics.jsonl file.

    A last line that is not valid JSON (a run killed while writing it) is dropped with a warning
    when ``drop_torn``; a bad line anywhere else raises ValueError naming the file and line.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if drop_torn and n == len(lines):
                warnings.warn(f"{path}:{n}: dropped a torn last line (the run was killed while writing it)")
                continue
            raise ValueError(f"{path}:{n}: not a JSON record; the metrics log is damaged") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise ValueError(f"{path}:{n}: a metrics record must be an object with an integer 'step'")
        records.append(record)
    return records


class MetricsLog:
    """Appends one JSON record per line to ``path``; ``truncate`` trims it back on resume."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def read(self) -> list[dict]:
        return read_metrics(self.path) if self.path.exists() else []

    def truncate(self, step: int) -> list[dict]:
        """Keep the records up to ``step`` (steps run after a checkpoint by a killed run would be
        logged twice otherwise); returns them."""
        kept = [r for r in self.read() if r["step"] <= step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        tmp.replace(self.path)
        return kept


@contextmanager
def write_checkpoint(run_dir: str | Path) -> Iterator[Path]:
    """Yield an empty folder to fill; on success it becomes ``run_dir/checkpoint`` atomically."""
    run_dir = Path(run_dir)
    target, tmp, old = run_dir / CHECKPOINT, run_dir / f".{CHECKPOINT}.tmp", run_dir / f".{CHECKPOINT}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    (tmp / _COMPLETE).write_text("")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def is_complete(folder: Path) -> bool:
    return (folder / _COMPLETE).is_file()


def checkpoint_step(folder: Path) -> int:
    return int(json.loads((folder / "state.json").read_text())["step"])


def latest_checkpoint(run_dir: str | Path) -> Optional[Path]:
    """The complete checkpoint with the highest step among ``checkpoint``, ``.checkpoint.old`` and
    ``.checkpoint.tmp`` (a save killed between its renames leaves the newest in one of the latter)."""
    run_dir = Path(run_dir)
    found = [
        f
        for f in (run_dir / CHECKPOINT, run_dir / f".{CHECKPOINT}.old", run_dir / f".{CHECKPOINT}.tmp")
        if f.is_dir() and is_complete(f)
    ]
    return max(found, key=checkpoint_step, default=None)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """An optimizer's state as flat named tensors (safetensors holds no pickled objects)."""
    out = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{index}.{key}"] = torch.as_tensor(value).detach().clone().contiguous()
    return out


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Restore what ``optimizer_tensors`` saved into an optimizer built over the same parameters."""
    state_dict = optimizer.state_dict()
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    expected = {i for group in state_dict["param_groups"] for i in group["params"]}
    if not set(state) <= expected:
        raise ValueError("the saved optimizer state does not match this model's trainable parameters")
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)
