"""Train an LLM with Stable-Baselines3 PPO on the token env, rewarded token by token by Grad2Reward.

    python examples/train_sb3_ppo.py --steps 512 --max-new-tokens 16 --output-dir runs/sb3_ppo

Every step is one token; the judge scores a response when it ends and ``DenseRewardBackfill``
puts its per-token rewards into PPO's rollout buffer. SB3's logger prints ``rollout/ep_rew_mean``
(the mean judge score of the last episodes, from the Monitor wrapper) and writes it to
``<output-dir>/progress.csv``. The judge score on the test split is printed before and after.

On a laptop CPU with the bundled model (SmolLM2-135M-Instruct) each response costs a few seconds
of judging (one forward and backward pass per rubric criterion), so keep responses short.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

import g2r_env  # noqa: F401  (registers the env ids)
from agents.sb3 import DenseRewardBackfill, EpisodeRolloutBuffer, LLMActorCriticPolicy

ENV_ID = "Grad2Reward/OpenEnded-v0"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=512, help="total env steps (tokens) to train on")
    parser.add_argument("--seed", type=int, default=0, help="seed of SB3, torch and the envs")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="response length limit")
    parser.add_argument("--output-dir", default="runs/sb3_ppo", help="where progress.csv (and --save) go")
    parser.add_argument("--model", default="bundled", help="policy and self-judge: 'bundled' or a local HF folder")
    parser.add_argument("--n-envs", type=int, default=2, help="envs stepped together (DummyVecEnv)")
    parser.add_argument(
        "--n-steps",
        type=int,
        default=64,
        help="steps per env per rollout; several times --max-new-tokens keeps few episodes crossing a rollout boundary",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="transitions per PPO minibatch (whole episodes)")
    parser.add_argument("--n-epochs", type=int, default=2, help="PPO epochs per rollout")
    parser.add_argument("--learning-rate", type=float, default=1e-5, help="Adam learning rate of LM and value head")
    parser.add_argument("--reward-mode", default="dense", choices=("dense", "sparse"), help="token or sequence rewards")
    parser.add_argument("--soft", action="store_true", help="reward p_true instead of the judge's 0/1 verdicts")
    parser.add_argument("--eval-episodes", type=int, default=4, help="test-split responses judged before and after")
    parser.add_argument("--save", action="store_true", help="save the trained LM as an HF folder in output-dir/policy")
    return parser.parse_args(argv)


def judge_score(model: PPO, args: argparse.Namespace) -> float:
    """Mean judge score (sequence reward) of sampled responses to test-split tasks; same tasks every call."""
    if args.eval_episodes < 1:
        return float("nan")
    # the default prompt_width is the longest prompt of the split: use the training env's
    prompt_width = model.observation_space["prompt_ids"].shape[0]
    env = make_vec_env(
        ENV_ID,
        n_envs=1,
        seed=args.seed + 10_000,
        env_kwargs=dict(
            model=args.model,
            max_new_tokens=args.max_new_tokens,
            split="test",
            soft=args.soft,
            prompt_width=prompt_width,
            render_mode=None,
        ),
    )
    torch.manual_seed(args.seed)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=args.eval_episodes, deterministic=False)
    return float(mean)


def main(argv: Optional[Sequence[str]] = None) -> PPO:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    # make_vec_env asks for render_mode="rgb_array" unless told otherwise; the env renders text only
    env = make_vec_env(
        ENV_ID,
        n_envs=args.n_envs,
        seed=args.seed,
        env_kwargs=dict(
            model=args.model,
            max_new_tokens=args.max_new_tokens,
            reward_mode=args.reward_mode,
            soft=args.soft,
            render_mode=None,
        ),
    )
    model = PPO(
        LLMActorCriticPolicy,
        env,
        policy_kwargs=dict(model=args.model),
        rollout_buffer_class=EpisodeRolloutBuffer,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=args.learning_rate,
        gamma=1.0,
        gae_lambda=0.95,  # undiscounted return-to-go, as in the paper's token-level GRPO
        seed=args.seed,
        device="auto",
    )
    model.set_logger(configure(str(output_dir), ["stdout", "csv"]))

    before = judge_score(model, args)
    print(f"judge score before training: {before:.3f} (mean of {args.eval_episodes} test responses)")
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps, callback=DenseRewardBackfill())
    seconds = time.perf_counter() - start
    after = judge_score(model, args)
    print(f"judge score after training:  {after:.3f}")
    print(f"trained {model.num_timesteps} steps in {seconds:.0f} s: {model.num_timesteps / seconds:.2f} steps/s")
    rewards = [episode["r"] for episode in model.ep_info_buffer]
    if rewards:
        print(f"training episodes: last {len(rewards)} mean reward {np.mean(rewards):.3f}")
    if args.save:
        model.policy.lm.save_pretrained(output_dir / "policy")
        env.get_attr("tokenizer", indices=0)[0].save_pretrained(output_dir / "policy")
        print(f"saved the policy LM to {output_dir / 'policy'}")
    return model


if __name__ == "__main__":
    main()
