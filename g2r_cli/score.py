"""``g2r score``: judge one response to one task and show where its reward went."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

SCORE_HELP = """Judge one response to one task and show where its reward went.

The task is an id in a task set (--task expl-001 --tasks openended-mini) or one JSONL line in our
task format (--task-json '{"id": ..., "prompt": ..., "criteria": [...]}'). The response is text
(--response, or --response-file, '-' for stdin); it is tokenized with the policy's tokenizer and
ended with its end-of-turn token.
"""


def _score_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="g2r score", description=SCORE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    task = p.add_mutually_exclusive_group(required=True)
    task.add_argument("--task", help="task id within --tasks")
    task.add_argument("--task-json", help="one task as a JSON line in the g2r format")
    p.add_argument("--tasks", default="openended-mini", help="task set name, file or folder (default: %(default)s)")
    text = p.add_mutually_exclusive_group(required=True)
    text.add_argument("--response", help="the response text")
    text.add_argument("--response-file", help="a file holding the response text ('-' for stdin)")
    p.add_argument("--model", default="bundled", help="policy model (tokenizer of the response) (default: %(default)s)")
    p.add_argument(
        "--judge",
        default=None,
        help="judge model, trained judge folder or 'self' (the frozen --model); default: 'bundled-judge' "
        "for the bundled model, 'self' for any other",
    )
    p.add_argument("--attribution", default="grad_x_embed", help="attribution method (default: %(default)s)")
    p.add_argument("--tau", default="auto", help="attribution temperature, 'auto' or a float (default: %(default)s)")
    p.add_argument("--soft", action="store_true", help="reward p_true instead of the 0/1 verdict")
    p.add_argument(
        "--no-checks",
        dest="checks",
        action="store_false",
        help="judge every criterion (by default criteria with an exact check, such as 'Is under 150 words', "
        "are decided by that check)",
    )
    p.add_argument("--device", default="auto", help="judge device (default: %(default)s)")
    p.add_argument("--html", default="g2r-score.html", help="output HTML file (default: %(default)s)")
    return p


def _load_task(args):
    from tasks import TaskFormatError, load_taskset, parse_task

    if args.task is not None:
        return load_taskset(args.tasks).get(args.task)
    try:
        row = json.loads(args.task_json)
    except json.JSONDecodeError as err:
        raise TaskFormatError(f"--task-json: bad JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(row, dict):
        raise TaskFormatError("--task-json: must be a JSON object")
    return parse_task(row, "--task-json", "task")


def _response_text(args) -> str:
    """The response of --response or --response-file, as valid UTF-8 text."""
    if args.response is not None:
        text, where = args.response, "--response"
    elif args.response_file == "-":
        text, where = sys.stdin.read(), "the response on stdin"
    else:
        where = f"--response-file {args.response_file}"
        data = Path(args.response_file).read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{where} is not UTF-8 text (byte {data[err.start]:#04x} at offset {err.start})") from None
    for n, char in enumerate(text):  # undecodable bytes arrive as lone surrogates
        if 0xD800 <= ord(char) <= 0xDFFF:
            byte = f"byte {ord(char) - 0xDC00:#04x}" if 0xDC80 <= ord(char) <= 0xDCFF else f"{char!r}"
            raise ValueError(f"{where} is not valid UTF-8 text ({byte} at character {n}); pass UTF-8 text")
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``g2r score``; returns the exit status."""
    args = _score_parser().parse_args(argv)
    from g2r_env import build_scorer
    from g2r_env.rendering import render_ansi, render_html

    if not Path(args.html).resolve().parent.is_dir():
        raise FileNotFoundError(f"the folder of --html does not exist: {Path(args.html).parent}")
    task = _load_task(args)
    text = _response_text(args)
    if not text.strip():
        raise ValueError("the response is empty")
    tau = args.tau if args.tau == "auto" else float(args.tau)
    scorer = build_scorer(args.model, args.judge, args.device, args.attribution, tau, args.soft, checks=args.checks)
    tokenizer = scorer.policy_tokenizer or scorer.judge.tokenizer
    response = tokenizer.encode(text.strip(), add_special_tokens=False) + [tokenizer.eos_token_id]
    result = scorer.score(task, response)
    print(render_ansi(tokenizer, task, result.response_ids, result))
    Path(args.html).write_text(
        render_html(tokenizer, [(task, result)], title=f"g2r score: {task.task_id}"), encoding="utf-8"
    )
    print(f"\nwrote {args.html}")
    return 0
