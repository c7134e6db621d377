"""``g2r judge train``, ``g2r judge eval`` and ``g2r judge calibrate``: fine-tune a rubric judge, measure
one, and fit its verdict calibration.

g2r judge train --out-dir runs/judge --passage-half 0    # LoRA on the evidence corpus, train split
g2r judge train --verdicts my_graded.jsonl --corpora     # on your own graded responses only
g2r judge eval --judge runs/judge/judge                  # test split: AUC, accuracy, calibration, credit
g2r judge eval --judge bundled-judge --cases benchmarks/data/judged_cases.jsonl
g2r judge eval --judge runs/judge/judge --tasks --cases healthbench_meta_eval.jsonl   # vs physicians
g2r judge calibrate --judge runs/judge/judge --tasks judge-extra --split val   # (train does it at its end)

A HealthBench meta-evaluation file (physicians' ``binary_labels``) is a verdict file too: ``train``
learns the physicians' majority label (tied votes left out); ``eval`` reports, beside the verdict
metrics, the judge's agreement with the physicians (accuracy and Cohen's kappa against the majority,
and pairwise against each physician) next to the physicians' pairwise agreement with each other,
overall and per category (g2r_judge/evaluation.py).
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``g2r judge {train,eval,calibrate}``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": train_main, "eval": eval_main, "calibrate": calibrate_main}
    if not argv or argv[0] not in commands:
        print("usage: g2r judge {train,eval,calibrate} [options]   (g2r judge train --help)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return commands[argv[0]](argv[1:])


def train_main(argv: Sequence[str]) -> int:
    import tyro

    from g2r_judge.training import JudgeTrainConfig, JudgeTrainer

    config = tyro.cli(
        JudgeTrainConfig,
        args=list(argv),
        prog="g2r judge train",
        description="Fine-tune a causal LM as a rubric judge (LoRA by default).",
    )
    command = "g2r judge train " + " ".join(shlex.quote(a) for a in argv)
    folder = JudgeTrainer(config, command=command.strip()).train()
    print(f"[g2r] judge written to {folder}; measure it with: g2r judge eval --judge {folder}", flush=True)
    return 0


def eval_main(argv: Sequence[str]) -> int:
    import tyro

    from g2r_judge.evaluation import JudgeEvalConfig, run_eval, strict_json

    config = tyro.cli(
        JudgeEvalConfig,
        args=list(argv),
        prog="g2r judge eval",
        description="Measure a judge: AUC, accuracy, calibration error, credit lift and specificity.",
    )
    config.validate()
    report = run_eval(config)
    if config.json_out:
        Path(config.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(config.json_out).write_text(json.dumps(strict_json(report), indent=2, allow_nan=False))
        print(f"\nwrote {config.json_out}")
    return 0


def calibrate_main(argv: Sequence[str]) -> int:
    import tyro

    from g2r_judge.calibration import JudgeCalibrateConfig, run_calibrate

    config = tyro.cli(
        JudgeCalibrateConfig,
        args=list(argv),
        prog="g2r judge calibrate",
        description="Fit p_true = sigmoid(a m + b) of a judge's verdict margin on a held-out split; store it "
        "in the judge folder's g2r-judge.json.",
    )
    run_calibrate(config)
    return 0
