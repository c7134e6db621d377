"""``g2r train`` and ``g2r eval``.

    g2r train --preset cpu_demo [--learning-rate 2e-5 ...] [--set key=value ...]
    g2r train --config my_run.json                 # a file of fields; "preset": "cpu_demo" starts from one
    g2r train --resume runs/cpu_demo [--set total_steps=40]
    g2r eval --model runs/cpu_demo/model --max-new-tokens 40   # greedy judge score, test split

Every ``TrainConfig`` field is a flag (``g2r train --help`` lists them with their documentation);
``--set key=value`` sets one by its field name, as a config file would.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

TRAIN_HELP = "Train a policy with token-level GRPO on Grad2Reward token rewards."
VLLM_LOG = "vllm.log"
"""The file in the run folder that takes vLLM's log lines and the prints of its engine start."""


def quiet_model_loading() -> None:
    """No transformers progress bars (loading and writing weights) among the command's own lines."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def train_main(argv: Optional[Sequence[str]] = None) -> int:
    """``g2r train``: train from a config file (plus overrides), or resume a run; returns 0."""
    import tyro

    from g2r_env.packages import require_own

    require_own("agents")
    from agents.config import TrainConfig, preset_names

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--preset")
    pre.add_argument("--resume")
    pre.add_argument("--overwrite", action="store_true")
    pre.add_argument("--set", dest="overrides", action="append", default=[])
    known, rest = pre.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        print(
            "g2r train [--preset NAME | --config FILE | --resume RUN_DIR] [--set KEY=VALUE ...] [--FIELD VALUE ...]\n\n"
            f"  --preset NAME      a preset shipped with the package: {', '.join(preset_names())}\n"
            "  --config FILE      a JSON (or YAML) file of TrainConfig fields (it may start from a preset)\n"
            "  --resume RUN_DIR   continue the run in RUN_DIR from its last checkpoint (its saved config;\n"
            "                     only length, cadence, threads and logging fields may change)\n"
            "  --overwrite        a fresh run into a run folder that holds one moves the old run aside\n"
            "                     to RUN_DIR.old-<timestamp> (without it, that is an error)\n"
            "  --set KEY=VALUE    set one field by name (repeatable)\n"
        )
        tyro.cli(TrainConfig, args=["--help"], prog="g2r train", description=TRAIN_HELP)
    from agents.sampling import vllm_output_to
    from agents.trainer import Trainer, resolve_checkpoint

    if known.config and known.preset:
        raise ValueError('--preset and --config are exclusive; a config file starts from a preset with "preset": NAME')
    if known.resume:
        if known.config or known.preset:
            raise ValueError("--resume uses the run's saved config; change fields with --set or flags")
        if known.overwrite:
            raise ValueError("--resume continues a run and --overwrite starts a new one; give one of them")
        run_dir = resolve_checkpoint(known.resume).parent
    else:
        if known.config:
            base = TrainConfig.from_file(known.config, known.overrides)
        elif known.preset:
            base = TrainConfig.preset(known.preset).with_overrides(known.overrides)
        else:
            base = TrainConfig().with_overrides(known.overrides)
        config = tyro.cli(TrainConfig, args=rest, default=base, prog="g2r train", description=TRAIN_HELP)
        run_dir = Path(config.run_dir)
    quiet_model_loading()
    print(
        f"[g2r] loading the policy, the judge and the sampler; vLLM's output goes to {run_dir / VLLM_LOG}", flush=True
    )
    with vllm_output_to(run_dir / VLLM_LOG):  # the terminal shows our progress bar and lines only
        if known.resume:
            trainer = Trainer.resume(known.resume, known.overrides + _flags_as_overrides(rest))
            print(f"[g2r] resuming {trainer.run_dir} at step {trainer.global_step}", flush=True)
        else:
            trainer = Trainer(config, overwrite=known.overwrite)
            print(
                f"[g2r] training {config.model} for {config.total_steps} steps; run folder {trainer.run_dir}",
                flush=True,
            )
        history = trainer.train()
    scores = [r["eval/judge_score"] for r in history if "eval/judge_score" in r]
    summary = f"[g2r] done: {trainer.global_step} steps; model in {trainer.run_dir / 'model'}"
    if scores:
        summary += f"; eval judge score {scores[0]:.3f} -> {scores[-1]:.3f}"
    if trainer.config.report:
        summary += f"; report in {trainer.run_dir / 'report'}"
    print(summary, flush=True)
    return 0


def _flags_as_overrides(rest: Sequence[str]) -> list[str]:
    """``--field-name value`` pairs as ``field_name=value`` overrides (for --resume)."""
    if len(rest) % 2:
        raise ValueError(f"--resume takes --FIELD VALUE pairs or --set KEY=VALUE, got {' '.join(rest)}")
    out = []
    for flag, value in zip(rest[::2], rest[1::2]):
        if not flag.startswith("--"):
            raise ValueError(f"expected a --FIELD flag, got {flag!r}")
        out.append(f"{flag[2:].replace('-', '_')}={value}")
    return out


def eval_main(argv: Optional[Sequence[str]] = None) -> int:
    """``g2r eval``: the judge score of a model's greedy responses on a task split; returns 0."""
    parser = argparse.ArgumentParser(
        prog="g2r eval", description="Mean judge score (sequence reward) of greedy responses on a task split."
    )
    parser.add_argument(
        "--model",
        default="bundled",
        help="'bundled', a local HF folder (e.g. RUN_DIR/model) or an HF id (default: bundled)",
    )
    parser.add_argument(
        "--judge",
        default=None,
        help="the judge; keep it fixed to compare models (default: the default judge of the "
        "bundled model, 'bundled-judge')",
    )
    parser.add_argument("--tasks", default="openended-mini", help="task set name, JSONL file or folder")
    parser.add_argument("--split", default="test", help="a split of the task set, or 'all' (default: test)")
    parser.add_argument("--task-ids", default="", help="comma-separated task ids to keep (default: all)")
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument(
        "--sampler", choices=("vllm", "hf"), default=None, help="vllm when importable, else hf (transformers generate)"
    )
    parser.add_argument(
        "--soft",
        action="store_true",
        help="score with P(True) instead of 0/1 verdicts (as a run trained with soft=true)",
    )
    parser.add_argument(
        "--no-checks",
        dest="checks",
        action="store_false",
        help="judge every criterion (as a run trained with checks=false)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="print one JSON line with the per-task scores")
    args = parser.parse_args(argv)
    import numpy as np

    from g2r_env.packages import require_own

    require_own("agents")
    from agents.sampling import make_sampler
    from agents.trainer import eval_envs, evaluate_policy
    from g2r_env import build_scorer
    from g2r_env.env import default_judge
    from g2r_env.models import BUNDLED_NAME
    from tasks import load_taskset

    tasks = load_taskset(args.tasks, split=args.split)
    if args.task_ids:
        tasks = tasks.select(task_ids=[t.strip() for t in args.task_ids.split(",") if t.strip()])
    judge = args.judge or default_judge(BUNDLED_NAME)  # the bundled model's, so trained models compare
    scorer = build_scorer(args.model, judge, args.device, soft=args.soft, checks=args.checks)
    envs = eval_envs(tasks, scorer, args.max_new_tokens)
    sampler = make_sampler(args.sampler, args.model, args.device)
    scores = evaluate_policy(sampler, envs, args.max_new_tokens)
    mean = float(np.mean(list(scores.values())))
    if args.json:
        print(
            json.dumps(
                {"model": args.model, "judge": judge, "split": args.split, "judge_score": mean, "per_task": scores}
            )
        )
    else:
        for task_id, score in scores.items():
            print(f"{task_id:24s} {score:+.3f}")
        print(f"judge score ({args.split} split, {len(scores)} tasks, greedy, judge {judge}): {mean:.4f}")
    return 0
