"""Cost of Grad2Reward attribution against a forward-only judge, and of batching.

For 16 responses x 4 criteria x about 128 response tokens, prints:
  - judge forward-only time (verdicts alone, no backward),
  - attribution time (verdicts + one backward per micro-batch, every pair credited),
  - their ratio (with frozen weights the backward costs about one forward, so ~2 is the floor),
  - batched (micro-batches of --micro-batch) vs one pair at a time, as a speedup,
  - peak memory of the attribution run (CUDA: max allocated; CPU: rise of the peak RSS).

    python benchmarks/attribution.py                       # bundled model, CPU here
    python benchmarks/attribution.py --device cuda         # bf16 judge on a GPU
    python benchmarks/attribution.py --random-config llama-1.5b --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from g2r_env import Grad2Reward, Judge
from g2r_env.models import default_dtype, resolve_device, shared_model
from tasks import Task, load_taskset

PARAGRAPH = (
    "Good sleep starts with a steady routine: go to bed and wake up at the same time every day, even on "
    "weekends. Keep the bedroom cool, dark and quiet, and use the bed only for sleep. Avoid caffeine after "
    "lunch and heavy meals late in the evening. Put screens away an hour before bed, since bright light "
    "delays the release of melatonin. If you cannot fall asleep within twenty minutes, get up and do "
    "something calm in dim light until you feel sleepy. Regular exercise helps, but not right before bed. "
    "If the problem lasts for weeks, talk to a doctor, because insomnia can have medical causes that "
    "deserve treatment. Small changes, kept up for a few weeks, usually make the biggest difference."
)

RANDOM_CONFIGS = {
    # about 1.5B parameters, Llama layout (Qwen2.5-1.5B-like widths)
    "llama-1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        vocab_size=151936,
        max_position_embeddings=4096,
    ),
}


def make_judge(args) -> Judge:
    device = resolve_device(args.device)
    if args.random_config is None:
        model, tokenizer = shared_model("bundled", device)
        return Judge(model, tokenizer, micro_batch_size=args.micro_batch)
    from transformers import LlamaConfig, LlamaForCausalLM

    _, tokenizer = shared_model("bundled", "cpu")
    config = LlamaConfig(**RANDOM_CONFIGS[args.random_config], tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(default_dtype(device))
    print(f"random {args.random_config}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters")
    return Judge(model, tokenizer, micro_batch_size=args.micro_batch)


def workload(judge: Judge, responses: int, criteria: int, tokens: int):
    tasks = [t for t in load_taskset("openended-mini") if len(t.criteria) >= criteria][:responses]
    tasks = [Task(t.task_id, t.prompt, t.criteria[:criteria]) for t in tasks]
    ids = judge.tokenizer.encode(PARAGRAPH * 3, add_special_tokens=False)
    # shift the window per response so the responses differ
    return tasks, [ids[n * 3 : n * 3 + tokens] for n in range(len(tasks))]


def timed(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:
        with open("/proc/self/clear_refs", "w") as handle:  # resets VmHWM (peak RSS) on Linux
            handle.write("5")


def read_peak(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    with open("/proc/self/status") as handle:
        fields = dict(line.split(":", 1) for line in handle)
    return int(fields["VmHWM"].split()[0]) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--random-config",
        choices=sorted(RANDOM_CONFIGS),
        default=None,
        help="time a randomly initialised model of this size instead of the bundled one",
    )
    p.add_argument("--responses", type=int, default=16)
    p.add_argument("--criteria", type=int, default=4)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    judge = make_judge(args)
    device = judge.device
    tasks, responses = workload(judge, args.responses, args.criteria, args.tokens)
    pairs = sum(len(t.criteria) for t in tasks)
    print(
        f"device {device} ({judge.dtype}), {len(tasks)} responses x {args.criteria} criteria = {pairs} pairs, "
        f"{len(responses[0])} response tokens, micro-batch {judge.micro_batch_size}, torch threads "
        f"{torch.get_num_threads()}"
    )

    forward_only = Grad2Reward(judge, attribution="uniform")  # verdicts only: no backward pass
    attribution = Grad2Reward(judge, attribution="grad_x_embed", soft=True)  # soft: every pair back-propagated
    forward_only.score_batch(tasks[:2], responses[:2])  # warm-up
    attribution.score_batch(tasks[:2], responses[:2])

    t_forward = timed(lambda: forward_only.score_batch(tasks, responses), args.repeats, device)
    reset_peak(device)
    base = read_peak(device)
    t_attribution = timed(lambda: attribution.score_batch(tasks, responses), args.repeats, device)
    peak = read_peak(device)

    judge.micro_batch_size = 1
    t_loop = timed(lambda: attribution.score_batch(tasks, responses), max(1, args.repeats - 1), device)
    judge.micro_batch_size = args.micro_batch

    print(f"judge forward only:         {t_forward:8.3f} s  ({pairs / t_forward:.1f} pairs/s)")
    print(f"attribution (fwd + bwd):    {t_attribution:8.3f} s  ({pairs / t_attribution:.1f} pairs/s)")
    print(f"attribution / forward:      {t_attribution / t_forward:8.2f}   (target <= 2.5 on CPU; ~2 is the floor)")
    print(f"one pair at a time:         {t_loop:8.3f} s")
    print(f"batched speedup vs loop:    {t_loop / t_attribution:8.2f}x  (target >= 1.5x)")
    if device.type == "cuda":
        print(f"peak memory (attribution):  {peak:8.1f} MiB allocated")
    else:
        print(f"peak memory (attribution):  {peak:8.1f} MiB RSS ({peak - base:+.1f} MiB over the process before)")


if __name__ == "__main__":
    main()
