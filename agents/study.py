"""Comparing training arms over seeds: eval curves with bands, steps to reach a target score, and
the steps ratio with a bootstrap confidence interval (benchmarks/sample_efficiency.py runs the study).
A study preset (``agents/presets/study/<name>.json``) names the arms, the seeds, the baseline arm and
the training fields every arm shares.

A curve is a list of (step, score) pairs from the eval records of one run; every run of a study has
the same eval steps. An arm's curve is the mean over its seeds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np

Curve = Sequence[tuple[int, float]]

STUDY_PRESETS_DIR = Path(__file__).resolve().parent / "presets" / "study"
"""The study presets shipped with the package: cpu (the default), quick (a smoke test), gpu."""


def load_study_preset(name: str) -> dict:
    """The study preset ``name`` (a file in ``STUDY_PRESETS_DIR``) or the JSON file at path ``name``;
    ValueError when it is missing or lacks one of "train", "arms", "seeds", "baseline"."""
    path = Path(name) if name.endswith(".json") else STUDY_PRESETS_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in STUDY_PRESETS_DIR.glob("*.json"))
        raise ValueError(f"no study preset {name!r}: expected {path} (known: {known}, or a path to a .json file)")
    preset = json.loads(path.read_text(encoding="utf-8"))
    for key in ("train", "arms", "seeds", "baseline"):
        if key not in preset:
            raise ValueError(f"{path}: a study preset needs {key!r}")
    score = preset.get("score", "greedy")
    if score not in ("greedy", "sampled"):
        raise ValueError(f'{path}: "score" must be "greedy" or "sampled", got {score!r}')
    if score == "sampled" and not preset["train"].get("eval_samples"):
        raise ValueError(f'{path}: "score": "sampled" needs "eval_samples" > 0 in "train"')
    return preset


def steps_to_reach(steps: Sequence[int], scores: Sequence[float], target: float) -> float:
    """The first step at which a curve reaches ``target``, linearly interpolated between eval steps
    (the first step itself if it starts there); inf if it never does."""
    for n, (step, score) in enumerate(zip(steps, scores)):
        if score >= target:
            if n == 0:
                return float(step)
            previous_step, previous = steps[n - 1], scores[n - 1]
            return previous_step + (step - previous_step) * (target - previous) / (score - previous)
    return math.inf


def mean_curve(runs: Sequence[Sequence[float]]) -> np.ndarray:
    """The mean over runs (rows) of scores at the same eval steps."""
    return np.asarray(runs, dtype=np.float64).mean(0)


def band(runs: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean minus and plus one standard error over runs, per eval step (0 width for one run)."""
    values = np.asarray(runs, dtype=np.float64)
    error = values.std(0, ddof=1) / math.sqrt(len(values)) if len(values) > 1 else np.zeros(values.shape[1])
    return values.mean(0) - error, values.mean(0) + error


def speedup(
    steps: Sequence[int], baseline_runs: Sequence[Sequence[float]], arm_runs: Sequence[Sequence[float]]
) -> tuple[float, float, float]:
    """(target, baseline steps, arm steps): the target is the baseline arm's final mean score; each
    arm's steps are when its mean curve first reaches it."""
    target = float(mean_curve(baseline_runs)[-1])
    return (
        target,
        steps_to_reach(steps, mean_curve(baseline_runs), target),
        steps_to_reach(steps, mean_curve(arm_runs), target),
    )


def bootstrap_ratio(
    steps: Sequence[int],
    baseline_runs: Sequence[Sequence[float]],
    arm_runs: Sequence[Sequence[float]],
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """The steps ratio (baseline steps / arm steps: above 1 means the arm is faster) with a
    percentile bootstrap interval over seeds (each arm's runs resampled with replacement).

    A resample in which the arm never reaches the target counts as ratio 0. Returns the point
    estimate, the interval, and the share of resamples in which the arm reached the target.
    """
    target, base_steps, arm_steps = speedup(steps, baseline_runs, arm_runs)
    point = _ratio(base_steps, arm_steps)
    rng = np.random.default_rng(seed)
    base, arm = np.asarray(baseline_runs, dtype=np.float64), np.asarray(arm_runs, dtype=np.float64)
    ratios, reached = [], 0
    for _ in range(resamples):
        b = base[rng.integers(len(base), size=len(base))]
        a = arm[rng.integers(len(arm), size=len(arm))]
        _, b_steps, a_steps = speedup(steps, b, a)
        reached += math.isfinite(a_steps)
        ratios.append(_ratio(b_steps, a_steps))
    low, high = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    return {
        "target": target,
        "baseline_steps": base_steps,
        "arm_steps": arm_steps,
        "ratio": point,
        "ci_low": float(low),
        "ci_high": float(high),
        "reached_share": reached / resamples,
        "level": level,
        "resamples": resamples,
    }


def bootstrap_difference(
    baseline_finals: Sequence[float],
    arm_finals: Sequence[float],
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """The arm's mean final score minus the baseline's, with a percentile bootstrap interval over
    seeds (each arm's final scores resampled with replacement). With few seeds the interval is
    coarse (3 seeds give 10 distinct resamples per arm) and reads as a spread, not a test."""
    base, arm = np.asarray(baseline_finals, dtype=np.float64), np.asarray(arm_finals, dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = [
        arm[rng.integers(len(arm), size=len(arm))].mean() - base[rng.integers(len(base), size=len(base))].mean()
        for _ in range(resamples)
    ]
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return {"difference": float(arm.mean() - base.mean()), "ci_low": float(low), "ci_high": float(high), "level": level}


def bootstrap_mean(values: Sequence[float], resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """The mean of per-seed values (say each seed's eval change) with a percentile bootstrap interval
    over seeds."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = [values[rng.integers(len(values), size=len(values))].mean() for _ in range(resamples)]
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(values.mean()), "ci_low": float(low), "ci_high": float(high), "level": level}


def area_under(steps: Sequence[int], scores: Sequence[float]) -> float:
    """The area under one run's eval curve divided by its step range (trapezoids): the mean score
    over training, which rewards reaching a score early as well as ending there."""
    steps, scores = np.asarray(steps, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if len(steps) < 2:
        return float(scores.mean())
    return float(np.sum((scores[1:] + scores[:-1]) / 2 * np.diff(steps)) / (steps[-1] - steps[0]))


def _ratio(baseline_steps: float, arm_steps: float) -> float:
    if not math.isfinite(arm_steps):
        return 0.0
    if arm_steps <= 0:  # the arm starts at or above the target
        return math.inf if baseline_steps > 0 else 1.0
    return baseline_steps / arm_steps


ECHO_RISE = 0.02
"""The rise in rubric echo (share of response words in 4-grams copied from the criteria) that counts
as a hacking signal when its interval is above zero: two words in a hundred."""


def summarize(
    steps: Sequence[int],
    curves: Mapping[str, Sequence[Sequence[float]]],
    baseline: str,
    reward_curves: Optional[Mapping[str, Sequence[Sequence[float]]]] = None,
    control: Optional[str] = None,
    echo_curves: Optional[Mapping[str, Sequence[Sequence[float]]]] = None,
    references: Optional[Mapping[str, str]] = None,
    **bootstrap,
) -> dict:
    """Per arm, over seeds (every interval a 95% percentile bootstrap over seeds):

    - ``mean``, ``band_low``, ``band_high``: the mean eval curve and one standard error around it;
    - ``final_mean``, ``final_std``, ``eval_change`` (final minus first eval) and ``auc`` (the mean
      score over training, ``area_under``, with its interval);
    - for the baseline: ``eval_change_ci`` (did it learn at all?), ``steps_to_final``, ``improved``;
    - for the other arms: ``final_vs_baseline`` and ``auc_vs_baseline`` (differences with intervals)
      and, only when the baseline's final score is above its first, ``vs_baseline``, the steps ratio;
    - for arms other than the baseline and ``control`` (the uniform-credit arm): ``final_vs_control``,
      the difference to the control's final score: does *where* credit goes matter;
    - for an arm that ``references`` maps to another (a credit rule to the paper's ``grad_x_embed``
      under the same advantage): ``final_vs_reference``, the difference to that arm's final score,
      with the reference's name;
    - given the training judge's curves of the same greedy responses (``reward_curves``), their
      change beside the eval judge's; given the rubric-echo curves, ``echo_change`` with interval.
      ``hacking_signal``: the training judge rose while the eval judge fell, or the echo rose by at
      least ``ECHO_RISE`` with an interval above zero (a policy copying its rubric, which may fool
      both judges).
    """
    out = {}
    base_mean = mean_curve(curves[baseline]) if baseline in curves else None
    improved = bool(base_mean is not None and base_mean[-1] > base_mean[0])
    finals = {arm: np.asarray(runs, dtype=np.float64)[:, -1] for arm, runs in curves.items()}
    areas = {arm: [area_under(steps, run) for run in runs] for arm, runs in curves.items()}
    for arm, runs in curves.items():
        values = np.asarray(runs, dtype=np.float64)
        low, high = band(runs)
        row = {
            "seeds": len(values),
            "mean": mean_curve(runs).tolist(),
            "band_low": low.tolist(),
            "band_high": high.tolist(),
            "final_mean": float(values[:, -1].mean()),
            "final_std": float(values[:, -1].std(ddof=1)) if len(values) > 1 else 0.0,
            "eval_change": float(values[:, -1].mean() - values[:, 0].mean()),
            "auc": bootstrap_mean(areas[arm], **bootstrap),
        }
        if arm == baseline:
            change = bootstrap_mean(values[:, -1] - values[:, 0], **bootstrap)
            row["eval_change_ci"] = {"ci_low": change["ci_low"], "ci_high": change["ci_high"]}
            row["steps_to_final"] = steps_to_reach(steps, base_mean, float(base_mean[-1]))
            row["improved"] = improved
        elif base_mean is not None:
            row["final_vs_baseline"] = bootstrap_difference(finals[baseline], finals[arm], **bootstrap)
            row["auc_vs_baseline"] = bootstrap_difference(areas[baseline], areas[arm], **bootstrap)
            if improved:  # a ratio against a baseline that did not improve would measure nothing
                row["vs_baseline"] = bootstrap_ratio(steps, curves[baseline], runs, **bootstrap)
        if control in curves and arm not in (baseline, control):
            row["final_vs_control"] = bootstrap_difference(finals[control], finals[arm], **bootstrap)
        reference = (references or {}).get(arm)
        if reference in curves and reference != arm:
            versus = bootstrap_difference(finals[reference], finals[arm], **bootstrap)
            row["final_vs_reference"] = {"reference": reference, **versus}
        signals = []
        if reward_curves and arm in reward_curves:
            reward = np.asarray(reward_curves[arm], dtype=np.float64)
            row["reward_judge_final_mean"] = float(reward[:, -1].mean())
            row["reward_judge_change"] = float(reward[:, -1].mean() - reward[:, 0].mean())
            row["judge_gap_final"] = row["reward_judge_final_mean"] - row["final_mean"]
            signals.append(row["reward_judge_change"] > 0 and row["eval_change"] < 0)
        if echo_curves and arm in echo_curves:
            echo = np.asarray(echo_curves[arm], dtype=np.float64)
            row["echo_final_mean"] = float(echo[:, -1].mean())
            row["echo_change"] = bootstrap_mean(echo[:, -1] - echo[:, 0], **bootstrap)
            signals.append(row["echo_change"]["ci_low"] > 0 and row["echo_change"]["mean"] >= ECHO_RISE)
        if signals:
            row["hacking_signal"] = bool(any(signals))
        out[arm] = row
    return out


def default_rule(summary: Mapping[str, dict], attributions: Mapping[str, str], paper: str = "grad_x_embed") -> dict:
    """The default credit rule a study's evidence picks: the credit rule (``attributions``: arm -> its
    attribution) of the arm with the best final eval score among those whose ``final_vs_reference``
    interval (against the paper's rule under the same advantage) lies above zero; the paper's rule
    when no arm's does. Returns ``attribution``, the deciding ``arm`` (None when the paper's rule
    stays) and that arm's ``versus`` difference."""
    ahead = [
        (row["final_mean"], arm)
        for arm, row in summary.items()
        if "final_vs_reference" in row and row["final_vs_reference"]["ci_low"] > 0
    ]
    if not ahead:
        return {"attribution": paper, "arm": None, "versus": None}
    _, arm = max(ahead)
    return {"attribution": attributions[arm], "arm": arm, "versus": summary[arm]["final_vs_reference"]}


# Fields that change training but not the step-0 eval (greedy responses of the initial policy,
# judged forward only); runs equal in every other field share that eval.
TRAINING_ONLY = {
    "run_dir", "seed", "total_steps", "prompts_per_step", "group_size", "temperature", "top_p", "top_k",
    "attribution", "reward_mode", "advantage", "tau", "learning_rate",
    "warmup_steps", "weight_decay", "update_epochs", "minibatch_size", "micro_batch_size", "clip_eps",
    "kl_coef", "max_grad_norm", "gradient_checkpointing", "eval_every", "checkpoint_every",
    "tensorboard", "progress", "report", "report_prompts",
}  # fmt: skip


# The rollout's sampling settings, which the sampled eval responses (``eval_samples``) use too.
SAMPLING = {"temperature", "top_p", "top_k"}


def initial_eval_key(config) -> str:
    """Runs with the same key share their step-0 eval (``Trainer(initial_eval=...)``): the config
    without the fields that only change training (the sampling settings change the eval too when it
    samples responses)."""
    ignored = TRAINING_ONLY - SAMPLING if config.eval_samples else TRAINING_ONLY
    return json.dumps({k: v for k, v in asdict(config).items() if k not in ignored}, sort_keys=True)
