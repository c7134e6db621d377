"""The estimators of ``agents.advantages`` registered with verl as ``grad2reward_<name>``.

``algorithm.adv_estimator=grad2reward_token_grpo`` is token-level GRPO (DESIGN step 6) on the
token rewards of the ``grad2reward`` reward manager; ``grad2reward_grpo``, ``grad2reward_rloo``
and ``grad2reward_reinforce`` are the others, and any estimator added later with
``register_advantage`` is registered here too when this module is imported.

verl names each response's prompt by a uid (``index``) and may reorder rows (it balances batches
across ranks); ``agents.advantages`` wants the G responses to a prompt in consecutive rows. So the
rows are gathered by uid (groups in order of first appearance), the estimator runs once, and the
advantages are put back in verl's row order. verl's signature: ``(token_level_rewards,
response_mask, index, config, **kwargs) -> (advantages, returns)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Optional

import numpy as np
import torch
from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, register_adv_est

from agents.advantages import ADVANTAGES, compute_advantages, returns_to_go

PREFIX = "grad2reward_"


def group_order(index: Sequence[Any]) -> tuple[torch.Tensor, int]:
    """(permutation putting each uid's rows together, group size G).

    Raises:
        ValueError: groups of different sizes (the estimators normalise over G responses each).
    """
    groups: dict[Any, list[int]] = {}
    for row, uid in enumerate(np.asarray(index, dtype=object).tolist()):
        groups.setdefault(uid, []).append(row)
    sizes = {len(rows) for rows in groups.values()}
    if len(sizes) != 1:
        counts = sorted(sizes)
        raise ValueError(
            f"responses per prompt differ across the batch ({counts[0]} to {counts[-1]} rows per uid); "
            "Grad2Reward estimators need the same number of responses for every prompt "
            "(actor_rollout_ref.rollout.n) and no filtering of single rows"
        )
    order = [row for rows in groups.values() for row in rows]
    return torch.tensor(order, dtype=torch.long), sizes.pop()


def verl_estimator(name: str) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """A verl advantage estimator running ``agents.advantages``' estimator ``name`` per uid group."""
    if name not in ADVANTAGES:
        raise ValueError(f"unknown advantage estimator {name!r}; choose one of {sorted(ADVANTAGES)}")

    def estimator(
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
        index: Optional[np.ndarray] = None,
        config: Any = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if index is None:
            raise ValueError(f"{PREFIX}{name} needs the prompt uids (verl passes them as index)")
        order, group_size = group_order(index)
        order = order.to(token_level_rewards.device)
        rewards, mask = token_level_rewards[order], response_mask[order]
        grouped = compute_advantages(name, rewards, mask, group_size)
        advantages = torch.empty_like(grouped)
        advantages[order] = grouped
        return advantages, returns_to_go(token_level_rewards, response_mask)

    estimator.__name__ = estimator.__qualname__ = f"{PREFIX}{name}"
    estimator.__doc__ = f"verl adapter of agents.advantages estimator {name!r}: {ADVANTAGES[name].__doc__}"
    return estimator


def register_all() -> list[str]:
    """Register every estimator of ``agents.advantages`` with verl (again-safe); the names."""
    names = []
    for name in ADVANTAGES:
        verl_name = PREFIX + name
        if verl_name not in ADV_ESTIMATOR_REGISTRY:
            register_adv_est(verl_name)(verl_estimator(name))
        names.append(verl_name)
    return names


REGISTERED = register_all()
