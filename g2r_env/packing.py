"""Packed judge inputs: the criteria judged on one response share everything before the criterion
(system prompt, question, response), so they run as one sequence: the shared prefix once, then each
criterion's suffix attending to the prefix and to itself only, its positions continuing the prefix's.
This gives the verdicts (and gradients) of judging each pair alone for a fraction of the tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

import torch

from .judge import Judge


@dataclass
class Pack:
    """Cases judged on one response, as one packed sequence: ``prefix`` + each of ``suffixes``."""

    prefix: list[int]
    suffixes: list[list[int]]
    cases: list[int]  # indices into the case list


def packed_batch(packs: Sequence[Pack], pad_id: int, dtype: torch.dtype, device, past: int = 0) -> tuple:
    """(input_ids [B, L], 4D additive attention mask [B, 1, L, past + L], position_ids [B, L], answers).

    ``past``: the length of a sequence every row continues (its key/values come from a cache): every
    token attends to all of it and positions count on from it. ``answers`` lists (row, column, case
    index) of every suffix's last token, where the verdict is read.
    """
    lengths = [len(p.prefix) + sum(len(s) for s in p.suffixes) for p in packs]
    width = max(lengths)
    ids = torch.full((len(packs), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(packs), width), dtype=torch.long)
    allowed = torch.zeros((len(packs), width, past + width), dtype=torch.bool)
    allowed[:, :, :past] = True
    own = allowed[:, :, past:]  # a view: the packed tokens among themselves
    answers = []
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    for row, pack in enumerate(packs):
        start = len(pack.prefix)
        ids[row, :start] = torch.tensor(pack.prefix, dtype=torch.long)
        positions[row, :start] = torch.arange(past, past + start)
        own[row, :start, :start] = causal[:start, :start]
        cursor = start
        for suffix, case in zip(pack.suffixes, pack.cases):
            end = cursor + len(suffix)
            ids[row, cursor:end] = torch.tensor(suffix)
            positions[row, cursor:end] = torch.arange(past + start, past + start + len(suffix))
            own[row, cursor:end, :start] = True
            own[row, cursor:end, cursor:end] = causal[: len(suffix), : len(suffix)]
            answers.append((row, end - 1, case))
            cursor = end
        pad = torch.arange(cursor, width)
        own[row, pad, pad] = True  # padding attends to itself (and the past) only: no empty softmax rows
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    return ids.to(device), mask.unsqueeze(1).to(device), positions.to(device), answers


def packed_answer_logits(
    model,
    judge: Judge,
    packs: Sequence[Pack],
    embed: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    past: Optional[list] = None,
) -> tuple[torch.Tensor, list[int]]:
    """Answer logits [cases, vocabulary] (at least float32) of every case in ``packs``, and their case
    indices in the same order. ``embed`` maps the packed ids [B, L] to the input embeddings the model
    runs on (to take gradients there); None feeds the ids. ``past``: key/values of one sequence that
    every pack continues (``Judge.prefix_states``): a pack then scores as that sequence + the pack would."""
    dtype = next(model.parameters()).dtype
    start = past[0][0].shape[-2] if past else 0
    ids, mask, positions, answers = packed_batch(packs, judge.pad_id, dtype, judge.device, past=start)
    columns = sorted({column for _, column, _ in answers})
    index = {column: n for n, column in enumerate(columns)}
    inputs = {"input_ids": ids} if embed is None else {"inputs_embeds": embed(ids)}
    logits = model(
        **inputs,
        attention_mask=mask,
        position_ids=positions,
        past_key_values=judge.cache_of(past, len(packs)),
        use_cache=bool(past),
        logits_to_keep=torch.tensor(columns, device=ids.device),
    ).logits
    rows = torch.tensor([row for row, _, _ in answers], device=ids.device)
    cols = torch.tensor([index[column] for _, column, _ in answers], device=ids.device)
    picked = logits[rows, cols]
    picked = picked.to(torch.promote_types(picked.dtype, torch.float32))  # bf16 -> fp32, fp64 stays
    return picked, [case for _, _, case in answers]


def packed_margins(model, judge: Judge, packs: Sequence[Pack]) -> tuple[torch.Tensor, list[int]]:
    """Raw verdict margins logit(True) - logit(False) (at least float32) of every case in ``packs``, and
    their case indices in the same order (``judge.margin_to_p_true`` gives p_true; judge training fits them raw)."""
    logits, order = packed_answer_logits(model, judge, packs)
    return judge.margin(logits), order


def batches_of_packs(packs: Sequence[Pack], max_tokens: int) -> list[list[Pack]]:
    """Packs sorted by length and cut into batches of at most ``max_tokens`` padded tokens."""
    order = sorted(packs, key=lambda p: len(p.prefix) + sum(map(len, p.suffixes)))
    batches, current, widest = [], [], 0
    for pack in order:
        size = len(pack.prefix) + sum(map(len, pack.suffixes))
        if current and max(widest, size) * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, widest = [], 0
        current.append(pack)
        widest = max(widest, size)
    if current:
        batches.append(current)
    return batches
