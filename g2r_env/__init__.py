"""Grad2Reward environments: open-ended LLM tasks with per-token rewards from a judge's gradient."""

from .judge import Judge
from .scorer import Grad2Reward, ScoreResult

__all__ = ["Judge", "Grad2Reward", "ScoreResult"]
