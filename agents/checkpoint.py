"""Resumable trainer checkpoints, with nothing pickled: tensors in safetensors files, the rest in JSON.

A checkpoint folder (written atomically by ``g2r_env.runlog.write_checkpoint``) holds
``policy.safetensors`` (the trainable model's state), ``optimizer.safetensors``, ``rng.safetensors``
(torch's and CUDA's generator states, numpy's key) and ``state.json`` (step, the Python and numpy
generator positions, the env's task-draw generator, the config). Loading reads no code.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from g2r_env.runlog import load_optimizer_tensors, optimizer_tensors, write_checkpoint


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Python, numpy and torch (CPU and CUDA) random states as (tensors, JSON values)."""
    version, internal, gauss = random.getstate()
    name, key, pos, has_gauss, cached = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(), "numpy_key": torch.from_numpy(np.asarray(key, dtype=np.int64))}
    if torch.cuda.is_available():
        for n, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda_{n}"] = state
    values = {"python": [version, list(internal), gauss], "numpy": [name, int(pos), int(has_gauss), float(cached)]}
    return tensors, values


def set_rng_state(tensors: dict[str, torch.Tensor], values: dict[str, Any]) -> None:
    version, internal, gauss = values["python"]
    random.setstate((version, tuple(internal), gauss))
    name, pos, has_gauss, cached = values["numpy"]
    np.random.set_state((name, tensors["numpy_key"].numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda_")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(run_dir: str | Path, policy, optimizer, step: int, env_rng: dict, config: dict) -> Path:
    """Write ``run_dir/checkpoint`` atomically; returns it."""
    from safetensors.torch import save_file, save_model

    rng_tensors, rng_values = rng_state()
    with write_checkpoint(run_dir) as folder:
        save_model(policy, str(folder / "policy.safetensors"))
        save_file(optimizer_tensors(optimizer), str(folder / "optimizer.safetensors"))
        save_file(rng_tensors, str(folder / "rng.safetensors"))
        (folder / "state.json").write_text(json.dumps({"step": step, "rng": rng_values, "env_rng": env_rng}))
        (folder / "config.json").write_text(json.dumps(config, indent=2))
    return Path(run_dir) / "checkpoint"


def load_checkpoint(folder: str | Path, policy, optimizer) -> dict:
    """Restore the policy, optimizer and random states from ``folder``; returns state.json (step,
    env_rng)."""
    from safetensors.torch import load_file, load_model

    folder = Path(folder)
    load_model(policy, str(folder / "policy.safetensors"))
    load_optimizer_tensors(optimizer, load_file(str(folder / "optimizer.safetensors")))
    state = json.loads((folder / "state.json").read_text())
    set_rng_state(load_file(str(folder / "rng.safetensors")), state["rng"])
    return state
