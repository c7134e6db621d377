"""Grad2Reward environments: open-ended LLM tasks with per-token rewards from a judge's gradient.

Importing the package registers ``Grad2Reward/OpenEnded-v0`` (dense token rewards) and
``Grad2Reward/OpenEnded-Sparse-v0`` with Gymnasium; ``gym.make("g2r_env:Grad2Reward/OpenEnded-v0")``
imports it on the fly.
"""

from .packages import require_own

require_own("tasks")  # a user's tasks.py must not stand in for ours (see g2r_env.packages)

from gymnasium.envs.registration import register, registry

from .attribution import ATTRIBUTIONS, Attribution, register_attribution
from .env import OpenEndedEnv, build_scorer
from .judge import Calibration, Judge
from .models import load_model, shared_model
from .scorer import Grad2Reward, ScoreResult
from .vector import OpenEndedVectorEnv

for _id, _kwargs in (("Grad2Reward/OpenEnded-v0", {}), ("Grad2Reward/OpenEnded-Sparse-v0", {"reward_mode": "sparse"})):
    if _id not in registry:
        register(
            id=_id,
            entry_point="g2r_env.env:OpenEndedEnv",
            vector_entry_point="g2r_env.vector:OpenEndedVectorEnv",
            kwargs=_kwargs,
        )

__all__ = [
    "ATTRIBUTIONS",
    "Attribution",
    "Calibration",
    "Grad2Reward",
    "Judge",
    "OpenEndedEnv",
    "OpenEndedVectorEnv",
    "ScoreResult",
    "build_scorer",
    "load_model",
    "register_attribution",
    "shared_model",
]
