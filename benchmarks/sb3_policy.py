"""Shared-prefix evaluation of LLMActorCriticPolicy against one LM forward per transition.

    python benchmarks/sb3_policy.py                          # the bundled model, a few minutes on CPU
    python benchmarks/sb3_policy.py --model DIR --batch-size 64 --minibatches 4

Fills SB3 rollout buffers with episodes made of the task set's real prompts and random response
tokens (lengths vary, as when stop tokens end responses early; no judge is run), draws PPO
minibatches from SB3's default buffer (random transitions) and from EpisodeRolloutBuffer (whole
episodes), and times what one PPO update step costs in the policy: ``evaluate_actions`` and the
backward pass of its outputs, once with ``share_prefix=False`` (one sequence per transition) and
once with ``share_prefix=True`` (one per distinct episode prefix). Prints, per sampler, the
sequences the LM ran, the seconds per minibatch, the ratio, and the largest log-prob difference.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.buffers import DictRolloutBuffer

import g2r_env  # noqa: F401
from agents.sb3 import EpisodeRolloutBuffer, LLMActorCriticPolicy, prefix_groups
from g2r_env.env import Episode
from g2r_env.models import resolve_device


def fill(buffers, env, n_steps: int, n_envs: int, rng: np.random.Generator) -> None:
    """Add the same synthetic rollout (random tokens, lengths in [max/2, max]) to every buffer."""
    unwrapped = env.unwrapped
    episodes = [Episode(unwrapped.parts.prompt_width, unwrapped.max_new_tokens, []) for _ in range(n_envs)]
    lengths = np.zeros(n_envs, dtype=int)
    starts = np.ones(n_envs, dtype=np.float32)
    for _ in range(n_steps):
        for n, episode in enumerate(episodes):
            if starts[n]:
                task = unwrapped.tasks[int(rng.integers(len(unwrapped.tasks)))]
                episode.start(task, unwrapped.prompts[task.task_id])
                lengths[n] = rng.integers(unwrapped.max_new_tokens // 2, unwrapped.max_new_tokens + 1)
        obs = {key: np.stack([e.observation()[key] for e in episodes]) for key in env.observation_space.spaces}
        actions = rng.integers(100, 40_000, size=(n_envs, 1))
        for buffer in buffers:
            buffer.add(obs, actions, np.zeros(n_envs), starts, torch.zeros(n_envs), torch.zeros(n_envs))
        for n, episode in enumerate(episodes):
            episode.push(int(actions[n, 0]))
        starts = np.array([e.length >= lengths[n] for n, e in enumerate(episodes)], dtype=np.float32)
    for buffer in buffers:
        buffer.compute_returns_and_advantage(last_values=torch.zeros(n_envs), dones=starts)


def update_step(policy: LLMActorCriticPolicy, batch, share_prefix: bool) -> tuple[float, torch.Tensor]:
    """Seconds for evaluate_actions plus backward on one minibatch, and the log-probs."""
    policy.share_prefix = share_prefix
    policy.optimizer.zero_grad()
    synchronize = torch.cuda.synchronize if policy.device.type == "cuda" else (lambda: None)
    synchronize()
    start = time.perf_counter()
    values, log_prob, entropy = policy.evaluate_actions(batch.observations, batch.actions.long().flatten())
    (values.mean() - log_prob.mean() - entropy.mean()).backward()
    synchronize()
    return time.perf_counter() - start, log_prob.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="bundled", help="'bundled' or a local HF folder")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="response length limit")
    parser.add_argument("--n-envs", type=int, default=2, help="env columns of the rollout buffer")
    parser.add_argument("--n-steps", type=int, default=64, help="rollout length per env")
    parser.add_argument("--batch-size", type=int, default=16, help="transitions per minibatch")
    parser.add_argument("--minibatches", type=int, default=1, help="minibatches timed per sampler")
    parser.add_argument("--device", default="auto", help="where the policy runs: auto (CUDA if present), cpu, cuda")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # SB3's buffers shuffle with numpy's global generator
    env = gym.make("Grad2Reward/OpenEnded-v0", model=args.model, max_new_tokens=args.max_new_tokens)
    device = resolve_device(args.device)
    policy = LLMActorCriticPolicy(env.observation_space, env.action_space, lambda _: 0.0, model=args.model).to(device)
    policy.set_training_mode(True)
    shape = dict(
        buffer_size=args.n_steps,
        observation_space=env.observation_space,
        action_space=env.action_space,
        n_envs=args.n_envs,
        device=device,
    )
    samplers = {
        "SB3 default (random transitions)": DictRolloutBuffer(**shape),
        "EpisodeRolloutBuffer (whole episodes)": EpisodeRolloutBuffer(**shape),
    }
    fill(samplers.values(), env, args.n_steps, args.n_envs, np.random.default_rng(args.seed))

    print(
        f"model {args.model}, {args.n_envs} envs x {args.n_steps} steps, max_new_tokens {args.max_new_tokens}, "
        f"minibatch {args.batch_size} transitions, on {device}"
        f"{f' ({torch.get_num_threads()} threads)' if device.type == 'cpu' else ''}"
    )
    warm = next(iter(samplers.values())).get(args.batch_size)
    update_step(policy, next(warm), True)
    for name, buffer in samplers.items():
        times = {False: 0.0, True: 0.0}
        sequences = transitions = 0
        worst = 0.0
        for _, batch in zip(range(args.minibatches), buffer.get(args.batch_size)):
            ids, mask, last = policy._sequences(policy.extract_features(batch.observations))
            sequences += len(set(prefix_groups(ids, mask, last).tolist()))
            transitions += len(ids)
            naive_time, naive = update_step(policy, batch, share_prefix=False)
            shared_time, shared = update_step(policy, batch, share_prefix=True)
            times[False] += naive_time
            times[True] += shared_time
            worst = max(worst, (naive - shared).abs().max().item())
        print(
            f"{name}: {transitions} transitions in {sequences} sequences; seconds per minibatch: "
            f"{times[False] / args.minibatches:.2f} one forward per transition, "
            f"{times[True] / args.minibatches:.2f} shared prefixes; speedup {times[False] / times[True]:.2f}x; "
            f"max |log-prob difference| {worst:.1e}"
        )


if __name__ == "__main__":
    main()
