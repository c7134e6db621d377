"""Tiny in-code models and configs shared by the tests (imported by name; pytest's conftest
modules cannot be imported reliably when two test folders each have one)."""

from __future__ import annotations

import types

import torch


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


def verdict_judge_config(base: str, verdicts, out_dir, **overrides):
    """A JudgeTrainConfig that trains ``base`` on one verdict file only, in float32, quietly."""
    from g2r_judge.training import JudgeTrainConfig

    values = dict(
        out_dir=str(out_dir),
        base=base,
        corpora=[],
        verdicts=[str(verdicts)],
        responses_per_step=0,
        bf16=False,
        progress=False,
    )
    values.update(overrides)
    return JudgeTrainConfig(**values)


def single_error_line(stderr: str, command: str) -> str:
    """The one ``g2r COMMAND: error:`` line of a failed command's stderr (progress bars aside),
    asserting there is exactly one and no traceback."""
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert "Traceback" not in stderr and len(errors) == 1, stderr[-3000:]
    assert errors[0].startswith(f"g2r {command}: error: "), errors[0]
    return errors[0]
