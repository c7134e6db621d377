"""``g2r tasks inspect``: a task set's summary (tasks per split, criteria per task, weights,
polarity, tags), as ``python -m tasks.inspect`` prints it.

g2r tasks inspect RaR-Medicine
g2r tasks inspect 2025-05-07-06-14-12_oss_eval.jsonl --split train
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``g2r tasks inspect``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "inspect":
        print("usage: g2r tasks inspect SOURCE [--format F] [--split S]   (g2r tasks inspect --help)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    from tasks.inspect import main as inspect_main

    return inspect_main(argv[1:])
