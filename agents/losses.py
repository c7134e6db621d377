"""Policy losses on padded response tokens, and the log-probs they are computed from.

Tensors are [B, T], one response per row, padded on the right, `mask` (bool or float) marking
the valid tokens. Every loss is averaged per response over its valid tokens, then over the
responses that have at least one valid token (README, "Training"), so a long response
weighs as much as a short one.

Log-probs here and in the samplers (agents/sampling.py) are of the model's raw distribution:
log_softmax of the unmodified logits, no temperature, top-k or top-p.
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over each row's valid tokens, then over rows that have any.

    Args:
        values: [B, T] per-token values.
        mask: [B, T] valid tokens.

    Returns:
        a scalar tensor; 0 when no row has a valid token.
    """
    mask = mask.to(values.dtype)
    count = mask.sum(-1)
    per_response = (values * mask).sum(-1) / count.clamp(min=1)
    return per_response.sum() / (count > 0).sum().clamp(min=1)


def ppo_clip_loss(
    logprobs: Tensor, behaviour_logprobs: Tensor, advantages: Tensor, mask: Tensor, clip_eps: float = 0.2
) -> tuple[Tensor, dict[str, float]]:
    """PPO clipped surrogate, -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A).

    Args:
        logprobs: [B, T] log-probs of the response tokens under the current policy.
        behaviour_logprobs: [B, T] log-probs under the policy that sampled them (before the update).
        advantages: [B, T] advantages.
        mask: [B, T] valid response tokens.
        clip_eps: the clip range eps.

    Returns:
        (loss, stats): the scalar loss to minimise, and floats "clip_fraction" (share of tokens
        with |ratio - 1| > eps) and "approx_kl" (k3 estimate of KL(behaviour || current),
        (ratio - 1) - log ratio), both averaged like the loss.
    """
    mask = mask.bool()
    # Padding may hold anything (even -inf), so the log-ratio is set to 0 there before exp.
    log_ratio = torch.where(mask, logprobs - behaviour_logprobs, 0.0)
    ratio = log_ratio.exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages
    loss = masked_mean(-torch.minimum(unclipped, clipped), mask)
    with torch.no_grad():
        stats = {
            "clip_fraction": masked_mean(((ratio - 1).abs() > clip_eps).float(), mask).item(),
            "approx_kl": masked_mean((ratio - 1) - log_ratio, mask).item(),
        }
    return loss, stats


def kl_k3(logprobs: Tensor, ref_logprobs: Tensor, mask: Tensor) -> Tensor:
    """k3 estimator of KL(current || reference): exp(d) - d - 1 with d = ref - current.

    Args:
        logprobs: [B, T] log-probs under the current policy (of tokens it sampled).
        ref_logprobs: [B, T] log-probs of the same tokens under the reference policy.
        mask: [B, T] valid response tokens.

    Returns:
        a scalar tensor, averaged per response then over responses; differentiable.
    """
    diff = torch.where(mask.bool(), ref_logprobs - logprobs, 0.0)
    return masked_mean(diff.exp() - diff - 1, mask)


def policy_loss(
    logprobs: Tensor,
    behaviour_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    ref_logprobs: Tensor | None = None,
    clip_eps: float = 0.2,
    kl_coef: float = 0.0,
) -> tuple[Tensor, dict[str, float]]:
    """PPO clipped loss plus kl_coef * k3 KL to a reference policy.

    Args:
        logprobs: [B, T] current log-probs.
        behaviour_logprobs: [B, T] log-probs of the sampling policy (before the update).
        advantages: [B, T] advantages.
        mask: [B, T] valid response tokens.
        ref_logprobs: [B, T] reference log-probs; needed when kl_coef > 0.
        clip_eps: PPO clip range.
        kl_coef: weight of the KL term; 0 (default) adds none.

    Returns:
        (loss, stats): stats of ppo_clip_loss, plus "kl_ref" when ref_logprobs is given.
    """
    loss, stats = ppo_clip_loss(logprobs, behaviour_logprobs, advantages, mask, clip_eps)
    if kl_coef > 0 and ref_logprobs is None:
        raise ValueError("policy_loss: kl_coef > 0 needs ref_logprobs")
    if ref_logprobs is not None:
        kl = kl_k3(logprobs, ref_logprobs, mask)
        stats["kl_ref"] = kl.item()
        loss = loss + kl_coef * kl
    return loss, stats


def build_batch(
    prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]], pad_id: int
) -> tuple[Tensor, Tensor, int]:
    """Lay out (prompt, response) pairs the way `token_logprobs` reads them.

    Each row is its prompt left-padded to the longest prompt, then its response right-padded
    to the longest response.

    Args:
        prompt_ids: token ids of each row's prompt.
        response_ids: token ids of each row's response.
        pad_id: the id written into padding (masked out, any id works).

    Returns:
        (input_ids [B, P + T], attention_mask [B, P + T], T): T the response width; the
        response mask is attention_mask[:, -T:].
    """
    prompt_width = max(len(ids) for ids in prompt_ids)
    response_width = max(len(ids) for ids in response_ids)
    rows, masks = [], []
    for prompt, response in zip(prompt_ids, response_ids, strict=True):
        left = prompt_width - len(prompt)
        right = response_width - len(response)
        rows.append([pad_id] * left + list(prompt) + list(response) + [pad_id] * right)
        masks.append([0] * left + [1] * (len(prompt) + len(response)) + [0] * right)
    return torch.tensor(rows), torch.tensor(masks), response_width


def token_logprobs(model: nn.Module, input_ids: Tensor, attention_mask: Tensor, response_length: int) -> Tensor:
    """Log-probs of the response tokens under a HF causal LM, in one forward pass.

    Each row is its prompt (left-padded) followed by its response (right-padded), so the
    responses fill the last `response_length` columns. Only those positions' logits are
    computed (`logits_to_keep`), and the float32 log-softmax is taken as
    selected logit - logsumexp, one row at a time, never as a full [B, T, V] float32 copy.

    Args:
        model: a transformers causal LM.
        input_ids: [B, L] prompt and response token ids.
        attention_mask: [B, L] 1 on real prompt and response tokens, 0 on padding.
        response_length: T, the number of response columns at the end of each row.

    Returns:
        [B, T] float32 log-probs of input_ids[:, -T:], 0 at padding.
    """
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    # The logit at position p predicts token p + 1: keep the T + 1 last, drop the very last.
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        logits_to_keep=response_length + 1,
    ).logits[:, :-1]
    targets = input_ids[:, -response_length:]
    selected = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1).float()
    normaliser = torch.stack([torch.logsumexp(row.float(), dim=-1) for row in logits])
    response_mask = attention_mask[:, -response_length:].bool()
    return torch.where(response_mask, selected - normaliser, 0.0)
