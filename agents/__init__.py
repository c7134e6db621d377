"""Bundled LLM policy-gradient agents: samplers, advantages, losses, trainer and the SB3 policy.

``TrainConfig`` and ``Trainer`` (agents.trainer) run token-level GRPO on Grad2Reward token rewards
with vLLM sampling. Names are imported on first use, so ``import agents`` stays light and never
imports vllm or stable-baselines3 by itself. The bridges to other trainers, ``agents.trl`` (TRL's
GRPOTrainer) and ``agents.verl``, are imported by their module names only.
"""

import importlib

_EXPORTS = {
    "ADVANTAGES": "advantages",
    "compute_advantages": "advantages",
    "kl_k3": "losses",
    "policy_loss": "losses",
    "ppo_clip_loss": "losses",
    "token_logprobs": "losses",
    "HFSampler": "sampling",
    "Sample": "sampling",
    "Sampler": "sampling",
    "VLLMSampler": "sampling",
    "TrainConfig": "config",
    "Rollout": "trainer",
    "Trainer": "trainer",
    "evaluate_policy": "trainer",
    "train": "trainer",
    "write_report": "report",
    "LLMActorCriticPolicy": "sb3",
    "DenseRewardBackfill": "sb3",  # need stable-baselines3
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
