"""Fixtures for the verl integration tests: a local Ray on two CPUs and the bundled model as its
own judge (batches: verl_helpers.py).

Every module here starts with ``pytest.importorskip("verl")``, so the main environment (which has
no verl) skips them; ``.venv-verl`` runs them.
"""

from __future__ import annotations

import pytest
import torch
from verl_helpers import SELF_JUDGE


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def self_judge_scorer(bundled_tokenizer):
    """The in-process reference: the bundled model judging itself on one CPU thread."""
    from agents.verl.judge_pool import JudgeSpec

    assert bundled_tokenizer.eos_token == "<|im_end|>", (
        "the bundled model's cached tokenizer has the wrong end-of-turn token: transformers < 5.16 "
        "converts its GGUF file wrongly; delete $G2R_CACHE/smollm2-135m-instruct and convert it with "
        'the main environment (.venv/bin/python -c "from g2r_env.models import bundled_model_dir as b; b()")'
    )
    threads = torch.get_num_threads()
    scorer = JudgeSpec(**SELF_JUDGE, threads=1).build()
    yield scorer
    torch.set_num_threads(threads)
