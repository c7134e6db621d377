"""The run report: judge score against step (PNG) and token-reward heatmaps before and after (HTML).

``write_report(run_dir, tokenizer, tasks)`` reads what a run left in its folder:
``metrics.jsonl`` and ``report/before.json`` / ``report/after.json`` (scored greedy responses
saved by ``Trainer.snapshot``), and writes ``report/judge_score.png`` and ``report/heatmaps.html``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from g2r_env import ScoreResult
from g2r_env.rendering import render_html
from g2r_env.runlog import read_metrics
from tasks import TaskSet


def save_results(path: str | Path, results: Sequence[ScoreResult], step: int) -> None:
    """Write scored responses as JSON (arrays as lists) with the step they were drawn at."""

    def criterion(c: dict) -> dict:
        return {**c, "met": bool(c["met"]), "alpha": None if c["alpha"] is None else c["alpha"].tolist()}

    rows = [
        {
            "task_id": r.task_id,
            "response_ids": r.response_ids.tolist(),
            "token_rewards": r.token_rewards.tolist(),
            "sequence_reward": r.sequence_reward,
            "criteria": [criterion(c) for c in r.criteria],
        }
        for r in results
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"step": step, "results": rows}))


def load_results(path: str | Path) -> tuple[int, list[ScoreResult]]:
    """(step, results) as written by ``save_results``."""
    data = json.loads(Path(path).read_text())
    results = []
    for row in data["results"]:
        criteria = [
            {**c, "alpha": None if c["alpha"] is None else np.asarray(c["alpha"], np.float32)} for c in row["criteria"]
        ]
        results.append(
            ScoreResult(
                row["task_id"],
                np.asarray(row["response_ids"], np.int64),
                np.asarray(row["token_rewards"], np.float32),
                float(row["sequence_reward"]),
                criteria,
            )
        )
    return int(data["step"]), results


def plot_metrics(records: Sequence[dict], out: str | Path, title: str = "Grad2Reward training") -> Path:
    """Plot the eval judge score (greedy responses) and the training reward (sampled) against step.

    Args:
        records: metrics.jsonl records (dicts with "step" and metric names).
        out: the PNG path.
        title: the figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    evals = [(r["step"], r["eval/judge_score"]) for r in records if "eval/judge_score" in r]
    if evals:
        ax.plot(*zip(*evals), "o-", color="C0", label="eval tasks, greedy responses")
    train = [(r["step"], r["train/reward"]) for r in records if "train/reward" in r]
    if train:
        ax.plot(*zip(*train), ".", color="C1", alpha=0.5, label="training samples, mean per step")
        smooth, value = [], train[0][1]
        for _, reward in train:
            value = 0.7 * value + 0.3 * reward
            smooth.append(value)
        ax.plot([s for s, _ in train], smooth, "-", color="C1", label="training samples, moving average")
    ax.set_xlabel("step")
    ax.set_ylabel("judge score (sequence reward R)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def write_report(run_dir: str | Path, tokenizer, tasks: TaskSet) -> Path:
    """Write run_dir/report/judge_score.png and heatmaps.html from the run's files.

    Args:
        run_dir: the run folder (metrics.jsonl, report/before.json, report/after.json).
        tokenizer: the policy's tokenizer (to show the tokens).
        tasks: a task set holding the reported tasks.

    Returns:
        the report folder.
    """
    run_dir = Path(run_dir)
    folder = run_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    if (run_dir / "metrics.jsonl").exists():
        plot_metrics(
            read_metrics(run_dir / "metrics.jsonl"),
            folder / "judge_score.png",
            title=f"Grad2Reward training: {run_dir.name}",
        )
    snapshots = {
        name: load_results(folder / f"{name}.json")
        for name in ("before", "after")
        if (folder / f"{name}.json").exists()
    }
    items = []
    if snapshots:
        first = next(iter(snapshots.values()))[1]
        for n, _result in enumerate(first):
            for name, (step, results) in snapshots.items():
                if n < len(results):
                    items.append(
                        (
                            tasks.get(results[n].task_id),
                            results[n],
                            f"{results[n].task_id}: {name} training (step {step})",
                        )
                    )
    (folder / "heatmaps.html").write_text(
        render_html(tokenizer, items, title=f"Token rewards before and after training: {run_dir.name}"),
        encoding="utf-8",
    )
    return folder
