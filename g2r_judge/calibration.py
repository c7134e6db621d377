"""Calibrating a judge: an affine map of its verdict margin, fitted on tasks it never trained or was tested on.

The reward counts a criterion as met when p_true > 0.5 (README, "The reward"), so where a judge puts
its 0.5 moves every reward. A judge's calibration is p_true = sigmoid(a m + b) of its verdict margin
m = logit(True) - logit(False): a logistic regression of the verdicts on m, fitted here by Newton's
method on composed cases of a split no judge trains or is tested on (the ``val`` split of
``judge-extra``). The cases hold the task's own criteria only (no mismatched criteria of other
tasks, no generic ones): those are what a judge decides in a reward. The result goes under
``"calibration"`` in the judge folder's ``g2r-judge.json``; ``Judge.load`` applies it in
``Judge.p_true``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from g2r_env.judge import Calibration, Judge
from g2r_env.models import JUDGE_RECORD, resolve_source

from .cases import JudgedCase
from .predict import margins_to_p_true, predict_margins

L2 = 1e-4
"""A small ridge on (a, b), so that separable cases give a finite fit."""


def fit_calibration(margins: Sequence[float], labels: Sequence[bool], iterations: int = 100) -> tuple[float, float]:
    """(a, b) minimising the mean logistic loss of sigmoid(a m + b) against ``labels`` (plus a small
    ridge ``L2``), by Newton's method from (1, 0).

    Raises:
        ValueError: fewer than two cases of either verdict, non-finite margins, or a fit whose
            scale a is not > 0 (the judge's margins run against the verdicts: it cannot be calibrated).
    """
    m = np.asarray(margins, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if m.shape != y.shape or not np.isfinite(m).all():
        raise ValueError("calibration: margins must be finite and one per label")
    if y.sum() < 2 or (1 - y).sum() < 2:
        raise ValueError(f"calibration: needs at least two met and two unmet cases, got {int(y.sum())} met of {len(y)}")
    features = np.stack([m, np.ones_like(m)], axis=1)

    def loss(theta: np.ndarray) -> float:  # mean -log-likelihood, computed stably, plus the ridge
        z = features @ theta
        return float(np.mean(np.logaddexp(0, z) - y * z) + L2 / 2 * theta @ theta)

    theta = np.array([1.0, 0.0])
    for _ in range(iterations):
        p = 0.5 * (1 + np.tanh(0.5 * (features @ theta)))  # sigmoid without overflow
        grad = features.T @ (p - y) / len(y) + L2 * theta
        hessian = (features * (p * (1 - p))[:, None]).T @ features / len(y) + L2 * np.eye(2)
        step = np.linalg.solve(hessian, grad)
        size, current = 1.0, loss(theta)
        while loss(theta - size * step) > current and size > 1e-6:  # damped: the loss never rises
            size /= 2
        theta = theta - size * step
        if np.abs(size * step).max() < 1e-10:
            break
    scale, bias = float(theta[0]), float(theta[1])
    if not scale > 0:
        raise ValueError(
            f"calibration: the fitted scale is {scale:.4g} (<= 0): this judge's margins do not rise with the "
            f"verdicts on these cases, so no calibration can be fitted; retrain or check the judge"
        )
    return scale, bias


def validation_cases(
    tasks: Sequence[str], split: str = "val", responses_per_task: int = 16, seed: int = 2000
) -> list[JudgedCase]:
    """Composed cases of the ``split`` tasks of the named task sets: the task's own criteria only."""
    from .compose import Composer
    from .corpus import corpus_of

    cases: list[JudgedCase] = []
    for name in tasks:
        corpus = corpus_of(name)
        entries = corpus.split(split)
        if not entries:
            raise ValueError(
                f"{name} has no task in split {split!r}; calibrate on a split no judge trained on (judge-extra: val)"
            )
        composer = Composer(corpus, seed=seed, mismatched_per_response=0)
        cases.extend(composer.examples(entries, responses_per_task))
    return cases


def fit_judge(
    judge: Judge, cases: Sequence[JudgedCase], fitted_on: str, progress: bool = False
) -> tuple[Calibration, np.ndarray]:
    """The calibration of ``judge``'s raw margins on ``cases``, and those margins."""
    margins = predict_margins(judge, cases, progress=progress)
    scale, bias = fit_calibration(margins, [c.label for c in cases])
    return Calibration(scale, bias, fitted_on, len(cases)), margins


def write_calibration(folder: str | os.PathLike, calibration: Calibration) -> Path:
    """Store ``calibration`` under "calibration" in ``folder/g2r-judge.json`` (made when missing),
    atomically; returns the record's path."""
    record_path = Path(folder) / JUDGE_RECORD
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    record["calibration"] = calibration.as_record()
    tmp = record_path.with_name(record_path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, record_path)
    return record_path


@dataclass
class JudgeCalibrateConfig:
    """Fit a judge's calibration and store it in its folder. Field docstrings follow each field."""

    judge: str = "bundled-judge"
    """the judge folder (a trained judge, or "bundled-judge" / "bundled-eval-judge"), written in place"""
    tasks: list[str] = dataclasses.field(default_factory=lambda: ["judge-extra"])
    """task sets whose evidence corpus is composed into the calibration cases"""
    split: str = "val"
    """the split composed from: one the judge neither trained nor was tested on"""
    responses_per_task: int = 8
    """composed responses per task (12 val tasks x 8: about 750 judged criteria)"""
    seed: int = 2000
    """the composer's seed"""
    device: str = "auto"
    """where the judge runs"""
    threads: int = 0
    """torch CPU threads (0: torch's default)"""

    def validate(self) -> None:
        """Raise ValueError naming the field when a value is out of range."""
        if self.responses_per_task < 1:
            raise ValueError(f"JudgeCalibrateConfig: responses_per_task must be >= 1, got {self.responses_per_task}")
        if not self.tasks:
            raise ValueError("JudgeCalibrateConfig: tasks must name at least one task set")
        if not Path(resolve_source(self.judge)).is_dir():
            raise ValueError(
                f"JudgeCalibrateConfig: judge {self.judge!r} is not a local judge folder (its calibration is "
                f"written there); give a trained judge's folder"
            )


def fitted_on(tasks: Sequence[str], split: str, responses_per_task: int, seed: int) -> str:
    """The description stored with a calibration."""
    return f"{'+'.join(tasks)}[{split}], {responses_per_task} composed responses per task, seed {seed}"


def run_calibrate(config: JudgeCalibrateConfig, verbose: bool = True) -> Calibration:
    """Fit ``config.judge``'s calibration on the composed split and write it into its folder."""
    import torch

    from .evaluation import calibration_error

    config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    cases = validation_cases(config.tasks, config.split, config.responses_per_task, config.seed)
    judge = Judge.load(config.judge, device=config.device, calibrated=False)
    description = fitted_on(config.tasks, config.split, config.responses_per_task, config.seed)
    calibration, margins = fit_judge(judge, cases, description, progress=verbose)
    path = write_calibration(resolve_source(config.judge), calibration)
    if verbose:
        labels = np.array([c.label for c in cases])
        raw = margins_to_p_true(judge, margins)
        judge.calibration = calibration
        calibrated = margins_to_p_true(judge, margins)
        print(
            f"calibration of {config.judge} on {len(cases)} cases ({description}): scale {calibration.scale:.4f} "
            f"bias {calibration.bias:.4f}; on these cases accuracy {((raw > 0.5) == labels).mean():.3f} -> "
            f"{((calibrated > 0.5) == labels).mean():.3f}, ECE {calibration_error(raw, labels):.3f} -> "
            f"{calibration_error(calibrated, labels):.3f}; written to {path}",
            flush=True,
        )
    return calibration


def calibrate_after_training(
    judge: Judge, folder: Path, corpora: Sequence[str], split: str, responses_per_task: int, seed: int
) -> Optional[Calibration]:
    """The calibration step of judge training: fitted on the ``split`` tasks of the training corpora
    and written into the exported judge ``folder``; None (with a note) when no corpus has such tasks."""
    from .corpus import corpus_of

    names = [name for name in corpora if corpus_of(name).split(split)]
    if not names:
        print(f"[g2r] no {split!r} tasks in {list(corpora)}: the judge is left uncalibrated", flush=True)
        return None
    cases = validation_cases(names, split, responses_per_task, seed)
    calibration, _ = fit_judge(judge, cases, fitted_on(names, split, responses_per_task, seed))
    write_calibration(folder, calibration)
    print(
        f"[g2r] calibration on {len(cases)} {split} cases: scale {calibration.scale:.4f} bias {calibration.bias:.4f}",
        flush=True,
    )
    return calibration
