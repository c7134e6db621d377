"""Advantage estimators on padded token rewards.

Every function takes tensors of shape [B, T]: one row per response, padded on the right, with
`mask` (bool or float) marking the valid response tokens. Rows are grouped by prompt:
rows i*G .. i*G+G-1 answer the same prompt, G = `group_size`, and B must be divisible by G.
Padding positions of every returned tensor are 0.

Estimators are registered by name with ``@register_advantage("name")`` on a function of
(token_rewards, mask, group_size); ``compute_advantages(name, ...)``, the trainer, the config's
validation and verl's estimator registry all look them up in ``ADVANTAGES``.

A group whose values are all equal carries no learning signal and gets all-zero advantages
(checked exactly, so float rounding in the mean can never be blown up by the division by eps).
"""

from collections.abc import Callable

import torch
from torch import Tensor

AdvantageFn = Callable[[Tensor, Tensor, int], Tensor]
ADVANTAGES: dict[str, AdvantageFn] = {}
MIN_GROUP_SIZE: dict[str, int] = {}
"""The smallest group size each registered estimator works with (checked when a config is made)."""


def register_advantage(name: str, min_group_size: int = 1) -> Callable[[AdvantageFn], AdvantageFn]:
    """Register an estimator of (token_rewards [B, T], mask [B, T], group_size) -> [B, T] under
    ``name``; ``min_group_size``: the smallest G it works with (leave-one-out baselines need 2)."""

    def decorator(function: AdvantageFn) -> AdvantageFn:
        ADVANTAGES[name] = function
        MIN_GROUP_SIZE[name] = min_group_size
        return function

    return decorator


def _float_mask(mask: Tensor, group_size: int, dtype: torch.dtype) -> Tensor:
    """Check the [B, T] mask against the group size and return it as floats."""
    if mask.dim() != 2:
        raise ValueError(f"mask must be [B, T]; got shape {tuple(mask.shape)}")
    if group_size < 1 or mask.shape[0] % group_size != 0:
        raise ValueError(
            f"batch size {mask.shape[0]} is not a multiple of group_size {group_size}; "
            "put the G responses to each prompt in consecutive rows"
        )
    return mask.to(dtype)


def _check(token_rewards: Tensor, mask: Tensor, group_size: int) -> Tensor:
    """Check that rewards and mask are both [B, T]; return the mask as floats."""
    if token_rewards.shape != mask.shape:
        raise ValueError(
            f"token_rewards {tuple(token_rewards.shape)} and mask {tuple(mask.shape)} must have the same [B, T] shape"
        )
    return _float_mask(mask, group_size, token_rewards.dtype)


def returns_to_go(token_rewards: Tensor, mask: Tensor) -> Tensor:
    """Return-to-go R_t = sum_{s >= t} r_s of each row, over valid tokens only.

    Args:
        token_rewards: [B, T] per-token rewards.
        mask: [B, T] valid response tokens.

    Returns:
        [B, T] returns, 0 at padding.
    """
    mask = _check(token_rewards, mask, 1)
    rewards = token_rewards * mask
    return rewards.flip(-1).cumsum(-1).flip(-1) * mask


def sequence_rewards(token_rewards: Tensor, mask: Tensor) -> Tensor:
    """Sequence reward of each row: the sum of its valid token rewards, shape [B]."""
    mask = _check(token_rewards, mask, 1)
    return (token_rewards * mask).sum(-1)


def _constant_groups(values: Tensor, mask: Tensor, group_size: int) -> Tensor:
    """[B // G] bool: True where all valid entries of the group's G rows of [B, T] are equal."""
    grouped = values.reshape(-1, group_size * values.shape[-1])
    valid = mask.reshape(grouped.shape) > 0
    high = torch.where(valid, grouped, -torch.inf).amax(-1)
    low = torch.where(valid, grouped, torch.inf).amin(-1)
    return ~(high > low)  # also True for a group without valid tokens


@register_advantage("token_grpo")
def token_grpo(token_rewards: Tensor, mask: Tensor, group_size: int, eps: float = 1e-6) -> Tensor:
    """Token-level GRPO (the paper's token-level advantage; README, "Training").

    A_{i,t} = (R_{i,t} - mean) / (std + eps), with R_{i,t} the return-to-go and mean and
    population std taken over all valid tokens of the G responses to the same prompt.

    Args:
        token_rewards: [B, T] per-token rewards.
        mask: [B, T] valid response tokens.
        group_size: G, responses per prompt.
        eps: added to the std.

    Returns:
        [B, T] advantages, 0 at padding and for groups whose returns are all equal.
    """
    mask = _check(token_rewards, mask, group_size)
    returns = returns_to_go(token_rewards, mask)
    batch, length = returns.shape
    grouped_returns = returns.reshape(-1, group_size * length)
    grouped_mask = mask.reshape(grouped_returns.shape)
    count = grouped_mask.sum(-1, keepdim=True).clamp(min=1)
    mean = (grouped_returns * grouped_mask).sum(-1, keepdim=True) / count
    variance = ((grouped_returns - mean) ** 2 * grouped_mask).sum(-1, keepdim=True) / count
    advantages = (grouped_returns - mean) / (variance.sqrt() + eps)
    constant = _constant_groups(returns, mask, group_size).unsqueeze(-1)
    advantages = torch.where(constant, 0.0, advantages) * grouped_mask
    return advantages.reshape(batch, length)


def grpo(sequence_rewards: Tensor, mask: Tensor, group_size: int, eps: float = 1e-6) -> Tensor:
    """Sequence-level GRPO: A_i = (R_i - mean_g R) / (std_g R + eps) on every valid token.

    mean and std (population) are over the G sequence rewards of the group.

    Args:
        sequence_rewards: [B] one reward per response.
        mask: [B, T] valid response tokens.
        group_size: G, responses per prompt.
        eps: added to the std.

    Returns:
        [B, T] advantages, 0 at padding and for groups whose rewards are all equal.
    """
    if sequence_rewards.shape != mask.shape[:1]:
        raise ValueError(
            f"sequence_rewards {tuple(sequence_rewards.shape)} must have one entry per row of mask {tuple(mask.shape)}"
        )
    mask = _float_mask(mask, group_size, sequence_rewards.dtype)
    grouped = sequence_rewards.reshape(-1, group_size)
    mean = grouped.mean(-1, keepdim=True)
    std = grouped.std(-1, correction=0, keepdim=True)
    advantages = (grouped - mean) / (std + eps)
    constant = grouped.amax(-1, keepdim=True) == grouped.amin(-1, keepdim=True)
    advantages = torch.where(constant, 0.0, advantages)
    return advantages.reshape(-1, 1) * mask


@register_advantage("rloo", min_group_size=2)
def rloo(token_rewards: Tensor, mask: Tensor, group_size: int) -> Tensor:
    """REINFORCE leave-one-out on sequence returns (Ahmadian et al., 2024).

    A_i = R_i - mean_{j != i} R_j with R_i the sum of row i's token rewards, the same value
    on every valid token of row i. No per-token credit: the token rewards only enter through
    their sum. Needs group_size >= 2.

    Args:
        token_rewards: [B, T] per-token rewards.
        mask: [B, T] valid response tokens.
        group_size: G, responses per prompt.

    Returns:
        [B, T] advantages, 0 at padding and for groups whose rewards are all equal.
    """
    mask = _check(token_rewards, mask, group_size)
    if group_size < 2:
        raise ValueError("rloo needs group_size >= 2: the baseline is the other responses' mean")
    grouped = sequence_rewards(token_rewards, mask).reshape(-1, group_size)
    baseline = (grouped.sum(-1, keepdim=True) - grouped) / (group_size - 1)
    advantages = grouped - baseline
    constant = grouped.amax(-1, keepdim=True) == grouped.amin(-1, keepdim=True)
    advantages = torch.where(constant, 0.0, advantages)
    return advantages.reshape(-1, 1) * mask


def reinforce(token_rewards: Tensor, mask: Tensor) -> Tensor:
    """Plain REINFORCE: the return-to-go, no baseline.

    Args:
        token_rewards: [B, T] per-token rewards.
        mask: [B, T] valid response tokens.

    Returns:
        [B, T] advantages, 0 at padding.
    """
    return returns_to_go(token_rewards, mask)


@register_advantage("token_rloo", min_group_size=2)
def token_rloo(token_rewards: Tensor, mask: Tensor, group_size: int, eps: float = 1e-6) -> Tensor:
    """Token-level leave-one-out: each token's return-to-go minus the other responses' return-to-go
    at the same position, scaled by the group's sequence-reward std.

    A_{i,t} = (R_{i,t} - mean_{j != i} R_{j,t}) / (std_j R_j + eps), with R_{j,t} = 0 once response
    j has ended (nothing is left for it to earn). ``token_grpo`` compares every return-to-go with one
    mean over all tokens of the group, and since return-to-go shrinks along a response, late tokens
    of even the best response get negative advantages; here the baseline shrinks with the position
    too, so a response that earns more than the others from position t on gets a positive advantage
    there. The baseline depends only on the other responses, so the gradient stays unbiased.

    Args:
        token_rewards: [B, T] per-token rewards.
        mask: [B, T] valid response tokens.
        group_size: G >= 2, responses per prompt.
        eps: added to the std.

    Returns:
        [B, T] advantages, 0 at padding and for groups whose sequence rewards are all equal.
    """
    mask = _check(token_rewards, mask, group_size)
    if group_size < 2:
        raise ValueError("token_rloo needs group_size >= 2: the baseline is the other responses' returns")
    returns = returns_to_go(token_rewards, mask)
    batch, length = returns.shape
    grouped = returns.reshape(-1, group_size, length)
    baseline = (grouped.sum(1, keepdim=True) - grouped) / (group_size - 1)
    totals = sequence_rewards(token_rewards, mask).reshape(-1, group_size)
    scale = totals.std(-1, correction=0, keepdim=True).unsqueeze(-1) + eps
    advantages = (grouped - baseline) / scale
    constant = (totals.amax(-1) == totals.amin(-1)).view(-1, 1, 1)
    advantages = torch.where(constant, 0.0, advantages)
    return advantages.reshape(batch, length) * mask


@register_advantage("grpo_credit")
def grpo_credit(token_rewards: Tensor, mask: Tensor, group_size: int, eps: float = 1e-6) -> Tensor:
    """Sparse GRPO's advantage plus the credit's placement within each response.

    A_{i,t} = (R_i - mean_g R) / (std_g R + eps) + (r_{i,t} - R_i / T_i) / (std_g R + eps), with R_i
    the sequence reward, T_i the response's length and mean and std (population) over the group's
    sequence rewards. The second term sums to zero over each response's tokens, so a response's
    tokens together get sparse GRPO's push, and the token rewards only move it from the tokens that
    earned little to those that earned much. ``token_grpo`` and ``token_rloo`` compare returns-to-go,
    which shrink along a response, so the token that ends a response gets a lower advantage than
    the tokens that continue it whatever the response earned; here the ending token gets the
    response's own advantage less its share R_i / T_i. Uniform credit gives exactly sparse GRPO.

    Args:
        token_rewards: [B, T] per-token rewards.
        mask: [B, T] valid response tokens.
        group_size: G, responses per prompt.
        eps: added to the std.

    Returns:
        [B, T] advantages, 0 at padding and for groups whose sequence rewards are all equal.
    """
    mask = _check(token_rewards, mask, group_size)
    totals = sequence_rewards(token_rewards, mask)
    lengths = mask.sum(-1, keepdim=True).clamp(min=1)
    grouped = totals.reshape(-1, group_size)
    scale = (grouped.std(-1, correction=0, keepdim=True) + eps).repeat_interleave(group_size, 0)
    placement = (token_rewards - totals.unsqueeze(-1) / lengths) / scale
    constant = (grouped.amax(-1) == grouped.amin(-1)).repeat_interleave(group_size).unsqueeze(-1)
    placement = torch.where(constant, 0.0, placement) * mask
    return grpo(totals, mask, group_size, eps) + placement


@register_advantage("grpo")
def sequence_grpo(token_rewards: Tensor, mask: Tensor, group_size: int) -> Tensor:
    """Sparse GRPO: ``grpo`` on the row sums of the token rewards (the sequence rewards)."""
    return grpo(sequence_rewards(token_rewards, mask), mask, group_size)


@register_advantage("reinforce")
def reinforce_estimator(token_rewards: Tensor, mask: Tensor, group_size: int) -> Tensor:
    """``reinforce`` in the registry's signature (the group size is unused)."""
    return reinforce(token_rewards, mask)


def compute_advantages(name: str, token_rewards: Tensor, mask: Tensor, group_size: int) -> Tensor:
    """Advantages by estimator name, one signature for all.

    Args:
        name: a registered estimator ("token_grpo", "grpo", "rloo", "reinforce", ...).
        token_rewards: [B, T] per-token rewards.
        mask: [B, T] valid response tokens.
        group_size: G, responses per prompt (consecutive rows).

    Returns:
        [B, T] advantages, 0 at padding.
    """
    if name not in ADVANTAGES:
        raise ValueError(f"unknown advantage estimator {name!r}; choose one of {sorted(ADVANTAGES)}")
    return ADVANTAGES[name](token_rewards, mask, group_size)
