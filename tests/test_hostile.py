"""Inputs a hostile or careless user gives, kept together so they stay visible: no code runs from a
checkpoint, no silent wrong reward, no crash without a message that names the problem."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import tiny_config

import g2r_env
from agents import TrainConfig, Trainer
from agents.trainer import resolve_checkpoint, safe_vllm_kwargs
from g2r_env import Grad2Reward, Judge, models
from g2r_env.rendering import render_ansi
from tasks import Criterion, Task, TaskFormatError, load_taskset


# ---- security ----------------------------------------------------------------------------------
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_resume_never_unpickles_a_checkpoint_file(tiny_model, tmp_path):
    marker = tmp_path / "pwned.txt"
    run = tmp_path / "run"
    Trainer(tiny_config(tiny_model, run, total_steps=1, checkpoint_every=1)).train()
    # a planted pickle beside a real checkpoint, and an old-style checkpoint holding only a pickle
    torch.save({"x": _Payload(marker)}, run / "checkpoint" / "trainer_state.pt")
    resumed = Trainer.resume(run)
    assert resumed.global_step == 1 and not marker.exists()
    old = tmp_path / "old" / "checkpoint"
    old.mkdir(parents=True)
    torch.save({"step": 1, "x": _Payload(marker)}, old / "trainer_state.pt")
    (old / "config.json").write_text(json.dumps({"model": tiny_model}))
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        Trainer.resume(tmp_path / "old")
    assert not marker.exists()


def test_a_saved_config_cannot_switch_on_remote_code():
    with pytest.warns(UserWarning, match="trust_remote_code"):
        kept = safe_vllm_kwargs({"trust_remote_code": True, "gpu_memory_utilization": 0.3}, "config.json")
    assert kept == {"gpu_memory_utilization": 0.3}


def test_ansi_rendering_escapes_terminal_control_sequences(bundled_tokenizer):
    task = Task("t\x1b[2J", "Say hi \x1b]0;title\x07", (Criterion("Greets \x1b[31m", 1.0),))
    ids = bundled_tokenizer.encode("hello \x1b]0;pwned\x07 there \u202e", add_special_tokens=False)

    class Result:
        token_rewards = np.full(len(ids), 0.1, dtype=np.float32)
        sequence_reward = 0.1 * len(ids)
        criteria = [{"met": True, "p_true": 0.9, "weight": 1.0, "criterion": task.criteria[0].criterion}]

    for out in (render_ansi(bundled_tokenizer, task, ids), render_ansi(bundled_tokenizer, task, ids, Result())):
        raw = out.replace("\x1b[0m", "").replace("\x1b[38;2;0;0;0m", "")
        raw = "".join(part.split("m", 1)[-1] for part in raw.split("\x1b[48;2;"))  # our colour codes only
        assert "\x1b" not in raw and "\x07" not in raw and "\u202e" not in raw
        assert "\\x1b]0;pwned\\x07" in raw and "\\u202e" in raw and "\\x1b[2J" in raw


# ---- silent wrong results ----------------------------------------------------------------------
def test_a_nan_judge_raises_instead_of_scoring_zero(bundled_tokenizer, rubric_task):
    from tiny import build_tiny_model

    model = build_tiny_model(len(bundled_tokenizer))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    scorer = Grad2Reward(Judge(model, bundled_tokenizer), attribution="uniform")
    with pytest.raises(FloatingPointError, match="p_true .* is nan"):
        scorer.score(rubric_task, bundled_tokenizer.encode("The sky scatters light.", add_special_tokens=False))


@pytest.mark.slow
def test_cache_manifest_catches_same_size_corruption_and_a_bad_folder_is_named(tmp_path, monkeypatch):
    cached = models.bundled_model_dir()
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in cached.iterdir():
        if file.is_file():
            (copy / file.name).write_bytes(file.read_bytes())
    assert models._cache_is_complete(copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[100:108] = b"\xff" * 8  # inside the header: same size, different content
    weights.write_bytes(bytes(data))
    assert not models._cache_is_complete(copy)  # the size-only check accepted this
    with pytest.raises(models.ModelLoadError, match=f"cannot load the model in {copy}"):
        models.load_model(str(copy), "cpu")


def test_train_config_rejects_values_that_train_backwards_or_nowhere():
    bad = {
        "warmup_steps": -10, "max_grad_norm": -1.0, "temperature": -1.0, "top_p": 5.0,
        "learning_rate": float("inf"), "eval_tasks": -3, "tau": 0.0, "attribution": "grad_xx",
        "advantage": "nope", "reward_mode": "medium", "top_k": -1, "clip_eps": float("nan"),
    }  # fmt: skip
    for field, value in bad.items():
        with pytest.raises(ValueError, match=field):
            TrainConfig(**{field: value})
    with pytest.raises(ValueError, match="total_steps: inf is not a valid int"):
        TrainConfig.from_dict({"total_steps": float("inf")})
    with pytest.raises(ValueError, match="tau"):
        TrainConfig().with_overrides(["tau=true"])


@pytest.mark.parametrize(
    "row, message",
    [
        ({"id": "a", "prompt": "p", "criteria": [{"criterion": "c", "tags": "abc"}]}, "tags must be a list of strings"),
        (
            {"id": None, "prompt": "p", "criteria": [{"criterion": "c"}]},
            "'id' must be a non-empty string or integer",
        ),
        (
            {
                "id": "a",
                "prompt": "p",
                "criteria": [{"criterion": "c", "weight": 1e308}, {"criterion": "d", "weight": 1e308}],
            },
            "sum to infinity",
        ),
        ({"id": "a", "prompt": None, "criteria": [{"criterion": "c"}]}, "'prompt' must be a string or a list"),
        (
            {"id": "a", "prompt": {"role": "user"}, "criteria": [{"criterion": "c"}]},
            "'prompt' must be a string or a list",
        ),
        ({"id": "a", "prompt": ["hi"], "criteria": [{"criterion": "c"}]}, "prompt message 0 must be an object"),
        (
            {"id": "a", "prompt": [{"role": "user", "content": None}], "criteria": [{"criterion": "c"}]},
            "prompt message 0 must be an object with string 'role' and 'content'",
        ),
        ({"question": "q", "id": None, "rubric": [{"description": "d", "weight": 1}]}, "'id' must be a non-empty"),
    ],
)
def test_task_data_is_rejected_not_coerced(tmp_path, row, message):
    path = tmp_path / "tasks.jsonl"
    path.write_text(
        json.dumps({"id": "ok", "prompt": "fine", "criteria": [{"criterion": "c"}]}) + "\n" + json.dumps(row)
    )
    with pytest.raises(TaskFormatError, match=f"{path}:2: .*{message}"):
        load_taskset(path)


def test_task_files_with_bad_utf8_name_the_line_and_a_bom_is_accepted(tmp_path):
    good = json.dumps({"id": "a", "prompt": "p", "criteria": [{"criterion": "c"}]})
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + good.encode() + b"\n")
    assert [t.task_id for t in load_taskset(bom)] == ["a"]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(good.encode() + b"\n" + b'{"id": "b\xff"}\n')
    with pytest.raises(TaskFormatError, match=f"{bad}:2: not valid UTF-8"):
        load_taskset(bad)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"soft": "no"}, "soft must be True or False"),
        ({"tau": True}, "tau must be 'auto' or a finite number"),
        ({"tau": float("inf")}, "tau must be 'auto' or a finite number"),
        ({"max_new_tokens": 10**7}, "does not fit the judge's context"),
        ({"max_new_tokens": 2.5}, "max_new_tokens must be a whole number"),
    ],
)
def test_env_keywords_are_checked_at_make(tiny_model, kwargs, message):
    import gymnasium as gym

    with pytest.raises(ValueError, match=message):
        gym.make("Grad2Reward/OpenEnded-v0", model=tiny_model, **kwargs)


# ---- crashes and unclear errors ----------------------------------------------------------------
CONVERT = "import g2r_env.models as m; print(m.bundled_model_dir())"


@pytest.mark.slow
def test_two_processes_converting_into_an_empty_cache_both_get_it(tmp_path):
    cache = tmp_path / "cache"
    (cache / ".convert-killedearlier").mkdir(parents=True)  # left by a killed conversion
    env = {**os.environ, "G2R_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", CONVERT + "; m.load_model('bundled', 'cpu')"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    printed = [out.strip().splitlines()[-1] for out, _ in outputs]
    assert printed[0] == printed[1] == str(cache / "smollm2-135m-instruct")
    assert sum("converting the bundled model" in out for out, _ in outputs) == 1  # the second waited
    assert not list(cache.glob(".convert-*")) and models._cache_is_complete(cache / "smollm2-135m-instruct")


@pytest.mark.slow
def test_the_shipped_judge_loads_into_an_empty_cache(tmp_path):
    """Merging bundled-judge builds its base (the bundled model) under the cache lock it holds; in
    an empty cache that nested build must neither wait for its own lock nor remove the merge's
    folder in progress (a subprocess, so that a hang fails instead of stalling the suite)."""
    cache = tmp_path / "cache"
    env = {**os.environ, "G2R_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    code = (
        "import g2r_env.models as m; m.load_model('bundled-judge', 'cpu'); "
        "print(m.merged_adapter_dir(m.resolve_source('bundled-judge')))"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    merged = Path(run.stdout.strip().splitlines()[-1])
    assert merged.parent == cache and merged.name.startswith("merged-")
    assert models._cache_is_complete(merged) and models._cache_is_complete(cache / "smollm2-135m-instruct")
    assert not list(cache.glob(".convert-*"))


def test_resume_after_kill_9_drops_a_torn_metrics_line_and_finds_the_newest_checkpoint(tiny_model, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(tiny_model, run, total_steps=2, checkpoint_every=1)).train()
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"step": 3, "train/rew')  # killed while writing
    (run / "checkpoint").rename(run / ".checkpoint.old")  # killed between the two renames of a save
    with pytest.warns(UserWarning, match="torn last line"):
        resumed = Trainer.resume(run, ["total_steps=3"])
    assert resumed.global_step == 2
    assert [r["step"] for r in resumed.history] == [1, 2]
    resumed.train()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]


def test_a_damaged_run_folder_fails_before_any_model_loads(tiny_model, tmp_path, monkeypatch):
    run = tmp_path / "run"
    Trainer(tiny_config(tiny_model, run, total_steps=2, checkpoint_every=1)).train()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text(lines[0][:10] + "\n" + "\n".join(lines[1:]) + "\n")  # damage inside
    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(ValueError, match=r"metrics.jsonl:1: not a JSON record"):
        Trainer.resume(run)
    with pytest.raises(FileNotFoundError, match="no run folder"):
        resolve_checkpoint(tmp_path / "nowhere")


def test_model_and_device_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="the model folder ./no/such/model does not exist"):
        models.load_model("./no/such/model", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            models.resolve_device("cuda")


def test_long_criteria_and_the_reserved_marker_get_their_own_messages(tiny_judge, bundled_tokenizer):
    from g2r_env.judge import _SLOT

    scorer = Grad2Reward(tiny_judge, attribution="uniform")
    ids = bundled_tokenizer.encode("Blue.", add_special_tokens=False)
    long_task = Task("long", "Why is the sky blue?", (Criterion("word " * 100_000, 1.0),))
    with pytest.raises(ValueError, match="shorten the criterion or the question"):
        scorer.score(long_task, ids)
    marked = Task("mark", "Why?", (Criterion(f"Says {_SLOT} twice", 1.0),))
    with pytest.raises(ValueError, match="reserved response marker"):
        scorer.score(marked, ids)


def test_an_env_pickles_and_steps_the_same_after(tiny_model):
    import gymnasium as gym

    env = gym.make("Grad2Reward/OpenEnded-v0", model=tiny_model, max_new_tokens=4, soft=True).unwrapped
    copy = pickle.loads(pickle.dumps(env))
    results = []
    for e in (env, copy):
        e.reset(seed=5)
        for token in (600, 601, 602, 603):
            _, reward, _, _, info = e.step(token)
        results.append((reward, info["token_rewards"]))
    assert results[0][0] == pytest.approx(results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1], atol=1e-6)


def test_a_foreign_tasks_module_is_named(tmp_path):
    (tmp_path / "tasks.py").write_text("X = 1\n")
    out = subprocess.run(
        [sys.executable, "-c", "import g2r_env"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert out.returncode != 0
    assert f"the module 'tasks' is {tmp_path / 'tasks.py'}" in out.stderr and "rename yours" in out.stderr
    warnings.filterwarnings("ignore")
    assert g2r_env.packages.require_own("tasks") is None  # ours, here


# ---- run folders, resumes and exports ------------------------------------------------------------
def test_a_fresh_run_never_mixes_into_a_used_run_folder(tiny_model, tmp_path, capsys):
    from tiny import single_error_line

    from g2r_cli import main

    run = tmp_path / "run"
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_config(tiny_model, run, total_steps=1).to_dict()))
    assert main(["train", "--config", str(config)]) == 0
    first = (run / "metrics.jsonl").read_text()
    assert main(["train", "--config", str(config)]) == 2
    err = single_error_line(capsys.readouterr().err, "train")
    assert f"the run folder {run} already holds a run" in err and f"g2r train --resume {run}" in err
    assert "--overwrite" in err and (run / "metrics.jsonl").read_text() == first  # nothing appended
    assert main(["train", "--config", str(config), "--overwrite"]) == 0
    [old] = tmp_path.glob("run.old-*")
    assert (old / "metrics.jsonl").read_text() == first  # moved aside, not deleted
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1]


def test_a_resume_checks_the_saved_config_before_any_model_loads(tiny_model, tmp_path, capsys, monkeypatch):
    from tiny import single_error_line

    from g2r_cli import main
    from g2r_env.runlog import read_resumes

    run = tmp_path / "run"
    Trainer(tiny_config(tiny_model, run, total_steps=1)).train()
    with monkeypatch.context() as patch:
        patch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
        for field, value, saved in (
            ("lora_rank", "4", "0"),
            ("seed", "7", "0"),
            ("model", "bundled", repr(tiny_model)),
        ):
            assert main(["train", "--resume", str(run), "--set", f"{field}={value}"]) == 2
            err = single_error_line(capsys.readouterr().err, "train")
            assert f"cannot resume with {field}=" in err and f"the run was made with {field}={saved}" in err
            assert len(err) < 400  # no state-dict dump
    resumed = Trainer.resume(run, ["total_steps=2", "progress=true"])
    resumed.train()
    assert read_resumes(run) == [{"step": 1, "changed": {"progress": [False, True], "total_steps": [1, 2]}}]
    assert json.loads((run / "config.json").read_text())["total_steps"] == 2  # what the run used


def test_an_export_never_leaves_files_of_an_earlier_one(tmp_path, capsys):
    from tiny import single_error_line

    from g2r_cli import main

    pytest.importorskip("pyarrow")
    out = tmp_path / "verl"
    assert main(["export", "--format", "verl", "--out", str(out)]) == 0
    train_only = tmp_path / "train.jsonl"
    train_only.write_text(json.dumps({"id": "a", "prompt": "p", "criteria": [{"criterion": "c"}]}) + "\n")
    args = ["export", "--format", "verl", "--tasks", str(train_only), "--out", str(out)]
    assert main(args) == 2
    assert "already holds files (test.parquet, train.parquet); pass --overwrite" in single_error_line(
        capsys.readouterr().err, "export"
    )
    assert main([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["train.parquet"]  # the old test.parquet is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl", "verl"]  # no temporary folder left
    capsys.readouterr()
    assert main(["export", "--format", "verl", "--tasks", str(train_only), "--out", str(train_only)]) == 2
    assert f"--out {train_only} is a file" in single_error_line(capsys.readouterr().err, "export")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "sur-1", "prompt": "p \udcff", "criteria": [{"criterion": "c"}]}) + "\n")
    assert main(["export", "--format", "verl", "--tasks", str(bad), "--out", str(tmp_path / "b")]) == 2
    assert "task sur-1: its text holds '\\udcff', a lone surrogate" in single_error_line(
        capsys.readouterr().err, "export"
    )
    assert not (tmp_path / "b").exists()


# ---- config checks before any model loads --------------------------------------------------------
def test_leave_one_out_advantages_need_two_responses_per_group():
    for advantage in ("rloo", "token_rloo"):
        with pytest.raises(ValueError, match=f"group_size must be >= 2 with advantage '{advantage}'"):
            TrainConfig(group_size=1, advantage=advantage)
    assert TrainConfig(group_size=1, advantage="token_grpo").group_size == 1


def test_rubric_weights_that_would_give_a_nan_reward_are_rejected_at_load(tmp_path):
    path = tmp_path / "tasks.jsonl"
    row = {
        "id": "w",
        "prompt": "p",
        "criteria": [{"criterion": "a", "weight": 1e-300}, {"criterion": "b", "weight": -1e10}],
    }
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(TaskFormatError, match=f"{path}:1: task w: the negative weights outweigh the positive ones"):
        load_taskset(path)


def test_verdict_and_task_rows_with_a_null_domain_are_rejected(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps({"id": "a", "prompt": "p", "domain": None, "criteria": [{"criterion": "c"}]}) + "\n")
    with pytest.raises(TaskFormatError, match=f"{path}:1: 'domain' must be a string, got None"):
        load_taskset(path)


# ---- every command: one error line, status 2 -----------------------------------------------------
def test_every_command_answers_bad_input_with_one_error_line(tiny_model, tmp_path, capsys):
    from tiny import single_error_line

    from g2r_cli import main

    weights = tmp_path / "weights.jsonl"
    row = {
        "id": "w",
        "prompt": "p",
        "criteria": [{"criterion": "a", "weight": 1e-300}, {"criterion": "b", "weight": -1e10}],
    }
    weights.write_text(json.dumps(row) + "\n")
    verdicts = tmp_path / "v.jsonl"
    verdicts.write_text(json.dumps({"prompt": "q", "response": "r", "criterion": "c", "label": True}) + "\n")
    cases = [
        ("score", ["--task", "expl-001", "--response", "caf\udcff", "--model", tiny_model], "byte 0xff at character 3"),
        ("score", ["--task", "w", "--tasks", str(weights), "--response", "x", "--model", tiny_model], "outweigh"),
        ("train", ["--set", "group_size=1", "--set", "advantage=rloo"], "group_size must be >= 2"),
        ("train", ["--resume", str(tmp_path / "none")], "no run folder"),
        ("eval", ["--tasks", str(weights), "--model", tiny_model], "outweigh"),
        ("judge", ["eval", "--judge", tiny_model, "--credit-cases", "-1", "--cases", str(verdicts)], "credit_cases must be >= 0"),
        ("judge", ["eval", "--judge", tiny_model, "--tasks", "--cases", str(tmp_path / "nope.jsonl")], "nope.jsonl"),
        ("judge", ["train", "--out-dir", str(tmp_path / "j"), "--verdicts", str(weights), "--corpora", "--base", tiny_model, "--responses-per-step", "0"], "missing field 'response'"),
        ("export", ["--format", "verl", "--tasks", str(weights), "--out", str(tmp_path / "x")], "outweigh"),
    ]  # fmt: skip
    for command, args, message in cases:
        assert main([command, *args]) == 2, (command, args)
        assert message in single_error_line(capsys.readouterr().err, command), (command, args)


def test_score_help_names_the_default_judge(capsys):
    from g2r_cli import main

    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: 'bundled-judge' for the bundled model, 'self' for any other" in text
    assert "self-judging with --model" not in text
