"""Where one training step's time goes, and what the attribution costs over a sparse judge.

Runs the CPU demo preset (bundled model, vLLM sampling, the bundled judge) for a warm-up step and
``--steps`` timed steps, and prints the split of a step into sampling, judging + attribution,
policy update and weight sync. Then it judges the last step's responses twice, with the dense
scorer (forward + one backward pass, grad x embed) and with a sparse one (forward only, the same
verdicts), and prints the ratio.

    python benchmarks/step_time.py                      # CPU: the demo preset
    python benchmarks/step_time.py --set group_size=8 --set max_new_tokens=128
"""

import argparse
import time

PHASES = (
    ("time/sampling", "sampling (vLLM)"),
    ("time/judging", "judging + attribution"),
    ("time/update", "policy update"),
    ("time/sync", "weight sync"),
)


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import numpy as np

    from agents import TrainConfig, Trainer
    from g2r_env import Grad2Reward

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    parser.add_argument("--repeats", type=int, default=2, help="judge timings: best of this many")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    config = TrainConfig.preset(
        "cpu_demo",
        run_dir="runs/bench_step_time",
        eval_every=0,
        report=False,
        tensorboard=False,
        progress=False,
        checkpoint_every=0,
    ).with_overrides(args.overrides)
    trainer = Trainer(config)
    trainer.train_step()  # warm-up: first calls allocate caches
    records = [trainer.train_step() for _ in range(args.steps)]
    step = float(np.mean([r["time/step"] for r in records]))
    print(
        f"\n{config.prompts_per_step} prompts x {config.group_size} responses, up to {config.max_new_tokens} "
        f"tokens (mean {np.mean([r['train/response_length'] for r in records]):.1f}), model {config.model}, "
        f"device {trainer.device}, mean of {args.steps} steps"
    )
    for key, label in PHASES:
        seconds = float(np.mean([r[key] for r in records]))
        print(f"  {label:24s} {seconds:7.2f} s  {100 * seconds / step:5.1f}%")
    print(f"  {'step':24s} {step:7.2f} s")

    batch, _ = trainer.rollout(trainer.global_step)
    tasks = [trainer.tasks.get(t) for t in batch.task_ids]
    responses = [row[mask].tolist() for row, mask in zip(batch.response_ids, batch.response_mask)]
    dense = trainer.envs.scorer
    sparse = Grad2Reward(
        dense.judge, attribution="last_token", soft=dense.soft, policy_tokenizer=dense.policy_tokenizer
    )
    pairs = sum(len(t.criteria) for t in tasks)
    dense_s = best_of(args.repeats, lambda: dense.score_batch(tasks, responses))
    sparse_s = best_of(args.repeats, lambda: sparse.score_batch(tasks, responses))
    print(f"\njudging {len(responses)} responses ({pairs} response-criterion pairs), best of {args.repeats}:")
    print(f"  sparse judge (forward only)          {sparse_s:7.2f} s")
    print(f"  Grad2Reward (forward + backward)     {dense_s:7.2f} s")
    print(
        f"  attribution overhead: {dense_s / sparse_s:.2f}x the sparse judge "
        f"({100 * (dense_s - sparse_s) / step:.1f}% of a training step)"
    )


if __name__ == "__main__":
    main()
