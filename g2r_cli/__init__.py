"""The ``g2r`` command line, above ``tasks``, ``g2r_env`` and ``agents``: one module per command.

    g2r score         judge one response and write an HTML heatmap of its token rewards
    g2r train         train a policy with the bundled token-level GRPO trainer
    g2r eval          greedy judge score of a model on a task split
    g2r judge train   fine-tune a rubric judge on the evidence corpus (and labelled verdicts)
    g2r judge eval    measure a judge: AUC, accuracy, calibration, claims, credit lift and specificity
    g2r judge calibrate  fit a judge's verdict calibration on a held-out split and store it in its folder
    g2r export        write a task set in another trainer's data format (verl parquet)
    g2r tasks inspect a task set's summary: splits, criteria, weights, polarity, tags

A user error (bad input, a missing file) prints one line and exits with status 2; ``--debug``
anywhere on the command line shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional

from g2r_env.models import ModelLoadError

from . import export, judge, score, tasks, train

COMMANDS = {
    "score": (score.main, "judge one response and write an HTML heatmap of its token rewards"),
    "train": (train.train_main, "train a policy with the bundled token-level GRPO trainer"),
    "eval": (train.eval_main, "greedy judge score of a model on a task set's test split"),
    "judge": (
        judge.main,
        "train (g2r judge train), measure (g2r judge eval) or calibrate (g2r judge calibrate) a rubric judge",
    ),
    "export": (export.main, "write a task set in another trainer's data format (verl parquet)"),
    "tasks": (tasks.main, "summarise a task set (g2r tasks inspect): splits, criteria, weights, polarity, tags"),
}
USAGE = "usage: g2r {" + ",".join(COMMANDS) + "} [options]   (g2r COMMAND --help for its options)"


USER_ERRORS = (
    ValueError,
    KeyError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    ImportError,
    FloatingPointError,
    ModelLoadError,
)
"""What a user's input can cause; anything else is a bug and keeps its traceback."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a ``g2r`` command; returns the exit status (2 for a user error, with one line on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(USAGE + "\n")
        for name, (_, summary) in COMMANDS.items():
            print(f"  {name:<6} {summary}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command, _ = COMMANDS[argv[0]]
    try:
        return command(argv[1:]) or 0
    except USER_ERRORS as err:
        if debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"g2r {argv[0]}: error: {message}  (--debug shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
