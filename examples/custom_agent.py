"""A REINFORCE agent on the plain Gymnasium API: one action is one token.

The env's reward is 0 on every step and the judge score R on the last; at the episode's end
info["token_rewards"] holds the dense per-token credit (it sums to R), which the agent backfills
onto the steps it belongs to before computing returns-to-go. Swap in your own estimator here.

    python examples/custom_agent.py --episodes 6 --max-new-tokens 24
"""

import argparse

import gymnasium as gym
import numpy as np
import torch

import g2r_env  # noqa: F401  (registers Grad2Reward/OpenEnded-v0)
from g2r_env import load_model


def play_episode(env, model, temperature: float, seed=None):
    """Sample a response token by token (KV cache); returns prompt ids, actions and the final info."""
    obs, _ = env.reset(seed=seed)
    prompt = torch.as_tensor(obs["prompt_ids"][obs["prompt_mask"] == 1])
    inputs, past, actions, done = prompt[None], None, [], False
    with torch.no_grad():
        while not done:
            out = model(input_ids=inputs, past_key_values=past, use_cache=True)
            past = out.past_key_values
            action = int(torch.multinomial(torch.softmax(out.logits[0, -1] / temperature, -1), 1))
            obs, reward, terminated, truncated, info = env.step(action)
            actions.append(action)
            inputs, done = torch.tensor([[action]]), terminated or truncated
    return prompt, actions, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--temperature", type=float, default=0.7)
    args = parser.parse_args()

    env = gym.make("Grad2Reward/OpenEnded-v0", max_new_tokens=args.max_new_tokens)
    model, _ = load_model("bundled", device="cpu")  # a trainable copy; the env's judge is a frozen one
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    baseline = 0.0  # running mean of the returns: a constant baseline keeps REINFORCE unbiased
    for episode in range(args.episodes):
        prompt, actions, info = play_episode(env, model, args.temperature, seed=0 if episode == 0 else None)
        token_rewards = np.asarray(info["token_rewards"], dtype=np.float32)  # the backfill
        returns = torch.as_tensor(np.cumsum(token_rewards[::-1])[::-1].copy())  # return-to-go per step

        ids = torch.cat([prompt, torch.tensor(actions)])[None]
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
        logprobs = torch.log_softmax(logits / args.temperature, -1)[torch.arange(len(actions)), actions]
        loss = -(logprobs * (returns - baseline)).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        baseline = 0.8 * baseline + 0.2 * float(returns.mean())

        best = int(np.argmax(token_rewards))
        print(
            f"episode {episode}: {info['task_id']:14s} R={info['sequence_reward']:+.3f} "
            f"tokens={len(actions):3d} most credited token #{best} "
            f"({env.unwrapped.tokenizer.decode([actions[best]])!r}) loss={loss.item():+.4f}"
        )


if __name__ == "__main__":
    main()
