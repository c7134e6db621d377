"""Shared fixtures: the bundled tokenizer, a tiny in-code Llama with it (as a judge, and saved as a
local HF folder for anything that loads a model by path), and a task with a rubric. Tests that need
the bundled real model load it themselves and are marked ``slow``."""

from __future__ import annotations

import pytest
import torch
from tiny import build_tiny_model

from tasks import Criterion, Task


@pytest.fixture(scope="session")
def bundled_tokenizer():
    from g2r_env.models import load_tokenizer

    return load_tokenizer("bundled")


@pytest.fixture(scope="session")
def tiny_judge(bundled_tokenizer):
    """A float64 judge on the tiny model (exact enough for finite differences)."""
    from g2r_env import Judge

    return Judge(build_tiny_model(len(bundled_tokenizer), dtype=torch.float64), bundled_tokenizer, micro_batch_size=4)


@pytest.fixture
def rubric_task():
    return Task(
        "t-1",
        "Explain why the sky is blue in two sentences.",
        (
            Criterion("Mentions scattering of sunlight", 3.0),
            Criterion("The response is brief", 1.0),  # judged: no exact check
            Criterion("Claims the sky reflects the ocean", -2.0),
        ),
        domain="explanation",
    )


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, bundled_tokenizer) -> str:
    """A 2-layer Llama with the bundled tokenizer, saved as a local HF folder (2048 positions)."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_model(len(bundled_tokenizer), max_positions=2048).save_pretrained(folder)
    bundled_tokenizer.save_pretrained(folder)
    return str(folder)
