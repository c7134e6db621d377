"""PPO, KL and log-prob helpers against hand-computed values and a tiny in-code model."""

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from agents.losses import build_batch, kl_k3, masked_mean, policy_loss, ppo_clip_loss, token_logprobs

# Ratios 1.5, 0.5, 1.1 / 0.5, 1.5, pad; padding holds -inf log-probs that must not leak.
RATIOS = torch.tensor([[1.5, 0.5, 1.1], [0.5, 1.5, 1.0]])
OLD_LOGPROBS = torch.tensor([[-1.0, -2.0, -0.5], [-1.5, -0.7, 0.0]])
ADVANTAGES = torch.tensor([[1.0, 1.0, 2.0], [-1.0, -1.0, 0.0]])
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)


def current_logprobs() -> torch.Tensor:
    logprobs = OLD_LOGPROBS + RATIOS.log()
    logprobs[1, 2] = -torch.inf
    return logprobs.requires_grad_()


def test_masked_mean_averages_per_response_then_over_responses():
    values = torch.tensor([[1.0, 3.0, 100.0], [4.0, 100.0, 100.0], [100.0, 100.0, 100.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert masked_mean(values, mask).item() == pytest.approx((2.0 + 4.0) / 2)


def test_ppo_clip_loss_clips_ratios_outside_the_range():
    logprobs = current_logprobs()
    loss, stats = ppo_clip_loss(logprobs, OLD_LOGPROBS, ADVANTAGES, MASK, clip_eps=0.2)
    # Per token -min(r A, clip(r) A):
    #   row 0: r 1.5, A 1 -> -1.2 (clipped); r 0.5, A 1 -> -0.5; r 1.1, A 2 -> -2.2
    #   row 1: r 0.5, A -1 -> 0.8 (clipped); r 1.5, A -1 -> 1.5
    expected = ((-1.2 - 0.5 - 2.2) / 3 + (0.8 + 1.5) / 2) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert stats["clip_fraction"] == pytest.approx((2 / 3 + 2 / 2) / 2)
    k3 = [[r - 1 - math.log(r) for r in row] for row in ([1.5, 0.5, 1.1], [0.5, 1.5])]
    assert stats["approx_kl"] == pytest.approx((sum(k3[0]) / 3 + sum(k3[1]) / 2) / 2, rel=1e-5)

    loss.backward()
    # d loss / d logprob = -r A / (tokens in row * rows) where unclipped, 0 where clipped.
    expected_grad = torch.tensor([[0.0, -0.5 * 1.0 / 6, -1.1 * 2.0 / 6], [0.0, -1.5 * -1.0 / 4, 0.0]])
    torch.testing.assert_close(logprobs.grad, expected_grad)


def test_ppo_clip_loss_is_minus_mean_advantage_at_ratio_one():
    loss, stats = ppo_clip_loss(OLD_LOGPROBS, OLD_LOGPROBS, ADVANTAGES, MASK)
    assert loss.item() == pytest.approx(-((1 + 1 + 2) / 3 + (-1 - 1) / 2) / 2)
    assert stats == {"clip_fraction": 0.0, "approx_kl": 0.0}


def test_kl_k3_hand_values():
    logprobs = torch.tensor([[-1.0, -1.0], [-2.0, 5.0]])
    ref = torch.tensor([[-1.0, -1.0 + math.log(2)], [-2.0 - math.log(2), 0.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    # d = ref - lp: row 0: 0, ln 2 -> 0, 1 - ln 2; row 1: -ln 2 -> 0.5 + ln 2 - 1
    expected = ((1 - math.log(2)) / 2 + (math.log(2) - 0.5)) / 2
    assert kl_k3(logprobs, ref, mask).item() == pytest.approx(expected, rel=1e-6)


def test_policy_loss_adds_weighted_kl():
    logprobs = current_logprobs()
    ref = OLD_LOGPROBS - 0.3
    ppo, _ = ppo_clip_loss(logprobs, OLD_LOGPROBS, ADVANTAGES, MASK)
    kl = kl_k3(logprobs, ref, MASK)
    loss, stats = policy_loss(logprobs, OLD_LOGPROBS, ADVANTAGES, MASK, ref_logprobs=ref, kl_coef=0.1)
    assert loss.item() == pytest.approx(ppo.item() + 0.1 * kl.item(), rel=1e-6)
    assert stats["kl_ref"] == pytest.approx(kl.item())
    assert policy_loss(logprobs, OLD_LOGPROBS, ADVANTAGES, MASK)[0].item() == pytest.approx(ppo.item())
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(logprobs, OLD_LOGPROBS, ADVANTAGES, MASK, kl_coef=0.1)


def test_token_logprobs_match_unpadded_forward_per_row():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    model = LlamaForCausalLM(config).eval()
    prompts = [[1, 5, 7, 9], [1, 3]]
    responses = [[4, 2], [8, 6, 11, 2]]
    input_ids, attention_mask, width = build_batch(prompts, responses, pad_id=0)
    assert width == 4
    assert input_ids.tolist() == [[1, 5, 7, 9, 4, 2, 0, 0], [0, 0, 1, 3, 8, 6, 11, 2]]

    with torch.no_grad():
        logprobs = token_logprobs(model, input_ids, attention_mask, width)
        for row, (prompt, response) in enumerate(zip(prompts, responses)):
            ids = torch.tensor([prompt + response])
            full = model(ids).logits[0].log_softmax(-1)
            expected = [full[len(prompt) - 1 + i, token] for i, token in enumerate(response)]
            expected += [0.0] * (width - len(response))
            torch.testing.assert_close(logprobs[row], torch.tensor(expected), atol=1e-5, rtol=0)
