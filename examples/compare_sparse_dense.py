"""Dense token rewards vs the sparse judge score vs uniform credit, same seed and budget.

    dense    token GRPO on grad x embed token rewards (the paper's method)
    sparse   sequence-level GRPO on the judge score (no backward pass through the judge)
    uniform  token GRPO with the judge score spread evenly over the tokens

Each variant trains a fresh copy of the bundled model with the CPU demo preset; one vLLM engine
is shared (its weights are reset to the initial policy for each run). For per-step curves and the
steps-to-match ratio, see benchmarks/sample_efficiency.py.

    python examples/compare_sparse_dense.py --steps 6
"""

import argparse
import gc


def main() -> None:
    from agents import TrainConfig, Trainer
    from agents.config import VARIANTS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--sampler", choices=("vllm", "hf"), default="vllm")
    parser.add_argument("--run-dir", default="runs/compare")
    args = parser.parse_args()

    sampler, results = None, {}
    for name, variant in VARIANTS.items():
        config = TrainConfig.cpu_demo(
            **variant,
            run_dir=f"{args.run_dir}/{name}",
            total_steps=args.steps,
            sampler=args.sampler,
            eval_every=args.steps,
            report=False,
        )
        trainer = Trainer(config, sampler=sampler)
        history = trainer.train()
        scores = [r["eval/judge_score"] for r in history if "eval/judge_score" in r]
        results[name] = (scores[0], scores[-1], sum(r.get("time/step", 0.0) for r in history))
        sampler = trainer.sampler if args.sampler == "vllm" else None  # the HF sampler is the policy itself
        del trainer
        gc.collect()

    print(f"\n{'variant':8s} {'eval before':>11s} {'eval after':>10s} {'train time':>10s}")
    for name, (before, after, seconds) in results.items():
        print(f"{name:8s} {before:11.3f} {after:10.3f} {seconds:9.0f}s")


if __name__ == "__main__":
    main()
