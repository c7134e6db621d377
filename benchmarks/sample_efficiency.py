"""The sample-efficiency study: dense judge-gradient token rewards against sparse GRPO, over seeds.

Every arm trains a fresh copy of the policy on the same tasks, seeds, sampler and budget, differing
only in credit assignment (the preset's "arms"): sparse GRPO on the sequence reward, token GRPO on
grad x embed credit (the paper's method), token GRPO on the best attribution of the judge study,
token GRPO on uniform credit (dense but uninformative: the control that tells credit assignment from
reward shaping), and token_rloo (a leave-one-out token baseline without token GRPO's late-token bias).

The training reward comes from the shipped judge ("bundled-judge"); the eval score from a second
judge trained the same way on the other half of the corpus's passages with another seed
("bundled-eval-judge"), on the test split, greedy. Both are logged for the same responses; the gap
between them is the hacking signal.

Writes, under runs/study/<preset>/: one run folder per arm and seed (a killed study resumes: finished
runs are kept), results.json (curves, bands, final scores, steps to reach sparse GRPO's final eval
score and the ratio with a bootstrap interval) and curves.png; prints the table for the README.

    python benchmarks/sample_efficiency.py                  # the default study (agents/presets/study/cpu.json)
    python benchmarks/sample_efficiency.py --preset quick   # a smoke test of a few minutes
    python benchmarks/sample_efficiency.py --preset gpu     # the bigger study, HF sampler, on a GPU
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import time
from pathlib import Path


def load_preset(name: str) -> dict:
    from agents.study import load_study_preset

    try:
        return load_study_preset(name)
    except ValueError as err:
        raise SystemExit(str(err)) from None


def run_config(preset: dict, arm: str, seed: int, out: Path):
    from agents import TrainConfig

    values = {**preset["train"], **preset["arms"][arm], "seed": seed, "run_dir": str(out / arm / f"seed{seed}")}
    return TrainConfig.from_dict({k: v for k, v in values.items() if not k.startswith("_")}, where=f"arm {arm}")


def finished(config) -> bool:
    """A run whose metrics reach the last step with an eval record (a killed study skips it)."""
    from g2r_env.runlog import read_metrics

    path = Path(config.run_dir) / "metrics.jsonl"
    if not path.exists():
        return False
    return any(r["step"] == config.total_steps and "eval/judge_score" in r for r in read_metrics(path))


def run_many(jobs: list[tuple[str, int]], preset: dict, out: str) -> list[tuple[str, int, float]]:
    """Train the (arm, seed) runs in order in this process, one sampler (vLLM engine) for all; the
    step-0 eval is measured once per initial_eval_key and reused."""
    import gc
    import shutil

    import torch

    from agents import Trainer
    from agents.study import initial_eval_key

    torch.set_num_threads(1)
    sampler, done, initial = None, [], {}
    for arm, seed in jobs:
        config = run_config(preset, arm, seed, Path(out))
        key = initial_eval_key(config)
        if finished(config):
            done.append((arm, seed, 0.0))
            continue
        shutil.rmtree(config.run_dir, ignore_errors=True)  # an unfinished run starts over, for equal budgets
        start = time.perf_counter()
        trainer = Trainer(config, sampler=sampler, initial_eval=initial.get(key))
        history = trainer.train()
        if key not in initial:
            first = next(r for r in history if r["step"] == 0)
            initial[key] = {k: v for k, v in first.items() if k.startswith("eval/")}
        for weights in ("checkpoint", "model"):  # the study reads metrics only: 2 GB a run otherwise
            shutil.rmtree(Path(config.run_dir) / weights, ignore_errors=True)
        done.append((arm, seed, time.perf_counter() - start))
        print(f"[study] {arm} seed {seed}: {done[-1][2]:.0f}s", flush=True)
        sampler = trainer.sampler if config.sampler == "vllm" else None
        del trainer
        gc.collect()
    return done


def collect(preset: dict, out: Path) -> tuple[list[int], dict, dict]:
    """Eval steps and, per arm, the eval judge's and the training judge's curves over seeds."""
    from g2r_env.runlog import read_metrics

    curves, reward_curves, steps = {}, {}, None
    for arm in preset["arms"]:
        for seed in preset["seeds"]:
            records = [r for r in read_metrics(out / arm / f"seed{seed}" / "metrics.jsonl") if "eval/judge_score" in r]
            run_steps = [r["step"] for r in records]
            if steps is None:
                steps = run_steps
            if run_steps != steps:
                raise SystemExit(f"{arm} seed {seed}: eval steps {run_steps} differ from {steps}")
            curves.setdefault(arm, []).append([r["eval/judge_score"] for r in records])
            if all("eval/reward_judge_score" in r for r in records):
                reward_curves.setdefault(arm, []).append([r["eval/reward_judge_score"] for r in records])
    return steps, curves, reward_curves


def plot(steps, summary: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for n, (arm, row) in enumerate(summary.items()):
        ax.plot(steps, row["mean"], "o-", color=f"C{n}", label=f"{arm} ({row['seeds']} seeds)")
        ax.fill_between(steps, row["band_low"], row["band_high"], color=f"C{n}", alpha=0.2)
    ax.set_xlabel("training step")
    ax.set_ylabel("eval judge score, test split (greedy)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(steps, summary: dict, baseline: str) -> str:
    total = steps[-1]  # the last eval step
    lines = [
        f"| arm | final eval score | vs {baseline} (95% CI) | reward-judge score change | eval-judge score change "
        f"| steps to reach {baseline}'s final | ratio vs {baseline} (95% CI) |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm, row in summary.items():
        vs = row.get("vs_baseline")
        if arm == baseline:
            reach = f"{row['steps_to_final']:.1f}"
            ratio = "1 (baseline)" if row["improved"] else f"none: {baseline} did not improve"
        elif vs is None:
            reach, ratio = "-", "-"
        else:
            reach = f"{vs['arm_steps']:.1f}" if math.isfinite(vs["arm_steps"]) else f"not in {total}"
            ratio = f"{vs['ratio']:.2f} ({vs['ci_low']:.2f}-{vs['ci_high']:.2f}; reached in {vs['reached_share']:.0%})"
        change = f"{row['reward_judge_change']:+.3f}" if "reward_judge_change" in row else "-"
        diff = row.get("final_vs_baseline")
        versus = f"{diff['difference']:+.3f} ({diff['ci_low']:+.3f} to {diff['ci_high']:+.3f})" if diff else "-"
        lines.append(
            f"| {arm} | {row['final_mean']:.3f} ± {row['final_std']:.3f} | {versus} | {change} | "
            f"{row['eval_change']:+.3f} | {reach} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--preset", default="cpu", help="a study preset (agents/presets/study/<name>.json) or a path (default: cpu)"
    )
    parser.add_argument("--arms", default="", help="comma-separated subset of the preset's arms")
    parser.add_argument("--seeds", default="", help="comma-separated seeds (default: the preset's)")
    parser.add_argument("--jobs", type=int, default=0, help="runs in parallel processes (default: the preset's)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a TrainConfig field of every arm, e.g. --set total_steps=8",
    )
    parser.add_argument("--out", default="", help="output folder (default: runs/study/<preset>)")
    args = parser.parse_args()

    preset = load_preset(args.preset)
    if args.arms:
        preset["arms"] = {a: preset["arms"][a] for a in args.arms.split(",")}
    if args.seeds:
        preset["seeds"] = [int(s) for s in args.seeds.split(",")]
    from agents.config import parse_value

    for item in args.overrides:
        key, _, value = item.partition("=")
        preset["train"][key.strip()] = parse_value(value)
    out = Path(args.out or f"runs/study/{Path(args.preset).stem}")
    out.mkdir(parents=True, exist_ok=True)
    for arm in preset["arms"]:  # every config is checked before anything trains
        run_config(preset, arm, preset["seeds"][0], out)
    runs = [(arm, seed) for seed in preset["seeds"] for arm in preset["arms"]]
    jobs = max(1, min(args.jobs or preset.get("jobs", 1), len(runs)))
    start = time.perf_counter()
    if jobs == 1:
        done = run_many(runs, preset, str(out))
    else:
        shards = [runs[n::jobs] for n in range(jobs)]
        with mp.get_context("spawn").Pool(jobs) as pool:
            done = [d for part in pool.starmap(run_many, [(shard, preset, str(out)) for shard in shards]) for d in part]
    elapsed = time.perf_counter() - start
    trained = sum(seconds > 0 for _, _, seconds in done)

    from agents.study import summarize

    steps, curves, reward_curves = collect(preset, out)
    summary = summarize(steps, curves, preset["baseline"], reward_curves)
    title = f"{Path(args.preset).stem}: {len(preset['seeds'])} seeds, {preset['train'].get('total_steps')} steps"
    plot(steps, summary, out / "curves.png", title)
    result = {"preset": preset, "steps": steps, "summary": summary, "wall_seconds": elapsed, "runs_trained": trained}
    (out / "results.json").write_text(json.dumps(result, indent=2))
    print(
        f"\nstudy {args.preset}: {len(runs)} runs ({trained} trained in {elapsed / 60:.1f} min, "
        f"{len(runs) - trained} finished before); eval judge "
        f"{preset['train'].get('eval_judge')}, training judge {preset['train'].get('judge') or 'default'}"
    )
    print(table(steps, summary, preset["baseline"]))
    print(f"\nwrote {out / 'results.json'} and {out / 'curves.png'}")


if __name__ == "__main__":
    main()
