"""Fine-tune a causal LM as a rubric judge, on the verdict at the answer position of exactly the
input ``Judge.build_input`` makes.

The loss is the binary cross-entropy of the verdict margin m = logit(True) - logit(False), whose
sigmoid is the judge's p_true, with the two classes weighted equally. LoRA (peft) by default, full
fine-tuning as an option. Examples come from the evidence corpus through the composer (a fresh,
seeded draw of responses every step, from train-split tasks only, with near misses, claims and
varied responses) and from labelled verdict files. Within the negative class, in-task negatives,
near misses and claims weigh ``hard_negative_weight`` times an easy (mismatched or generic) one.
The criteria judged on one response are packed into one sequence (``g2r_env.packing``). At the end
the judge is calibrated on the corpora's ``val`` tasks (``g2r_judge.calibration``).
"""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from g2r_env.judge import Judge
from g2r_env.packing import batches_of_packs, packed_margins

from .cases import JudgedCase
from .corpus import corpus_hash, corpus_of
from .predict import TOO_LONG, cases_that_fit, pack_cases

RESUMABLE_FIELDS = (
    "out_dir",
    "steps",
    "checkpoint_every",
    "threads",
    "progress",
    "overwrite",
    "eval_cases",
    "eval_every",
    "max_train_minutes",
    "bf16",
)
"""Fields a resumed judge run may change; every other field (base, data, seed, LoRA shape,
optimisation) defines the run and must equal the checkpoint's."""


@dataclass
class JudgeTrainConfig:
    """Judge fine-tuning. Field docstrings follow each field."""

    out_dir: str = "runs/judge"
    """folder for the adapter (or full model), metrics.jsonl and checkpoints"""
    base: str = "bundled"
    """the model to fine-tune: "bundled", a local HF folder or an HF id"""
    corpora: list[str] = field(default_factory=lambda: ["openended-mini", "judge-extra"])
    """task sets whose evidence corpus (<task folder>/evidence) is composed into examples; train split only"""
    verdicts: list[str] = field(default_factory=list)
    """labelled verdict files (JSONL: prompt, response, criterion, label) trained on beside the corpus"""
    passage_half: Optional[int] = None
    """0 or 1: compose from only that half of every passage list (two judges on disjoint passages); None: all"""
    seed: int = 0
    """seeds the composer (a fresh draw every step), LoRA initialisation and example order"""
    steps: int = 300
    """optimizer steps"""
    responses_per_step: int = 5
    """composed responses per step; each brings one example per judgeable criterion plus mismatched ones"""
    verdicts_per_step: int = 8
    """examples drawn from the verdict files per step (when any are given)"""
    learning_rate: float = 3e-4
    """AdamW learning rate, after warmup, decayed linearly to 10% at the last step"""
    warmup_steps: int = 30
    """linear learning-rate warmup"""
    weight_decay: float = 0.0
    """AdamW weight decay"""
    max_grad_norm: float = 1.0
    """gradient norm clip"""
    lora_rank: int = 16
    """LoRA rank; 0 means full fine-tuning"""
    lora_alpha: int = 32
    """LoRA scaling numerator"""
    lora_dropout: float = 0.05
    """dropout on the LoRA input"""
    max_tokens: int = 3072
    """padded tokens per forward/backward pass (packs of one step are split to fit)"""
    paraphrase_rate: float = 0.5
    """share of corpus examples that show a paraphrase of the criterion"""
    mismatched_per_response: int = 2
    """criteria of other tasks of the domain added, unmet, to each composed response"""
    wordings: int = 1
    """examples per criterion and composed response, each in another wording (the criterion, its paraphrases)"""
    generic_per_response: int = 3
    """generic structure criteria (lengths, counts, lists, title, greeting, a word...) added to each composed
    response, phrased many ways, with counts near the response's own so both verdicts occur"""
    near_miss_rate: float = 0.3
    """probability that an unmet content or pitfall criterion of a composed response gets a near miss (the
    topic without the fact; for pitfalls, the right version of the mistake)"""
    claims_per_response: int = 1
    """sentences per composed response that restate an unmet criterion or say it is met, labelled unmet"""
    varied: bool = True
    """vary composed responses: markdown headers, tables, bold lead-ins, connectives, merged passages, typos"""
    max_words: int = 190
    """cap on a composed response's body in words (about 256 tokens); 0: no cap"""
    spelled_counts: float = 0.3
    """share of generic count criteria whose number is written in words ("under fifty words")"""
    hard_negative_weight: float = 2.0
    """within the negative class's half of the loss, an in-task negative, near miss or claim weighs this many
    times a mismatched or generic one (1: all negatives alike)"""
    calibrate_split: str = "val"
    """after training, fit the judge's calibration on the corpora's tasks of this split (none trains on them);
    "" skips it (as does a run whose corpora have no such tasks)"""
    calibrate_responses_per_task: int = 8
    """composed responses per task for the calibration"""
    eval_cases: list[str] = field(default_factory=list)
    """verdict files measured (AUC, accuracy, ECE of the raw verdicts) every eval_every steps while training;
    never trained on"""
    eval_every: int = 100
    """steps between measurements on eval_cases (and at the end)"""
    max_train_minutes: float = 0.0
    """stop after this many minutes of training, summed over resumes (to compare runs at equal time); 0: no
    limit"""
    checkpoint_every: int = 100
    """write a resumable checkpoint every N steps (and at the end)"""
    bf16: Optional[bool] = None
    """bfloat16 autocast for the forward pass (float32 weights); None: where it runs natively (a GPU, a
    CPU with AVX512-BF16 or AMX), where it is about 2x faster; an AVX2-only CPU emulates it, many times
    slower than float32"""
    threads: int = 0
    """torch CPU threads (0: torch's default)"""
    progress: bool = True
    """show a progress bar"""
    too_long: str = "error"
    """a verdict-file case whose judge input exceeds the judge's context or max_tokens: "error" stops, "drop"
    leaves it out with a warning that counts them"""
    overwrite: bool = False
    """start afresh in an out_dir that holds an earlier run, moving it aside to <out_dir>.old-<timestamp>;
    without it a run with a checkpoint there is resumed (only steps, checkpoint_every, threads, progress and
    bf16 may differ from its config) and a folder without one is an error"""

    def validate(self) -> None:
        """Raise ValueError naming the field when a value is out of range."""
        checks = [
            (self.steps >= 1, "steps must be >= 1"),
            (self.responses_per_step >= 0 and self.verdicts_per_step >= 0, "examples per step must be >= 0"),
            (
                self.responses_per_step > 0 or (self.verdicts and self.verdicts_per_step > 0),
                "nothing to train on: responses_per_step is 0 and no verdict file is given",
            ),
            (math.isfinite(self.learning_rate) and self.learning_rate > 0, "learning_rate must be a finite number > 0"),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (self.max_grad_norm > 0, "max_grad_norm must be > 0"),
            (self.lora_rank >= 0, "lora_rank must be >= 0 (0: full fine-tuning)"),
            (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
            (self.max_tokens >= 64, "max_tokens must be >= 64"),
            (self.passage_half in (None, 0, 1), "passage_half must be 0, 1 or None"),
            (0 <= self.paraphrase_rate <= 1, "paraphrase_rate must be in [0, 1]"),
            (self.checkpoint_every >= 0, "checkpoint_every must be >= 0"),
            (self.too_long in TOO_LONG, f"too_long must be one of {TOO_LONG}, got {self.too_long!r}"),
            (0 <= self.near_miss_rate <= 1, "near_miss_rate must be in [0, 1]"),
            (self.claims_per_response >= 0, "claims_per_response must be >= 0"),
            (self.max_words >= 0, "max_words must be >= 0 (0: no cap)"),
            (0 <= self.spelled_counts <= 1, "spelled_counts must be in [0, 1]"),
            (
                math.isfinite(self.hard_negative_weight) and self.hard_negative_weight > 0,
                "hard_negative_weight must be a finite number > 0",
            ),
            (self.calibrate_responses_per_task >= 1, "calibrate_responses_per_task must be >= 1"),
            (self.eval_every >= 1, "eval_every must be >= 1"),
            (math.isfinite(self.max_train_minutes) and self.max_train_minutes >= 0, "max_train_minutes must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"JudgeTrainConfig: {message}")


class JudgeTrainer:
    """Fine-tunes a judge; ``train()`` runs to ``config.steps`` and writes the result.

    Args:
        config: the run's JudgeTrainConfig.
        command: the command line that started the run, recorded beside the result.
    """

    def __init__(self, config: JudgeTrainConfig, command: str = "") -> None:
        from g2r_env.models import fast_bf16, load_model

        config.validate()
        self.config = config
        self.command = command
        self.out_dir = Path(config.out_dir)
        self.resume_from, self.resume_changes = self._claim_out_dir()
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.corpora = [corpus_of(name) for name in config.corpora]
        self.entries = [e for corpus in self.corpora for e in corpus.split("train")]
        if config.responses_per_step and not self.entries:
            raise ValueError(f"no train-split evidence in {config.corpora}")
        self.verdict_cases = self._load_verdicts()
        from .verdicts import load_verdicts

        self.eval_sets = {str(path): load_verdicts(path) for path in config.eval_cases}
        model, tokenizer = load_model(
            config.base, "cpu" if not torch.cuda.is_available() else "auto", dtype=torch.float32
        )
        if config.lora_rank:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(
                model,
                LoraConfig(
                    r=config.lora_rank,
                    lora_alpha=config.lora_alpha,
                    lora_dropout=config.lora_dropout,
                    target_modules="all-linear",
                    task_type="CAUSAL_LM",
                ),
            )
        self.model = model
        self.judge = Judge(model, tokenizer, freeze=False)
        self.bf16 = fast_bf16(self.judge.device) if config.bf16 is None else config.bf16
        if self.verdict_cases:
            self.verdict_cases = cases_that_fit(
                self.judge, self.verdict_cases, config.too_long, config.max_tokens, ", ".join(config.verdicts)
            )
            if not self.verdict_cases and not config.responses_per_step:
                raise ValueError(f"no verdict case of {config.verdicts} fits the judge; nothing to train on")
        self.eval_sets = {
            name: cases_that_fit(self.judge, cases, "drop", config.max_tokens, name)
            for name, cases in self.eval_sets.items()
        }
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.step = 0
        self.train_seconds = 0.0  # training time summed over resumes (max_train_minutes)

    def _claim_out_dir(self) -> tuple[Optional[Path], dict]:
        """The checkpoint to resume (checked against this config before any model loads) and the
        fields the resume changes; or (None, {}) for a fresh run in a claimed folder."""
        from g2r_env.runlog import check_resume, claim_run_dir, latest_checkpoint

        config = self.config
        checkpoint = latest_checkpoint(self.out_dir) if self.out_dir.is_dir() else None
        if checkpoint is None or config.overwrite:
            claim_run_dir(self.out_dir, config.overwrite)
            return None, {}
        saved = json.loads((checkpoint / "state.json").read_text())["config"]
        known = {f.name for f in fields(JudgeTrainConfig)}
        saved = asdict(JudgeTrainConfig(**{k: v for k, v in saved.items() if k in known}))
        changed = check_resume(saved, asdict(config), RESUMABLE_FIELDS, f"{self.out_dir} (judge training)")
        changed.pop("out_dir", None)
        return checkpoint, changed

    def _load_verdicts(self) -> list[JudgedCase]:
        from .verdicts import load_verdicts

        cases = []
        for path in self.config.verdicts:
            cases.extend(load_verdicts(path))
        return cases

    # ---- data ------------------------------------------------------------------------------
    def examples(self, step: int) -> list[JudgedCase]:
        """The step's examples: a fresh seeded draw, reproducible from (seed, step) alone."""
        from .compose import Composer

        config = self.config
        rng = random.Random(config.seed * 1_000_003 + step)
        cases: list[JudgedCase] = []
        if config.responses_per_step:
            picks = [rng.randrange(len(self.entries)) for _ in range(config.responses_per_step)]
            for pick in picks:
                entry = self.entries[pick]
                corpus = next(c for c in self.corpora if entry.task.task_id in c.entries)
                composer = Composer(
                    corpus,
                    seed=rng.randrange(2**31),
                    passage_half=config.passage_half,
                    paraphrase_rate=config.paraphrase_rate,
                    mismatched_per_response=config.mismatched_per_response,
                    wordings=config.wordings,
                    generic_per_response=config.generic_per_response,
                    mismatched_split="train",
                    near_miss_rate=config.near_miss_rate,
                    claims_per_response=config.claims_per_response,
                    varied=config.varied,
                    max_words=config.max_words,
                    spelled_counts=config.spelled_counts,
                )
                cases.extend(composer.compose(entry))
        if self.verdict_cases and config.verdicts_per_step:
            cases.extend(rng.choices(self.verdict_cases, k=config.verdicts_per_step))
        return cases

    # ---- one step --------------------------------------------------------------------------
    def learning_rate(self, step: int) -> float:
        config = self.config
        warm = min(1.0, (step + 1) / (config.warmup_steps + 1))
        decay = 1.0 - 0.9 * step / max(1, config.steps - 1)
        return config.learning_rate * warm * decay

    def loss_weights(self, cases: list[JudgedCase]) -> torch.Tensor:
        """Per-case loss weights: each class carries half of the step's loss (all of it when the step has
        one class); within the negatives, hard ones (``HARD_NEGATIVES``) weigh ``hard_negative_weight``
        times easy ones."""
        from .compose import HARD_NEGATIVES

        labels = torch.tensor([c.label for c in cases], dtype=torch.bool)
        raw = torch.tensor(
            [self.config.hard_negative_weight if not c.label and c.negative in HARD_NEGATIVES else 1.0 for c in cases]
        )
        classes = [mask for mask in (labels, ~labels) if mask.any()]
        weights = torch.zeros(len(cases))
        for mask in classes:
            weights[mask] = raw[mask] / raw[mask].sum() / len(classes)
        return weights

    def train_step(self) -> dict[str, float]:
        config, judge = self.config, self.judge
        cases = self.examples(self.step)
        labels = torch.tensor([float(c.label) for c in cases])
        weights = self.loss_weights(cases)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss_total, correct = 0.0, 0
        autocast = torch.autocast(judge.device.type, dtype=torch.bfloat16, enabled=self.bf16)
        for batch in batches_of_packs(pack_cases(judge, cases, config.max_tokens), config.max_tokens):
            with autocast:
                margins, order = packed_margins(self.model, judge, batch)
            target, weight = labels[order].to(margins.device), weights[order].to(margins.device)
            loss = (
                torch.nn.functional.binary_cross_entropy_with_logits(margins, target, reduction="none") * weight
            ).sum()
            loss.backward()
            loss_total += float(loss.detach())
            correct += int(((margins > 0).float() == target).sum())
        grads = [p for p in self.model.parameters() if p.requires_grad]
        norm = torch.nn.utils.clip_grad_norm_(grads, config.max_grad_norm)
        if not torch.isfinite(norm):
            raise FloatingPointError(
                f"judge training step {self.step}: the gradient norm is {float(norm)}; "
                f"lower learning_rate or check the base model"
            )
        self.optimizer.step()
        self.step += 1
        return {
            "step": self.step,
            "loss": loss_total,
            "accuracy": correct / len(cases),
            "examples": len(cases),
            "positives": float(labels.mean()),
            "grad_norm": float(norm),
            "learning_rate": self.learning_rate(self.step - 1),
        }

    # ---- the loop --------------------------------------------------------------------------
    def train(self) -> Path:
        """Train to ``config.steps`` (resuming from ``out_dir/checkpoint`` if present) and write
        the judge to ``out_dir/judge``; returns that folder."""
        from tqdm.auto import tqdm

        from g2r_env.runlog import MetricsLog, record_resume

        config = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        log = MetricsLog(self.out_dir / "metrics.jsonl")
        if self.resume_from is not None and self.step == 0:
            self.load_checkpoint(self.resume_from)
            log.truncate(self.step)
            if self.resume_changes:
                record_resume(self.out_dir, self.step, self.resume_changes)
        (self.out_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
        bar = tqdm(
            total=config.steps,
            initial=self.step,
            desc="judge train",
            unit="step",
            disable=not config.progress,
            dynamic_ncols=True,
        )
        start, done_before, seconds_before = time.perf_counter(), self.step, self.train_seconds
        limit = config.max_train_minutes * 60
        while self.step < config.steps and not (limit and self.train_seconds >= limit):
            metrics = self.train_step()
            metrics["seconds"] = time.perf_counter() - start
            self.train_seconds = seconds_before + metrics["seconds"]
            last = self.step == config.steps or (limit and self.train_seconds >= limit)
            if self.eval_sets and (last or self.step % config.eval_every == 0):
                metrics.update(self.measure())
            log.append(metrics)
            if last or (config.checkpoint_every and self.step % config.checkpoint_every == 0):
                self.save_checkpoint()
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['accuracy']:.2f}")
        bar.close()
        if limit and self.step < config.steps:
            print(
                f"[g2r] stopped at step {self.step}: max_train_minutes={config.max_train_minutes} reached", flush=True
            )
        elapsed = time.perf_counter() - start
        folder = self.export(
            self.out_dir / "judge",
            train_seconds=elapsed,
            steps_this_run=self.step - done_before,
            train_seconds_total=self.train_seconds,
        )
        if config.calibrate_split and config.corpora:
            from .calibration import calibrate_after_training

            self.model.eval()
            calibrate_after_training(
                self.judge,
                folder,
                config.corpora,
                config.calibrate_split,
                config.calibrate_responses_per_task,
                config.seed + 2000,
            )
        return folder

    def measure(self) -> dict[str, float]:
        """AUC, accuracy and ECE of the raw verdicts on each ``eval_cases`` file, printed and returned
        as metrics (``eval/<file>/auc`` ...)."""
        from .evaluation import calibration_error, roc_auc
        from .predict import margins_to_p_true, predict_margins

        self.model.eval()
        out = {}
        for name, cases in self.eval_sets.items():
            p = margins_to_p_true(self.judge, predict_margins(self.judge, cases, self.config.max_tokens))
            labels = np.array([c.label for c in cases], dtype=bool)
            figures = {
                "auc": roc_auc(p, labels),
                "accuracy": float(((p > 0.5) == labels).mean()),
                "ece": calibration_error(p, labels),
                "false_met_rate": float((p[~labels] > 0.5).mean()) if (~labels).any() else float("nan"),
            }
            print(
                f"[g2r] step {self.step} {name}: AUC {figures['auc']:.3f} accuracy {figures['accuracy']:.3f} "
                f"ECE {figures['ece']:.3f} unmet called met {figures['false_met_rate']:.3f} (raw verdicts)",
                flush=True,
            )
            out.update({f"eval/{name}/{key}": value for key, value in figures.items()})
        self.model.train()
        return out

    # ---- files -----------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Atomically write the trainable weights, optimizer state, step and config."""
        from safetensors.torch import save_file

        from g2r_env.runlog import optimizer_tensors, write_checkpoint

        with write_checkpoint(self.out_dir) as folder:
            trainable = {n: p.detach().contiguous() for n, p in self.model.named_parameters() if p.requires_grad}
            save_file(trainable, str(folder / "trainable.safetensors"))
            save_file(optimizer_tensors(self.optimizer), str(folder / "optimizer.safetensors"))
            save_file({"torch": torch.get_rng_state()}, str(folder / "rng.safetensors"))  # LoRA dropout
            state = {"step": self.step, "train_seconds": self.train_seconds, "config": asdict(self.config)}
            (folder / "state.json").write_text(json.dumps(state))
        return self.out_dir / "checkpoint"

    def load_checkpoint(self, folder: Path) -> None:
        from safetensors.torch import load_file

        from g2r_env.runlog import load_optimizer_tensors

        state = json.loads((folder / "state.json").read_text())
        weights = load_file(str(folder / "trainable.safetensors"))
        params = dict(self.model.named_parameters())
        unknown = sorted(set(weights) - set(params))
        if unknown:
            raise ValueError(
                f"{folder}: the checkpoint holds weights this model lacks ({unknown[:3]}...); "
                f"was it made with another lora_rank or base?"
            )
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value)
        load_optimizer_tensors(self.optimizer, load_file(str(folder / "optimizer.safetensors")))
        torch.set_rng_state(load_file(str(folder / "rng.safetensors"))["torch"])
        self.step = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))

    def export(self, folder: Path, **record) -> Path:
        """Write the judge: a LoRA adapter (fp16, with a ``g2r-judge.json`` record of its making)
        or, for full fine-tuning, a whole model folder."""
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        if self.config.lora_rank:
            from peft import get_peft_model_state_dict
            from safetensors.torch import save_file

            tmp.mkdir(parents=True)
            peft_config = copy.copy(self.model.peft_config["default"])
            peft_config.base_model_name_or_path = self.config.base  # the source's name, not this machine's path
            peft_config.save_pretrained(str(tmp))
            state = {
                k: v.detach().to(torch.float16).contiguous() for k, v in get_peft_model_state_dict(self.model).items()
            }
            save_file(state, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
        else:
            self.model.save_pretrained(tmp)
            self.judge.tokenizer.save_pretrained(tmp)
        from g2r_env.runlog import read_resumes

        manifest = {
            "base": self.config.base,
            "corpora": self.config.corpora,
            "corpus_sha256": corpus_hash(self.config.corpora),
            "verdicts": self.config.verdicts,
            "seed": self.config.seed,
            "passage_half": self.config.passage_half,
            "steps": self.step,
            "command": self.command,
            "config": asdict(self.config),
            "resumes": read_resumes(self.out_dir),
            **record,
        }
        (tmp / "g2r-judge.json").write_text(json.dumps(manifest, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        return folder
