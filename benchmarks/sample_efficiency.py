"""The sample-efficiency study: dense judge-gradient token rewards against sparse GRPO, over seeds.

Every arm trains a fresh copy of the policy on the same tasks, seeds, sampler and budget, differing
only in credit assignment (the preset's "arms"): sparse GRPO on the sequence reward, token GRPO on
grad x embed credit (the paper's method), token GRPO on the best attribution of the judge study,
token GRPO on uniform credit (dense but uninformative: the control that tells credit placement from
token-level advantages), and token_rloo (a leave-one-out token baseline without token GRPO's
late-token bias).

The training reward comes from the shipped judge ("bundled-judge"); the eval score from a second
judge trained the same way on the other half of the corpus's passages with another seed
("bundled-eval-judge"), on the test split, greedy. Both are logged for the same responses, with the
rubric echo (share of response words copied in 4-grams from the task's criteria) and the code-checked
verdicts: a training judge rising alone, or a rising echo, is the hacking signal.

Two stages, each resumable:

1. ``--sweep``: the learning-rate sweep of the preset's "sweep" (its rates for the swept arms, on its
   seeds), judged on "eval_task_ids", tasks that are neither trained on nor the study's eval tasks.
   Writes ``sweep/sweep.json`` with each swept arm's best rate: the highest mean eval score over
   training (area under the eval curve; one seed's last eval alone is too noisy to pick by).
2. the study: every arm at the best rate of the swept arm it follows (the sweep's "arms" map), over
   the preset's seeds ("arm_seeds" gives an arm more: the arms a comparison turns on).

Every run writes its folder under benchmarks/results/<preset>/ (config.json, metrics.jsonl,
eval_responses.jsonl with every eval's greedy responses, run.json with its wall time; weights are
deleted); a finished run whose config is unchanged is picked up, not
rerun, so a study stopped on one machine continues on another from the committed folders. With
``--commit`` each run is committed as it finishes; a file named STOP in that folder stops the
study between runs (those in flight finish). Ends with results.json (curves, bands, final
scores, intervals, steps ratio; agents.study.summarize), curves.png, and the table for the README.

    python benchmarks/sample_efficiency.py --sweep --commit   # 1. the sweep of the default (cpu) preset
    python benchmarks/sample_efficiency.py --commit           # 2. the study at the swept rates
    python benchmarks/sample_efficiency.py --preset quick --no-sweep   # a smoke test of a few minutes
    python benchmarks/sample_efficiency.py --preset gpu       # the bigger study, HF sampler, on a GPU
    python benchmarks/sample_efficiency.py --preset cpu_g8 --rescore bundled-judge   # judge the saved
        # eval responses again with another judge, no training: results-<judge>.json, curves-<judge>.png
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import multiprocessing as mp
import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from queue import Empty

REPO = Path(__file__).resolve().parent.parent


def load_preset(name: str) -> dict:
    from agents.study import load_study_preset

    try:
        return load_study_preset(name)
    except ValueError as err:
        raise SystemExit(str(err)) from None


def seeds_of(preset: dict, arm: str) -> list[int]:
    """The seeds ``arm`` runs on: the preset's "seeds", or the arm's own list in "arm_seeds" (more
    seeds for the arms a comparison turns on)."""
    return preset.get("arm_seeds", {}).get(arm, preset["seeds"])


def run_config(preset: dict, arm: str, seed: int, out: Path):
    """The TrainConfig of one (arm, seed) run of ``preset``, in ``out/<arm>/seed<seed>``."""
    from agents import TrainConfig

    values = {**preset["train"], **preset["arms"][arm], "seed": seed, "run_dir": str(out / arm / f"seed{seed}")}
    return TrainConfig.from_dict({k: v for k, v in values.items() if not k.startswith("_")}, where=f"arm {arm}")


def study_configs(preset: dict, out: Path) -> list:
    """The study's runs, seed by seed (every arm's run of one seed before the next seed's), so a study
    stopped early has the same seeds of every arm."""
    seeds = sorted({seed for arm in preset["arms"] for seed in seeds_of(preset, arm)})
    return [run_config(preset, arm, s, out) for s in seeds for arm in preset["arms"] if s in seeds_of(preset, arm)]


def sweep_configs(preset: dict, out: Path) -> list:
    """The sweep's runs: every swept arm at every rate and seed, judged on the sweep's eval tasks, in
    ``out/sweep/lr<rate>/<arm>/seed<seed>``."""
    sweep = preset["sweep"]
    configs = []
    for rate in sweep["learning_rates"]:
        for seed in sweep["seeds"]:
            for arm in sweep["arms"]:
                variant = copy.deepcopy(preset)
                variant["train"].update(eval_task_ids=sweep["eval_task_ids"], learning_rate=rate)
                configs.append(run_config(variant, arm, seed, out / "sweep" / f"lr{rate:g}"))
    return configs


# The eval scores a study can read its curves from (a preset's "score"): the eval judge's score, its
# p_true version and the training judge's score, of one greedy response per eval task or of the
# config's eval_samples sampled ones.
SCORES = {
    "greedy": ("eval/judge_score", "eval/judge_soft_score", "eval/reward_judge_score"),
    "sampled": ("eval/sampled_score", "eval/sampled_soft_score", "eval/sampled_reward_judge_score"),
}


def judge_weights(config) -> dict[str, str]:
    """Per judge the run names (training and eval), the sha256 of its weights and record where it is a
    local folder (a shipped judge keeps its name when it is rebuilt); "" for a hub id."""
    return {name: _judge_digest(name) for name in sorted({config.judge, config.eval_judge} - {None})}


@functools.cache
def _judge_digest(name: str) -> str:
    import hashlib

    from g2r_env.models import resolve_source

    folder, digest = Path(resolve_source(name)), hashlib.sha256()
    files = sorted(f for f in folder.glob("*") if f.suffix in (".safetensors", ".json") and f.name != "eval.json")
    for path in files:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest() if files else ""


def finished(config, say: bool = True) -> bool:
    """A run whose run.json (written last, after its weights are deleted) is there, whose metrics
    reach the last step with an eval record and whose saved config equals ``config`` (a run of other
    settings, say another learning rate, is rerun), trained with the judges there now where its
    run.json records them (a run trained before a judge was rebuilt is rerun)."""
    from agents import TrainConfig
    from g2r_env.runlog import read_metrics

    folder = Path(config.run_dir)
    if not all((folder / name).exists() for name in ("metrics.jsonl", "config.json", "run.json")):
        return False
    saved = asdict(TrainConfig.from_dict(json.loads((folder / "config.json").read_text()), where=str(folder)))
    ignored = {"run_dir", "progress", "cpu_threads"}
    if {k: v for k, v in saved.items() if k not in ignored} != {
        k: v for k, v in asdict(config).items() if k not in ignored
    }:
        if say:
            print(f"[study] {folder}: finished with other settings; it is trained again", flush=True)
        return False
    judges = json.loads((folder / "run.json").read_text()).get("judges")
    if judges is not None and judges != judge_weights(config):
        if say:
            print(f"[study] {folder}: trained with other judge weights; it is trained again", flush=True)
        return False
    records = read_metrics(folder / "metrics.jsonl")
    return any(r["step"] == config.total_steps and "eval/judge_score" in r for r in records)


@contextmanager
def _locked(path: Path):
    import fcntl

    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)


def commit_run(folder: Path, message: str, tries: int = 5) -> bool:
    """``git add`` and commit only ``folder`` (runs of parallel jobs take turns); nothing when it is
    committed already. A failed commit (say, another git command holding the index) is tried again,
    then left with a warning, never raised: the run stays on disk and a later pick-up commits it."""
    error = ""
    for attempt in range(tries):
        with _locked(REPO / ".git" / "g2r-study.lock"):
            status = _git("status", "--porcelain", "--", str(folder))
            if status.returncode == 0 and not status.stdout.strip():
                return True
            for step in (("add", "--", str(folder)), ("commit", "-q", "-m", message, "--", str(folder))):
                result = _git(*step)
                if result.returncode:
                    error = result.stderr.strip()
                    break
            else:
                return True
        time.sleep(2 * (attempt + 1))
    print(f"[study] warning: {folder} not committed ({error}); a later run of this script commits it", flush=True)
    return False


STOP_FILE = "STOP"
"""A file of this name in a study's output folder asks its jobs to start no new run: the runs in
flight finish (and are committed with --commit), then the study or sweep ends without its summary."""


def drain(queue) -> Iterator:
    """The items of ``queue`` in order, taken one at a time until it is empty (the jobs share it)."""
    while True:
        try:
            yield queue.get_nowait()
        except Empty:
            return


def run_many(configs: Iterable, label: str, commit: bool, stop: Path | None = None) -> list[tuple[str, float]]:
    """Train the runs in order in this process, one sampler (vLLM engine) for all; the step-0 eval
    is measured once per initial_eval_key and reused. ``configs`` is a list or a queue the jobs
    share (the next run goes to the first job free); once the file ``stop`` exists no new run
    starts. Returns (run_dir, seconds; 0 for a run finished before)."""
    import gc
    import shutil

    import torch
    from transformers.utils import logging as transformers_logging

    from agents import Trainer
    from agents.sampling import vllm_output_to
    from agents.study import initial_eval_key

    torch.set_num_threads(1)
    transformers_logging.disable_progress_bar()  # our lines only; vLLM's go to a log file
    sampler, done, initial = None, [], {}
    with vllm_output_to(REPO / "runs" / "study-logs" / label / f"vllm-{os.getpid()}.log"):
        for config in configs if isinstance(configs, list) else drain(configs):
            key = initial_eval_key(config)
            if finished(config):
                done.append((config.run_dir, 0.0))
                if commit:  # finished before but not committed (say, a failed commit)
                    folder = Path(config.run_dir)
                    commit_run(folder, f"study {label}: {'/'.join(folder.parts[-3:])} finished")
                continue
            if stop is not None and stop.exists():
                print(f"[study] {stop}: this job starts no new run", flush=True)
                break
            shutil.rmtree(config.run_dir, ignore_errors=True)  # an unfinished run starts over, for equal budgets
            start = time.perf_counter()
            trainer = Trainer(config, sampler=sampler, initial_eval=initial.get(key))
            history = trainer.train()
            if key not in initial:
                first = next(r for r in history if r["step"] == 0)
                initial[key] = {k: v for k, v in first.items() if k.startswith("eval/")}
                initial[key]["eval_responses"] = trainer.eval_log.read()[0]
            folder = Path(config.run_dir)
            for weights in ("checkpoint", "model"):  # the study reads metrics only: 2 GB a run otherwise
                shutil.rmtree(folder / weights, ignore_errors=True)
            seconds = time.perf_counter() - start
            info = {"wall_seconds": seconds, "threads": 1, "judges": judge_weights(config)}
            (folder / "run.json").write_text(json.dumps(info, indent=2))
            done.append((config.run_dir, seconds))
            name = "/".join(folder.parts[-3:])
            print(f"[study] {name}: {seconds:.0f}s", flush=True)
            if commit:
                commit_run(folder, f"study {label}: {name} finished ({seconds / 60:.0f} min)")
            sampler = trainer.sampler if config.sampler == "vllm" else None
            del trainer
            gc.collect()
    return done


def clear_stop(out: Path, configs: list) -> bool:
    """Remove ``out``/STOP, left by the last stop, when this start has runs to train; a call that only
    reads finished runs (the table of a subset) leaves it, so a study running beside it still stops."""
    stop = out / STOP_FILE
    if not stop.exists() or all(finished(c, say=False) for c in configs):
        return False
    stop.unlink()
    print(f"[study] removed {stop}, left by an earlier stop", flush=True)
    return True


def train_all(configs: list, jobs: int, label: str, commit: bool, out: Path) -> tuple[list, float]:
    """Train ``configs`` in ``jobs`` processes (each one thread), in order, each run to the first
    job free; (done, wall seconds). Exits, naming what is left, when ``out``/STOP stopped it first."""
    start = time.perf_counter()
    ready = [finished(c, say=False) for c in configs]
    jobs = max(1, min(jobs, ready.count(False)))
    stop = out / STOP_FILE
    if jobs == 1:
        done = run_many(configs, label, commit, stop)
    else:
        context = mp.get_context("spawn")
        with context.Manager() as manager, context.Pool(jobs) as pool:
            queue = manager.Queue()
            for config in [c for c, r in zip(configs, ready) if r] + [c for c, r in zip(configs, ready) if not r]:
                queue.put(config)  # picked-up runs first: they take no time
            parts = pool.starmap(run_many, [(queue, label, commit, stop)] * jobs)
        done = [d for part in parts for d in part]
    elapsed = time.perf_counter() - start
    taken = {run_dir for run_dir, _ in done}  # finished before, or trained now
    left = [c.run_dir for c in configs if c.run_dir not in taken]
    if left:
        trained = sum(seconds > 0 for _, seconds in done)
        why = f"stopped by {stop}" if stop.exists() else "not every run finished"
        raise SystemExit(
            f"[study] {why}: {trained} runs trained in {elapsed / 60:.1f} min, {len(left)} left "
            f"(the next: {left[0]}); the same command goes on from there"
        )
    return done, elapsed


def read_run(folder: Path, stop_ids: frozenset[int] = frozenset()) -> dict:
    """One finished run's eval records (by key, over eval steps), mean step seconds and wall seconds;
    with ``stop_ids``, also ``eval/finished``: the share of each eval's greedy responses that ended on
    a stop token rather than at the length limit (from eval_responses.jsonl, where the run saved it)."""
    from g2r_env.runlog import read_metrics

    records = read_metrics(folder / "metrics.jsonl")
    evals = [r for r in records if "eval/judge_score" in r]
    step_times = [r["time/step"] for r in records if "time/step" in r]
    info = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
    keys = (*SCORES["greedy"], *SCORES["sampled"], "eval/rubric_echo", "eval/checks_passed")
    finished = {}
    if stop_ids and (folder / "eval_responses.jsonl").exists():
        played = read_metrics(folder / "eval_responses.jsonl")
        if [r["step"] for r in played] == [r["step"] for r in evals]:
            finished["eval/finished"] = [
                sum(bool(p["response_ids"]) and p["response_ids"][-1] in stop_ids for p in r["responses"])
                / max(len(r["responses"]), 1)
                for r in played
            ]
    return {
        "steps": [r["step"] for r in evals],
        **{key: [r[key] for r in evals] for key in keys if all(key in r for r in evals)},
        **finished,
        "step_seconds": sum(step_times) / len(step_times) if step_times else math.nan,
        "wall_seconds": info.get("wall_seconds", math.nan),
    }


def collect(preset: dict, out: Path) -> tuple[list[int], dict]:
    """Eval steps and, per arm, each seed's run (``read_run``, with the policy's stop tokens)."""
    from g2r_env.models import load_tokenizer, stop_token_ids

    stop_ids = frozenset(stop_token_ids(load_tokenizer(preset["train"].get("model", "bundled"))))
    runs, steps = {}, None
    for arm in preset["arms"]:
        for seed in seeds_of(preset, arm):
            run = read_run(out / arm / f"seed{seed}", stop_ids)
            if steps is None:
                steps = run["steps"]
            if run["steps"] != steps:
                raise SystemExit(f"{arm} seed {seed}: eval steps {run['steps']} differ from {steps}")
            runs.setdefault(arm, []).append(run)
    return steps, runs


def rescore(preset: dict, out: Path, runs: dict, judge: str) -> None:
    """Judge every run's saved eval responses (eval_responses.jsonl) again with ``judge`` and put its
    scores in place of the eval judge's in ``runs`` (``eval/judge_score``, ``eval/judge_soft_score``,
    and the sampled responses' ``eval/sampled_score``, ``eval/sampled_soft_score`` where saved): a
    better eval judge scores a finished study without training it again."""
    from tqdm.auto import tqdm

    from agents.trainer import soft_score
    from g2r_env import build_scorer
    from g2r_env.runlog import read_metrics
    from tasks import load_taskset

    first = run_config(preset, next(iter(preset["arms"])), preset["seeds"][0], out)
    scorer = build_scorer(first.model, judge, "cpu", micro_batch_size=first.judge_micro_batch_size, checks=first.checks)
    tasks = load_taskset(first.tasks)
    folders = [(arm, n, out / arm / f"seed{seed}") for arm in runs for n, seed in enumerate(seeds_of(preset, arm))]
    for arm, n, folder in tqdm(folders, desc=f"judging again with {judge}", unit="run"):
        path = folder / "eval_responses.jsonl"
        if not path.exists():
            raise SystemExit(f"{folder}: no eval_responses.jsonl (a run from before evals were saved): train it again")
        records = read_metrics(path)
        if [r["step"] for r in records] != runs[arm][n]["steps"]:
            raise SystemExit(f"{path}: eval steps {[r['step'] for r in records]} differ from its metrics'")
        for field, (score, soft, _) in (("responses", SCORES["greedy"]), ("sampled", SCORES["sampled"])):
            if not all(field in record for record in records):
                continue
            scores, softs = [], []
            for record in records:
                played = record[field]
                results = scorer.score_batch(
                    [tasks.get(r["task_id"]) for r in played], [r["response_ids"] for r in played], dense=False
                )
                scores.append(sum(r.sequence_reward for r in results) / len(results))
                softs.append(sum(soft_score(r.criteria) for r in results) / len(results))
            runs[arm][n][score], runs[arm][n][soft] = scores, softs


def curves_of(runs: dict, key: str) -> dict:
    """Per arm, every seed's curve of ``key`` (arms where a seed lacks it are left out)."""
    return {arm: [r[key] for r in rows] for arm, rows in runs.items() if all(key in r for r in rows)}


def sweep(preset: dict, out: Path, jobs: int, commit: bool, label: str) -> dict:
    """Run (or pick up) the learning-rate sweep and choose each swept arm's rate; writes sweep/sweep.json."""
    from agents.study import area_under

    configs = sweep_configs(preset, out)
    clear_stop(out, configs)
    _, elapsed = train_all(configs, jobs, f"{label}-sweep", commit, out)
    table = []
    for config in configs:
        run = read_run(Path(config.run_dir))
        scores = run[SCORES[preset.get("score", "greedy")][0]]
        arm = Path(config.run_dir).parts[-2]
        table.append(
            {
                "arm": arm,
                "learning_rate": config.learning_rate,
                "seed": config.seed,
                "first": scores[0],
                "final": scores[-1],
                "auc": area_under(run["steps"], scores),
                "echo_final": run.get("eval/rubric_echo", [math.nan])[-1],
                "step_seconds": run["step_seconds"],
                "wall_seconds": run["wall_seconds"],
            }
        )
    best = {}
    for arm in preset["sweep"]["arms"]:
        by_rate = {}
        for row in table:
            if row["arm"] == arm:
                by_rate.setdefault(row["learning_rate"], []).append(row["auc"])
        best[arm] = max(by_rate, key=lambda rate: sum(by_rate[rate]) / len(by_rate[rate]))
    result = {"best_learning_rate": best, "runs": table, "eval_task_ids": preset["sweep"]["eval_task_ids"]}
    result["settings"] = sweep_settings(preset)
    result["wall_seconds"] = elapsed
    (out / "sweep").mkdir(parents=True, exist_ok=True)
    (out / "sweep" / "sweep.json").write_text(json.dumps(result, indent=2))
    print(
        f"\nlearning-rate sweep ({label}; eval on {len(result['eval_task_ids'])} tasks neither trained on nor the study's):"
    )
    print("| arm | learning rate | seed | first eval | final eval | mean eval over training | s/step |")
    print("|---|---|---|---|---|---|---|")
    for row in sorted(table, key=lambda r: (r["arm"], r["learning_rate"], r["seed"])):
        chosen = " (chosen)" if best[row["arm"]] == row["learning_rate"] else ""
        print(
            f"| {row['arm']} | {row['learning_rate']:g}{chosen} | {row['seed']} | {row['first']:.3f} | "
            f"{row['final']:.3f} | {row['auc']:.3f} | {row['step_seconds']:.0f} |"
        )
    return result


def sweep_settings(preset: dict) -> dict:
    """What a sweep's choice depends on: the preset's sweep and shared training settings."""
    return json.loads(json.dumps({"sweep": preset["sweep"], "train": preset["train"]}))


def apply_sweep(preset: dict, out: Path, use_sweep: bool) -> dict:
    """Every arm at the best rate of the swept arm it follows; the preset's rate without a sweep.
    A sweep.json made with other settings is refused."""
    if "sweep" not in preset or not use_sweep:
        return preset
    path = out / "sweep" / "sweep.json"
    if not path.exists():
        raise SystemExit(f"no {path}: run the sweep first (--sweep), or --no-sweep to train at the preset's rate")
    made = json.loads(path.read_text())
    now = sweep_settings(preset)
    if made.get("settings") != now:
        old = made.get("settings") or {}
        changed = [
            f"{part}.{key}"
            for part in now
            for key in sorted(set(now[part]) | set(old.get(part, {})))
            if now[part].get(key) != old.get(part, {}).get(key)
        ]
        raise SystemExit(
            f"{path} was swept with other settings ({', '.join(changed)}): run the sweep again (--sweep), "
            "or --no-sweep to train at the preset's rate"
        )
    best = made["best_learning_rate"]
    preset = copy.deepcopy(preset)
    for swept, followers in preset["sweep"]["arms"].items():
        for arm in followers:
            if arm in preset["arms"]:
                preset["arms"][arm]["learning_rate"] = best[swept]
    return preset


def plot(steps, summary: dict, echo: dict, path: Path, title: str, score: str = "greedy") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if echo else 1, figsize=(13 if echo else 8, 4.5), squeeze=False)
    axis, copied = axes[0][0], axes[0][-1]
    for n, (arm, row) in enumerate(summary.items()):
        axis.plot(steps, row["mean"], "o-", color=f"C{n}", label=f"{arm} ({row['seeds']} seeds)")
        axis.fill_between(steps, row["band_low"], row["band_high"], color=f"C{n}", alpha=0.2)
        if arm in echo:
            from agents.study import band, mean_curve

            low, high = band(echo[arm])
            copied.plot(steps, mean_curve(echo[arm]), "o-", color=f"C{n}", label=arm)
            copied.fill_between(steps, low, high, color=f"C{n}", alpha=0.2)
    axis.set_ylabel(f"eval judge score, test split ({score})")
    axis.set_title(title)
    axis.legend(fontsize=8)
    if echo:
        copied.set_ylabel("rubric echo (share of words in 4-grams of the criteria)")
        copied.set_title("hacking check: rubric echo")
    for ax in axes[0]:
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def paper_arms(configs: dict) -> dict[str, str]:
    """Each dense arm with another credit rule -> the arm with the paper's ``grad_x_embed`` credit and
    the same advantage, where there is one (``configs``: a TrainConfig per arm): the comparison that
    decides the default rule."""
    paper = {
        c.advantage: arm for arm, c in configs.items() if c.reward_mode == "dense" and c.attribution == "grad_x_embed"
    }
    return {
        arm: paper[c.advantage]
        for arm, c in configs.items()
        if c.reward_mode == "dense" and c.attribution != "grad_x_embed" and c.advantage in paper
    }


def _interval(d: dict, key: str = "difference") -> str:
    return f"{d[key]:+.3f} ({d['ci_low']:+.3f} to {d['ci_high']:+.3f})"


def table(steps, summary: dict, baseline: str, control: str) -> str:
    total = steps[-1]  # the last eval step
    lines = [
        f"| arm | seeds | learning rate | final eval score | vs {baseline} (95% CI) | vs {control} (95% CI) "
        f"| vs grad_x_embed, same advantage (95% CI) | mean eval over training (95% CI) | eval change "
        f"| training-judge change | rubric echo change | steps to reach {baseline}'s final "
        f"| ratio vs {baseline} (95% CI) | s/step |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, row in summary.items():
        vs = row.get("vs_baseline")
        if arm == baseline:
            reach = f"{row['steps_to_final']:.1f}"
            ratio = "1 (baseline)" if row["improved"] else f"none: {baseline} did not improve"
            change = f"{row['eval_change']:+.3f} ({row['eval_change_ci']['ci_low']:+.3f} to {row['eval_change_ci']['ci_high']:+.3f})"
        else:
            change = f"{row['eval_change']:+.3f}"
            if vs is None:
                reach, ratio = "-", "-"
            else:
                reach = f"{vs['arm_steps']:.1f}" if math.isfinite(vs["arm_steps"]) else f"not in {total}"
                ratio = (
                    f"{vs['ratio']:.2f} ({vs['ci_low']:.2f}-{vs['ci_high']:.2f}; reached in {vs['reached_share']:.0%})"
                )
        versus = _interval(row["final_vs_baseline"]) if "final_vs_baseline" in row else "-"
        against = _interval(row["final_vs_control"]) if "final_vs_control" in row else "-"
        paper = row.get("final_vs_reference")
        paper = f"{_interval(paper)} vs {paper['reference']}" if paper else "-"
        reward = f"{row['reward_judge_change']:+.3f}" if "reward_judge_change" in row else "-"
        echo = _interval(row["echo_change"], "mean") if "echo_change" in row else "-"
        lines.append(
            f"| {arm} | {row['seeds']} | {row['learning_rate']:g} | {row['final_mean']:.3f} ± {row['final_std']:.3f} | {versus} | "
            f"{against} | {paper} | {row['auc']['mean']:.3f} ({row['auc']['ci_low']:.3f}-{row['auc']['ci_high']:.3f}) | "
            f"{change} | {reward} | {echo} | {reach} | {ratio} | {row['step_seconds']:.0f} |"
        )
    for name, what in (
        ("soft", "by the eval judge's p_true in place of its verdicts"),
        ("greedy", "of the greedy responses"),
    ):
        changes = [
            f"{arm} {_interval(row[f'{name}_change'], 'mean')}"
            for arm, row in summary.items()
            if f"{name}_change" in row
        ]
        if changes:
            lines.append(f"\neval change {what}: " + "; ".join(changes))
    ended = [
        f"{arm} {row['finished_first']:.2f} -> {row['finished_final']:.2f}"
        for arm, row in summary.items()
        if "finished_final" in row
    ]
    if ended:
        lines.append(
            "\ngreedy eval responses that end on a stop token (not at the length limit), first -> last eval: "
            + "; ".join(ended)
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--preset", default="cpu", help="a study preset (agents/presets/study/<name>.json) or a path (default: cpu)"
    )
    parser.add_argument("--sweep", action="store_true", help="run the preset's learning-rate sweep (stage 1)")
    parser.add_argument(
        "--no-sweep", action="store_true", help="train every arm at the preset's learning rate, not the swept ones"
    )
    parser.add_argument("--arms", default="", help="comma-separated subset of the preset's arms")
    parser.add_argument(
        "--seeds", default="", help='comma-separated seeds of every arm (default: the preset\'s, and its "arm_seeds")'
    )
    parser.add_argument("--jobs", type=int, default=0, help="runs in parallel processes (default: the preset's)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a TrainConfig field of every arm, e.g. --set total_steps=8",
    )
    parser.add_argument("--out", default="", help="output folder (default: benchmarks/results/<preset>)")
    parser.add_argument("--commit", action="store_true", help="git-commit each run's folder as it finishes")
    parser.add_argument(
        "--rescore",
        default="",
        metavar="JUDGE",
        help="train nothing: judge the finished runs' saved eval responses again with JUDGE and write "
        "results-<JUDGE>.json and curves-<JUDGE>.png",
    )
    args = parser.parse_args()
    if args.rescore and (args.sweep or args.commit):
        raise SystemExit("--rescore trains nothing: it takes neither --sweep nor --commit")

    label = Path(args.preset).stem
    preset = load_preset(args.preset)
    from agents.config import parse_value

    for item in args.overrides:
        key, _, value = item.partition("=")
        preset["train"][key.strip()] = parse_value(value)
    out = Path(args.out or REPO / "benchmarks" / "results" / label)
    if args.commit and not out.resolve().is_relative_to(REPO):
        raise SystemExit(f"--commit: {out} is outside the repository {REPO}")
    out.mkdir(parents=True, exist_ok=True)
    jobs = args.jobs or preset.get("jobs", 1)
    if args.sweep:
        if "sweep" not in preset:
            raise SystemExit(f"preset {label} has no learning-rate sweep")
        if args.arms or args.seeds:
            raise SystemExit("--arms and --seeds choose the study's runs; the sweep's are the preset's \"sweep\"")
        sweep(preset, out, jobs, args.commit, label)
        return
    preset = apply_sweep(preset, out, not args.no_sweep)
    if "sweep" in preset and not args.no_sweep and any(i.strip().startswith("learning_rate") for i in args.overrides):
        raise SystemExit("--set learning_rate=...: the arms train at their swept rates; add --no-sweep to set one")
    if args.arms:
        preset["arms"] = {a: preset["arms"][a] for a in args.arms.split(",")}
    if args.seeds:
        preset["seeds"] = [int(s) for s in args.seeds.split(",")]
        preset.pop("arm_seeds", None)
    configs = study_configs(preset, out)
    if args.rescore:
        unfinished = [c.run_dir for c in configs if not finished(c, say=False)]
        if unfinished:
            raise SystemExit(f"--rescore: {len(unfinished)} runs are not finished, e.g. {unfinished[0]}")
        trained, elapsed = 0, 0.0
    else:
        clear_stop(out, configs)
        print(
            f"[study] {len(configs)} runs in {out}; vLLM's output goes to {REPO / 'runs' / 'study-logs' / label}",
            flush=True,
        )
        done, elapsed = train_all(configs, jobs, label, args.commit, out)  # every config was checked above
        trained = sum(seconds > 0 for _, seconds in done)

    from agents.study import bootstrap_mean, default_rule, summarize

    baseline, control = preset["baseline"], preset.get("control", "dense_uniform")
    steps, runs = collect(preset, out)
    suffix = ""
    if args.rescore:
        rescore(preset, out, runs, args.rescore)
        suffix = "-" + Path(args.rescore).name
    echo = curves_of(runs, "eval/rubric_echo")
    arm_configs = {arm: run_config(preset, arm, seeds_of(preset, arm)[0], out) for arm in preset["arms"]}
    score = preset.get("score", "greedy")
    score_key, soft_key, reward_key = SCORES[score]
    summary = summarize(
        steps,
        curves_of(runs, score_key),
        baseline,
        curves_of(runs, reward_key),
        control=control,
        echo_curves=echo,
        references=paper_arms(arm_configs),
    )
    for arm, row in summary.items():
        row["learning_rate"] = arm_configs[arm].learning_rate
        row["step_seconds"] = sum(r["step_seconds"] for r in runs[arm]) / len(runs[arm])
        walls = [r["wall_seconds"] for r in runs[arm]]
        row["wall_seconds"] = {"total": sum(walls), "per_run": sum(walls) / len(walls)}
        # the eval judge's p_true in place of its verdicts (runs from before it was logged lack it), and
        # with a sampled score the greedy one beside it
        for name, key in (("soft", soft_key), ("greedy", SCORES["greedy"][0] if score != "greedy" else None)):
            curves = curves_of({arm: runs[arm]}, key) if key else {}
            if curves:
                row[f"{name}_final_mean"] = sum(c[-1] for c in curves[arm]) / len(curves[arm])
                row[f"{name}_change"] = bootstrap_mean([c[-1] - c[0] for c in curves[arm]])
        ended = curves_of({arm: runs[arm]}, "eval/finished")
        if ended:  # greedy eval responses that end on a stop token, not at max_new_tokens
            row["finished_first"] = sum(c[0] for c in ended[arm]) / len(ended[arm])
            row["finished_final"] = sum(c[-1] for c in ended[arm]) / len(ended[arm])
        checks = curves_of({arm: runs[arm]}, "eval/checks_passed")
        if checks:
            row["checks_passed_first"] = sum(c[0] for c in checks[arm]) / len(checks[arm])
            row["checks_passed_final"] = sum(c[-1] for c in checks[arm]) / len(checks[arm])
    counts = sorted({len(seeds_of(preset, arm)) for arm in preset["arms"]})
    title = f"{label}: {'-'.join(map(str, counts))} seeds, {preset['train'].get('total_steps')} steps"
    plot(steps, summary, echo, out / f"curves{suffix}.png", title, score)
    judges = {"training": preset["train"].get("judge"), "eval": args.rescore or preset["train"].get("eval_judge")}
    result = {
        "preset": preset,
        "judges": judges,
        "score": score,
        "steps": steps,
        "summary": summary,
        "wall_seconds": elapsed,
        "runs_trained": trained,
        "default_rule": default_rule(summary, {arm: c.attribution for arm, c in arm_configs.items()}),
    }
    (out / f"results{suffix}.json").write_text(json.dumps(result, indent=2))
    print(
        f"\nstudy {label}: {len(configs)} runs ({trained} trained in {elapsed / 60:.1f} min, "
        f"{len(configs) - trained} finished before); eval judge {judges['eval']}, training judge {judges['training']}"
    )
    print(table(steps, summary, baseline, control))
    rule = result["default_rule"]
    if rule["arm"] is None:
        print(
            "\ndefault credit rule by this study: grad_x_embed stays (no credit rule's final score is above "
            "grad_x_embed's under the same advantage with an interval above zero)"
        )
    else:
        print(
            f"\ndefault credit rule by this study: {rule['attribution']} (arm {rule['arm']}: "
            f"{_interval(rule['versus'])} vs {rule['versus']['reference']})"
        )
    print(f"\nwrote {out / f'results{suffix}.json'} and {out / f'curves{suffix}.png'}")


if __name__ == "__main__":
    main()
