"""The judge on CUDA in bf16 against the CPU in float32 (skipped without a GPU).

The model is ``$G2R_GPU_MODEL`` (default "bundled"); benchmarks/gpu_check.sh sets it.
"""

import os

import numpy as np
import pytest
import torch

from g2r_env import Grad2Reward, Judge
from g2r_env.models import load_model
from tasks import load_taskset

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

RESPONSE = (
    "Keep the same bedtime every day, avoid caffeine after lunch, and put your phone away an hour "
    "before bed. If the trouble lasts for weeks, see a doctor."
)


def test_cuda_bf16_judge_matches_cpu_fp32():
    source = os.environ.get("G2R_GPU_MODEL", "bundled")
    cpu_model, tokenizer = load_model(source, "cpu", torch.float32)
    gpu_model, _ = load_model(source, "cuda")
    assert next(gpu_model.parameters()).dtype == torch.bfloat16
    tasks = list(load_taskset("openended-mini"))[:6]
    response = tokenizer.encode(RESPONSE, add_special_tokens=False) + [tokenizer.eos_token_id]
    results = {}
    for name, model in (("cpu", cpu_model), ("cuda", gpu_model)):
        scorer = Grad2Reward(Judge(model, tokenizer, micro_batch_size=8), soft=True)
        results[name] = scorer.score_batch(tasks, [response] * len(tasks))
    p_diff, tv = [], []
    for cpu, gpu in zip(results["cpu"], results["cuda"]):
        assert abs(sum(gpu.token_rewards) - gpu.sequence_reward) < 1e-5
        for c_cpu, c_gpu in zip(cpu.criteria, gpu.criteria):
            p_diff.append(abs(c_cpu["p_true"] - c_gpu["p_true"]))
            tv.append(0.5 * np.abs(c_cpu["alpha"] - c_gpu["alpha"]).sum())
    print(
        f"\n{source}: max |p_true cpu - cuda| = {max(p_diff):.4f}, "
        f"credit total variation mean {np.mean(tv):.4f} max {max(tv):.4f}"
    )
    assert max(p_diff) < 0.05
    assert np.mean(tv) < 0.15
