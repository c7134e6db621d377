"""GRPO with TRL on Grad2Reward: one reward function for TRL's GRPOTrainer, one class for token credit.

The bundled SmolLM2-135M-Instruct writes answers to bundled tasks, the bundled judge decides each
rubric criterion, and ``TokenGRPOTrainer`` trains on per-token advantages from the judge's
gradient. ``--sequence`` runs TRL's own ``GRPOTrainer`` on the same reward (the sequence reward R
only), which is the whole difference between the two:

    python examples/trl_grpo.py                  # TokenGRPOTrainer, token_grpo, a few minutes on CPU
    python examples/trl_grpo.py --sequence       # TRL's GRPOTrainer with Grad2RewardFunction
    python examples/trl_grpo.py --advantage token_rloo --steps 2

Needs the ``trl`` extra: ``pip install -e ".[trl]"``.
"""

import argparse
import time

TASK_IDS = ["creative-001", "creative-003", "expl-002", "howto-002"]


def main() -> None:
    from trl import GRPOConfig, GRPOTrainer

    from agents.advantages import ADVANTAGES
    from agents.trl import Grad2RewardFunction, TokenGRPOTrainer
    from g2r_env import Judge
    from g2r_env.models import load_model
    from tasks import load_taskset, to_hf_dataset

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps (default: %(default)s)")
    parser.add_argument("--sequence", action="store_true", help="TRL's GRPOTrainer on R instead of token credit")
    parser.add_argument("--advantage", default="token_grpo", choices=sorted(ADVANTAGES))
    parser.add_argument("--attribution", default="grad_x_embed", help="how the judge's credit is spread")
    parser.add_argument("--out", default="runs/example_trl")
    args = parser.parse_args()
    start = time.perf_counter()

    # 1. Data: TRL's conversational prompt column, and each row's task (rubric) as JSON in `task`.
    tasks = load_taskset("openended-mini").select(TASK_IDS)
    train_dataset = to_hf_dataset(tasks, "all")

    # 2. The policy and the judge; whoever builds the judge hands it to the reward function.
    model, tokenizer = load_model("bundled", device="cpu")
    judge = Judge.load("bundled-judge", device="cpu")
    reward = Grad2RewardFunction(judge=judge, attribution=args.attribution, policy_tokenizer=tokenizer)

    # 3. TRL's own config: one prompt x 4 completions per step, short completions, the paper's sampling.
    config = GRPOConfig(
        output_dir=args.out,
        use_cpu=True,
        max_steps=args.steps,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=24,
        temperature=0.7,
        top_p=0.8,
        top_k=20,
        learning_rate=5e-6,
        beta=0.0,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        seed=0,
    )
    trainer_args = dict(
        model=model, reward_funcs=[reward], args=config, train_dataset=train_dataset, processing_class=tokenizer
    )
    if args.sequence:
        trainer = GRPOTrainer(**trainer_args)
    else:
        trainer = TokenGRPOTrainer(**trainer_args, advantage=args.advantage)

    # 4. Train; TRL logs R as rewards/grad2reward/mean and the met rates as grad2reward/*_met.
    trainer.train()
    for record in trainer.state.log_history:
        if "rewards/grad2reward/mean" in record:
            print(
                f"step {record['step']}: R {record['rewards/grad2reward/mean']:.3f}, criteria met "
                f"{record.get('grad2reward/criteria_met', float('nan')):.2f}, grad norm {record['grad_norm']:.2f}"
            )
    print(f"{type(trainer).__name__}: {args.steps} steps in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
