"""Dense token rewards against the sparse judge score and uniform credit, same seed and budget.

The arms are the sample-efficiency study's (agents/presets/study/quick.json): sparse GRPO, token GRPO on
grad x embed credit (the paper's), token GRPO on uniform credit, ... Each trains a fresh copy of the
bundled model; one vLLM engine is shared (its weights are reset to the initial policy for each
run). For curves over seeds with error bars, run benchmarks/sample_efficiency.py.

    python examples/compare_sparse_dense.py --steps 6
"""

import argparse
import gc


def main() -> None:
    from agents import TrainConfig, Trainer
    from agents.study import load_study_preset

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--sampler", choices=("vllm", "hf"), default="vllm")
    parser.add_argument("--run-dir", default="runs/compare")
    args = parser.parse_args()

    study = load_study_preset("quick")
    sampler, results = None, {}
    for name, arm in study["arms"].items():
        values = {
            **study["train"],
            **arm,
            "run_dir": f"{args.run_dir}/{name}",
            "total_steps": args.steps,
            "sampler": args.sampler,
            "eval_every": args.steps,
        }
        trainer = Trainer(TrainConfig.from_dict(values, where=name), sampler=sampler)
        history = trainer.train()
        scores = [r["eval/judge_score"] for r in history if "eval/judge_score" in r]
        results[name] = (scores[0], scores[-1], sum(r.get("time/step", 0.0) for r in history))
        sampler = trainer.sampler if args.sampler == "vllm" else None  # the HF sampler is the policy itself
        del trainer
        gc.collect()

    print(f"\n{'arm':12s} {'eval before':>11s} {'eval after':>10s} {'train time':>10s}")
    for name, (before, after, seconds) in results.items():
        print(f"{name:12s} {before:11.3f} {after:10.3f} {seconds:9.0f}s")


if __name__ == "__main__":
    main()
