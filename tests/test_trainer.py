"""The bundled trainer: reward path, update direction, frozen judge, resume, LoRA sync, config, CLI.

Unit tests run a tiny Llama (random weights, the bundled tokenizer's vocabulary) as policy and
judge with the HF sampler; one slow test trains the bundled model for 2 steps with vLLM.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
from tiny import tiny_config

from agents import TrainConfig, Trainer, compute_advantages, token_logprobs
from agents.trainer import Rollout, hacking_metrics, pad_rows
from g2r_cli.train import eval_main, train_main

TIME_KEYS = ("time/", "tokens_per_s")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model's ops are too small for threads to pay off (and threads crawl on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def scrub(records: list[dict]) -> list[dict]:
    """Metrics without wall-clock timings."""
    return [{k: v for k, v in r.items() if not k.startswith(TIME_KEYS)} for r in records]


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


# ---- reward path and advantages ------------------------------------------------------------------
def test_rollout_token_rewards_and_advantages_match_scorer_and_compute_advantages(tiny_model, tmp_path):
    trainer = Trainer(tiny_config(tiny_model, tmp_path, prompts_per_step=2, group_size=3))
    batch, _ = trainer.rollout(step=0)
    tasks = [trainer.tasks.get(t) for t in batch.task_ids]
    responses = [row[mask].tolist() for row, mask in zip(batch.response_ids, batch.response_mask)]
    rescored = trainer.envs.scorer.score_batch(tasks, responses)
    expected_rewards = pad_rows([r.token_rewards for r in rescored])

    assert batch.task_ids[0:3] == [batch.task_ids[0]] * 3  # groups of G share a prompt
    torch.testing.assert_close(batch.token_rewards, expected_rewards, rtol=0, atol=1e-6)
    torch.testing.assert_close(batch.token_rewards.sum(1), batch.sequence_rewards, rtol=0, atol=1e-5)
    expected = compute_advantages("token_grpo", expected_rewards, batch.response_mask, 3)
    torch.testing.assert_close(trainer.advantages(batch), expected, rtol=0, atol=1e-6)


def test_sampling_is_reproducible_from_seed_and_step(tiny_model, tmp_path):
    trainer = Trainer(tiny_config(tiny_model, tmp_path))
    trainer.envs.reset(seed=0)
    task_draws = trainer.envs.np_random.bit_generator.state
    first, _ = trainer.rollout(step=3)
    trainer.envs.np_random.bit_generator.state = task_draws
    again, _ = trainer.rollout(step=3)
    trainer.envs.np_random.bit_generator.state = task_draws
    other, _ = trainer.rollout(step=4)
    assert first.task_ids == again.task_ids == other.task_ids
    assert torch.equal(first.response_ids, again.response_ids)
    assert torch.equal(first.token_rewards, again.token_rewards)
    assert not torch.equal(first.response_ids, other.response_ids)


def test_sparse_mode_with_grpo_gives_each_response_its_standardised_reward(tiny_model, tmp_path):
    trainer = Trainer(
        tiny_config(
            tiny_model,
            tmp_path,
            reward_mode="sparse",
            advantage="grpo",
            group_size=4,
            prompts_per_step=1,
            max_new_tokens=5,
            temperature=1.5,
            top_p=1.0,
            top_k=0,
        )
    )
    batch, _ = trainer.rollout(step=0)
    last = batch.response_mask.sum(1) - 1
    on_last = batch.token_rewards[torch.arange(4), last]
    torch.testing.assert_close(on_last, batch.sequence_rewards)  # all reward on the last token
    rewards = batch.sequence_rewards.double()
    standardised = ((rewards - rewards.mean()) / (rewards.std(correction=0) + 1e-6)).float()
    if rewards.std() == 0:
        standardised = torch.zeros(4)
    advantages = trainer.advantages(batch)
    torch.testing.assert_close(advantages, standardised[:, None] * batch.response_mask, rtol=0, atol=1e-5)


# ---- the update ----------------------------------------------------------------------------------
def test_update_raises_logprob_of_rewarded_tokens_and_lowers_the_other(tiny_model, tmp_path):
    trainer = Trainer(tiny_config(tiny_model, tmp_path, learning_rate=3e-3, update_epochs=3, micro_batch_size=2))
    prompt = trainer.envs.prompts["creative-006"]
    width = len(prompt)
    rewarded, other = [1001, 1002, 1003, 2], [2001, 2002, 2003, 2004]
    batch = Rollout(
        prompt_ids=torch.tensor([prompt, prompt]),
        prompt_mask=torch.ones(2, width, dtype=torch.long),
        response_ids=torch.tensor([rewarded, other]),
        response_mask=torch.ones(2, 4, dtype=torch.bool),
        token_rewards=torch.tensor([[0.1, 0.2, 0.3, 0.0], [0.0, 0.0, 0.0, 0.0]]),
        sequence_rewards=torch.tensor([0.6, 0.0]),
        sampler_logprobs=torch.zeros(2, 4),
        finished=torch.tensor([True, False]),
        task_ids=["creative-006"] * 2,
    )
    before = trainer.response_logprobs(trainer.policy, batch)
    advantages = compute_advantages("token_grpo", batch.token_rewards, batch.response_mask, 2)
    stats = trainer.update(batch, advantages, step=0)
    after = trainer.response_logprobs(trainer.policy, batch)

    credited = advantages > 0  # the first three tokens of the rewarded response
    assert credited[0, :3].all() and not credited[1].any()
    assert after[credited].sum() > before[credited].sum() + 0.01
    assert after[1].sum() < before[1].sum() - 0.01
    assert stats["train/grad_norm"] > 0


def test_gradient_checkpointing_gives_the_same_update(tiny_model, tmp_path):
    plain = Trainer(tiny_config(tiny_model, tmp_path / "plain"))
    batch, _ = plain.rollout(step=0)
    advantages = plain.advantages(batch)
    plain.update(batch, advantages, step=0)
    checkpointed = Trainer(tiny_config(tiny_model, tmp_path / "checkpointed", gradient_checkpointing=True))
    checkpointed.update(batch, advantages, step=0)
    for (name, a), (_, b) in zip(plain.policy.named_parameters(), checkpointed.policy.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def test_judge_is_a_frozen_copy_that_training_does_not_move(tiny_model, tmp_path):
    trainer = Trainer(tiny_config(tiny_model, tmp_path, kl_coef=0.1))
    judge = trainer.judge_model
    judge_before = {k: v.clone() for k, v in judge.state_dict().items()}
    policy_before = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
    assert judge is not trainer.policy
    assert all(torch.equal(judge_before[k], policy_before[k]) for k in judge_before)  # a copy of the initial policy

    history = trainer.train()

    assert all(not p.requires_grad and p.grad is None for p in judge.parameters())
    assert all(torch.equal(v, judge_before[k]) for k, v in judge.state_dict().items())
    moved = [k for k, v in trainer.policy.state_dict().items() if not torch.equal(v, policy_before[k])]
    assert moved, "the policy did not change"
    assert history[-1]["train/kl_ref"] > 0  # the judge served as the KL reference


# ---- checkpoints and resume ----------------------------------------------------------------------
class Killed(Exception):
    pass


class KilledAfterStep3(Trainer):
    """Dies after logging step 3, one step after the checkpoint at step 2 and before the final one."""

    def log(self, metrics):
        super().log(metrics)
        if metrics["step"] == 3:
            raise Killed


def test_resume_after_a_kill_equals_the_uninterrupted_run(tiny_model, tmp_path):
    options = dict(total_steps=3, checkpoint_every=2, eval_every=2, tensorboard=True)
    whole = Trainer(tiny_config(tiny_model, tmp_path / "whole", **options))
    whole.train()

    killed = KilledAfterStep3(tiny_config(tiny_model, tmp_path / "killed", **options))
    with pytest.raises(Killed):
        killed.train()
    assert [r["step"] for r in read_jsonl(tmp_path / "killed" / "metrics.jsonl")] == [0, 1, 2, 3]
    resumed = Trainer.resume(tmp_path / "killed")
    assert resumed.global_step == 2
    resumed.train()

    whole_metrics = read_jsonl(tmp_path / "whole" / "metrics.jsonl")
    assert [r["step"] for r in whole_metrics] == [0, 1, 2, 3]
    assert scrub(read_jsonl(tmp_path / "killed" / "metrics.jsonl")) == scrub(whole_metrics)
    for (name, a), (_, b) in zip(whole.policy.state_dict().items(), resumed.policy.state_dict().items()):
        assert torch.equal(a, b), name
    state_a, state_b = whole.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(state_a[i]["exp_avg"], state_b[i]["exp_avg"]) for i in state_a)
    assert (tmp_path / "killed" / "model" / "config.json").exists()
    evals = read_jsonl(tmp_path / "killed" / "eval_responses.jsonl")  # the killed run's step-3 eval is not kept twice
    assert [r["step"] for r in evals] == [0, 2, 3]
    assert evals == read_jsonl(tmp_path / "whole" / "eval_responses.jsonl")


# ---- LoRA ----------------------------------------------------------------------------------------
def test_lora_sends_merged_weights_and_keeps_the_base_frozen(tiny_model, tmp_path):
    trainer = Trainer(tiny_config(tiny_model, tmp_path, lora_rank=4, lora_alpha=8, learning_rate=1e-2))
    base_before = {k: v.clone() for k, v in trainer.policy_state_dict().items()}
    trainer.train()
    sent = trainer.policy_state_dict()
    merged = copy.deepcopy(trainer.policy).merge_and_unload().state_dict()

    assert set(sent) == set(merged) == set(base_before)
    assert all(torch.allclose(sent[k], merged[k], atol=1e-6) for k in merged)
    changed = [k for k in sent if not torch.equal(sent[k], base_before[k])]
    assert changed and all("proj" in k for k in changed)  # only LoRA-wrapped linear layers move
    assert all("lora_" not in k for k in sent)


# ---- CLI -----------------------------------------------------------------------------------------
def test_cli_trains_resumes_and_evaluates(tiny_model, tmp_path, capsys):
    run_dir = tmp_path / "cli"
    config = tmp_path / "tiny.json"
    config.write_text(
        json.dumps(tiny_config(tiny_model, run_dir, eval_every=1, report=True, report_prompts=1).to_dict())
    )
    train_main(["--config", str(config), "--set", "total_steps=1"])
    train_main(["--resume", str(run_dir), "--set", "total_steps=2"])
    records = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 1, 2]
    for name in ("judge_score.png", "heatmaps.html", "before.json", "after.json"):
        assert (run_dir / "report" / name).stat().st_size > 0
    assert "creative-018" in (run_dir / "report" / "heatmaps.html").read_text()

    capsys.readouterr()
    eval_main(
        [
            "--model",
            str(run_dir / "model"),
            "--judge",
            tiny_model,
            "--sampler",
            "hf",
            "--tasks",
            "openended-mini",
            "--task-ids",
            "creative-018",
            "--max-new-tokens",
            "6",
            "--soft",
            "--json",
        ]
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["per_task"]) == {"creative-018"}
    assert result["judge_score"] == pytest.approx(records[-1]["eval/judge_score"], abs=1e-6)


# ---- the real thing ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.vllm
def test_two_steps_with_the_bundled_model_and_vllm(tmp_path):
    pytest.importorskip("vllm")
    config = TrainConfig.preset(
        "cpu_demo",
        run_dir=str(tmp_path),
        total_steps=2,
        eval_every=2,
        eval_tasks=1,
        checkpoint_every=2,
        report=False,
        progress=False,
        max_new_tokens=24,
        learning_rate=1e-4,
    )
    trainer = Trainer(config)
    history = trainer.train()

    records = [r for r in history if "train/reward" in r]
    assert [r["step"] for r in records] == [1, 2]
    assert all(0 < r["train/response_length"] <= 24 and r["time/sampling"] > 0 for r in records)
    assert all(r["train/sampler_logprob_gap"] < 1e-3 for r in records)  # vLLM samples from the synced policy
    assert 0.0 <= history[-1]["eval/judge_score"] <= 1.0
    assert (tmp_path / "checkpoint" / "policy.safetensors").exists()

    # vLLM holds the trained weights, not the initial ones (which the frozen judge still has)
    prompt = trainer.envs.prompts[config.task_ids[0]]
    [[sample]] = trainer.sampler.generate([prompt], n=1, temperature=0.0, max_tokens=16, seed=0)
    ids = torch.tensor([prompt + sample.token_ids])
    mask = torch.ones_like(ids)
    length = len(sample.token_ids)
    with torch.no_grad():
        trained = token_logprobs(trainer.policy, ids, mask, length)[0]
        initial = token_logprobs(trainer.judge_model, ids, mask, length)[0]
    vllm_logprobs = torch.tensor(sample.logprobs)
    assert (vllm_logprobs - trained).abs().max() < 1e-3
    assert (vllm_logprobs - initial).abs().max() > 1e-2


def test_a_separate_eval_judge_scores_the_eval_and_the_training_judge_is_logged_beside_it(tiny_model, tmp_path):
    from tiny import build_tiny_model

    from g2r_env.models import load_tokenizer

    other = tmp_path / "other-judge"
    build_tiny_model(len(load_tokenizer("bundled")), seed=5, max_positions=2048).save_pretrained(other)
    load_tokenizer("bundled").save_pretrained(other)
    trainer = Trainer(
        tiny_config(
            tiny_model,
            tmp_path / "run",
            eval_judge=str(other),
            eval_every=1,
            eval_tasks=2,
            eval_samples=2,
            task_ids=["creative-006", "creative-012", "creative-018", "creative-019"],
        )
    )
    assert trainer.eval_envs.scorer is not trainer.scorer
    metrics = trainer.evaluate()
    played = trainer.eval_envs.scorer.score_batch(
        [trainer.tasks.get(t) for t in ("creative-018", "creative-019")],
        [[int(x) for x in r] for r in trainer.last_eval_responses],
        dense=False,
    )
    assert metrics["eval/judge_score"] == pytest.approx(np.mean([r.sequence_reward for r in played]))
    by_training_judge = trainer.scorer.score_batch(
        [trainer.tasks.get(t) for t in ("creative-018", "creative-019")], trainer.last_eval_responses, dense=False
    )
    assert metrics["eval/reward_judge_score"] == pytest.approx(np.mean([r.sequence_reward for r in by_training_judge]))
    assert metrics["eval/judge_score"] != metrics["eval/reward_judge_score"]
    texts = trainer.tokenizer.batch_decode(trainer.last_eval_responses, skip_special_tokens=True)
    expected = hacking_metrics(texts, [r.criteria for r in played])
    assert {k: metrics[k] for k in expected} == pytest.approx(expected)
    soft = [sum(c["weight"] * c["p_true"] for c in r.criteria) / trainer.tasks.get(r.task_id).max_score for r in played]
    assert metrics["eval/judge_soft_score"] == pytest.approx(np.mean(soft))
    # the record of this eval: the responses as played, each criterion's p_true by the eval judge
    (record,) = read_jsonl(tmp_path / "run" / "eval_responses.jsonl")
    assert record["step"] == 0 and [r["task_id"] for r in record["responses"]] == ["creative-018", "creative-019"]
    for saved, result in zip(record["responses"], played):
        assert saved["response_ids"] == result.response_ids.tolist()
        assert saved["score"] == pytest.approx(result.sequence_reward)
        assert saved["p_true"] == pytest.approx([c["p_true"] for c in result.criteria])
        assert saved["checked"] == [n for n, c in enumerate(result.criteria) if c["decided_by"] == "check"]
    sampled = record["sampled"]  # scored by the eval judge, and by the training judge beside it
    by_each = [
        scorer.score_batch(
            [trainer.tasks.get(r["task_id"]) for r in sampled], [r["response_ids"] for r in sampled], dense=False
        )
        for scorer in (trainer.eval_envs.scorer, trainer.scorer)
    ]
    assert metrics["eval/sampled_score"] == pytest.approx(np.mean([r.sequence_reward for r in by_each[0]]))
    assert metrics["eval/sampled_reward_judge_score"] == pytest.approx(np.mean([r.sequence_reward for r in by_each[1]]))
    plain = Trainer(tiny_config(tiny_model, tmp_path / "plain", eval_every=1, eval_tasks=2))
    keys = set(plain.evaluate())  # no second judge: no reward_judge_score
    assert keys == {"eval/judge_score", "eval/judge_soft_score", "eval/rubric_echo"} | (
        {"eval/checks_passed"} & set(expected)
    )


def test_sampled_eval_responses_are_scored_beside_the_greedy_ones_and_the_draw_is_the_steps(tiny_model, tmp_path):
    from agents.study import initial_eval_key

    tasks = ["creative-018", "creative-019"]
    config = tiny_config(
        tiny_model,
        tmp_path / "run",
        eval_every=1,
        eval_tasks=2,
        eval_samples=3,
        temperature=1.0,
        task_ids=["creative-006", "creative-012", *tasks],
    )
    trainer = Trainer(config)
    metrics = trainer.evaluate()
    greedy_only = Trainer(dataclasses.replace(config, run_dir=str(tmp_path / "greedy"), eval_samples=0)).evaluate()
    assert {k: metrics[k] for k in greedy_only} == pytest.approx(greedy_only)  # the greedy eval is unchanged
    (record,) = read_jsonl(tmp_path / "run" / "eval_responses.jsonl")
    sampled = record["sampled"]
    assert [r["task_id"] for r in sampled] == [t for t in tasks for _ in range(3)]
    # the responses are the sampler's draw at the rollout's settings, seeded by the step
    prompts = [trainer.eval_envs.prompts[t] for t in tasks]
    drawn = trainer.sampler.generate(prompts, n=3, temperature=1.0, top_p=config.top_p, top_k=config.top_k,
                                     max_tokens=config.max_new_tokens, seed=0)  # fmt: skip
    assert [r["response_ids"] for r in sampled] == [s.token_ids for group in drawn for s in group]
    assert len({tuple(r["response_ids"]) for r in sampled}) > 2  # sampled, not three copies of the greedy one
    results = trainer.scorer.score_batch(
        [trainer.tasks.get(r["task_id"]) for r in sampled], [r["response_ids"] for r in sampled], dense=False
    )
    assert metrics["eval/sampled_score"] == pytest.approx(np.mean([r.sequence_reward for r in results]))
    assert [r["score"] for r in sampled] == pytest.approx([r.sequence_reward for r in results])
    soft = [
        sum(c["weight"] * c["p_true"] for c in r.criteria) / trainer.tasks.get(r.task_id).max_score for r in results
    ]
    assert metrics["eval/sampled_soft_score"] == pytest.approx(np.mean(soft))
    assert trainer.evaluate() == metrics  # the same step draws the same responses
    # the sampling settings are part of the shared step-0 eval's key only when the eval samples
    hotter = dataclasses.replace(config, temperature=0.5)
    assert initial_eval_key(config) != initial_eval_key(hotter)
    greedy = dataclasses.replace(config, eval_samples=0)
    assert initial_eval_key(greedy) == initial_eval_key(dataclasses.replace(hotter, eval_samples=0))
    with pytest.raises(ValueError, match="eval_samples must be >= 0"):
        dataclasses.replace(config, eval_samples=-1)


def test_runs_differing_only_in_training_fields_share_their_step_zero_eval(tiny_model, tmp_path):
    from agents.study import initial_eval_key

    first = tiny_config(tiny_model, tmp_path / "a", eval_every=1, eval_tasks=2, total_steps=1)
    other = tiny_config(
        tiny_model,
        tmp_path / "b",
        eval_every=1,
        eval_tasks=2,
        total_steps=1,
        seed=3,
        reward_mode="sparse",
        advantage="grpo",
        learning_rate=5e-4,
    )
    assert initial_eval_key(first) == initial_eval_key(other)
    assert initial_eval_key(first) != initial_eval_key(tiny_config(tiny_model, tmp_path / "c", max_new_tokens=7))
    measured = Trainer(first).evaluate()
    assert Trainer(dataclasses.replace(other, run_dir=str(tmp_path / "b-eval"))).evaluate() == measured
    given = {"eval/judge_score": measured["eval/judge_score"] + 0.25}  # not what an eval would measure
    responses = {"step": 0, "responses": [{"task_id": "given"}]}
    trainer = Trainer(other, initial_eval={**given, "eval_responses": responses})
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert records[0] == {"step": 0, **given}
    assert records[1]["step"] == 1 and "eval/judge_score" in records[1]
    evals = read_jsonl(tmp_path / "b" / "eval_responses.jsonl")
    assert evals[0] == responses and [r["step"] for r in evals] == [0, 1]


def test_eval_task_ids_score_other_tasks_and_never_ones_trained_on(tiny_model, tmp_path):
    trainer = Trainer(tiny_config(tiny_model, tmp_path / "a", eval_every=1, eval_task_ids=["expl-010", "howto-011"]))
    assert [t.task_id for t in trainer.eval_envs.tasks] == ["expl-010", "howto-011"]
    metrics = trainer.evaluate()
    played = trainer.scorer.score_batch(
        [trainer.eval_envs.tasks.get(t) for t in ("expl-010", "howto-011")], trainer.last_eval_responses, dense=False
    )
    assert metrics["eval/judge_score"] == pytest.approx(np.mean([r.sequence_reward for r in played]))
    with pytest.raises(ValueError, match=r"eval_task_ids holds \['creative-006'\], which are trained on"):
        Trainer(tiny_config(tiny_model, tmp_path / "b", eval_every=1, eval_task_ids=["creative-006", "expl-010"]))
