"""Show a response coloured by token reward: ANSI for terminals, a self-contained HTML page."""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence

import numpy as np

from tasks import Task

from .tokens import token_pieces


def printable(text: str) -> str:
    """Text safe for a terminal: control and format characters (escape sequences, bidi overrides)
    shown as escapes such as \\x1b, newlines and tabs kept."""
    return "".join(
        c if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf") else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


def _colour(value: float, scale: float) -> tuple[int, int, int]:
    """White for 0, green for positive, red for negative rewards, saturating at ``scale``."""
    level = 0.0 if scale <= 0 else min(abs(value) / scale, 1.0)
    fade = int(255 * (1 - 0.75 * level))
    return (fade, 255, fade) if value >= 0 else (255, fade, fade)


def render_ansi(tokenizer, task: Task, response_ids: Sequence[int], result=None) -> str:
    """The prompt, then the response; once judged (``result``), each token coloured by its reward.

    Model and task text is shown through ``printable``: control sequences in it never reach the
    terminal.
    """
    pieces = [printable(piece) for piece in token_pieces(tokenizer, response_ids)]
    lines = [printable(f"[{task.task_id}] {task.question}"), ""]
    if result is None:
        lines.append("".join(pieces))
    else:
        rewards = result.token_rewards
        scale = float(np.abs(rewards).max()) if len(rewards) else 0.0
        coloured = []
        for piece, value in zip(pieces, rewards):
            r, g, b = _colour(float(value), scale)
            coloured.append(f"\x1b[48;2;{r};{g};{b}m\x1b[38;2;0;0;0m{piece}\x1b[0m")
        lines.append("".join(coloured))
    if result is not None:
        lines.append("")
        lines.append(f"sequence reward {result.sequence_reward:+.3f}")
        for c in result.criteria:
            lines.append(
                f"  {'MET ' if c['met'] else 'miss'} p_true={c['p_true']:.2f} w={c['weight']:+g}  "
                f"{printable(c['criterion'])}"
            )
    return "\n".join(lines)


def _html_block(tokenizer, task: Task, result, title: str = "") -> str:
    pieces = token_pieces(tokenizer, result.response_ids)
    rewards = result.token_rewards
    scale = float(np.abs(rewards).max()) if len(rewards) else 0.0
    spans = []
    for n, (piece, value) in enumerate(zip(pieces, rewards)):
        r, g, b = _colour(float(value), scale)
        spans.append(
            f'<span style="background:rgb({r},{g},{b})" title="token {n}: {value:+.5f}">{html.escape(piece)}</span>'
        )
    rows = "".join(
        f"<tr><td>{'met' if c['met'] else 'not met'}</td><td>{c['p_true']:.3f}</td>"
        f"<td>{c['weight']:+g}</td><td>{html.escape(c['criterion'])}</td></tr>"
        for c in result.criteria
    )
    return (
        f"<section><h2>{html.escape(title or task.task_id)}</h2>"
        f'<p class="prompt">{html.escape(task.question)}</p>'
        f'<div class="pair"><div class="response">{"".join(spans)}</div>'
        f"<table><tr><th>verdict</th><th>p_true</th><th>weight</th><th>criterion</th></tr>{rows}</table></div>"
        f"<p>sequence reward <b>{result.sequence_reward:+.4f}</b> = sum of the {len(rewards)} token rewards "
        f"({float(rewards.sum()):+.4f})</p></section>"
    )


def render_html(tokenizer, items: Sequence[tuple], title: str = "Grad2Reward token rewards") -> str:
    """A self-contained HTML page; ``items`` are (task, ScoreResult) or (task, ScoreResult, heading)."""
    blocks = "".join(_html_block(tokenizer, *item) for item in items)
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        ".pair{display:flex;gap:2em}.response{flex:1;white-space:pre-wrap;font-family:monospace;"
        "line-height:1.6;border:1px solid #ccc;padding:1em}table{flex:1;border-collapse:collapse;"
        "font-size:90%}td,th{border:1px solid #ddd;padding:4px;text-align:left}.prompt{color:#444}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>Green tokens earned reward, red tokens were blamed for a met pitfall; the darker, the more.</p>"
        f"{blocks}</body></html>"
    )
