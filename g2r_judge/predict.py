"""p_true of judged cases under a judge: the cases of one response packed into one sequence
(``g2r_env.packing``), forward only."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Optional

import numpy as np
import torch

from g2r_env.judge import Judge
from g2r_env.packing import Pack, batches_of_packs, packed_margins

from .cases import JudgedCase


def response_ids(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def pack_cases(judge: Judge, cases: Sequence[JudgedCase], max_tokens: Optional[int] = None) -> list[Pack]:
    """Group cases by (question, response) into packs; a template whose text before the response
    depends on the criterion gets one pack per case. A pack grows to at most ``max_tokens`` tokens
    (its cases continue in another pack with the same prefix); a single case longer than that stays
    alone in its pack (``cases_that_fit`` keeps such cases out)."""
    packs: list[Pack] = []
    open_packs: dict[tuple, Pack] = {}
    encoded: dict[str, list[int]] = {}
    for n, case in enumerate(cases):
        ids = encoded.get(case.response)
        if ids is None:
            ids = encoded[case.response] = response_ids(judge.tokenizer, case.response)
        before, after = judge.frame(case.task, case.criterion)
        key = (tuple(before), case.response)
        pack = open_packs.get(key)
        if pack is not None and max_tokens is not None and pack.suffixes:
            if len(pack.prefix) + sum(map(len, pack.suffixes)) + len(after) > max_tokens:
                pack = None
        if pack is None:
            pack = open_packs[key] = Pack(before + ids, [], [])
            packs.append(pack)
        pack.suffixes.append(after)
        pack.cases.append(n)
    return packs


TOO_LONG = ("error", "drop")
"""What to do with a judged case whose judge input does not fit: raise, or leave it out with a warning."""


def cases_that_fit(
    judge: Judge,
    cases: Sequence[JudgedCase],
    too_long: str = "error",
    max_tokens: Optional[int] = None,
    where: str = "cases",
) -> list[JudgedCase]:
    """The cases whose judge input fits the judge's context (``Judge.context_error``, the scorer's
    check) and, when given, ``max_tokens`` tokens (one forward pass of judge training).

    Args:
        judge: the judge (its tokenizer and context length).
        cases: the judged cases.
        too_long: "error" raises on the first case that does not fit; "drop" leaves such cases out
            with one warning that counts them.
        max_tokens: a limit below the context, or None.
        where: the source of the cases (a file, a case set), named in the error and the warning.

    Raises:
        ValueError: a case does not fit and ``too_long`` is "error", or ``too_long`` is unknown.
    """
    if too_long not in TOO_LONG:
        raise ValueError(f"too_long must be one of {TOO_LONG}, got {too_long!r}")
    kept, dropped, first = [], 0, ""
    lengths: dict[str, int] = {}
    for n, case in enumerate(cases):
        if case.response not in lengths:
            lengths[case.response] = len(response_ids(judge.tokenizer, case.response))
        tokens = lengths[case.response]
        problem = judge.context_error(case.task, case.criterion, tokens)
        if problem is None and max_tokens is not None:
            before, after = judge.frame(case.task, case.criterion)
            size = len(before) + tokens + len(after)
            if size > max_tokens:
                problem = (
                    f"task {case.task.task_id}: the judge input is {size} tokens, more than max_tokens={max_tokens} "
                    f"(the tokens of one forward pass); raise max_tokens"
                )
        if problem is None:
            kept.append(case)
            continue
        if too_long == "error":
            raise ValueError(
                f"{where}: case {n} ({case.criterion[:50]!r}): {problem}; shorten it, or pass too_long=drop "
                f"(--too-long drop) to leave such cases out"
            )
        dropped += 1
        first = first or problem
    if dropped:
        warnings.warn(f"{where}: left out {dropped} of {len(cases)} case(s) too long for the judge (first: {first})")
    return kept


@torch.no_grad()
def predict_margins(
    judge: Judge, cases: Sequence[JudgedCase], max_tokens: int = 4096, progress: bool = False
) -> np.ndarray:
    """The raw verdict margin logit(True) - logit(False) of every case under ``judge`` (forward only,
    packed), in the order of ``cases``; ``judge.margin_to_p_true`` turns them into p_true."""
    out = np.zeros(len(cases), dtype=np.float64)
    batches = batches_of_packs(pack_cases(judge, cases, max_tokens), max_tokens)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="judging", unit="batch")
    for batch in batches:
        margins, order = packed_margins(judge.model, judge, batch)
        out[order] = margins.double().cpu().numpy()
    return out


def margins_to_p_true(judge: Judge, margins: np.ndarray, calibrated: bool = True) -> np.ndarray:
    """p_true of raw verdict margins under ``judge`` (its calibration, when it has one and ``calibrated``)."""
    return judge.margin_to_p_true(torch.as_tensor(margins, dtype=torch.float64), calibrated).numpy()


def predict_p_true(
    judge: Judge, cases: Sequence[JudgedCase], max_tokens: int = 4096, progress: bool = False
) -> np.ndarray:
    """p_true of every case under ``judge`` (forward only, packed; calibrated when the judge is), in
    the order of ``cases``."""
    return margins_to_p_true(judge, predict_margins(judge, cases, max_tokens, progress))
