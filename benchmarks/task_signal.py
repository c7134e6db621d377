"""Which tasks carry a learning signal for a policy and a judge?

GRPO learns from the differences between the G responses to a prompt: a task on which every sample
gets the same judge score gives zero advantages. For every task of a split this samples G responses
from the policy (vLLM, or HF generate with --sampler hf), scores them with the judge (forward only)
and prints the mean score, the within-group standard deviation, how often each criterion is met,
and the share of responses that end before the token limit. Use it to size a run's tasks and token
budget (agents/presets/cpu_demo.json was chosen this way).

    python benchmarks/task_signal.py --split train --group-size 8 --max-new-tokens 96
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    from agents.sampling import make_sampler
    from agents.trainer import prompts_of
    from g2r_env import OpenEndedVectorEnv, build_scorer
    from tasks import load_taskset

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="bundled")
    p.add_argument("--judge", default=None, help="default: the policy's default judge")
    p.add_argument("--tasks", default="openended-mini")
    p.add_argument("--split", default="train")
    p.add_argument("--task-ids", default="", help="comma-separated ids (default: every task of the split)")
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--sampler", choices=("vllm", "hf"), default=None)
    p.add_argument("--top", type=int, default=15, help="print this many tasks, the highest std first")
    args = p.parse_args()

    tasks = load_taskset(args.tasks, split=args.split)
    if args.task_ids:
        tasks = tasks.select(task_ids=args.task_ids.split(","))
    scorer = build_scorer(args.model, args.judge)
    envs = OpenEndedVectorEnv(
        num_envs=len(tasks) * args.group_size,
        group_size=args.group_size,
        tasks=tasks,
        split="all",
        max_new_tokens=args.max_new_tokens,
        reward_mode="sparse",
        scorer=scorer,
    )
    sampler = make_sampler(args.sampler, args.model)
    obs, _ = envs.reset(options={"task_ids": [t.task_id for t in tasks for _ in range(args.group_size)]})
    groups = sampler.generate(
        prompts_of(obs, args.group_size),
        n=args.group_size,
        temperature=args.temperature,
        top_p=0.8,
        top_k=20,
        max_tokens=args.max_new_tokens,
        seed=0,
    )
    _, _, terminated, _, infos = envs.step_sequences([s.token_ids for g in groups for s in g])
    rows = []
    for n, task in enumerate(tasks):
        chosen = slice(n * args.group_size, (n + 1) * args.group_size)
        scores = np.asarray(infos["sequence_reward"][chosen], dtype=float)
        met = np.mean([[c["met"] for c in criteria] for criteria in infos["criteria"][chosen]], axis=0)
        rows.append((task, scores.mean(), scores.std(), met, float(np.mean(terminated[chosen]))))
    rows.sort(key=lambda row: -row[2])
    print(
        f"{len(tasks)} tasks x {args.group_size} responses of up to {args.max_new_tokens} tokens; judge "
        f"{args.judge or 'default'}; mean within-group std {np.mean([r[2] for r in rows]):.3f}"
    )
    print(f"{'task':<16}{'mean':>6}{'std':>7}{'ended':>7}  share of responses meeting each criterion")
    for task, mean, std, met, ended in rows[: args.top]:
        shares = " ".join(f"{m:.2f}{'-' if c.weight < 0 else ''}" for m, c in zip(met, task.criteria))
        print(f"{task.task_id:<16}{mean:>6.3f}{std:>7.3f}{ended:>7.2f}  {shares}")


if __name__ == "__main__":
    main()
