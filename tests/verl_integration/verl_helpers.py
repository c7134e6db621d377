"""verl batches built the way verl builds them (chat-template prompts left-padded, responses
right-padded, one attention mask over both), and the responses the verl tests judge."""

from __future__ import annotations

import numpy as np
import torch

SELF_JUDGE = dict(model="bundled", judge="self", device="cpu", micro_batch_size=1)
"""The bundled model as its own judge, one pair per forward: a pair's numbers then do not depend on
what else is in its micro-batch, so a split batch must give bit-identical rewards."""

RESPONSES = [
    "Keep a regular bedtime, even on weekends.",
    "Skip coffee after lunch and dim the screens an hour before bed.",
    "Sleep is nice.",
    "Go to bed and wake up at the same time every day; if it goes on for weeks, see a doctor.",
    "Light is the key: sunlight in the morning, none at night.",
    "Read a book.",
]


def verl_batch(tokenizer, tasks, texts, uids=None, prompt_length=None, response_length=None):
    """A verl ``DataProto`` of (task, response text) rows, padded the way verl's agent loop pads."""
    from verl import DataProto
    from verl.utils.model import compute_position_id_with_mask
    from verl.utils.torch_functional import pad_2d_list_to_length

    from agents.verl.data import verl_rows

    pad = tokenizer.pad_token_id
    prompts = [
        tokenizer.encode(
            tokenizer.apply_chat_template(t.messages, add_generation_prompt=True, tokenize=False),
            add_special_tokens=False,
        )
        for t in tasks
    ]
    responses = [tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id] for text in texts]
    prompt_length = prompt_length or max(map(len, prompts))
    prompt_ids = torch.stack(
        [torch.tensor([pad] * (prompt_length - len(p)) + p) for p in prompts]
    )  # left-padded: the prompt ends where the response starts
    response_ids = pad_2d_list_to_length(responses, pad, response_length)
    prompt_mask = (
        torch.arange(prompt_length)[None] >= torch.tensor([prompt_length - len(p) for p in prompts])[:, None]
    ).long()
    response_mask = (
        torch.arange(response_ids.shape[1])[None] < torch.tensor([len(r) for r in responses])[:, None]
    ).long()
    attention_mask = torch.cat([prompt_mask, response_mask], dim=1)
    rows = verl_rows(tasks, "grad2reward:test")
    return DataProto.from_dict(
        tensors={
            "prompts": prompt_ids,
            "responses": response_ids,
            "response_mask": response_mask,
            "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
            "attention_mask": attention_mask,
            "position_ids": compute_position_id_with_mask(attention_mask),
        },
        non_tensors={
            "data_source": np.array([r["data_source"] for r in rows], dtype=object),
            "reward_model": np.array([r["reward_model"] for r in rows], dtype=object),
            "extra_info": np.array([r["extra_info"] for r in rows], dtype=object),
            "uid": np.array(uids or [t.task_id for t in tasks], dtype=object),
        },
    ), responses
