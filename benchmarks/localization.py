"""Does the credit land where the criterion is satisfied?

Each case is a response in which one sentence (the span) is what meets the criterion and the rest
is unrelated filler. For every attribution variant this prints the mean lift: the share of the
criterion's credit that falls on the span divided by the span's share of the tokens (1.0 = no
better than uniform; higher is better). The judge is the bundled model, self-judging.

    python benchmarks/localization.py [--tau auto]
"""

from __future__ import annotations

import argparse

import numpy as np

from g2r_env import Grad2Reward, Judge
from tasks import Criterion, Task

FILLER = [
    "It is worth planning a little before you start.",
    "Many people find that a calm approach works best.",
    "Keep a notebook handy so you can write things down.",
    "Ask a friend for their experience as well.",
    "Everyone is different, so adjust as you go.",
]

# (question, criterion, the sentence that meets it, where it goes among the filler sentences)
CASES = [
    (
        "Give me tips for a first trip to Japan.",
        "Mentions the Japan Rail Pass",
        "Buy a Japan Rail Pass before you go, because it saves money on trains.",
        0,
    ),
    (
        "How do I keep houseplants alive?",
        "Recommends checking the soil before watering",
        "Check that the top inch of soil is dry before you water.",
        2,
    ),
    (
        "Explain inflation simply.",
        "Mentions that prices rise over time",
        "Inflation means that prices rise over time, so money buys less.",
        4,
    ),
    (
        "Write a short bedtime story.",
        "The story includes a dragon",
        "A small green dragon lived under the old stone bridge.",
        1,
    ),
    (
        "How can I lower my stress?",
        "Recommends deep breathing",
        "Try slow, deep breathing for five minutes when you feel tense.",
        3,
    ),
    (
        "What should I do for a minor burn?",
        "Recommends cooling the burn under running water",
        "Hold the burn under cool running water for ten minutes.",
        5,
    ),
    (
        "Compare cats and dogs as pets.",
        "Mentions that dogs need daily walks",
        "Dogs need to be walked every day, while cats do not.",
        2,
    ),
    ("Explain photosynthesis.", "Mentions chlorophyll", "The green pigment chlorophyll captures the light energy.", 1),
]

VARIANTS = ["grad_x_embed", "grad_l1", "grad_l2", "uniform", "last_token"]


def build_case(tokenizer, question, criterion, sentence, position):
    parts = FILLER[:position] + [sentence] + FILLER[position:]
    ids, span = [], None
    for n, part in enumerate(parts):
        piece = tokenizer.encode((" " if n else "") + part, add_special_tokens=False)
        if part == sentence:
            span = (len(ids), len(ids) + len(piece))
        ids += piece
    task = Task(f"loc-{position}", question, (Criterion(criterion, 1.0),))
    return task, ids, span


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tau", default="auto")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    tau = args.tau if args.tau == "auto" else float(args.tau)

    judge = Judge.load("bundled", device=args.device)
    cases = [build_case(judge.tokenizer, *case) for case in CASES]
    tasks, responses = [c[0] for c in cases], [c[1] for c in cases]
    print(
        f"{len(cases)} cases, responses of {min(map(len, responses))}-{max(map(len, responses))} tokens, "
        f"span share {np.mean([(b - a) / len(r) for (_, r, (a, b)) in cases]):.2f} on average"
    )
    print(f"{'variant':<14}{'mean lift':>10}{'min':>8}{'max':>8}   per case")
    for name in VARIANTS:
        # soft: every criterion is credited, so each case has an alpha whatever the verdict
        results = Grad2Reward(judge, attribution=name, tau=tau, soft=True).score_batch(tasks, responses)
        lifts = []
        for (_task, ids, (a, b)), result in zip(cases, results):
            alpha = result.criteria[0]["alpha"]
            lifts.append(float(alpha[a:b].sum()) / ((b - a) / len(ids)))
        print(
            f"{name:<14}{np.mean(lifts):>10.2f}{min(lifts):>8.2f}{max(lifts):>8.2f}   "
            + " ".join(f"{x:.2f}" for x in lifts)
        )
    p_true = [c["p_true"] for c in results_p_true(judge, tasks, responses)]
    print(f"judge p_true on the cases: {' '.join(f'{p:.2f}' for p in p_true)}")


def results_p_true(judge, tasks, responses):
    return [r.criteria[0] for r in Grad2Reward(judge, attribution="uniform").score_batch(tasks, responses)]


if __name__ == "__main__":
    main()
