"""Token steps per second of the env, with and without the judge.

Prints:
  - single env, judge excluded: steps that do not end the episode (target >= 20,000/s),
  - single env, whole episodes including the judge at each end,
  - the vector env's ``step_sequences`` for the same episodes (one batched judge call).

    python benchmarks/env_steps.py [--max-new-tokens 64] [--num-envs 8]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import g2r_env  # noqa: F401  (registers the ids)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="bundled")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--episodes", type=int, default=300)
    args = p.parse_args()

    env = gym.make("Grad2Reward/OpenEnded-v0", model=args.model, max_new_tokens=args.max_new_tokens)
    rng = np.random.default_rng(0)
    stops = set(env.unwrapped.stop_ids)
    tokens = [int(t) for t in rng.integers(100, 40000, size=args.max_new_tokens) if int(t) not in stops]

    # judge excluded: every step but the last of each episode
    steps, start = 0, time.perf_counter()
    for episode in range(args.episodes):
        env.reset(seed=episode)
        for token in tokens[: args.max_new_tokens - 1]:
            env.step(token)
            steps += 1
    rate_no_judge = steps / (time.perf_counter() - start)

    # whole episodes, each ended by the judge
    n = args.num_envs
    responses = [tokens[: args.max_new_tokens] for _ in range(n)]
    task_ids = [env.unwrapped.tasks[e].task_id for e in range(n)]
    start = time.perf_counter()
    for episode in range(n):
        env.reset(options={"task_id": task_ids[episode]})
        for token in responses[episode]:
            env.step(token)
    t_single = time.perf_counter() - start

    vec = gym.make_vec("Grad2Reward/OpenEnded-v0", num_envs=n, model=args.model, max_new_tokens=args.max_new_tokens)
    vec.reset(options={"task_ids": task_ids})
    start = time.perf_counter()
    vec.step_sequences(responses)
    t_vec = time.perf_counter() - start
    total = n * args.max_new_tokens

    print(f"single env, judge excluded:        {rate_no_judge:12,.0f} steps/s  (target >= 20,000)")
    print(f"single env, {n} episodes with judge: {total / t_single:12,.1f} steps/s  ({t_single:.2f} s)")
    print(f"step_sequences, {n} episodes:        {total / t_vec:12,.1f} steps/s  ({t_vec:.2f} s)")
    print(f"step_sequences speedup:            {t_single / t_vec:12.2f}x")


if __name__ == "__main__":
    main()
