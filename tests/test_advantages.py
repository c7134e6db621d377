"""Advantage estimators against numbers worked out by hand."""

import math

import pytest
import torch

from agents.advantages import (
    ADVANTAGES,
    compute_advantages,
    grpo,
    grpo_credit,
    reinforce,
    rloo,
    sequence_rewards,
    token_grpo,
    token_rloo,
)

# Two groups of G = 2, T = 3; the 9.0 entries are padding and must be ignored.
TOKEN_REWARDS = torch.tensor(
    [
        [0.1, 0.2, 0.3],  # returns 0.6, 0.5, 0.3
        [0.4, 0.0, 9.0],  # returns 0.4, 0.0, pad
        [0.0, 0.0, 0.5],  # returns 0.5, 0.5, 0.5
        [0.0, 0.5, 9.0],  # returns 0.5, 0.5, pad: second group has zero variance
    ]
)
MASK = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 1, 0]], dtype=torch.bool)


def test_reinforce_is_masked_return_to_go():
    expected = torch.tensor([[0.6, 0.5, 0.3], [0.4, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.0]])
    torch.testing.assert_close(reinforce(TOKEN_REWARDS, MASK), expected)


def test_token_grpo_normalises_returns_over_all_tokens_of_the_group():
    # Group 1 valid returns 0.6 0.5 0.3 0.4 0.0: mean 0.36, population variance 0.0424.
    std = math.sqrt(0.0424)
    expected = torch.tensor(
        [
            [0.24 / std, 0.14 / std, -0.06 / std],
            [0.04 / std, -0.36 / std, 0.0],
            [0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0],
        ]
    )
    torch.testing.assert_close(token_grpo(TOKEN_REWARDS, MASK, group_size=2), expected)


def test_token_grpo_eps_is_added_to_std():
    std = math.sqrt(0.0424)
    advantages = token_grpo(TOKEN_REWARDS, MASK, group_size=2, eps=0.1)
    assert advantages[0, 0].item() == pytest.approx(0.24 / (std + 0.1), rel=1e-5)


def test_token_grpo_float_mask_equals_bool_mask():
    torch.testing.assert_close(token_grpo(TOKEN_REWARDS, MASK.float(), 2), token_grpo(TOKEN_REWARDS, MASK, 2))


def test_equal_returns_give_exact_zeros_not_rounding_noise():
    # Six float32 returns of 0.9 average to 0.9 - 6e-8, and (R - mean) / (std + eps) would be
    # -0.056 on every token without the explicit zero-variance rule.
    rewards = torch.tensor([[0.0, 0.0, 0.9], [0.0, 0.0, 0.9]])
    assert torch.equal(token_grpo(rewards, torch.ones(2, 3), 2), torch.zeros(2, 3))
    # Three sequence rewards of 0.1: rloo's leave-one-out mean is off by 7e-9 in float32.
    rewards = torch.tensor([[0.0, 0.1], [0.1, 0.0], [0.05, 0.05]])
    for name in ("grpo", "rloo"):
        advantages = compute_advantages(name, rewards, torch.ones(3, 2), group_size=3)
        assert torch.equal(advantages, torch.zeros(3, 2)), name


def test_grpo_uses_sequence_rewards_with_population_std():
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.5])  # mean 0.5, variance 0.125
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [0, 0]])
    a = 0.5 / math.sqrt(0.125)
    expected = torch.tensor([[a, a], [-a, 0.0], [0.0, 0.0], [0.0, 0.0]])
    torch.testing.assert_close(grpo(rewards, mask, group_size=4), expected)


def test_grpo_zero_variance_group_is_zero():
    rewards = torch.tensor([0.3, 0.3, 1.0, 0.0])
    advantages = grpo(rewards, torch.ones(4, 2), group_size=2)
    assert torch.equal(advantages[:2], torch.zeros(2, 2))
    torch.testing.assert_close(advantages[2:], torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))


def test_rloo_subtracts_mean_of_the_other_responses():
    # Sequence returns 0.9, 0.3, 0.0 (the 5.0 is padding).
    rewards = torch.tensor([[0.4, 0.5], [0.3, 5.0], [0.0, 0.0]])
    mask = torch.tensor([[1, 1], [1, 0], [1, 1]])
    expected = torch.tensor(
        [
            [0.9 - (0.3 + 0.0) / 2] * 2,
            [0.3 - (0.9 + 0.0) / 2, 0.0],
            [0.0 - (0.9 + 0.3) / 2] * 2,
        ]
    )
    torch.testing.assert_close(rloo(rewards, mask, group_size=3), expected)


def test_rloo_needs_two_responses_per_prompt():
    with pytest.raises(ValueError, match="group_size >= 2"):
        rloo(TOKEN_REWARDS, MASK, group_size=1)


def test_compute_advantages_dispatches_with_row_sum_sequence_rewards():
    assert set(ADVANTAGES) == {"token_grpo", "token_rloo", "grpo_credit", "grpo", "rloo", "reinforce"}
    torch.testing.assert_close(
        compute_advantages("grpo", TOKEN_REWARDS, MASK, 2),
        grpo(torch.tensor([0.6, 0.4, 0.5, 0.5]), MASK, 2),
    )
    torch.testing.assert_close(
        compute_advantages("token_grpo", TOKEN_REWARDS, MASK, 2), token_grpo(TOKEN_REWARDS, MASK, 2)
    )
    torch.testing.assert_close(compute_advantages("reinforce", TOKEN_REWARDS, MASK, 2), reinforce(TOKEN_REWARDS, MASK))
    torch.testing.assert_close(compute_advantages("rloo", TOKEN_REWARDS, MASK, 2), rloo(TOKEN_REWARDS, MASK, 2))


def test_sequence_rewards_sum_valid_tokens_only():
    torch.testing.assert_close(sequence_rewards(TOKEN_REWARDS, MASK), torch.tensor([0.6, 0.4, 0.5, 0.5]))


def test_bad_inputs_raise_with_the_reason():
    with pytest.raises(ValueError, match="unknown advantage estimator"):
        compute_advantages("ppo", TOKEN_REWARDS, MASK, 2)
    with pytest.raises(ValueError, match="not a multiple of group_size 3"):
        token_grpo(TOKEN_REWARDS, MASK, group_size=3)
    with pytest.raises(ValueError, match="same"):
        token_grpo(TOKEN_REWARDS, MASK[:, :2], group_size=2)


def test_token_rloo_subtracts_the_others_return_at_the_same_position():
    # Group 1: returns [0.6, 0.5, 0.3] and [0.4, 0.0, (ended) 0]; sequence rewards 0.6 and 0.4, std 0.1.
    # Row 0: [0.6-0.4, 0.5-0.0, 0.3-0.0] / 0.1; row 1: [0.4-0.6, 0.0-0.5] / 0.1, padding 0.
    # Group 2 has equal sequence rewards (0.5, 0.5): all zero.
    expected = torch.tensor([[2.0, 5.0, 3.0], [-2.0, -5.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(token_rloo(TOKEN_REWARDS, MASK, 2), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(compute_advantages("token_rloo", TOKEN_REWARDS, MASK, 2), expected, atol=1e-4, rtol=1e-4)


def test_token_rloo_keeps_the_best_responses_late_tokens_positive_where_token_grpo_does_not():
    rewards = torch.tensor([[0.3, 0.3, 0.3, 0.1], [0.1, 0.0, 0.0, 0.0], [0.2, 0.1, 0.0, 0.0]])
    mask = torch.ones_like(rewards, dtype=torch.bool)
    assert token_grpo(rewards, mask, 3)[0, -1] < 0  # the bias: the best response's last token is pushed down
    assert (token_rloo(rewards, mask, 3)[0] > 0).all()
    with pytest.raises(ValueError, match="group_size >= 2"):
        token_rloo(rewards, mask, 1)


def test_grpo_credit_is_sparse_grpo_plus_placement_that_sums_to_zero_per_response():
    # Group 1: sequence rewards 0.6 and 0.4, mean 0.5, std 0.1: sparse advantages +1 and -1.
    # Row 0 (T = 3, R / T = 0.2): placement [0.1-0.2, 0.2-0.2, 0.3-0.2] / 0.1 = [-1, 0, 1].
    # Row 1 (T = 2, R / T = 0.2): placement [0.4-0.2, 0.0-0.2] / 0.1 = [2, -2], padding 0.
    # Group 2 has equal sequence rewards (0.5, 0.5): all zero.
    expected = torch.tensor([[0.0, 1.0, 2.0], [1.0, -3.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    got = grpo_credit(TOKEN_REWARDS, MASK, 2)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(compute_advantages("grpo_credit", TOKEN_REWARDS, MASK, 2), got)
    sparse = compute_advantages("grpo", TOKEN_REWARDS, MASK, 2)
    torch.testing.assert_close((got * MASK).sum(-1), (sparse * MASK).sum(-1), atol=1e-4, rtol=1e-4)


def test_grpo_credit_with_uniform_credit_is_sparse_grpo_and_keeps_the_best_responses_end_positive():
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    totals = torch.tensor([0.9, 0.3, 0.5])
    uniform = totals.unsqueeze(-1) / mask.sum(-1, keepdim=True) * mask
    torch.testing.assert_close(grpo_credit(uniform, mask, 3), compute_advantages("grpo", uniform, mask, 3))
    # Credit on the first tokens: the return-to-go estimators push the best response's ending token
    # down, this one keeps it at the response's own advantage less its share.
    rewards = torch.tensor([[0.5, 0.3, 0.1, 0.0], [0.3, 0.0, 0.0, 0.0], [0.4, 0.1, 0.0, 0.0]]) * mask
    assert token_grpo(rewards, mask, 3)[0, 3] < 0 and token_rloo(rewards, mask, 3)[0, 3] <= 0
    assert grpo_credit(rewards, mask, 3)[0, 3] > 0
