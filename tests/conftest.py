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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A 2-layer Llama with the bundled tokenizer, saved as a local HF folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from g2r_env.models import load_tokenizer

    tokenizer = load_tokenizer("bundled")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def tiny_config(tiny_model: str, run_dir, **overrides):
    """A TrainConfig that trains the tiny policy for 2 quick steps with the HF sampler."""
    from agents import TrainConfig

    values = dict(
        run_dir=str(run_dir),
        model=tiny_model,
        sampler="hf",
        device="cpu",
        total_steps=2,
        prompts_per_step=2,
        group_size=2,
        max_new_tokens=6,
        learning_rate=1e-3,
        update_epochs=2,
        minibatch_size=2,
        micro_batch_size=1,
        task_ids=["creative-006", "creative-012", "creative-018"],
        eval_every=0,
        checkpoint_every=0,
        tensorboard=False,
        progress=False,
        report=False,
        judge_micro_batch_size=16,
        soft=True,
    )  # soft: the random judge still ranks responses
    values.update(overrides)
    return TrainConfig(**values)
