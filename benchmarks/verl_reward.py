"""Grad2Reward on verl: the reward manager's overhead over bare ``score_batch``, and judge throughput
with 1 vs 2 Ray judge actors. Run in the verl environment:

    .venv-verl/bin/python benchmarks/verl_reward.py [--responses 8] [--tokens 160] [--repeats 3]

Prints, measured in this run:
- overhead: the manager's own time (reading the batch, placing the rewards, extra info) over the
  time of ``score_batch`` on the same batch, and the end-to-end ratio manager / bare (target: the
  overhead under 5% of score_batch's time);
- throughput: (response, criterion) pairs per second with 1 and with 2 one-thread judge actors on
  the same long batch, and their ratio (target on a 2-core machine: at least 1.6x).

The bundled model judges itself on the CPU. On a machine shared with other work the figures show
what was left of it; say so beside them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "verl_integration"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=8, help="responses in the batch")
    parser.add_argument("--tokens", type=int, default=160, help="tokens per response (long batches)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    args = parser.parse_args()

    import ray
    import torch
    from verl_helpers import verl_batch

    from agents.verl.judge_pool import JudgePool, JudgeSpec
    from agents.verl.reward import Grad2RewardManager
    from g2r_env.models import load_tokenizer
    from tasks import Criterion, Task

    torch.set_num_threads(1)
    tokenizer = load_tokenizer("bundled")
    text = " ".join(["Keep a regular bedtime, cut caffeine after noon and dim the screens before bed."] * 20)
    words = tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)[: args.tokens - 1])
    tasks = [
        Task(f"t-{i}", "Give tips for better sleep.", (Criterion("Mentions a regular bedtime", 2.0),))
        for i in range(args.responses)
    ]
    data, responses = verl_batch(tokenizer, tasks, [words] * args.responses)
    pairs = sum(len(t.criteria) for t in tasks)
    spec = JudgeSpec(model="bundled", judge="self", device="cpu", micro_batch_size=4, threads=1)
    print(f"batch: {args.responses} responses x {len(responses[0])} tokens, {pairs} pairs; CPUs: {os.cpu_count()}")

    # --- overhead ---------------------------------------------------------------------------
    scorer = spec.build()
    results = scorer.score_batch(tasks, responses)

    class Replay:  # score_batch's results without the judge: what is left is the manager's own work
        def score_batch(self, tasks, responses, dense=True):
            return results

    bare, managed, own = [], [], []
    manager = Grad2RewardManager(tokenizer, scorer=scorer)
    replay = Grad2RewardManager(tokenizer, scorer=Replay())
    for _ in range(args.repeats):
        start = time.perf_counter()
        scorer.score_batch(tasks, responses)
        bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        manager(data, return_dict=True)
        managed.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(20):
            replay(data, return_dict=True)
        own.append((time.perf_counter() - start) / 20)
    bare_s, managed_s, own_s = (statistics.median(x) for x in (bare, managed, own))
    print(f"score_batch: {bare_s:.3f} s   manager: {managed_s:.3f} s   manager's own work: {own_s * 1e3:.2f} ms")
    print(
        f"overhead: {own_s / bare_s:.4%} of score_batch (target < 5%); end to end manager/bare = {managed_s / bare_s:.3f}"
    )

    # --- throughput: 1 vs 2 one-thread actors --------------------------------------------------
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rates = {}
        for judges in (1, 2):
            pool = JudgePool(spec, num_judges=judges)
            pool.score_batch(tasks[:judges], responses[:judges])  # load the models
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                pool.score_batch(tasks, responses)
                times.append(time.perf_counter() - start)
            rates[judges] = pairs / statistics.median(times)
            pool.shutdown()
            print(f"{judges} actor(s): {rates[judges]:.2f} pairs/s")
        print(f"2 actors / 1 actor: {rates[2] / rates[1]:.2f}x (target >= 1.6x on 2 cores)")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
