"""p_true of judged cases under a judge: the cases of one response packed into one sequence
(``g2r_env.packing``), forward only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from g2r_env.judge import Judge
from g2r_env.packing import Pack, batches_of_packs, packed_margins

from .cases import JudgedCase


def response_ids(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def pack_cases(judge: Judge, cases: Sequence[JudgedCase]) -> list[Pack]:
    """Group cases by (question, response) into packs; a template whose text before the response
    depends on the criterion gets one pack per case."""
    packs: dict[tuple, Pack] = {}
    encoded: dict[str, list[int]] = {}
    for n, case in enumerate(cases):
        ids = encoded.get(case.response)
        if ids is None:
            ids = encoded[case.response] = response_ids(judge.tokenizer, case.response)
        before, after = judge.frame(case.task, case.criterion)
        key = (tuple(before), case.response)
        pack = packs.get(key)
        if pack is None:
            pack = packs[key] = Pack(before + ids, [], [])
        pack.suffixes.append(after)
        pack.cases.append(n)
    return list(packs.values())


@torch.no_grad()
def predict_p_true(
    judge: Judge, cases: Sequence[JudgedCase], max_tokens: int = 4096, progress: bool = False
) -> np.ndarray:
    """p_true of every case under ``judge`` (forward only, packed), in the order of ``cases``."""
    out = np.zeros(len(cases), dtype=np.float64)
    batches = batches_of_packs(pack_cases(judge, cases), max_tokens)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="judging", unit="batch")
    for batch in batches:
        margins, order = packed_margins(judge.model, judge, batch)
        out[order] = torch.sigmoid(margins).double().cpu().numpy()
    return out
