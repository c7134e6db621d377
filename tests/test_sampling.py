"""Samplers on the real bundled model: vLLM's log-probs and weight sync against transformers.

Every test here carries the marker "slow"; the vLLM tests also "vllm", and share one engine per
module (about 10 s to start on CPU). Both engines run float32; vLLM's log-probs of its own samples agree with transformers'
to about 3e-5 on this machine (2 CPU cores), and the tests allow LOGPROB_TOL.
"""

import copy
from pathlib import Path

import pytest
import torch

from agents.losses import build_batch, token_logprobs
from agents.sampling import HFSampler, Sample, VLLMSampler
from g2r_env.models import bundled_model_dir, load_model, stop_token_ids

LOGPROB_TOL = 1e-3
MAX_TOKENS = 16
# Greedy decoding answers the first in 8 tokens, ending on <|im_end|>, and runs past 16 on the second.
QUESTIONS = ["What is the capital of France?", "Name a colour."]

pytestmark = pytest.mark.slow  # every test here runs the bundled model


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """A local HF folder (config.json, safetensors, tokenizer) of the bundled model, which vLLM
    loads (converted from the GGUF file once, then cached)."""
    return bundled_model_dir()


@pytest.fixture(scope="module")
def hf_model_and_tokenizer():
    return load_model("bundled", "cpu")  # float32, eval mode


@pytest.fixture(scope="module")
def hf_model(hf_model_and_tokenizer):
    return hf_model_and_tokenizer[0]


@pytest.fixture(scope="module")
def tokenizer(hf_model_and_tokenizer):
    return hf_model_and_tokenizer[1]


@pytest.fixture(scope="module")
def prompts(tokenizer) -> list[list[int]]:
    texts = [
        tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
        for q in QUESTIONS
    ]
    return [tokenizer(text, add_special_tokens=False).input_ids for text in texts]


@pytest.fixture(scope="module")
def long_prompt(tokenizer) -> list[int]:
    """Over 128 tokens: vLLM's CPU prefix cache keeps full 128-token blocks of prompts."""
    question = "Which of these colours is the warmest: " + ", ".join(["red", "blue", "green"] * 25) + "?"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
    )
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert len(ids) > 128
    return ids


@pytest.fixture(scope="module")
def vllm_sampler(model_dir):
    pytest.importorskip("vllm")
    return VLLMSampler(model_dir, seed=0, max_model_len=512)


def hf_logprobs(model, prompts: list[list[int]], samples: list[list[Sample]]) -> list[list[float]]:
    """Transformers' log-probs of each sample, flattened in prompt order."""
    pairs = [(prompt, s.token_ids) for prompt, group in zip(prompts, samples) for s in group]
    input_ids, attention_mask, width = build_batch(*zip(*pairs), pad_id=0)
    with torch.no_grad():
        logprobs = token_logprobs(model, input_ids, attention_mask, width)
    return [logprobs[i, : len(response)].tolist() for i, (_, response) in enumerate(pairs)]


def max_logprob_gap(model, prompts, samples) -> float:
    expected = hf_logprobs(model, prompts, samples)
    flat = [s for group in samples for s in group]
    return max((torch.tensor(s.logprobs) - torch.tensor(e)).abs().max().item() for s, e in zip(flat, expected))


def assert_stops_or_hits_max_tokens(samples: list[list[Sample]], stop_ids: list[int]) -> None:
    for sample in (s for group in samples for s in group):
        assert len(sample.logprobs) == len(sample.token_ids)
        assert not any(t in stop_ids for t in sample.token_ids[:-1])
        if sample.finished:
            assert sample.token_ids[-1] in stop_ids
        else:
            assert len(sample.token_ids) == MAX_TOKENS


def assert_greedy_answers_end_as_expected(sampler, prompts, eos_id: int) -> None:
    [[short], [long]] = sampler.generate(prompts, temperature=0.0, max_tokens=MAX_TOKENS)
    assert short.finished and short.token_ids[-1] == eos_id and len(short.token_ids) < MAX_TOKENS
    assert not long.finished and len(long.token_ids) == MAX_TOKENS and eos_id not in long.token_ids


@pytest.mark.vllm
def test_vllm_logprobs_match_hf(vllm_sampler, hf_model, prompts):
    samples = vllm_sampler.generate(prompts, n=2, temperature=1.0, max_tokens=MAX_TOKENS, seed=0)
    assert [len(group) for group in samples] == [2, 2]
    gap = max_logprob_gap(hf_model, prompts, samples)
    print(f"max |vLLM - HF| log-prob: {gap:.2e}")
    assert gap < LOGPROB_TOL


@pytest.mark.vllm
def test_vllm_keeps_the_stop_token(vllm_sampler, tokenizer, prompts):
    samples = vllm_sampler.generate(prompts, n=2, temperature=0.7, top_p=0.8, top_k=20, max_tokens=MAX_TOKENS, seed=1)
    assert vllm_sampler.stop_ids == stop_token_ids(tokenizer)
    assert_stops_or_hits_max_tokens(samples, vllm_sampler.stop_ids)
    assert_greedy_answers_end_as_expected(vllm_sampler, prompts, tokenizer.eos_token_id)


@pytest.mark.vllm
def test_vllm_same_seed_same_samples(vllm_sampler, prompts):
    def draw(seed):
        return vllm_sampler.generate(prompts, n=2, temperature=1.0, max_tokens=MAX_TOKENS, seed=seed)

    first, again, other = draw(7), draw(7), draw(8)
    assert first == again
    assert [s.token_ids for g in first for s in g] != [s.token_ids for g in other for s in g]
    assert first[0][0].token_ids != first[0][1].token_ids  # the n samples are not copies


@pytest.mark.vllm
def test_vllm_update_weights_syncs_a_changed_model(vllm_sampler, hf_model, prompts, long_prompt):
    # The long prompt's KV blocks are cached before the update: without a prefix-cache reset in
    # update_weights its log-probs stay those of the old weights (seen: a gap of 1.1).
    prompts = prompts + [long_prompt]
    changed = copy.deepcopy(hf_model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in changed.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(0.05 * parameter.std() * noise)

    def draw():
        return vllm_sampler.generate(prompts, n=2, temperature=1.0, max_tokens=MAX_TOKENS, seed=3)

    try:
        stale_gap = max_logprob_gap(changed, prompts, draw())
        vllm_sampler.update_weights(changed.state_dict())
        synced_gap = max_logprob_gap(changed, prompts, draw())
        print(f"max log-prob gap before sync {stale_gap:.2e}, after {synced_gap:.2e}")
        assert stale_gap > 100 * LOGPROB_TOL
        assert synced_gap < LOGPROB_TOL
    finally:
        vllm_sampler.update_weights(hf_model.state_dict())
    assert max_logprob_gap(hf_model, prompts, draw()) < LOGPROB_TOL


def test_hf_sampler_stops_or_hits_max_tokens_with_raw_logprobs(hf_model, tokenizer, prompts):
    sampler = HFSampler(hf_model, tokenizer)
    samples = sampler.generate(prompts, n=2, temperature=0.7, top_p=0.8, top_k=20, max_tokens=MAX_TOKENS, seed=0)
    assert [len(group) for group in samples] == [2, 2]
    assert_stops_or_hits_max_tokens(samples, sampler.stop_ids)
    assert max_logprob_gap(hf_model, prompts, samples) < LOGPROB_TOL
    assert_greedy_answers_end_as_expected(sampler, prompts, tokenizer.eos_token_id)


def test_hf_sampler_same_seed_same_samples(hf_model, tokenizer, prompts):
    sampler = HFSampler(hf_model, tokenizer)

    def draw(seed):
        return sampler.generate(prompts, n=2, max_tokens=8, seed=seed)

    first = draw(5)
    assert [s.token_ids for g in first for s in g] == [s.token_ids for g in draw(5) for s in g]
    assert [s.token_ids for g in first for s in g] != [s.token_ids for g in draw(6) for s in g]
