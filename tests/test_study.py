"""Study statistics (agents.study) against numbers worked out by hand."""

import json
import math

import numpy as np
import pytest

from agents.study import band, bootstrap_difference, bootstrap_ratio, load_study_preset, steps_to_reach, summarize

STEPS = [0, 2, 4]


def test_steps_to_reach_interpolates_between_eval_steps():
    assert steps_to_reach(STEPS, [0.2, 0.4, 0.6], 0.5) == pytest.approx(3.0)  # 2 + 2 * 0.1 / 0.2
    assert steps_to_reach(STEPS, [0.2, 0.4, 0.6], 0.1) == 0.0
    assert steps_to_reach(STEPS, [0.2, 0.4, 0.6], 0.4) == pytest.approx(2.0)
    assert steps_to_reach(STEPS, [0.2, 0.4, 0.6], 0.7) == math.inf


def test_band_is_one_standard_error_around_the_mean():
    low, high = band([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    # per step: mean 1, 1, 1; std (ddof 1) sqrt(2), 0, sqrt(2); standard error 1, 0, 1
    np.testing.assert_allclose(low, [0.0, 1.0, 0.0])
    np.testing.assert_allclose(high, [2.0, 1.0, 2.0])


def test_bootstrap_ratio_of_identical_seeds_has_a_point_interval():
    baseline = [[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]]  # reaches its final 0.5 at step 4
    arm = [[0.2, 0.5, 0.6], [0.2, 0.5, 0.6]]  # reaches 0.5 at step 2
    result = bootstrap_ratio(STEPS, baseline, arm, resamples=200)
    assert (result["target"], result["baseline_steps"], result["arm_steps"]) == (0.5, 4.0, 2.0)
    assert result["ratio"] == result["ci_low"] == result["ci_high"] == 2.0 and result["reached_share"] == 1.0


def test_bootstrap_counts_resamples_where_the_arm_never_reaches_as_zero():
    baseline = [[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]]
    arm = [[0.2, 0.6, 0.7], [0.2, 0.2, 0.2]]  # mean 0.2, 0.4, 0.45: never reaches 0.5; one seed alone does
    result = bootstrap_ratio(STEPS, baseline, arm, resamples=400, seed=1)
    assert result["ratio"] == 0.0 and result["arm_steps"] == math.inf
    assert 0.1 < result["reached_share"] < 0.4  # both draws of the first seed: 1/4 in expectation
    assert result["ci_low"] == 0.0 and result["ci_high"] == pytest.approx(4 / (2 * 0.3 / 0.4), abs=1e-9)


def test_summary_flags_a_training_judge_rise_with_an_eval_judge_fall():
    curves = {"sparse": [[0.2, 0.3, 0.5]], "dense": [[0.3, 0.25, 0.2]]}
    reward = {"sparse": [[0.2, 0.3, 0.5]], "dense": [[0.3, 0.5, 0.7]]}
    summary = summarize(STEPS, curves, "sparse", reward, resamples=10)
    assert summary["dense"]["hacking_signal"] and not summary["sparse"]["hacking_signal"]
    assert summary["dense"]["judge_gap_final"] == pytest.approx(0.5)
    assert summary["dense"]["eval_change"] == pytest.approx(-0.1) and "vs_baseline" not in summary["sparse"]
    assert json.loads(json.dumps(summary))["dense"]["hacking_signal"] is True  # results.json holds plain types


def test_no_ratio_is_claimed_against_a_baseline_that_did_not_improve():
    summary = summarize(STEPS, {"sparse": [[0.4, 0.3, 0.4]], "dense": [[0.4, 0.5, 0.6]]}, "sparse", resamples=10)
    assert not summary["sparse"]["improved"] and "vs_baseline" not in summary["dense"]
    assert summary["sparse"]["steps_to_final"] == 0.0
    assert json.loads(json.dumps(summary))["sparse"]["improved"] is False


def test_final_score_difference_and_its_bootstrap_interval():
    fixed = bootstrap_difference([0.2, 0.2, 0.2], [0.5, 0.5, 0.5], resamples=50)
    assert fixed["difference"] == pytest.approx(0.3) and fixed["ci_low"] == fixed["ci_high"] == pytest.approx(0.3)
    spread = bootstrap_difference([0.0], [0.0, 1.0], resamples=4000)  # arm means 0, 0.5, 1 w.p. 1/4, 1/2, 1/4
    assert spread["difference"] == pytest.approx(0.5) and (spread["ci_low"], spread["ci_high"]) == (0.0, 1.0)
    summary = summarize(STEPS, {"sparse": [[0.4, 0.3, 0.4]], "dense": [[0.4, 0.5, 0.6]]}, "sparse", resamples=10)
    assert summary["dense"]["final_vs_baseline"]["difference"] == pytest.approx(0.2)
    assert "final_vs_baseline" not in summary["sparse"]


def test_an_unknown_study_preset_names_the_shipped_ones():
    with pytest.raises(ValueError, match=r"no study preset 'slow'.*known: \['cpu', 'gpu', 'quick'\]"):
        load_study_preset("slow")


@pytest.mark.parametrize("preset", ["cpu", "quick", "gpu"])
def test_every_study_preset_has_train_and_eval_tasks_for_every_arm(preset, tmp_path):
    import importlib.util
    from pathlib import Path

    from tasks import load_taskset

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "sample_efficiency.py"
    spec = importlib.util.spec_from_file_location("sample_efficiency", path)
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    loaded = load_study_preset(preset)
    assert {"sparse", "dense_grad_x_embed", "dense_uniform", "token_rloo"} <= set(loaded["arms"])
    assert len(loaded["seeds"]) >= 3 or preset == "quick"
    for arm in loaded["arms"]:
        config = study.run_config(loaded, arm, loaded["seeds"][0], tmp_path)
        config.validate()
        chosen = load_taskset(config.tasks).select(config.task_ids, config.domains)
        assert chosen.split("train") and chosen.split(config.eval_split)
        assert config.eval_judge == "bundled-eval-judge" and config.judge == "bundled-judge"
