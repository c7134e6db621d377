"""Token attribution: how one met criterion's credit is spread over the response tokens.

For criterion k the judge's log-probability of its True token, log softmax(logits)[z], is
differentiated with respect to the input embedding e_t of every response position t, giving g_t.
A method turns (g_t, e_t) into a score b_t; the credit is alpha_k = softmax(b / tau) over the
response positions (DESIGN step 4). Methods that need no gradient (``uniform``, ``last_token``)
give alpha directly.

Add a method with ``register``; it is then selectable by name everywhere (env, scorer, trainer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch

Tau = Union[str, float]


@dataclass(frozen=True)
class Attribution:
    """A named attribution method.

    Args:
        name: the name users select it by.
        needs_grad: whether it reads the judge's input gradient (else no backward pass is run).
        score: (grads [T, H] float32, embeds [T, H] float32) -> scores b [T]; softmax(b / tau)
            gives alpha. Unused when ``weights`` is set.
        weights: T -> alpha [T] directly, for methods that ignore the judge.
    """

    name: str
    needs_grad: bool
    score: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None
    weights: Optional[Callable[[int], torch.Tensor]] = None

    def alpha(self, grads: Optional[torch.Tensor], embeds: Optional[torch.Tensor], length: int,
              tau: Tau = "auto") -> torch.Tensor:
        """Credit over ``length`` response positions; float32, non-negative, sums to 1."""
        if self.weights is not None:
            return self.weights(length)
        scores = self.score(grads.float(), embeds.float())
        return softmax_with_temperature(scores, tau)


def softmax_with_temperature(scores: torch.Tensor, tau: Tau = "auto") -> torch.Tensor:
    """alpha = softmax(scores / tau); tau="auto" is the population std of the scores (uniform if 0)."""
    scores = scores.float()
    if tau == "auto":
        tau_value = scores.std(correction=0) if scores.numel() > 1 else scores.new_tensor(0.0)
        if not tau_value > 0:
            return torch.full_like(scores, 1.0 / scores.numel())
    else:
        tau_value = float(tau)
        if not tau_value > 0:
            raise ValueError(f"tau must be 'auto' or a positive float, got {tau!r}")
    return torch.softmax(scores / tau_value, dim=0)


def _uniform(length: int) -> torch.Tensor:
    return torch.full((length,), 1.0 / length)


def _last_token(length: int) -> torch.Tensor:
    alpha = torch.zeros(length)
    alpha[-1] = 1.0
    return alpha


ATTRIBUTIONS: dict[str, Attribution] = {}


def register(attribution: Attribution) -> Attribution:
    """Make an attribution method selectable by its name."""
    ATTRIBUTIONS[attribution.name] = attribution
    return attribution


register(Attribution("grad_x_embed", True, score=lambda g, e: (g * e).sum(-1)))
register(Attribution("grad_l1", True, score=lambda g, e: g.abs().sum(-1)))
register(Attribution("grad_l2", True, score=lambda g, e: g.norm(dim=-1)))
register(Attribution("uniform", False, weights=_uniform))
register(Attribution("last_token", False, weights=_last_token))


def get_attribution(name: str | Attribution) -> Attribution:
    """The attribution method of this name (ValueError listing the known ones)."""
    if isinstance(name, Attribution):
        return name
    try:
        return ATTRIBUTIONS[name]
    except KeyError:
        raise ValueError(f"unknown attribution {name!r}; choose one of {sorted(ATTRIBUTIONS)}") from None
