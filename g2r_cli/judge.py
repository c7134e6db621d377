"""``g2r judge train`` and ``g2r judge eval``: fine-tune a rubric judge, and measure one.

g2r judge train --out-dir runs/judge --half 0            # LoRA on the evidence corpus, train split
g2r judge train --verdicts my_graded.jsonl --corpora     # on your own graded responses only
g2r judge eval --judge runs/judge/judge                  # test split: AUC, accuracy, calibration, credit
g2r judge eval --judge bundled-judge --cases benchmarks/data/judged_cases.jsonl
g2r judge eval --judge runs/judge/judge --tasks --cases healthbench_meta_eval.jsonl   # vs physicians

A HealthBench meta-evaluation file (physicians' ``binary_labels``) is a verdict file too: ``train``
learns the physicians' majority label (tied votes left out); ``eval`` reports, beside the verdict
metrics, the judge's agreement with the physicians (accuracy and Cohen's kappa against the majority,
and pairwise against each physician) next to the physicians' pairwise agreement with each other,
overall and per category (g2r_env/judge_eval.py).
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

DEFAULT_METHODS = ("grad_x_embed", "grad_l1", "grad_l2")


@dataclass
class JudgeEvalConfig:
    """Measure a judge on tasks it never trained on. Field docstrings follow each field."""

    judge: str = "bundled-judge"
    """the judge: "bundled-judge", "bundled" (the untrained model as its own judge), a trained judge
    folder (runs/judge/judge) or any model source"""
    tasks: list[str] = field(default_factory=lambda: ["openended-mini"])
    """task sets whose evidence corpus is composed into test cases (none: only --cases)"""
    split: str = "test"
    """the split composed from (test: tasks no judge of ours trained on)"""
    responses_per_task: int = 8
    """composed responses per task"""
    half: Optional[int] = None
    """compose from one half of every passage list only (0 or 1), or from all (None)"""
    seed: int = 1000
    """the composer's seed (the same seed gives the same test cases)"""
    cases: list[str] = field(default_factory=list)
    """verdict files to measure on too (JSONL or parquet: prompt, response, criterion, label, optional
    evidence; or HealthBench meta-evaluation rows: prompt, completion, rubric, binary_labels, category)"""
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    """attribution methods whose credit is measured ("all": every registered method that reads the
    gradient; none: verdicts only)"""
    credit_cases: int = 200
    """met criteria with evidence used for the credit metrics, per case set"""
    device: str = "auto"
    """where the judge runs"""
    threads: int = 0
    """torch CPU threads (0: torch's default)"""
    json_out: Optional[str] = None
    """also write the report as JSON to this file"""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``g2r judge {train,eval}``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("train", "eval"):
        print("usage: g2r judge {train,eval} [options]   (g2r judge train --help)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return (train_main if argv[0] == "train" else eval_main)(argv[1:])


def train_main(argv: Sequence[str]) -> int:
    import tyro

    from g2r_env.judge_training import JudgeTrainConfig, JudgeTrainer

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

    config = tyro.cli(
        JudgeEvalConfig,
        args=list(argv),
        prog="g2r judge eval",
        description="Measure a judge: AUC, accuracy, calibration error, credit lift and specificity.",
    )
    report = run_eval(config)
    if config.json_out:
        Path(config.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(config.json_out).write_text(json.dumps(report, indent=2))
        print(f"\nwrote {config.json_out}")
    return 0


def run_eval(config: JudgeEvalConfig, verbose: bool = True) -> dict:
    """Measure ``config.judge`` on the composed test split and on each verdict file; the report."""
    import torch

    from g2r_env import ATTRIBUTIONS, Judge
    from g2r_env.judge_eval import evaluate_judge, format_report
    from g2r_env.judge_training import corpus_of
    from tasks.compose import Composer
    from tasks.verdicts import load_verdicts

    if config.threads:
        torch.set_num_threads(config.threads)
    methods = config.methods
    if methods == ["all"]:
        methods = [name for name, method in ATTRIBUTIONS.items() if method.needs_grad]
    unknown = [m for m in methods if m not in ATTRIBUTIONS]
    if unknown:
        raise ValueError(f"unknown attribution method(s) {unknown}; known: {sorted(ATTRIBUTIONS)}")
    judge = Judge.load(config.judge, device=config.device)
    sets = {}
    for name in config.tasks:
        corpus = corpus_of(name)
        entries = corpus.split(config.split)
        if not entries:
            raise ValueError(f"{name} has no evidence for split {config.split!r}")
        composer = Composer(corpus, seed=config.seed, half=config.half)
        sets[f"{name}[{config.split}]"] = composer.examples(entries, config.responses_per_task)
    for path in config.cases:
        sets[str(path)] = load_verdicts(path, ties="keep")  # tied votes count for the graders' agreement
    report = {"judge": config.judge, "config": asdict(config), "sets": {}}
    for name, cases in sets.items():
        result = evaluate_judge(judge, cases, methods, credit_cases=config.credit_cases, progress=verbose)
        report["sets"][name] = result
        if verbose:
            print(format_report(result, f"== {name}: {len(cases)} judged criteria, judge {config.judge}"), flush=True)
    return report
