"""The trainer's configuration: one dataclass, every field documented, file and ``key=value`` loading.

Defaults are the paper's settings (G = 8, lr 1e-6, temperature 0.7, top-p 0.8, top-k 20, clip 0.2).
Presets are files of values shipped in ``agents/presets/`` (``cpu_demo.json`` learns visibly in minutes
on a laptop CPU with the bundled model; ``gpu_paper.json`` is the paper's setting on one GPU): a config
file holds any subset of the fields, may start from a preset with ``"preset": "cpu_demo"``, and
``--set key=value`` (or ``--field value``) on the command line overrides single fields.
Every value is checked against its range, and every name against its registry, when the config
is made, before any model loads.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
"""Where ``"preset": NAME`` looks for NAME.json: agents/presets, package data of ``agents`` (the study
presets are in its ``study`` folder, read by ``agents.study.load_study_preset``)."""


def preset_names() -> list[str]:
    """The names ``TrainConfig.preset`` accepts: the files in ``PRESETS_DIR``."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json"))


RESUMABLE_FIELDS = (
    "run_dir",
    "total_steps",
    "eval_every",
    "checkpoint_every",
    "cpu_threads",
    "progress",
    "tensorboard",
    "report",
    "report_prompts",
    "device",
    "sampler",
    "vllm_kwargs",
    "micro_batch_size",
    "judge_micro_batch_size",
)
"""Fields a resume may change (length, cadence, threads, logging, where and how it runs); every other
field (model, judge, LoRA shape, seed, tasks, rewards, optimisation) defines the run and must match."""


@dataclass
class TrainConfig:
    """Everything a training run needs. Field docstrings follow each field."""

    # ---- run -----------------------------------------------------------------------------------
    run_dir: str = "runs/g2r"
    """folder for metrics.jsonl, TensorBoard events, checkpoints and the report"""
    seed: int = 0
    """seeds python, numpy, torch, the task draws and every sampling call (seed + step)"""
    total_steps: int = 200
    """training steps; each step samples prompts_per_step * group_size responses"""

    # ---- models --------------------------------------------------------------------------------
    model: str = "bundled"
    """the policy to train: "bundled" (SmolLM2-135M-Instruct), a local HF folder or an HF id"""
    judge: Optional[str] = None
    """None: the default judge ("bundled-judge", the trained judge, for the bundled policy; "self" for
    any other); "self": the frozen initial policy (the paper's self-judging); else a judge model or a
    trained judge folder"""
    eval_judge: Optional[str] = None
    """the judge of the eval score (eval/judge_score): None is the training judge; another judge (say one
    trained on other passages, "bundled-eval-judge") measures what the policy cannot have fitted, and
    the training judge's score of the same responses is logged beside it (eval/reward_judge_score)"""
    device: str = "auto"
    """where the policy and the judge run: "auto" (CUDA when present), "cpu", "cuda", ..."""
    cpu_threads: int = 1
    """torch and vLLM threads on a CPU-only machine (sets OMP_NUM_THREADS before vLLM starts); 0 keeps the
    default (see the README's training section for why the default is 1)"""
    sampler: str = "vllm"
    """"vllm" (in-process vllm.LLM, weights synced after every update) or "hf" (transformers generate)"""
    vllm_kwargs: dict = field(default_factory=dict)
    """extra keyword arguments of agents.sampling.VLLMSampler (gpu_memory_utilization, max_model_len, ...)"""

    # ---- tasks ---------------------------------------------------------------------------------
    tasks: str = "openended-mini"
    """a bundled task set name, a JSONL or parquet file, or a folder of them (hub layout: data/<split>-*)"""
    task_ids: list[str] = field(default_factory=list)
    """keep only these task ids (all splits); empty keeps all"""
    domains: list[str] = field(default_factory=list)
    """keep only tasks of these domains; empty keeps all"""
    eval_split: str = "test"
    """the split the held-out judge score is measured on (any split of the task set, e.g. "test" or
    "val", or "all")"""
    eval_tasks: int = 0
    """score only the first N tasks of the eval split; 0 scores them all"""
    eval_task_ids: list[str] = field(default_factory=list)
    """score these task ids of the task set (any split, kept by task_ids or not) instead of eval_split;
    none of them may be a task trained on (a learning-rate sweep judges on tasks that are neither
    trained on nor the study's eval tasks)"""
    eval_samples: int = 0
    """beside the greedy response, sample this many responses per eval task (the rollout's temperature,
    top_p and top_k; the draw seeded by the step, so runs evaluated at one step share it) and log
    their mean score (eval/sampled_score): the policy's expected score, measured on tasks x samples
    responses instead of one greedy response per task, so less noisy; 0: greedy only"""

    # ---- rollout -------------------------------------------------------------------------------
    prompts_per_step: int = 8
    """prompts drawn from the train split per step (the vector env has prompts_per_step * group_size sub-envs)"""
    group_size: int = 8
    """G, responses sampled per prompt; advantages are normalised within each group"""
    max_new_tokens: int = 512
    """response length limit; longer responses are truncated (and judged as they are)"""
    temperature: float = 0.7
    """sampling temperature"""
    top_p: float = 0.8
    """nucleus sampling mass"""
    top_k: int = 20
    """sample among the k most likely tokens (0 disables)"""

    # ---- reward --------------------------------------------------------------------------------
    attribution: str = "grad_x_embed"
    """how a met criterion's credit is spread over tokens: a name in g2r_env.ATTRIBUTIONS ("grad_x_embed",
    the paper's; "grad_l1", "grad_l2", "uniform", "last_token", ...); ignored when reward_mode is "sparse" """
    reward_mode: str = "dense"
    """"dense": token rewards from the attribution; "sparse": the judge runs forward only and R sits on
    the last token (use advantage "grpo" for the sparse GRPO baseline)"""
    advantage: str = "token_grpo"
    """advantage estimator, a name in agents.advantages.ADVANTAGES ("token_grpo", the paper's; "grpo",
    "rloo", "reinforce", ...)"""
    tau: Union[str, float] = "auto"
    """attribution softmax temperature: "auto" (std of the scores) or a positive float"""
    soft: bool = False
    """reward with P(True) instead of the 0/1 verdict"""
    checks: bool = True
    """criteria with an exact check (their ``check`` field, or a wording such as "Is under 150 words")
    are decided by the check on the response text, with credit on the span that decides it; false
    sends every criterion to the judge"""
    judge_micro_batch_size: int = 8
    """(response, criterion) pairs per judge forward/backward pass"""

    # ---- optimisation --------------------------------------------------------------------------
    learning_rate: float = 1e-6
    """AdamW learning rate (constant after warmup)"""
    warmup_steps: int = 0
    """steps of linear learning-rate warmup from 0"""
    weight_decay: float = 0.0
    """AdamW weight decay"""
    update_epochs: int = 1
    """passes over each step's responses"""
    minibatch_size: int = 0
    """responses per optimizer step; 0 means all of the step's responses (one optimizer step per epoch)"""
    micro_batch_size: int = 4
    """responses per forward/backward pass; gradients accumulate over a minibatch's micro-batches"""
    clip_eps: float = 0.2
    """PPO clip range of the ratio"""
    kl_coef: float = 0.0
    """weight of a k3 KL penalty to the initial policy (0: none); self-judging reuses the judge as reference"""
    max_grad_norm: float = 1.0
    """gradient norm clip per optimizer step"""
    lora_rank: int = 0
    """0: full fine-tuning; > 0: train a LoRA adapter of this rank (peft), merged into the weights sent to
    the sampler"""
    lora_alpha: int = 32
    """LoRA scaling numerator"""
    lora_target_modules: str = "all-linear"
    """peft target_modules: "all-linear" or a comma-separated list of module names"""
    gradient_checkpointing: bool = False
    """recompute activations in the backward pass (less memory, more compute)"""
    bf16: Optional[bool] = None
    """bfloat16 autocast for the policy (float32 master weights); None means on for CUDA, off for CPU"""

    # ---- logging and checkpoints ---------------------------------------------------------------
    eval_every: int = 10
    """measure the held-out judge score (greedy responses) every N steps and at the end; 0 never"""
    checkpoint_every: int = 50
    """write a resumable checkpoint every N steps and at the end; 0 only at the end"""
    tensorboard: bool = True
    """write TensorBoard events to run_dir/tb"""
    progress: bool = True
    """show a tqdm progress bar with reward and tokens/s"""
    report: bool = True
    """write run_dir/report: judge score plot and token-reward heatmaps before and after training"""
    report_prompts: int = 3
    """prompts (from the eval split) shown in the before/after heatmaps"""

    # --------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the field when a value is out of range or a name is unknown."""
        from g2r_env.attribution import ATTRIBUTIONS, check_tau
        from g2r_env.env import REWARD_MODES

        from .advantages import ADVANTAGES, MIN_GROUP_SIZE
        from .sampling import SAMPLERS

        def finite(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        try:
            check_tau(self.tau)
            tau_ok = True
        except ValueError:
            tau_ok = False
        checks = [
            (self.group_size >= 1, "group_size must be >= 1"),
            (self.prompts_per_step >= 1, "prompts_per_step must be >= 1"),
            (self.max_new_tokens >= 1, "max_new_tokens must be >= 1"),
            (self.total_steps >= 0, "total_steps must be >= 0"),
            (self.micro_batch_size >= 1, "micro_batch_size must be >= 1"),
            (self.minibatch_size >= 0, "minibatch_size must be >= 0 (0: the whole batch)"),
            (self.update_epochs >= 1, "update_epochs must be >= 1"),
            (finite(self.learning_rate) and self.learning_rate > 0, "learning_rate must be a finite number > 0"),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (finite(self.weight_decay) and self.weight_decay >= 0, "weight_decay must be a finite number >= 0"),
            (finite(self.clip_eps) and self.clip_eps > 0, "clip_eps must be a finite number > 0"),
            (finite(self.kl_coef) and self.kl_coef >= 0, "kl_coef must be a finite number >= 0"),
            (finite(self.max_grad_norm) and self.max_grad_norm > 0, "max_grad_norm must be a finite number > 0"),
            (
                finite(self.temperature) and self.temperature >= 0,
                "temperature must be a finite number >= 0 (0: greedy)",
            ),
            (finite(self.top_p) and 0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (self.top_k >= 0, "top_k must be >= 0 (0: off)"),
            (self.lora_rank >= 0, "lora_rank must be >= 0"),
            (self.lora_alpha > 0, "lora_alpha must be > 0"),
            (self.cpu_threads >= 0, "cpu_threads must be >= 0 (0: the default)"),
            (self.judge_micro_batch_size >= 1, "judge_micro_batch_size must be >= 1"),
            (self.eval_every >= 0, "eval_every must be >= 0 (0: never)"),
            (self.eval_tasks >= 0, "eval_tasks must be >= 0 (0: all)"),
            (self.eval_samples >= 0, "eval_samples must be >= 0 (0: greedy only)"),
            (self.checkpoint_every >= 0, "checkpoint_every must be >= 0 (0: only at the end)"),
            (self.report_prompts >= 0, "report_prompts must be >= 0"),
            (tau_ok, f"tau must be 'auto' or a finite number > 0, got {self.tau!r}"),
            (self.sampler in SAMPLERS, f"sampler must be one of {sorted(SAMPLERS)}, got {self.sampler!r}"),
            (
                self.reward_mode in REWARD_MODES,
                f"reward_mode must be one of {list(REWARD_MODES)}, got {self.reward_mode!r}",
            ),
            (
                self.attribution in ATTRIBUTIONS,
                f"attribution must be one of {sorted(ATTRIBUTIONS)}, got {self.attribution!r}",
            ),
            (self.advantage in ADVANTAGES, f"advantage must be one of {sorted(ADVANTAGES)}, got {self.advantage!r}"),
            (
                self.group_size >= MIN_GROUP_SIZE.get(self.advantage, 1),
                f"group_size must be >= {MIN_GROUP_SIZE.get(self.advantage, 1)} with advantage {self.advantage!r} "
                f"(its baseline is the other responses of the group), got {self.group_size}",
            ),
            (isinstance(self.eval_split, str) and bool(self.eval_split), "eval_split must name a split (or 'all')"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"TrainConfig: {message}")

    # ---- presets -------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """The preset ``agents/presets/<name>.json`` with ``overrides`` applied (``"cpu_demo"``, ``"gpu_paper"``)."""
        path = PRESETS_DIR / f"{name}.json"
        if not path.is_file():
            raise ValueError(f"unknown preset {name!r}; known: {preset_names()} (files in {PRESETS_DIR})")
        values = {**json.loads(path.read_text(encoding="utf-8")), **overrides}
        return cls.from_dict(values, where=str(path))

    # ---- files and overrides -------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
        """Read a JSON (or, with PyYAML, .yaml/.yml) file of fields, then apply ``key=value`` overrides.

        A file may start from a preset with ``"preset": "cpu_demo"``; its other keys override it.
        Keys starting with "_" are comments.
        """
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            try:
                values = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{err.lineno}: bad JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: a config file must hold a mapping of field: value")
        return cls.from_dict(values, where=str(path)).with_overrides(overrides)

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> TrainConfig:
        """Fields from a mapping, values coerced to the field types; unknown keys raise."""
        values = {key: value for key, value in values.items() if not key.startswith("_")}  # "_comment"
        preset = values.pop("preset", None)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"{where}: unknown config field(s) {unknown}; known: {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        coerced = {key: _coerce(hints[key], value, f"{where}: {key}") for key, value in values.items()}
        if preset is None:
            return cls(**coerced)
        return cls.preset(str(preset), **coerced)

    def with_overrides(self, overrides: Sequence[str]) -> TrainConfig:
        """A copy with ``key=value`` strings applied (values parsed as YAML/JSON scalars or lists)."""
        values = self.to_dict()
        for item in overrides:
            key, sep, text = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"--set expects key=value, got {item!r}")
            values[key] = parse_value(text)
        return TrainConfig.from_dict(values, where="--set")

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)


def parse_value(text: str) -> Any:
    """A --set value: JSON/YAML scalar or list when it parses, else the string itself."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import yaml

        return yaml.safe_load(text)
    except Exception:
        return text


def _coerce(kind: Any, value: Any, where: str) -> Any:
    """``value`` as the field type ``kind`` (YAML reads 1e-5 as a string; "none" means None)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Union:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        errors = []
        # str last: "0.5" for Union[str, float] is the float 0.5, "auto" stays a string
        for option in sorted((a for a in args if a is not type(None)), key=lambda a: a is str):
            try:
                return _coerce(option, value, where)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(errors[0] if errors else f"{where}: bad value {value!r}")
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ValueError
        if kind is int:
            if isinstance(value, bool) or not math.isfinite(float(value)) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            return str(value)
        if kind is list or origin is list:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return list(value)
        if kind is dict or origin is dict:
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {value!r} is not a valid {getattr(kind, '__name__', kind)}") from None
    return value
