"""Shared fixtures: a tiny in-code Llama with the bundled tokenizer, and the bundled real model."""

from __future__ import annotations

import types

import pytest
import torch

from tasks import Criterion, Task


@pytest.fixture(scope="session")
def bundled_tokenizer():
    from g2r_env.models import load_tokenizer

    return load_tokenizer("bundled")


def build_tiny_model(vocab_size: int, seed: int = 0, max_positions: int = 512, dtype=torch.float32):
    """A randomly initialised 2-layer Llama small enough to run a full backward in milliseconds."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    model = LlamaForCausalLM(config).to(dtype).eval()
    if dtype == torch.float64:  # Llama's RMSNorm computes in float32; keep float64 end to end
        for module in model.modules():
            if type(module).__name__ == "LlamaRMSNorm":
                module.forward = types.MethodType(_rms_norm_float64, module)
    return model


def _rms_norm_float64(self, hidden):
    return self.weight * hidden * torch.rsqrt(hidden.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, bundled_tokenizer):
    """A local HF folder (tiny random Llama + the bundled tokenizer) usable as ``model=`` anywhere."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_model(len(bundled_tokenizer)).save_pretrained(folder)
    bundled_tokenizer.save_pretrained(folder)
    return str(folder)


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
            Criterion("The response is under 50 words", 1.0),
            Criterion("Claims the sky reflects the ocean", -2.0),
        ),
        domain="explanation",
    )
