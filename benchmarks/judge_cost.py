"""What judging costs, per-pair scoring against shared-prefix scoring, in one run.

On the shipped judge (``bundled-judge`` on the bundled model) with the study's settings: G = 4 and
8 responses to one task, all of the task's criteria, responses of 96 and 256 tokens (text from the
task's evidence corpus, cut to length). For each setting it times, best of ``--repeats``:

- sparse: verdicts only (forward passes), per pair (``shared_prefix=False``), packed per response
  (``share_question=False``) and packed over the frame and question run once per prompt (the default);
- dense: verdicts and credit (``contrastive_grad_l2`` and ``grad_x_embed``), per pair and shared,
  with each of the scorer's ``credit`` paths: ``pairs`` (a forward and backward pass per credited
  pair), ``batched`` (one batched backward pass per response) and ``cached`` (the frame and question
  once per prompt as key/values, each credited pair's response and criterion a row over them, one
  backward pass per batch of rows), and the depth variants of the contrastive rule (the backward
  pass stops part-way up);

and prints the ratios: per pair / shared (cached credit), dense / sparse, and how many of the packed
judge tokens the G responses of one prompt share in the verdicts' forward passes (the frame and the
question). With ``--steps N`` it then runs N training
steps of the study's cpu preset (vLLM sampling) to measure the rest of a step (sampling, policy
update, weight sync) and prints a dense training step over a sparse one, the judging time of each
taken from the timings above at the step's size (G = 4, 96 tokens). Peak memory is the process's
maximum resident set size after each setting.

    python benchmarks/judge_cost.py                     # judge timings only (about 10 minutes here)
    python benchmarks/judge_cost.py --steps 2           # and the training-step ratio
    python benchmarks/judge_cost.py --sharing-only      # what the G responses of a prompt could share
"""

import argparse
import functools
import resource


def responses_of(judge, task, corpus, count: int, tokens: int) -> list[list[int]]:
    """``count`` different responses of exactly ``tokens`` judge tokens from the task's evidence."""
    entry = corpus.entries[task.task_id]
    passages = [p.text for c in entry.criteria for p in c.evidence] + list(entry.distractors)
    out = []
    for n in range(count):
        order = passages[n % len(passages) :] + passages[: n % len(passages)]
        ids = []
        while len(ids) < tokens:
            for text in order:
                ids += judge.tokenizer.encode(" " + text, add_special_tokens=False)
        out.append(ids[:tokens])
    return out


RULES = [
    "contrastive_grad_l2",
    "grad_x_embed",
    "contrastive_grad_l2_d25",
    "contrastive_grad_l2_d50",
    "contrastive_grad_l2_d75",
]
MODES = {
    "per pair": {"shared_prefix": False},
    "by response": {"share_question": False},
    "pairs": {"credit": "pairs"},
    "batched": {"credit": "batched"},
    "cached": {"credit": "cached"},
}
"""The scorer's paths: every pair on its own; shared-prefix verdicts packed per response only
(``share_question=False``, the verdict path before the G responses of a prompt shared their frame
and question); and shared-prefix verdicts over the question's key/values with each ``credit`` path
(verdict-only scoring is the same for the three; it is timed once, as "cached")."""
PLAN = [
    ("sparse", "per pair"),
    ("sparse", "by response"),
    ("sparse", "cached"),
    ("contrastive_grad_l2", "per pair"),
    ("grad_x_embed", "per pair"),
    ("contrastive_grad_l2", "by response"),
    ("contrastive_grad_l2", "pairs"),
    ("contrastive_grad_l2", "batched"),
    *((rule, "cached") for rule in RULES),
]
"""(rule, mode) timed per setting."""


def prompt_sharing(judge, task, group: int, tokens: int) -> tuple[int, int, int]:
    """Judge tokens of ``group`` responses of ``tokens`` tokens: every pair on its own; packed by
    response; and packed with the part of the judge input before the response (the grading frame and
    the question) once for the whole group. The first over the last is the most that sharing can save
    in the verdicts' forward passes. Criteria decided by code are not judged."""
    frames = [judge.frame(task, c.criterion) for c in task.criteria if c.exact_check is None]
    if not frames:  # every criterion decided by code: nothing is judged
        return 0, 0, 0
    common = frames[0][0]
    for before, _ in frames[1:]:
        n = 0
        while n < min(len(common), len(before)) and common[n] == before[n]:
            n += 1
        common = common[:n]
    own = sum(len(before) - len(common) + len(after) for before, after in frames)
    alone = group * sum(len(before) + tokens + len(after) for before, after in frames)
    return alone, group * (len(common) + tokens + own), len(common) + group * (tokens + own)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    import torch
    from step_time import best_of  # benchmarks/ is on sys.path

    from g2r_env import Grad2Reward, Judge
    from g2r_judge.corpus import corpus_of
    from tasks import load_taskset

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", default="bundled-judge")
    parser.add_argument("--task", default="howto-006", help="a task of openended-mini with an evidence entry")
    parser.add_argument("--groups", type=int, nargs="+", default=[4, 8], help="responses per prompt")
    parser.add_argument("--tokens", type=int, nargs="+", default=[96, 256], help="response lengths")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--steps", type=int, default=0, help="also run this many study training steps")
    parser.add_argument(
        "--sharing-only", action="store_true", help="print only the tokens the G responses could share (no timing)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    judge = Judge.load(args.judge, device="cpu")
    task = load_taskset("openended-mini").get(args.task)
    corpus = corpus_of("openended-mini")
    print(
        f"judge {args.judge}, task {task.task_id} ({len(task.criteria)} criteria), torch threads {torch.get_num_threads()}"
    )
    if args.sharing_only:
        for tokens in args.tokens:
            for group in args.groups:
                alone, today, shared = prompt_sharing(judge, task, group, tokens)
                print(
                    f"G={group}, {tokens} tokens: judge tokens {alone} per pair, {today} packed by response; frame "
                    f"and question once: {shared} ({1 - shared / today:.0%} fewer; per pair / shared {alone / shared:.2f}x)"
                )
        return
    at_step_size = {}
    for tokens in args.tokens:
        for group in args.groups:
            responses = responses_of(judge, task, corpus, group, tokens)
            tasks = [task] * group
            row = {}
            for rule, mode in PLAN:
                scorer = Grad2Reward(
                    judge,
                    attribution=rule.replace("sparse", "last_token"),
                    **MODES[mode],
                )
                run = functools.partial(scorer.score_batch, tasks, responses, dense=rule != "sparse")
                row[rule, mode] = best_of(args.repeats, run)
            met = sum(c["met"] for r in scorer.score_batch(tasks, responses, dense=False) for c in r.criteria)
            pairs = group * len(task.criteria)
            alone, today, shared = prompt_sharing(judge, task, group, tokens)
            print(f"\nG={group}, {tokens} tokens: {pairs} pairs, {met} met; peak RSS {peak_mib():.0f} MiB")
            print(
                f"  judge tokens: {alone} per pair, {today} packed by response, {shared} with the frame and question "
                f"once for the G responses ({1 - shared / today:.0%} fewer than by response; per pair / shared "
                f"{alone / shared:.2f}x, what sharing can save at most in the verdicts)"
            )
            head = " ".join(f"{mode:>11s}" for mode in MODES)
            print(f"  {'':26s} {head} {'per pair/cached':>16s} {'cached/sparse':>14s}")
            for rule in ["sparse", *RULES]:
                cells = [row.get((rule, mode)) for mode in MODES]
                text = " ".join(f"{c:10.2f}s" if c else f"{'-':>11s}" for c in cells)
                speedup = f"{cells[0] / cells[-1]:15.2f}x" if cells[0] else f"{'-':>16s}"
                print(f"  {rule:26s} {text} {speedup} {cells[-1] / row['sparse', 'cached']:13.2f}x")
            at_step_size[group, tokens] = row

    if args.steps:
        from pathlib import Path

        from sample_efficiency import load_preset, run_config  # benchmarks/ is on sys.path

        from agents import Trainer

        config = run_config(load_preset("cpu"), "dense_best", 0, Path("runs/bench_judge_cost"))
        config = config.with_overrides(["eval_every=0", "progress=false", "checkpoint_every=0"])
        trainer = Trainer(config, overwrite=True)  # an earlier benchmark's run folder is moved aside
        trainer.train_step()  # warm-up
        records = [trainer.train_step() for _ in range(args.steps)]
        rest = sum(r["time/step"] - r["time/judging"] for r in records) / len(records)
        key = (config.group_size * config.prompts_per_step, config.max_new_tokens)
        row = at_step_size.get(key)
        if row is None:
            print(f"\nno judge timing at G={key[0]}, {key[1]} tokens: run with --groups {key[0]} --tokens {key[1]}")
            return
        print(f"\ntraining step of the cpu study preset (G={key[0]}, {key[1]} tokens), mean of {args.steps} steps:")
        print(f"  sampling + update + sync     {rest:7.2f} s")
        sparse = {mode: rest + row["sparse", mode] for mode in ("per pair", "by response", "cached")}
        for (rule, mode), seconds in row.items():
            if rule == "sparse":
                continue
            step = rest + seconds
            base = sparse.get(mode, sparse["cached"])
            print(f"  {rule + ' (' + mode + ')':44s} step {step:6.2f} s = {step / base:.2f}x the sparse step")


if __name__ == "__main__":
    main()
