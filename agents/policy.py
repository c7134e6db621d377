"""The trainable policy: loading (with an optional LoRA adapter), merged weights for the sampler,
and export as a plain Hugging Face model folder."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from g2r_env.models import load_model

from .config import TrainConfig


def load_policy(config: TrainConfig, device: torch.device):
    """A trainable float32 copy of ``config.model``, LoRA-wrapped when ``config.lora_rank > 0``, in
    train mode (gradient checkpointing on if asked)."""
    policy, _ = load_model(config.model, device, dtype=torch.float32)
    if config.lora_rank:
        from peft import LoraConfig, get_peft_model

        targets = config.lora_target_modules
        targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",")]
        policy = get_peft_model(
            policy,
            LoraConfig(
                r=config.lora_rank,
                lora_alpha=config.lora_alpha,
                target_modules=targets,
                lora_dropout=0.0,
                task_type="CAUSAL_LM",
            ),
        )
    if config.gradient_checkpointing:
        policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    policy.train()
    return policy


def is_lora(policy) -> bool:
    return hasattr(policy, "get_base_model") and hasattr(policy, "peft_config")


@torch.no_grad()
def merged_state_dict(policy) -> dict[str, Tensor]:
    """The policy's weights under HF names; a LoRA adapter is merged in (W + B A) without touching
    the trained module."""
    if not is_lora(policy):
        return policy.state_dict()
    base = policy.get_base_model()
    state = {
        name.replace(".base_layer", ""): tensor for name, tensor in base.state_dict().items() if "lora_" not in name
    }
    for name, module in base.named_modules():
        if hasattr(module, "get_delta_weight") and hasattr(module, "base_layer"):
            delta = sum(module.get_delta_weight(a) for a in module.active_adapters)
            state[f"{name}.weight"] = module.base_layer.weight + delta
    return state


def export_policy(policy, tokenizer, folder: str | Path) -> Path:
    """Save the policy (LoRA merged) and tokenizer as a plain HF model folder (what ``g2r eval
    --model`` and ``load_model`` read)."""
    base = policy.get_base_model() if is_lora(policy) else policy
    base.save_pretrained(folder, state_dict=merged_state_dict(policy))
    tokenizer.save_pretrained(folder)
    return Path(folder)
