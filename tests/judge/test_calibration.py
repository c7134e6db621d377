"""Judge calibration (p_true = sigmoid(a m + b) in Judge.p_true), its fit and record, the eval report's
before/after figures, the claims probe, and the judge-training loss weights."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from g2r_env import Calibration, Grad2Reward, Judge
from g2r_judge.calibration import fit_calibration, write_calibration
from g2r_judge.cases import JudgedCase, task_for_prompt
from g2r_judge.evaluation import claim_probe_cases, claims_report, evaluate_judge, with_claim
from g2r_judge.predict import predict_margins, predict_p_true
from tasks.checks import Check


def test_p_true_applies_the_calibration_and_raw_p_true_does_not(tiny_judge):
    logits = torch.zeros(3, 10, dtype=torch.float64)
    true_id, false_id = tiny_judge.verdict_ids
    logits = torch.zeros(3, max(true_id, false_id) + 1, dtype=torch.float64)
    logits[:, true_id] = torch.tensor([2.0, 0.0, -1.0])
    calibrated = Judge(tiny_judge.model, tiny_judge.tokenizer, calibration={"scale": 0.5, "bias": -1.0})
    margins = torch.tensor([2.0, 0.0, -1.0], dtype=torch.float64)
    assert torch.allclose(calibrated.p_true(logits), torch.sigmoid(0.5 * margins - 1.0))
    assert torch.allclose(calibrated.raw_p_true(logits), torch.sigmoid(margins))
    assert torch.allclose(tiny_judge.p_true(logits), torch.sigmoid(margins))  # no calibration: the raw value
    for bad in ({"scale": 0.0, "bias": 0.0}, {"scale": -1.0, "bias": 0.0}, {"scale": 1.0}, {"scale": 1, "bias": "x"}):
        with pytest.raises(ValueError, match="calibration"):
            Calibration.from_record(bad)


def test_the_fit_recovers_a_known_affine_map():
    rng = np.random.default_rng(0)
    margins = rng.normal(0, 3, 20000)
    labels = rng.random(20000) < 1 / (1 + np.exp(-(0.4 * margins - 0.8)))
    scale, bias = fit_calibration(margins, labels)
    assert scale == pytest.approx(0.4, abs=0.02) and bias == pytest.approx(-0.8, abs=0.05)
    with pytest.raises(ValueError, match="scale is"):
        fit_calibration(margins, ~labels)  # margins against the verdicts: no calibration
    with pytest.raises(ValueError, match="two met and two unmet"):
        fit_calibration([1.0, 2.0, 3.0], [True, True, False])


def test_a_judge_folder_carries_its_calibration_and_load_applies_it(tiny_model, tmp_path):
    folder = tmp_path / "judge"
    shutil.copytree(tiny_model, folder)
    (folder / "g2r-judge.json").write_text(json.dumps({"base": "x", "steps": 3}))
    write_calibration(folder, Calibration(0.5, -0.25, "judge-extra[val]", 10))
    record = json.loads((folder / "g2r-judge.json").read_text())
    assert record["steps"] == 3 and record["calibration"] == {
        "scale": 0.5,
        "bias": -0.25,
        "fitted_on": "judge-extra[val]",
        "cases": 10,
    }
    task = task_for_prompt("Why is the sky blue?")
    cases = [JudgedCase(task, r, "Mentions scattering", True) for r in ("Air scatters blue light.", "No idea.")]
    judge = Judge.load(str(folder), device="cpu")
    raw = Judge.load(str(folder), device="cpu", calibrated=False)
    assert judge.calibration == Calibration(0.5, -0.25, "judge-extra[val]", 10) and raw.calibration is None
    margins = predict_margins(raw, cases)
    np.testing.assert_allclose(predict_p_true(judge, cases), 1 / (1 + np.exp(-(0.5 * margins - 0.25))), atol=1e-6)
    np.testing.assert_allclose(predict_p_true(raw, cases), 1 / (1 + np.exp(-margins)), atol=1e-6)


def test_the_scorer_reads_calibrated_verdicts_and_keeps_the_credit(tiny_judge, rubric_task):
    """Verdicts and soft rewards use the calibrated p_true; the credit of a criterion met either way is the
    gradient of the raw objective, so it does not change."""
    ids = tiny_judge.tokenizer.encode("Sunlight scatters off air, and blue scatters most.", add_special_tokens=False)
    raw = Grad2Reward(tiny_judge, attribution="grad_l2", soft=True)
    [before] = raw.score_batch([rubric_task], [ids])
    calibrated_judge = Judge(tiny_judge.model, tiny_judge.tokenizer, calibration=Calibration(3.0, 0.0))
    [after] = Grad2Reward(calibrated_judge, attribution="grad_l2", soft=True).score_batch([rubric_task], [ids])
    for b, a in zip(before.criteria, after.criteria):
        m = np.log(b["p_true"] / (1 - b["p_true"]))
        assert a["p_true"] == pytest.approx(1 / (1 + np.exp(-3.0 * m)), abs=1e-6)
        assert a["met"] == b["met"]  # bias 0: the same side of 0.5
        np.testing.assert_allclose(a["alpha"], b["alpha"], atol=1e-6)


def test_the_eval_report_gives_accuracy_and_ece_before_and_after_calibration(tiny_judge):
    task = task_for_prompt("Why is the sky blue?")
    cases = [
        JudgedCase(task, r, c, label, "content", "" if label else "in-task")
        for r, c, label in [
            ("Air scatters blue light.", "Mentions scattering", True),
            ("Air scatters blue light.", "Names Rayleigh", False),
            ("Rayleigh scattering.", "Names Rayleigh", True),
            ("No idea.", "Mentions scattering", False),
        ]
    ]
    margins = predict_margins(tiny_judge, cases)
    judge = Judge(tiny_judge.model, tiny_judge.tokenizer, calibration=Calibration(1.0, -float(margins.mean())))
    report = evaluate_judge(judge, cases)
    labels = np.array([c.label for c in cases])
    raw, calibrated = 1 / (1 + np.exp(-margins)), 1 / (1 + np.exp(-(margins - margins.mean())))
    assert report["calibration"]["raw"]["accuracy"] == pytest.approx(((raw > 0.5) == labels).mean())
    assert report["calibration"]["calibrated"]["accuracy"] == pytest.approx(((calibrated > 0.5) == labels).mean())
    assert report["verdicts"]["accuracy"] == report["calibration"]["calibrated"]["accuracy"]
    assert "calibration" not in evaluate_judge(tiny_judge, cases)


def test_the_claims_probe_appends_claims_to_unmet_criteria_only(tiny_judge):
    task = task_for_prompt("Give sleep tips.")
    response = "Keep a regular bedtime. Avoid screens late."
    cases = [
        JudgedCase(task, response, "Recommends a regular bedtime", True, "content"),
        JudgedCase(task, response, "Warns about caffeine", False, "content", "in-task"),
        JudgedCase(task, response, "Uses a numbered list", False, "structure", "in-task", check=Check("numbered_list")),
        JudgedCase(task, response, "Uses the word 'melatonin'", False, "structure", "in-task"),  # quotes a word
        JudgedCase(task, response, "Recommends sleeping pills", False, "pitfall", "in-task"),
        JudgedCase(
            task, response, "Is longer than 8 words", False, "structure", "in-task", check=Check("words", "gt", 8)
        ),
    ]
    assert claim_probe_cases(cases) == [1, 2]  # the 8-word limit would be passed by the claim itself
    assert with_claim(response, "Warns about caffeine", "claim") == response + "\n\nThis response warns about caffeine."
    assert with_claim(response, "Warns about caffeine", "own words") == response + "\n\nWarns about caffeine."
    p = predict_p_true(tiny_judge, cases)
    report = claims_report(tiny_judge, cases, p)
    after = predict_p_true(
        tiny_judge,
        [
            JudgedCase(task, with_claim(response, cases[n].criterion, "claim"), cases[n].criterion, False)
            for n in (1, 2)
        ],
    )
    assert report["probed"] == 2
    assert report["claim"]["mean_rise"] == pytest.approx(float(np.mean(after - p[[1, 2]])), abs=1e-9)
    unmet = p[[1, 2]] <= 0.5
    assert report["claim"]["called_unmet_before"] == int(unmet.sum())
    assert report["claim"]["flipped"] == int((unmet & (after > 0.5)).sum())


def test_hard_negatives_and_claims_weigh_more_within_the_negative_half(tiny_model, tmp_path):
    from tiny import verdict_judge_config

    from g2r_judge.training import JudgeTrainer

    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps({"prompt": "Q", "response": "A.", "criterion": "C", "label": True}) + "\n")
    trainer = JudgeTrainer(verdict_judge_config(tiny_model, path, tmp_path / "run", hard_negative_weight=3.0))
    task = task_for_prompt("Q")
    kinds = [("", True), ("", True), ("claim", False), ("in-task", False), ("mismatched", False), ("generic", False)]
    weights = trainer.loss_weights([JudgedCase(task, "r", "c", label, "content", neg) for neg, label in kinds])
    # positives share 0.5; negatives 3 + 3 + 1 + 1 = 8 parts of the other 0.5
    np.testing.assert_allclose(weights.numpy(), [0.25, 0.25, 3 / 16, 3 / 16, 1 / 16, 1 / 16])
    one_class = trainer.loss_weights([JudgedCase(task, "r", "c", False, "content", n) for n in ("claim", "mismatched")])
    np.testing.assert_allclose(one_class.numpy(), [0.75, 0.25])
