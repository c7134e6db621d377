"""Train an LLM with token-level GRPO on Grad2Reward token rewards, from Python.

The bundled SmolLM2-135M-Instruct writes answers, a frozen copy of itself judges them against each
task's rubric, and one backward pass through the judge turns each verdict into per-token rewards.

    python examples/train_grpo.py                  # the CPU demo preset, vLLM sampling, a few minutes
    python examples/train_grpo.py --steps 2 --sampler hf
"""

import argparse


def main() -> None:
    from agents import TrainConfig, Trainer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    parser.add_argument("--sampler", choices=("vllm", "hf"), default="vllm")
    parser.add_argument("--run-dir", default="runs/example_grpo")
    args = parser.parse_args()

    # 1. A config: the paper's defaults are TrainConfig(); the CPU preset shortens everything.
    #    Any field can be changed here: tasks (your own JSONL), model, judge, lora_rank, ...
    config = TrainConfig.preset("cpu_demo", run_dir=args.run_dir, sampler=args.sampler)
    if args.steps is not None:
        config.total_steps = args.steps
    trainer = Trainer(config)

    # 2. One rollout by hand, to look at what the trainer learns from.
    batch, timings = trainer.rollout(step=0)
    first = batch.response_mask[0]
    print(
        f"task {batch.task_ids[0]}: judge score R = {batch.sequence_rewards[0]:.3f}, "
        f"the sum of {int(first.sum())} token rewards:"
    )
    tokens = [trainer.tokenizer.decode([t]) for t in batch.response_ids[0][first].tolist()]
    print(" ".join(f"{tok!r}:{r:+.3f}" for tok, r in zip(tokens, batch.token_rewards[0][first].tolist())))
    print("advantages of that response:", [round(a, 2) for a in trainer.advantages(batch)[0][first].tolist()])

    # 3. Train: rollout -> advantages -> PPO-clip update -> weight sync, every step; metrics go to
    #    run_dir/metrics.jsonl and TensorBoard, the report to run_dir/report.
    history = trainer.train()
    scores = [(r["step"], r["eval/judge_score"]) for r in history if "eval/judge_score" in r]
    print("eval judge score (greedy) by step:", ", ".join(f"{s}: {v:.3f}" for s, v in scores))
    print(f"trained model: {trainer.run_dir / 'model'}; report: {trainer.run_dir / 'report'}")


if __name__ == "__main__":
    main()
