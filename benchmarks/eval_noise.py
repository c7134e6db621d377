"""How noisy is a study's eval score of one fixed policy: one greedy response per eval task, or k
sampled responses per task (``TrainConfig.eval_samples``)?

The study's score is a mean of 0/1 verdicts over a few eval responses, so a small change of the
policy flips whole criteria and the score jumps: in the cpu_g8 study the greedy score's spread over
seeds was already 0.025-0.039 after 4 steps at 3e-5, when the policies had barely moved. This script
takes the initial policy of a study preset's first run (its eval tasks, judges, sampling settings
and token limit, through ``Trainer.evaluate``), draws the sampled eval ``--draws`` times with
different seeds and prints, for k = 1, 2, 4, ... samples per task, the spread (standard deviation
over draws) of the sampled score: what one eval of a fixed policy is off by. Beside it the greedy
score, the seed spread of the preset's finished runs at their first evals after step 0 (where the
preset has them), and the seconds an eval takes each way, measured in this run.

    python benchmarks/eval_noise.py --preset cpu_g8 --samples 4 --draws 6
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def seed_spread(folder: Path, key: str = "eval/judge_score") -> dict[int, float]:
    """Per eval step, the standard deviation over the finished runs of every arm's seeds under ``folder``
    (the study's results), of ``key``; steps with fewer than 3 runs are left out."""
    by_step: dict[int, list[float]] = {}
    for metrics in sorted(folder.glob("*/seed*/metrics.jsonl")):
        for line in metrics.read_text().splitlines():
            record = json.loads(line)
            if key in record and record["step"] > 0:
                by_step.setdefault(record["step"], []).append(record[key])
    return {step: statistics.stdev(v) for step, v in sorted(by_step.items()) if len(v) >= 3}


def main() -> None:
    import torch

    from agents import TrainConfig, Trainer
    from agents.study import load_study_preset
    from agents.trainer import soft_score
    from g2r_env.runlog import read_metrics

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cpu_g8", help="a study preset: its first arm's first run is measured")
    p.add_argument("--samples", type=int, default=4, help="sampled responses per eval task (the largest k)")
    p.add_argument("--draws", type=int, default=6, help="sampled evals of the same policy, each with its own seed")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if args.samples < 1 or args.draws < 2:
        raise SystemExit("--samples must be >= 1 and --draws >= 2 (a spread needs two draws)")
    torch.set_num_threads(args.threads)

    preset = load_study_preset(args.preset)
    arm = next(iter(preset["arms"]))
    values = {**preset["train"], **preset["arms"][arm], "seed": preset["seeds"][0]}
    values = {k: v for k, v in values.items() if not k.startswith("_")}

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig.from_dict({**values, "run_dir": tmp, "eval_samples": args.samples}, where=args.preset)
        config = dataclasses.replace(config, progress=False, report=False, tensorboard=False)
        trainer = Trainer(config)
        sampled_envs, trainer.sampled_eval_envs = trainer.sampled_eval_envs, None
        start = time.perf_counter()
        greedy = trainer.evaluate()
        greedy_seconds = time.perf_counter() - start
        trainer.sampled_eval_envs = sampled_envs
        draws, seconds = [], []
        for draw in range(args.draws):
            trainer.global_step = 1000 + draw  # the sampled eval's seed
            start = time.perf_counter()
            trainer.evaluate()
            seconds.append(time.perf_counter() - start)
        for record in read_metrics(Path(tmp) / "eval_responses.jsonl")[1:]:
            by_task: dict[str, list[tuple[float, float]]] = {}
            for response in record["sampled"]:
                criteria = trainer.eval_envs.tasks.get(response["task_id"]).criteria
                soft = soft_score([{"weight": c.weight, "p_true": p} for c, p in zip(criteria, response["p_true"])])
                by_task.setdefault(response["task_id"], []).append((response["score"], soft))
            draws.append(by_task)
    tasks = len(draws[0])

    def score(by_task: dict, k: int, soft: bool) -> float:
        """The mean over tasks of the first k responses' scores (p_true scores with ``soft``)."""
        return statistics.fmean(pair[soft] for responses in by_task.values() for pair in responses[:k])

    print(
        f"\neval noise of {args.preset}'s initial policy ({arm}, seed {preset['seeds'][0]}): {tasks} eval tasks, "
        f"{args.draws} sampled evals (temperature {config.temperature}, top_p {config.top_p}, top_k {config.top_k}, "
        f"{config.max_new_tokens} tokens), eval judge {config.eval_judge}"
    )
    print(
        f"greedy, one response per task: score {greedy['eval/judge_score']:.3f} (p_true {greedy['eval/judge_soft_score']:.3f}); "
        f"one eval {greedy_seconds:.0f} s"
    )
    print(
        "\n| responses per task | responses per eval | mean score | spread over draws (sd) | p_true score | its spread |"
    )
    print("|---|---|---|---|---|---|")
    ks = sorted({k for k in (1, 2, 4, 8, args.samples) if k <= args.samples})
    rows = {}
    for k in ks:
        verdicts = [score(d, k, False) for d in draws]
        softs = [score(d, k, True) for d in draws]
        rows[k] = statistics.stdev(verdicts)
        print(
            f"| {k} | {tasks * k} | {statistics.fmean(verdicts):.3f} | {rows[k]:.3f} | "
            f"{statistics.fmean(softs):.3f} | {statistics.stdev(softs):.3f} |"
        )
    sampled_seconds = statistics.fmean(seconds) - greedy_seconds
    print(
        f"\none eval: greedy {greedy_seconds:.0f} s; with {args.samples} sampled responses per task "
        f"{statistics.fmean(seconds):.0f} s ({sampled_seconds / greedy_seconds:.1f}x the greedy part for the "
        f"sampled part; both judges score both)"
    )
    print(
        f"spread of {args.samples} samples per task / 1 sample per task: {rows[args.samples] / rows[1]:.2f} "
        f"(1/sqrt({args.samples}) = {args.samples**-0.5:.2f} if the draws were independent)"
    )
    spread = seed_spread(REPO / "benchmarks" / "results" / args.preset)
    if spread:
        print(
            "seed spread of the greedy score in the preset's finished runs (sd over every arm's seeds), by step: "
            + ", ".join(f"{step}: {sd:.3f}" for step, sd in spread.items())
        )


if __name__ == "__main__":
    main()
