"""Token attribution: how one met criterion's credit is spread over the response tokens.

For criterion k the judge's log-probability of its True token, log softmax(logits)[z], is
differentiated with respect to the input embedding e_t of every response position t, giving g_t
(the README's reward section, step 3; the paper's gradient-based credit). A method turns (g_t, x_t)
into a score b_t, where x_t is e_t itself or, for methods with a null baseline, e_t minus the mean
input embedding; the credit is alpha_k = softmax(b / tau) over the response positions. Methods
that need no gradient (``uniform``, ``last_token``) give alpha directly.

Research variants change one part each: the differentiated objective (``objective="margin"``:
log p(True) - log p(False), which also pushes the False logit down), the baseline (``baseline=
"mean"``), or the path (``steps > 1``: integrated gradients, g averaged over embeddings scaled
from the baseline to the input), or where the gradient is read (``depth > 0``: the hidden states
entering decoder layer round(depth * layers) instead of the input embeddings, so the backward pass
stops there; x_t is then that hidden state).

Add a method with ``register_attribution``; it is then selectable by name everywhere (env, scorer,
trainer, config validation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional, Union

import torch

Tau = Union[str, float]
OBJECTIVES = ("log_p_true", "margin")
BASELINES = ("none", "mean")


@dataclass(frozen=True)
class Attribution:
    """A named attribution method.

    Args:
        name: the name users select it by.
        needs_grad: whether it reads the judge's input gradient (else no backward pass is run).
        score: (grads [T, H] float32, inputs [T, H] float32) -> scores b [T]; softmax(b / tau)
            gives alpha. ``inputs`` are the embeddings, minus the baseline when there is one.
            Unused when ``weights`` is set.
        weights: T -> alpha [T] directly, for methods that ignore the judge.
        objective: "log_p_true" (log softmax(logits)[True], the paper's) or "margin"
            (logit(True) - logit(False), the contrastive objective).
        baseline: "none" or "mean" (the mean input embedding of the vocabulary, a null input).
        steps: 1, or the number of points of integrated gradients from the baseline.
        depth: 0 reads the gradient at the input embeddings; a share in (0, 1) reads it at the hidden
            states entering decoder layer round(depth * number of layers) (a cheaper backward pass).
    """

    name: str
    needs_grad: bool
    score: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None
    weights: Optional[Callable[[int], torch.Tensor]] = None
    objective: str = "log_p_true"
    baseline: str = "none"
    steps: int = 1
    depth: float = 0.0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES or self.baseline not in BASELINES or self.steps < 1:
            raise ValueError(
                f"attribution {self.name!r}: objective in {OBJECTIVES}, baseline in {BASELINES}, "
                f"steps >= 1 (got {self.objective!r}, {self.baseline!r}, {self.steps})"
            )
        if not 0 <= self.depth < 1 or (self.depth > 0 and (self.baseline != "none" or self.steps > 1)):
            raise ValueError(
                f"attribution {self.name!r}: depth must be in [0, 1), and a depth > 0 takes no baseline "
                f"and one step (got depth {self.depth}, baseline {self.baseline!r}, steps {self.steps})"
            )
        if (self.score is None) == (self.weights is None):
            raise ValueError(f"attribution {self.name!r}: give exactly one of score and weights")

    def alpha(
        self, grads: Optional[torch.Tensor], inputs: Optional[torch.Tensor], length: int, tau: Tau = "auto"
    ) -> torch.Tensor:
        """Credit over ``length`` response positions; float32, non-negative, sums to 1."""
        if self.weights is not None:
            return self.weights(length)
        scores = self.score(grads.float(), inputs.float())
        return softmax_with_temperature(scores, tau)

    def objective_of(self, logits: torch.Tensor, true_id: int, false_id: int) -> torch.Tensor:
        """The differentiated quantity per row of answer logits [B, V]."""
        if self.objective == "margin":
            return logits[:, true_id] - logits[:, false_id]
        return torch.log_softmax(logits, dim=-1)[:, true_id]


def check_tau(tau: Tau) -> None:
    """ValueError unless ``tau`` is "auto" or a finite number > 0 (a bool is not a number here)."""
    if tau == "auto":
        return
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be 'auto' or a finite number > 0, got {tau!r}")


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


# ---- the methods: plain functions, so that envs and scorers pickle ----------------------------
def grad_dot_input(grads: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """b_t = g_t . x_t (gradient x input)."""
    return (grads * inputs).sum(-1)


def abs_grad_dot_input(grads: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """b_t = |g_t . x_t|: gradient x input, either sign counting as evidence."""
    return (grads * inputs).sum(-1).abs()


def grad_l1(grads: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """b_t = ||g_t||_1."""
    return grads.abs().sum(-1)


def grad_l2(grads: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """b_t = ||g_t||_2."""
    return grads.norm(dim=-1)


def windowed(score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], width: int):
    """A score averaged over a window of ``width`` neighbouring tokens (evidence comes in phrases and
    sentences, not single tokens); a named module-level function, so scorers still pickle."""
    return _Windowed(score, width)


@dataclass(frozen=True)
class _Windowed:
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    width: int

    def __call__(self, grads: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        scores = self.score(grads, inputs)
        kernel = torch.ones(1, 1, self.width, dtype=scores.dtype) / self.width
        padded = torch.nn.functional.pad(
            scores.view(1, 1, -1), (self.width // 2, (self.width - 1) // 2), mode="replicate"
        )
        return torch.nn.functional.conv1d(padded, kernel).view(-1)


def uniform(length: int) -> torch.Tensor:
    """alpha_t = 1 / T."""
    return torch.full((length,), 1.0 / length)


def last_token(length: int) -> torch.Tensor:
    """All credit on the last token: the sparse reward."""
    alpha = torch.zeros(length)
    alpha[-1] = 1.0
    return alpha


ATTRIBUTIONS: dict[str, Attribution] = {}


def register_attribution(attribution: Attribution) -> Attribution:
    """Make an attribution method selectable by its name."""
    if not isinstance(attribution, Attribution):
        raise TypeError(f"register_attribution takes an Attribution, got {type(attribution).__name__}")
    ATTRIBUTIONS[attribution.name] = attribution
    return attribution


register_attribution(Attribution("grad_x_embed", True, score=grad_dot_input))
register_attribution(Attribution("grad_l1", True, score=grad_l1))
register_attribution(Attribution("grad_l2", True, score=grad_l2))
register_attribution(Attribution("uniform", False, weights=uniform))
register_attribution(Attribution("last_token", False, weights=last_token))
# research variants (see the README's attribution table for how they place credit)
register_attribution(Attribution("abs_grad_x_embed", True, score=abs_grad_dot_input))
register_attribution(Attribution("contrastive_grad_x_embed", True, score=grad_dot_input, objective="margin"))
register_attribution(Attribution("contrastive_grad_l2", True, score=grad_l2, objective="margin"))
register_attribution(Attribution("grad_x_delta", True, score=grad_dot_input, baseline="mean"))
register_attribution(Attribution("integrated_gradients", True, score=grad_dot_input, baseline="mean", steps=8))
register_attribution(Attribution("grad_l2_window5", True, score=windowed(grad_l2, 5)))
# the contrastive rule read at hidden states part-way up the judge (the backward stops there)
for _depth in (25, 50, 75):
    register_attribution(
        Attribution(f"contrastive_grad_l2_d{_depth}", True, score=grad_l2, objective="margin", depth=_depth / 100)
    )


def get_attribution(name: str | Attribution) -> Attribution:
    """The attribution method of this name (ValueError listing the known ones)."""
    if isinstance(name, Attribution):
        return name
    try:
        return ATTRIBUTIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown attribution {name!r}; choose one of {sorted(ATTRIBUTIONS)}") from None
