"""Grad2Reward in TRL: the cost of token-level credit (``TokenGRPOTrainer``) over TRL's own
``GRPOTrainer`` with ``Grad2RewardFunction``, beyond the judge's backward pass.

    python benchmarks/trl_overhead.py [--steps 5] [--tokens 32] [--model tiny|bundled]

Both trainers run the same policy, judge, data, seed and fixed-length completions (generation is
forced to ``--tokens`` tokens). The judge is timed inside every ``score_batch`` call: forward only
for ``GRPOTrainer``, forward and backward for ``TokenGRPOTrainer``. Prints, from TRL's own
``step_time`` (one training step: generation, scoring, loss, backward), medians over the steps
after the first:

- each trainer's step time and judge time;
- the judge's backward: token judge time - plain judge time;
- overhead beyond it: (token step - token judge) - (plain step - plain judge), as a share of the
  plain step (target: under 5%), and the time in ``TokenGRPOTrainer.token_advantages`` alone
  (token rewards to [B, T] advantages), as a share of the plain step.

On a machine shared with other work the step times are noisy, and the trainer run second in the
process has come out slower in either order (run it both ways, ``--token-first``); the direct
``token_advantages`` figure is neither.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


class TimedScorer:
    """A scorer that records the wall time of each ``score_batch`` call of the scorer it wraps."""

    def __init__(self, scorer) -> None:
        self.scorer = scorer
        self.times: list[float] = []

    def score_batch(self, tasks, responses, dense=True):
        start = time.perf_counter()
        results = self.scorer.score_batch(tasks, responses, dense=dense)
        self.times.append(time.perf_counter() - start)
        return results


def run(trainer_class, policy, judge, tokenizer, dataset, args, out_dir, **kwargs):
    """(step times, judge times, token_advantages times) of ``args.steps`` training steps."""
    from trl import GRPOConfig

    from agents.trl import Grad2RewardFunction
    from g2r_env import Grad2Reward

    scorer = TimedScorer(Grad2Reward(judge, soft=True))
    config = GRPOConfig(
        output_dir=out_dir,
        use_cpu=True,
        max_steps=args.steps,
        per_device_train_batch_size=args.completions,
        num_generations=args.group,
        max_completion_length=args.tokens,
        generation_kwargs={"min_new_tokens": args.tokens},
        learning_rate=1e-6,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    trainer = trainer_class(
        model=policy(),
        reward_funcs=[Grad2RewardFunction(scorer=scorer)],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        **kwargs,
    )
    own: list[float] = []
    if hasattr(trainer, "token_advantages"):
        method = trainer.token_advantages

        def timed(*a, **k):
            start = time.perf_counter()
            out = method(*a, **k)
            own.append(time.perf_counter() - start)
            return out

        trainer.token_advantages = timed
    trainer.train()
    steps = [r["step_time"] for r in trainer.state.log_history if "step_time" in r]
    return steps, scorer.times, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="training steps per trainer (the first is dropped)")
    parser.add_argument("--tokens", type=int, default=32, help="tokens per completion (fixed)")
    parser.add_argument("--completions", type=int, default=8, help="completions per step")
    parser.add_argument("--group", type=int, default=4, help="completions per prompt")
    parser.add_argument("--model", choices=("tiny", "bundled"), default="tiny", help="policy and judge")
    parser.add_argument("--token-first", action="store_true", help="run TokenGRPOTrainer first (order effects)")
    args = parser.parse_args()

    import torch
    from trl import GRPOTrainer

    from agents.trl import TokenGRPOTrainer
    from g2r_env import Judge
    from g2r_env.models import load_model, load_tokenizer
    from tasks import load_taskset, to_hf_dataset

    torch.set_num_threads(1)
    tokenizer = load_tokenizer("bundled")
    if args.model == "tiny":
        from tiny import build_tiny_model

        def policy():
            return build_tiny_model(len(tokenizer), max_positions=2048)

        judge = Judge(policy(), tokenizer)
    else:

        def policy():
            return load_model("bundled", device="cpu")[0]

        judge = Judge.load("bundled", device="cpu")
    tasks = load_taskset("openended-mini").split("train")
    prompts_needed = args.completions // args.group * args.steps
    dataset = to_hf_dataset(tasks[:prompts_needed], "all")
    print(
        f"{args.model} policy and judge; {args.completions} completions x {args.tokens} tokens per step, "
        f"groups of {args.group}, {args.steps} steps (first dropped)"
    )

    figures = {}
    with TemporaryDirectory() as out_dir:
        order = [("GRPOTrainer", GRPOTrainer), ("TokenGRPOTrainer", TokenGRPOTrainer)]
        for name, cls in order[::-1] if args.token_first else order:
            steps, judge_times, own = run(cls, policy, judge, tokenizer, dataset, args, out_dir)
            figures[name] = (statistics.median(steps[1:]), statistics.median(judge_times[1:]), own[1:])
            print(f"{name:17s} step {figures[name][0]:.3f} s, judge {figures[name][1]:.3f} s")

    plain_step, plain_judge, _ = figures["GRPOTrainer"]
    token_step, token_judge, own = figures["TokenGRPOTrainer"]
    backward = token_judge - plain_judge
    overhead = (token_step - token_judge) - (plain_step - plain_judge)
    own_time = statistics.median(own)
    print(f"judge backward (token judge - plain judge): {backward:.3f} s = {backward / plain_step:.1%} of a plain step")
    print(f"token step / plain step: {token_step / plain_step:.3f}")
    print(
        f"overhead beyond the judge's backward: {overhead:+.3f} s = {overhead / plain_step:+.1%} of a plain step "
        f"(target < 5%)"
    )
    print(f"token_advantages alone: {own_time * 1e3:.2f} ms = {own_time / plain_step:.2%} of a plain step")


if __name__ == "__main__":
    main()
