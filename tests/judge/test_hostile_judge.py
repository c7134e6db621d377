"""Judge training, evaluation and verdict files under careless or hostile input: a resume that
would change the run, inputs beyond the judge's context, verdict rows that mean two things."""

from __future__ import annotations

import json
import re

import pytest
from tiny import single_error_line, verdict_judge_config

from g2r_cli import main
from g2r_env.models import fast_bf16
from g2r_judge.training import JudgeTrainer
from g2r_judge.verdicts import VerdictFormatError, load_verdicts


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def toy_rows(n=6):
    return [
        {"prompt": "Q", "response": f"Answer {k}.", "criterion": "Gives an answer", "label": k % 2 == 0}
        for k in range(n)
    ]


@pytest.fixture
def trained_judge_dir(tmp_path, tiny_model):
    """A one-step LoRA judge run (seed 0, rank 2) with its final checkpoint."""
    path = write_jsonl(tmp_path / "toy.jsonl", toy_rows())
    config = verdict_judge_config(tiny_model, path, tmp_path / "run", verdicts_per_step=4, steps=1, lora_rank=2)
    JudgeTrainer(config).train()
    return tmp_path / "run", path


# ---- resumes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, saved", [("seed", 7, 0), ("lora_rank", 8, 2), ("passage_half", 0, None)])
def test_a_judge_resume_that_changes_the_run_is_refused_before_the_model_loads(
    trained_judge_dir, tiny_model, monkeypatch, field, value, saved
):
    from g2r_env import models

    run, path = trained_judge_dir
    config = verdict_judge_config(tiny_model, path, run, verdicts_per_step=4, steps=2, lora_rank=2)
    setattr(config, field, value)
    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    message = f"cannot resume with {field}={value!r}: the run was made with {field}={saved!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        JudgeTrainer(config)


def test_a_judge_resume_records_what_it_changed_and_what_it_used(trained_judge_dir, tiny_model):
    run, path = trained_judge_dir
    config = verdict_judge_config(tiny_model, path, run, verdicts_per_step=4, steps=2, lora_rank=2, threads=1)
    config.bf16 = None  # autocast where the hardware runs bf16 natively: it may change on another machine
    trainer = JudgeTrainer(config, command="g2r judge train --steps 2")
    assert trainer.bf16 == fast_bf16(trainer.judge.device)
    folder = trainer.train()
    record = json.loads((folder / "g2r-judge.json").read_text())
    assert record["steps"] == 2 and record["seed"] == 0 and record["verdicts"] == [str(path)]
    changed = {"steps": [1, 2], "threads": [0, 1], "bf16": [False, None]}
    assert record["resumes"] == [{"step": 1, "changed": changed}]
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_judge_train_cli_refuses_a_changed_seed_with_one_line(trained_judge_dir, tiny_model, capsys):
    run, path = trained_judge_dir
    args = ["judge", "train", "--out-dir", str(run), "--base", tiny_model, "--corpora", "--verdicts", str(path)]
    args += ["--responses-per-step", "0", "--bf16", "False", "--lora-rank", "2", "--steps", "2", "--seed", "7"]
    assert main(args) == 2
    err = single_error_line(capsys.readouterr().err, "judge")
    assert "seed=7" in err and "seed=0" in err


def test_a_judge_run_never_lands_in_a_folder_holding_something_else(tmp_path, tiny_model):
    path = write_jsonl(tmp_path / "toy.jsonl", toy_rows())
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    config = verdict_judge_config(tiny_model, path, run, verdicts_per_step=4, steps=1, lora_rank=0)
    with pytest.raises(FileExistsError, match=f"the run folder {run} already holds a run \\(notes.txt\\)"):
        JudgeTrainer(config)
    config.overwrite = True
    JudgeTrainer(config).train()
    [old] = tmp_path.glob("run.old-*")
    assert (old / "notes.txt").read_text() == "mine" and (run / "judge" / "g2r-judge.json").is_file()


# ---- the judge's context -----------------------------------------------------------------------
def long_rows(tiny_model_tokens: int):
    rows = toy_rows(4)
    rows.append({"prompt": "Q", "response": "word " * tiny_model_tokens, "criterion": "Is long", "label": True})
    return rows


def test_judge_training_applies_the_context_check_to_verdict_rows(tmp_path, tiny_model):
    path = write_jsonl(tmp_path / "long.jsonl", long_rows(3000))  # the tiny model has 2048 positions
    config = verdict_judge_config(tiny_model, path, tmp_path / "run", verdicts_per_step=4, steps=1, lora_rank=0)
    with pytest.raises(ValueError, match=r"case 4 .*longer than the judge's context of 2048.*--too-long drop"):
        JudgeTrainer(config)
    config = verdict_judge_config(
        tiny_model, path, tmp_path / "run2", verdicts_per_step=4, steps=1, lora_rank=0, too_long="drop"
    )
    with pytest.warns(UserWarning, match="left out 1 of 5 case"):
        trainer = JudgeTrainer(config)
    assert len(trainer.verdict_cases) == 4


def test_judge_training_keeps_a_response_with_many_criteria_within_max_tokens(tmp_path, tiny_model):
    from g2r_judge.predict import pack_cases

    rows = [
        {"prompt": "Q", "response": "word " * 40, "criterion": f"Criterion number {k}", "label": k % 2 == 0}
        for k in range(30)
    ]
    path = write_jsonl(tmp_path / "many.jsonl", rows)
    config = verdict_judge_config(
        tiny_model, path, tmp_path / "run", verdicts_per_step=30, steps=1, lora_rank=0, max_tokens=256
    )
    trainer = JudgeTrainer(config)
    packs = pack_cases(trainer.judge, trainer.verdict_cases, config.max_tokens)
    sizes = [len(p.prefix) + sum(map(len, p.suffixes)) for p in packs]
    assert len(packs) > 1 and max(sizes) <= 256  # one pack of every criterion would be far longer
    assert sorted(c for p in packs for c in p.cases) == list(range(30))
    too_small = verdict_judge_config(
        tiny_model, path, tmp_path / "run2", verdicts_per_step=30, steps=1, lora_rank=0, max_tokens=64
    )
    with pytest.raises(ValueError, match="more than max_tokens=64"):
        JudgeTrainer(too_small)


def test_judge_eval_applies_the_context_check(tmp_path, tiny_model, capsys):
    path = write_jsonl(tmp_path / "long.jsonl", long_rows(3000))
    args = ["judge", "eval", "--judge", tiny_model, "--tasks", "--cases", str(path), "--device", "cpu"]
    assert main([*args, "--methods"]) == 2
    assert "longer than the judge's context of 2048" in single_error_line(capsys.readouterr().err, "judge")
    out = tmp_path / "report.json"
    with pytest.warns(UserWarning, match="left out 1 of 5 case"):
        assert main([*args, "--methods", "--too-long", "drop", "--json-out", str(out)]) == 0
    assert json.loads(out.read_text())["sets"][str(path)]["verdicts"]["n"] == 4


# ---- verdict rows that would mean two things -----------------------------------------------------
ROW = {"prompt": "Q", "response": "An answer, in blue.", "criterion": "Says blue", "label": True}


@pytest.mark.parametrize(
    "bad, message",
    [
        ({**ROW, "label": False}, r":2: the criterion 'Says blue' on this response is judged False here and True at .*:1"),
        ({**ROW, "criteria": [{"criterion": "Other", "met": False}]}, r":2: the row has both 'criteria' and \['criterion', 'label'\]"),
        ({**ROW, "id": None}, r":2: 'id' must be a non-empty string or integer, got None"),
        ({**ROW, "criterion": "Other", "domain": None}, r":2: 'domain' must be a string, got None"),
        ({**ROW, "criterion": "Other", "evidence": [[True, 5]]}, r":2: bad evidence item \[True, 5\]"),
        ({**ROW, "criterion": "Other", "weight": float("nan")}, r":2: weight must be a finite number, got nan"),
    ],
)  # fmt: skip
def test_verdict_rows_that_mean_two_things_name_file_and_line(tmp_path, bad, message):
    path = write_jsonl(tmp_path / "v.jsonl", [ROW, json.dumps(bad)])  # json.dumps writes NaN as NaN
    with pytest.raises(VerdictFormatError, match=re.escape(str(path)) + message):
        load_verdicts(path)


def test_a_repeated_verdict_with_the_same_label_is_kept_once(tmp_path):
    path = write_jsonl(tmp_path / "v.jsonl", [ROW, {**ROW, "criterion": "Other", "label": False}, ROW])
    with pytest.warns(UserWarning, match=r"1 verdict\(s\) repeat an earlier one .*v.jsonl:3 repeats .*v.jsonl:1"):
        cases = load_verdicts(path)
    assert [(c.criterion, c.label) for c in cases] == [("Says blue", True), ("Other", False)]


def test_judge_eval_json_out_is_strict_json(tmp_path, tiny_model):
    path = write_jsonl(tmp_path / "v.jsonl", [ROW])  # one class only: AUC has no value
    out = tmp_path / "report.json"
    args = ["judge", "eval", "--judge", tiny_model, "--tasks", "--cases", str(path), "--methods"]
    assert main([*args, "--device", "cpu", "--json-out", str(out)]) == 0
    text = out.read_text()
    assert "NaN" not in text
    verdicts = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in strict JSON"))["sets"][str(path)]
    assert verdicts["verdicts"]["auc"] is None and verdicts["verdicts"]["n"] == 1
