"""Run folders: the metrics log and atomically written checkpoints, shared by every trainer.

A run folder holds one run: a fresh run claims a folder that is absent or empty
(``claim_run_dir``; ``overwrite`` moves an earlier run aside, never deleting it), and a resume
compares the saved configuration with the given one (``check_resume``): fields that define the
run are errors when changed, the others are recorded (``record_resume``).

A checkpoint is written into ``.checkpoint.tmp``, the previous one is moved to ``.checkpoint.old``,
and the new one is renamed to ``checkpoint``; a run killed at any point leaves at least one complete
checkpoint among the three, which ``latest_checkpoint`` finds (a complete checkpoint holds a
``COMPLETE`` marker, written last).
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import torch

CHECKPOINT = "checkpoint"
_COMPLETE = "COMPLETE"
RESUMES = "resumes.jsonl"
"""The run folder's record of every resume: the step it resumed at and the fields it changed."""


def claim_run_dir(run_dir: str | Path, overwrite: bool = False, resume_hint: str = "") -> Optional[Path]:
    """Make ``run_dir`` ready for a fresh run, so that two runs never share a metrics log.

    An absent or empty folder is used (created). A folder that holds anything is an error naming
    it, unless ``overwrite``: the folder is then moved aside to ``<run_dir>.old-<timestamp>``
    (never deleted) and a fresh one made. Returns where the old folder went, or None.

    Args:
        run_dir: the run's folder.
        overwrite: move an earlier run aside instead of refusing.
        resume_hint: how to continue the run already there (named in the error).

    Raises:
        FileExistsError: ``run_dir`` holds files and ``overwrite`` is False, or it is a file.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"the run folder {run_dir} is a file; choose a folder")
    moved = None
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            held = ", ".join(sorted(p.name for p in run_dir.iterdir())[:4])
            hint = f"continue it with {resume_hint}, " if resume_hint else ""
            raise FileExistsError(
                f"the run folder {run_dir} already holds a run ({held}); {hint}choose a new folder, "
                f"or pass --overwrite (overwrite=True) to move the old run aside"
            )
        stamp = time.strftime("%Y%m%d-%H%M%S")
        moved = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
        n = 2
        while moved.exists():
            moved = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{n}")
            n += 1
        run_dir.rename(moved)
    run_dir.mkdir(parents=True, exist_ok=True)
    return moved


def check_resume(saved: Mapping, given: Mapping, may_change: Collection[str], where: str) -> dict[str, list]:
    """The configuration fields a resume changes, as ``{field: [saved, given]}``.

    Args:
        saved: the configuration the run was saved with.
        given: the configuration it resumes with.
        may_change: fields a resume may change (steps, cadence, threads, progress...); any other
            field defines the run (model, LoRA shape, seed, data) and must be equal.
        where: the run folder or checkpoint, for the error.

    Raises:
        ValueError: a field outside ``may_change`` differs; names the field and both values.
    """
    changed = {}
    for key in sorted(set(saved) | set(given)):
        before, after = saved.get(key), given.get(key)
        if before == after:
            continue
        if key not in may_change:
            raise ValueError(
                f"{where}: cannot resume with {key}={after!r}: the run was made with {key}={before!r}, and "
                f"{key} cannot change on resume; resume with {key}={before!r}, or start a new run folder"
            )
        changed[key] = [before, after]
    return changed


def record_resume(run_dir: str | Path, step: int, changed: Mapping[str, list]) -> None:
    """Append a resume (its step and the fields it changed) to ``run_dir/resumes.jsonl``."""
    with open(Path(run_dir) / RESUMES, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"step": step, "changed": dict(changed)}) + "\n")


def read_resumes(run_dir: str | Path) -> list[dict]:
    """The resumes recorded in ``run_dir`` (empty for a run never resumed)."""
    path = Path(run_dir) / RESUMES
    return read_metrics(path) if path.exists() else []


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
