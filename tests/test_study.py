"""Study statistics (agents.study) against numbers worked out by hand."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from agents.study import (
    band,
    bootstrap_difference,
    bootstrap_ratio,
    default_rule,
    load_study_preset,
    steps_to_reach,
    summarize,
)

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
    with pytest.raises(
        ValueError,
        match=r"no study preset 'slow'.*known: \['cpu', 'cpu_g8', 'cpu_g8s', 'cpu_long', 'cpu_wide', 'gpu', 'quick'\]",
    ):
        load_study_preset("slow")


def test_a_study_preset_scores_greedy_or_sampled_responses_and_sampled_needs_samples(tmp_path):
    quick = load_study_preset("quick")
    for score, samples, error in (("best", 4, '"score" must be "greedy" or "sampled"'), ("sampled", 0, "needs \"eval_samples\" > 0")):  # fmt: skip
        path = tmp_path / f"{score}.json"
        path.write_text(json.dumps({**quick, "score": score, "train": {**quick["train"], "eval_samples": samples}}))
        with pytest.raises(ValueError, match=error):
            load_study_preset(str(path))
    path.write_text(json.dumps({**quick, "score": "sampled", "train": {**quick["train"], "eval_samples": 2}}))
    assert load_study_preset(str(path))["score"] == "sampled"


def study_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "sample_efficiency.py"
    spec = importlib.util.spec_from_file_location("sample_efficiency", path)
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    return study


@pytest.mark.parametrize("preset", ["cpu", "cpu_g8s", "quick", "gpu"])
def test_every_study_preset_has_train_and_eval_tasks_for_every_arm(preset, tmp_path):
    from tasks import load_taskset

    study = study_script()
    loaded = load_study_preset(preset)
    assert {"sparse", "dense_grad_x_embed", "dense_uniform", "token_rloo"} <= set(loaded["arms"])
    assert len(loaded["seeds"]) >= 3 or preset == "quick"
    for arm in loaded["arms"]:
        config = study.run_config(loaded, arm, loaded["seeds"][0], tmp_path)
        config.validate()
        chosen = load_taskset(config.tasks).select(config.task_ids, config.domains)
        assert chosen.split("train") and chosen.split(config.eval_split)
        assert config.eval_judge == "bundled-eval-judge" and config.judge == "bundled-judge"
    assert loaded["control"] in loaded["arms"]
    if "sweep" in loaded:  # judged on tasks neither trained on nor the study's eval tasks; every arm follows one
        followers = {arm for arms in loaded["sweep"]["arms"].values() for arm in arms}
        assert set(loaded["sweep"]["arms"]) <= set(loaded["arms"]) == followers
        for config in study.sweep_configs(loaded, tmp_path):
            config.validate()
            trained = load_taskset(config.tasks).select(config.task_ids, config.domains).split("train")
            studied = chosen.split(config.eval_split)
            swept = set(config.eval_task_ids)
            assert swept and not swept & {t.task_id for t in trained} and not swept & {t.task_id for t in studied}


def test_mean_interval_and_area_under_the_curve():
    from agents.study import area_under, bootstrap_mean

    fixed = bootstrap_mean([0.1, 0.1, 0.1], resamples=20)
    assert fixed["mean"] == fixed["ci_low"] == fixed["ci_high"] == pytest.approx(0.1)
    spread = bootstrap_mean([0.0, 1.0], resamples=4000)  # resampled means 0, 0.5, 1 w.p. 1/4, 1/2, 1/4
    assert spread["mean"] == 0.5 and (spread["ci_low"], spread["ci_high"]) == (0.0, 1.0)
    assert area_under(STEPS, [0.2, 0.3, 0.5]) == pytest.approx((0.25 * 2 + 0.4 * 2) / 4)
    assert area_under([0, 1, 4], [0.0, 1.0, 1.0]) == pytest.approx((0.5 + 3.0) / 4)  # uneven eval steps


def test_summary_adds_the_baseline_change_interval_control_difference_and_echo_signal():
    curves = {
        "sparse": [[0.2, 0.3, 0.4], [0.2, 0.3, 0.6]],
        "uniform": [[0.2, 0.2, 0.3], [0.2, 0.3, 0.3]],
        "best": [[0.2, 0.5, 0.6], [0.2, 0.5, 0.6]],
    }
    echo = {"sparse": [[0.01, 0.01, 0.01]] * 2, "uniform": [[0.01, 0.02, 0.02]] * 2, "best": [[0.01, 0.1, 0.2]] * 2}
    summary = summarize(STEPS, curves, "sparse", control="uniform", echo_curves=echo, resamples=500)
    base = summary["sparse"]
    assert (base["eval_change_ci"]["ci_low"], base["eval_change_ci"]["ci_high"]) == pytest.approx((0.2, 0.4))
    assert summary["best"]["final_vs_control"]["difference"] == pytest.approx(0.3)
    assert "final_vs_control" not in summary["uniform"] and "final_vs_control" not in base
    assert summary["best"]["auc"]["mean"] == pytest.approx((0.35 * 2 + 0.55 * 2) / 4)
    assert summary["best"]["auc_vs_baseline"]["difference"] == pytest.approx(0.45 - (0.3 + 0.35) / 2)
    assert summary["best"]["echo_change"]["mean"] == pytest.approx(0.19) and summary["best"]["hacking_signal"]
    assert not summary["uniform"]["hacking_signal"]  # a rise of 0.01 is under ECHO_RISE
    assert not base["hacking_signal"] and json.loads(json.dumps(summary)) == summary


def test_a_credit_rule_is_compared_with_the_papers_credit_under_the_same_advantage(tmp_path):
    study = study_script()
    preset = load_study_preset("cpu_g8")
    configs = {arm: study.run_config(preset, arm, 0, tmp_path) for arm in preset["arms"]}
    assert study.paper_arms(configs) == {
        "dense_best": "dense_grad_x_embed",
        "dense_uniform": "dense_grad_x_embed",
        "grpo_credit": "grpo_credit_grad_x_embed",
    }  # token_rloo has no grad_x_embed arm with its advantage; sparse and the paper's arms have none
    curves = {
        "sparse": [[0.2, 0.3, 0.4]] * 2,
        "paper": [[0.2, 0.3, 0.3], [0.2, 0.3, 0.5]],
        "best": [[0.2, 0.5, 0.6], [0.2, 0.5, 0.8]],
    }
    summary = summarize(STEPS, curves, "sparse", references={"best": "paper", "sparse": "missing"}, resamples=500)
    versus = summary["best"]["final_vs_reference"]
    assert versus["reference"] == "paper" and versus["difference"] == pytest.approx(0.3)
    assert (versus["ci_low"], versus["ci_high"]) == pytest.approx((0.1, 0.5))  # (0.6 or 0.8) - (0.3 or 0.5)
    assert "final_vs_reference" not in summary["paper"] and "final_vs_reference" not in summary["sparse"]


def test_the_default_rule_is_the_best_final_score_whose_interval_against_the_paper_is_above_zero():
    curves = {
        "sparse": [[0.2, 0.3, 0.4]] * 2,
        "paper": [[0.2, 0.3, 0.30], [0.2, 0.3, 0.32]],
        "steady": [[0.2, 0.4, 0.50], [0.2, 0.4, 0.52]],  # +0.20, interval +0.18 to +0.22
        "lucky": [[0.2, 0.3, 0.20], [0.2, 0.3, 0.90]],  # a higher mean (0.55), interval -0.12 to +0.60
    }
    attributions = {"sparse": "grad_x_embed", "paper": "grad_x_embed", "steady": "grad_l2", "lucky": "uniform"}
    references = {"steady": "paper", "lucky": "paper"}
    summary = summarize(STEPS, curves, "sparse", references=references, resamples=500)
    rule = default_rule(summary, attributions)
    assert (rule["attribution"], rule["arm"]) == ("grad_l2", "steady")
    assert rule["versus"]["difference"] == pytest.approx(0.2)
    # with the steady arm's lead inside the noise, no rule is ahead and the paper's stays
    curves["steady"] = [[0.2, 0.4, 0.20], [0.2, 0.4, 0.60]]
    rule = default_rule(summarize(STEPS, curves, "sparse", references=references, resamples=500), attributions)
    assert rule == {"attribution": "grad_x_embed", "arm": None, "versus": None}


def test_a_finished_run_is_picked_up_only_with_its_own_settings_and_arms_follow_the_swept_rates(tmp_path):
    study = study_script()
    preset = load_study_preset("quick")
    config = study.run_config(preset, "sparse", 0, tmp_path)
    folder = tmp_path / "sparse" / "seed0"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    last = {"step": config.total_steps, "eval/judge_score": 0.5}
    (folder / "metrics.jsonl").write_text(json.dumps({"step": 0, "eval/judge_score": 0.4}) + "\n")
    assert not study.finished(config)  # no eval at the last step: killed mid-run
    with open(folder / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(last) + "\n")
    assert not study.finished(config)  # killed after its last record, before its weights were deleted
    (folder / "run.json").write_text(json.dumps({"wall_seconds": 60.0, "threads": 1}))
    assert study.finished(config)  # a run from before run.json recorded its judges
    judges = study.judge_weights(config)
    assert sorted(judges) == ["bundled-eval-judge", "bundled-judge"] and len(set(judges.values())) == 2
    assert all(len(digest) == 64 for digest in judges.values())
    (folder / "run.json").write_text(json.dumps({"wall_seconds": 60.0, "judges": judges}))
    assert study.finished(config)
    rebuilt = {**judges, "bundled-judge": "0" * 64}  # trained before bundled-judge was rebuilt
    (folder / "run.json").write_text(json.dumps({"wall_seconds": 60.0, "judges": rebuilt}))
    assert not study.finished(config)
    (folder / "run.json").write_text(json.dumps({"wall_seconds": 60.0, "judges": judges}))
    assert not study.finished(
        study.run_config({**preset, "train": {**preset["train"], "learning_rate": 1}}, "sparse", 0, tmp_path)
    )

    with pytest.raises(SystemExit, match="run the sweep first"):
        study.apply_sweep(preset, tmp_path, True)
    assert study.apply_sweep(preset, tmp_path, False) is preset
    (tmp_path / "sweep").mkdir()
    made = {"best_learning_rate": {"sparse": 1e-4, "dense_best": 3e-5}, "settings": study.sweep_settings(preset)}
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps(made))
    longer = {**preset, "train": {**preset["train"], "total_steps": 99}}
    with pytest.raises(SystemExit, match=r"swept with other settings \(train.total_steps\)"):
        study.apply_sweep(longer, tmp_path, True)
    swept = study.apply_sweep(preset, tmp_path, True)
    rates = {arm: study.run_config(swept, arm, 0, tmp_path).learning_rate for arm in swept["arms"]}
    assert rates == {
        "sparse": 1e-4,
        "dense_grad_x_embed": 3e-5,
        "dense_best": 3e-5,
        "dense_uniform": 3e-5,
        "token_rloo": 3e-5,
    }
    assert "learning_rate" not in preset["arms"]["sparse"]  # the preset itself is left as it was


def test_commit_run_commits_only_the_run_folder(tmp_path, monkeypatch, capsys):
    import subprocess

    study = study_script()
    git = ["git", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "other.txt").write_text("work in progress")
    run = tmp_path / "results" / "sparse" / "seed0"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("{}\n")
    monkeypatch.setattr(study, "REPO", tmp_path)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "t")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "t@t")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@t")
    study.commit_run(run, "study quick: sparse/seed0 finished")
    log = subprocess.run([*git, "log", "--format=%s", "--name-only"], capture_output=True, text=True, check=True)
    assert log.stdout.split() == ["study", "quick:", "sparse/seed0", "finished", "results/sparse/seed0/metrics.jsonl"]
    status = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=True)
    assert status.stdout.strip() == "?? other.txt"
    assert study.commit_run(run, "again")  # committed already: nothing to commit, no error
    (run / "run.json").write_text("{}")
    (tmp_path / ".git" / "index.lock").write_text("")  # another git command holds the index
    assert not study.commit_run(run, "study quick: sparse/seed0 again", tries=1)
    assert "not committed" in capsys.readouterr().out
    (tmp_path / ".git" / "index.lock").unlink()
    assert study.commit_run(run, "study quick: sparse/seed0 picked up")  # what a later pick-up does
    log = subprocess.run([*git, "log", "--format=%s"], capture_output=True, text=True, check=True)
    assert log.stdout.splitlines() == ["study quick: sparse/seed0 picked up", "study quick: sparse/seed0 finished"]


def test_the_jobs_share_one_queue_of_runs_each_taken_once_in_order():
    import multiprocessing as mp

    study = study_script()
    with mp.get_context("spawn").Manager() as manager:  # the proxy raises queue.Empty as queue.Queue does
        queue = manager.Queue()
        for item in range(5):
            queue.put(item)
        first, second = study.drain(queue), study.drain(queue)
        assert [next(first), next(second), next(second)] == [0, 1, 2]
        assert list(first) == [3, 4]
        assert list(second) == []


def test_a_stop_file_starts_no_new_run_and_names_what_is_left(tmp_path, monkeypatch):
    study = study_script()
    monkeypatch.setattr(study, "REPO", tmp_path)  # vLLM's log folder
    preset = load_study_preset("quick")
    out = tmp_path / "quick"
    configs = study.study_configs(preset, out)
    out.mkdir()
    (out / study.STOP_FILE).touch()
    left = rf"stopped by .*STOP: 0 runs trained .* {len(configs)} left \(the next: {re.escape(configs[0].run_dir)}\)"
    with pytest.raises(SystemExit, match=left):
        study.train_all(configs, 1, "quick", commit=False, out=out)
    assert not any(Path(c.run_dir).exists() for c in configs)


def test_a_stop_file_is_cleared_by_a_start_with_runs_to_train_only(tmp_path, monkeypatch):
    study = study_script()
    configs = study.study_configs(load_study_preset("quick"), tmp_path)
    stop = tmp_path / study.STOP_FILE
    stop.touch()
    monkeypatch.setattr(study, "finished", lambda config, say=True: True)
    assert not study.clear_stop(tmp_path, configs)  # the table of finished runs, beside a running study
    assert stop.exists()
    monkeypatch.setattr(study, "finished", lambda config, say=True: config is not configs[-1])
    assert study.clear_stop(tmp_path, configs)  # a start that trains: the stop was the last one's
    assert not stop.exists()
    assert not study.clear_stop(tmp_path, configs)  # nothing to remove


def test_rescore_judges_the_saved_eval_responses_again_with_another_judge(tiny_model, bundled_tokenizer, tmp_path):
    from agents.trainer import soft_score
    from g2r_env import build_scorer
    from tasks import load_taskset

    study = study_script()
    preset = {**load_study_preset("quick"), "seeds": [0]}
    preset["arms"] = {"sparse": preset["arms"]["sparse"]}
    folder = tmp_path / "sparse" / "seed0"
    folder.mkdir(parents=True)
    tasks = load_taskset("openended-mini")
    played = [("creative-018", "Dear Sam, the sea was calm."), ("expl-018", "1. Heat rises.\n2. Air cools.")]
    records = [
        {
            "step": step,
            "responses": [
                {"task_id": t, "response_ids": bundled_tokenizer.encode(text[: 12 + 8 * step]) + [2]}
                for t, text in played
            ],
            "sampled": [
                {"task_id": t, "response_ids": bundled_tokenizer.encode(text[: 6 + 5 * step + k]) + [2]}
                for t, text in played
                for k in (0, 3)
            ],
        }
        for step in (0, 2)
    ]
    (folder / "eval_responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    runs = {"sparse": [{"steps": [0, 2], "eval/judge_score": [0.9, 0.9]}]}
    study.rescore(preset, tmp_path, runs, tiny_model)

    scorer = build_scorer("bundled", tiny_model, "cpu")
    for n, record in enumerate(records):
        for field, score, soft in (("responses", "judge_score", "judge_soft_score"), ("sampled", "sampled_score", "sampled_soft_score")):  # fmt: skip
            results = scorer.score_batch(
                [tasks.get(r["task_id"]) for r in record[field]],
                [r["response_ids"] for r in record[field]],
                dense=False,
            )
            assert runs["sparse"][0][f"eval/{score}"][n] == pytest.approx(np.mean([r.sequence_reward for r in results]))
            assert runs["sparse"][0][f"eval/{soft}"][n] == pytest.approx(
                np.mean([soft_score(r.criteria) for r in results])
            )
    assert runs["sparse"][0]["eval/sampled_score"] != runs["sparse"][0]["eval/judge_score"]
    runs["sparse"][0]["steps"] = [0, 4]
    with pytest.raises(SystemExit, match="eval steps .* differ"):
        study.rescore(preset, tmp_path, runs, tiny_model)
    (folder / "eval_responses.jsonl").unlink()
    with pytest.raises(SystemExit, match="no eval_responses.jsonl"):
        study.rescore(preset, tmp_path, runs, tiny_model)


def test_read_run_counts_the_eval_responses_that_end_on_a_stop_token(tmp_path):
    study = study_script()
    metrics = [
        {"step": 0, "eval/judge_score": 0.5},
        {"step": 1, "time/step": 2.0},
        {"step": 2, "eval/judge_score": 0.4},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
    (tmp_path / "run.json").write_text(json.dumps({"wall_seconds": 9.0}))
    played = [
        {"step": 0, "responses": [{"response_ids": [5, 2]}, {"response_ids": [5, 6]}, {"response_ids": [7]}]},
        {"step": 2, "responses": [{"response_ids": [5, 6, 8]}, {"response_ids": [2]}, {"response_ids": []}]},
    ]
    (tmp_path / "eval_responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in played))
    run = study.read_run(tmp_path, frozenset({2, 7}))
    assert run["eval/finished"] == pytest.approx([2 / 3, 1 / 3])
    assert run["eval/judge_score"] == [0.5, 0.4] and run["step_seconds"] == 2.0 and run["wall_seconds"] == 9.0
    assert "eval/finished" not in study.read_run(tmp_path)  # no stop tokens given: nothing counted
    played[1]["step"] = 3  # the saved responses do not match the metrics' evals: left out, not misread
    (tmp_path / "eval_responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in played))
    assert "eval/finished" not in study.read_run(tmp_path, frozenset({2}))


def test_arm_seeds_give_an_arm_more_seeds_and_the_runs_go_seed_by_seed(tmp_path):
    study = study_script()
    preset = {**load_study_preset("quick"), "seeds": [0, 1], "arm_seeds": {"sparse": [0, 1, 2, 3]}}
    preset["arms"] = {arm: preset["arms"][arm] for arm in ("sparse", "dense_uniform")}
    runs = [(Path(c.run_dir).parent.name, c.seed) for c in study.study_configs(preset, tmp_path)]
    assert runs == [
        ("sparse", 0),
        ("dense_uniform", 0),
        ("sparse", 1),
        ("dense_uniform", 1),
        ("sparse", 2),
        ("sparse", 3),
    ]
    # unequal seed counts: each arm's finals resampled on their own, the difference of the two means
    summary = summarize(
        STEPS,
        {"sparse": [[0.4, 0.4, v] for v in (0.1, 0.2, 0.3, 0.4)], "dense": [[0.4, 0.4, 0.6]] * 2},
        "sparse",
        resamples=50,
    )
    assert summary["sparse"]["seeds"] == 4 and summary["dense"]["final_vs_baseline"]["difference"] == pytest.approx(
        0.35
    )
