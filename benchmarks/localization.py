"""Does the credit land where the criterion is satisfied? A controlled check beside ``g2r judge eval``.

Each case is a response in which one sentence (the evidence) is what meets the criterion and the
rest is unrelated filler. For every registered attribution method this prints the lift (the share
of the criterion's credit on the evidence divided by the evidence's share of the tokens; 1.0 = no
better than uniform) with ``g2r_judge.evaluation.credit_report``, and the judge's p_true.

    python benchmarks/localization.py [--judge bundled-judge] [--tau auto]
"""

from __future__ import annotations

import argparse

from g2r_env import ATTRIBUTIONS, Judge
from g2r_judge.cases import JudgedCase, task_for_prompt
from g2r_judge.evaluation import credit_report
from g2r_judge.predict import predict_p_true

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


def build_case(question, criterion, sentence, position):
    parts = FILLER[:position] + [sentence] + FILLER[position:]
    response = " ".join(parts)
    start = response.index(sentence)
    return JudgedCase(
        task_for_prompt(question, f"loc-{position}"),
        response,
        criterion,
        True,
        "content",
        "",
        ((start, start + len(sentence)),),
        f"loc-{position}",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--judge", default="bundled-judge", help="the judge (default: %(default)s)")
    p.add_argument("--tau", default="auto")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    tau = args.tau if args.tau == "auto" else float(args.tau)

    judge = Judge.load(args.judge, device=args.device)
    cases = [build_case(*case) for case in CASES]
    methods = [name for name, method in ATTRIBUTIONS.items() if method.needs_grad] + ["uniform", "last_token"]
    report = credit_report(judge, cases, methods, tau=tau)
    print(f"{len(cases)} cases, judge {args.judge}")
    print(f"{'method':<26}{'mean lift':>10}{'median':>8}")
    for name, row in report.items():
        print(f"{name:<26}{row['lift_mean']:>10.2f}{row['lift_median']:>8.2f}")
    p_true = predict_p_true(judge, cases)
    print(f"judge p_true on the cases (all meet their criterion): {' '.join(f'{p:.2f}' for p in p_true)}")


if __name__ == "__main__":
    main()
