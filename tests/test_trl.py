"""Grad2Reward inside TRL (the real package): the reward function and the token-level GRPO trainer."""

import pytest

pytest.importorskip("trl")

import torch  # noqa: E402
from tiny import build_tiny_model  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from agents.advantages import compute_advantages, grpo  # noqa: E402
from agents.trl import Grad2RewardFunction, TokenGRPOTrainer, met_rates  # noqa: E402
from g2r_env import Grad2Reward  # noqa: E402
from tasks import load_taskset, to_hf_dataset  # noqa: E402

GROUP = 2
TASK_IDS = ["creative-001", "howto-002"]


@pytest.fixture(scope="module")
def tasks():
    return load_taskset("openended-mini").select(TASK_IDS)


@pytest.fixture(scope="module")
def dataset(tasks):
    return to_hf_dataset(tasks, "all")


def config(tmp_path, **overrides):
    values = dict(
        output_dir=str(tmp_path),
        use_cpu=True,
        per_device_train_batch_size=GROUP * len(TASK_IDS),
        num_generations=GROUP,
        max_completion_length=6,
        learning_rate=1e-2,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        seed=0,
    )
    values.update(overrides)
    return GRPOConfig(**values)


def trainer(cls, reward, dataset, tokenizer, tmp_path, extra_rewards=(), advantage=None, model=None, **overrides):
    """A TRL trainer on the tiny policy (built in code, or loaded from ``model``, a folder, which
    TRL needs to build a reference model for beta > 0)."""
    kwargs = {} if advantage is None else {"advantage": advantage}
    return cls(
        model=model or build_tiny_model(len(tokenizer), max_positions=2048),
        reward_funcs=[reward, *extra_rewards],
        args=config(tmp_path, **overrides),
        train_dataset=dataset,
        processing_class=tokenizer,
        **kwargs,
    )


def scored_batch(trainer, dataset):
    """One generation batch as TRL's dataloader hands it over: each row G times in a row."""
    rows = [dataset[i] for i in range(len(dataset)) for _ in range(GROUP)]
    trainer.model.train()  # as Trainer.train sets it: TRL's train mode (num_generations, train metrics)
    return trainer._generate_and_score_completions(rows)


def responses(batch):
    return [ids[mask.bool()].tolist() for ids, mask in zip(batch["completion_ids"], batch["completion_mask"])]


def padded(token_rewards, mask):
    out = torch.zeros(mask.shape)
    for row, rewards in enumerate(token_rewards):
        out[row, : len(rewards)] = torch.as_tensor(rewards)
    return out


def test_reward_function_returns_score_batch_sequence_rewards_and_logs_met_rates(tiny_judge, tasks, dataset):
    reward = Grad2RewardFunction(tasks=tasks, judge=tiny_judge, soft=True)
    ids = [[100, 200, 300], [5, 6], [7000, 7001, 7002, 2], [42]]
    rows = [dataset[0], dataset[0], dataset[1], dataset[1]]
    prompts = [row["prompt"] for row in rows]
    got = reward(prompts, ["?"] * 4, completion_ids=ids, task=[r["task"] for r in rows])
    want = Grad2Reward(tiny_judge, soft=True).score_batch([tasks[0], tasks[0], tasks[1], tasks[1]], ids, dense=False)
    assert got == [r.sequence_reward for r in want]
    assert len(set(got)) > 1  # the soft tiny judge tells the responses apart
    assert reward.__name__ == "grad2reward"
    # the prompt alone finds the same tasks when the dataset has no task column
    assert reward(prompts, ["?"] * 4, completion_ids=ids) == got
    # met rates per kind: the share of positive criteria met and of pitfalls met
    logged = {}
    reward(prompts, ["?"] * 4, completion_ids=ids, log_metric=lambda name, value: logged.setdefault(name, value))
    rates = met_rates(want)
    assert logged["grad2reward/criteria_met"] == rates["criteria"]
    positive = [c["met"] for r in want for c in r.criteria if c["weight"] > 0]
    assert rates["criteria"] == sum(positive) / len(positive)
    assert ("grad2reward/pitfalls_met" in logged) == ("pitfalls" in rates)


def test_a_completion_whose_task_cannot_be_found_is_an_error_naming_its_prompt(tiny_judge, tasks):
    reward = Grad2RewardFunction(tasks=tasks, judge=tiny_judge)
    prompt = [{"role": "user", "content": "Write a haiku about tax law."}]
    with pytest.raises(ValueError, match=r"completion 1: its prompt .*Write a haiku about tax law.* is not the prompt"):
        reward([tasks[0].messages, prompt], ["a", "b"], completion_ids=[[5], [6]])
    with pytest.raises(ValueError, match="exactly one of them"):
        Grad2RewardFunction(tasks=tasks)


def test_grpo_trainer_rewards_are_the_score_batch_sequence_rewards(
    tiny_judge, bundled_tokenizer, tasks, dataset, tmp_path
):
    reward = Grad2RewardFunction(judge=tiny_judge, soft=True)
    plain = trainer(GRPOTrainer, reward, dataset, bundled_tokenizer, tmp_path)
    batch = scored_batch(plain, dataset)
    ids = responses(batch)
    want = Grad2Reward(tiny_judge, soft=True).score_batch([t for t in tasks for _ in range(GROUP)], ids, dense=False)
    logged = plain._logs["rewards"]["grad2reward"]
    assert torch.allclose(torch.tensor(logged), torch.tensor([r.sequence_reward for r in want]), atol=1e-7, rtol=0)
    assert batch["advantages"].shape == (len(ids),)  # TRL's own sequence advantages
    # TRL keeps its metrics in float32
    assert plain._metrics["train"]["grad2reward/criteria_met"] == [pytest.approx(met_rates(want)["criteria"], rel=1e-6)]


@pytest.mark.parametrize("advantage", ["token_grpo", "token_rloo"])
def test_token_trainer_advantages_are_the_estimator_on_grad2reward_token_rewards(
    advantage, tiny_judge, bundled_tokenizer, tasks, dataset, tmp_path
):
    reward = Grad2RewardFunction(judge=tiny_judge, soft=True)
    token = trainer(TokenGRPOTrainer, reward, dataset, bundled_tokenizer, tmp_path, advantage=advantage)
    batch = scored_batch(token, dataset)
    ids, mask = responses(batch), batch["completion_mask"]
    dense = Grad2Reward(tiny_judge, soft=True).score_batch([t for t in tasks for _ in range(GROUP)], ids, dense=True)
    for got, want in zip(reward.last_results, dense):  # the batch was scored densely, in one call
        assert torch.allclose(torch.as_tensor(got.token_rewards), torch.as_tensor(want.token_rewards), atol=1e-7)
    want_advantages = compute_advantages(advantage, padded([r.token_rewards for r in dense], mask), mask, GROUP)
    assert batch["advantages"].shape == mask.shape
    assert torch.allclose(batch["advantages"], want_advantages, atol=1e-5, rtol=0)
    assert batch["advantages"].abs().sum() > 0
    assert not reward.dense  # dense only while the token trainer scores its own batch


def test_other_reward_functions_count_on_the_last_token(tiny_judge, bundled_tokenizer, dataset, tmp_path):
    def length_bonus(completion_ids, **kwargs):
        return [0.1 * len(ids) for ids in completion_ids]

    reward = Grad2RewardFunction(judge=tiny_judge, soft=True)
    token = trainer(
        TokenGRPOTrainer, reward, dataset, bundled_tokenizer, tmp_path, [length_bonus], reward_weights=[2.0, 0.5]
    )
    batch = scored_batch(token, dataset)
    mask = batch["completion_mask"]
    rewards = 2.0 * padded([r.token_rewards for r in reward.last_results], mask)
    lengths = mask.sum(-1)
    rewards[torch.arange(len(lengths)), lengths - 1] += 0.5 * 0.1 * lengths
    assert torch.allclose(batch["advantages"], compute_advantages("token_grpo", rewards, mask, GROUP), atol=1e-5)


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dapo"])
def test_uniform_credit_with_the_sequence_estimator_gives_trl_own_grpo_loss(
    loss_type, tiny_judge, tiny_model, bundled_tokenizer, tasks, dataset, tmp_path
):
    reward = Grad2RewardFunction(judge=tiny_judge, attribution="uniform", soft=True)
    token = trainer(
        TokenGRPOTrainer,
        reward,
        dataset,
        bundled_tokenizer,
        tmp_path,
        advantage="grpo",
        model=tiny_model,
        loss_type=loss_type,
        beta=0.1,
    )
    batch = scored_batch(token, dataset)
    mask = batch["completion_mask"]
    token_rewards = padded([r.token_rewards for r in reward.last_results], mask)
    sequence_advantages = grpo(token_rewards.sum(-1), mask, GROUP)[:, 0]
    assert sequence_advantages.abs().sum() > 0
    assert torch.allclose(batch["advantages"], sequence_advantages[:, None] * mask, atol=1e-6, rtol=0)
    # TRL's own advantage of the same rewards differs only in its std (Bessel-corrected, eps 1e-4)
    trl_rewards = torch.tensor(token._logs["rewards"]["grad2reward"])
    assert torch.allclose(trl_rewards, torch.tensor([r.sequence_reward for r in reward.last_results]), atol=1e-7)
    grouped = trl_rewards.view(-1, GROUP)
    scale = (grouped.std(-1, correction=0) + 1e-6) / (grouped.std(-1, correction=1) + 1e-4)
    trl_advantages = torch.tensor(token._logs["advantages"])
    want = grpo(trl_rewards, mask, GROUP)[:, 0] * scale.repeat_interleave(GROUP)
    assert torch.allclose(trl_advantages, want, atol=1e-5, rtol=0)
    # off-policy log-probs so that TRL's clipping acts; the KL term (beta) is in both losses
    generator = torch.Generator().manual_seed(0)
    old = batch["ref_per_token_logps"] + 0.5 * torch.randn(mask.shape, generator=generator)
    token_inputs = {**batch, "old_per_token_logps": old}
    sequence_inputs = {**token_inputs, "advantages": sequence_advantages}
    model = token.model
    token.current_gradient_accumulation_steps = 1  # Trainer.train sets it per step
    token_loss = token._compute_loss(model, token_inputs)
    trl_loss = GRPOTrainer._compute_loss(token, model, sequence_inputs)
    assert torch.allclose(token_loss, trl_loss, atol=1e-6, rtol=0)
    assert token._metrics["train"]["clip_ratio/region_mean"][-1] > 0  # the clipping did act


def test_one_training_step_changes_the_policy(tiny_judge, bundled_tokenizer, dataset, tmp_path):
    reward = Grad2RewardFunction(judge=tiny_judge, soft=True)
    token = trainer(TokenGRPOTrainer, reward, dataset, bundled_tokenizer, tmp_path, max_steps=1)
    before = [p.detach().clone() for p in token.model.parameters()]
    token.train()
    change = sum((p.detach() - b).abs().sum().item() for p, b in zip(token.model.parameters(), before))
    assert change > 0
    assert token.state.log_history[0]["rewards/grad2reward/mean"] > 0


def test_token_trainer_refuses_an_unknown_estimator_or_no_grad2reward_function(
    tiny_judge, bundled_tokenizer, dataset, tmp_path
):
    reward = Grad2RewardFunction(judge=tiny_judge)
    with pytest.raises(ValueError, match="unknown advantage estimator 'token_ppo'; choose one of"):
        trainer(TokenGRPOTrainer, reward, dataset, bundled_tokenizer, tmp_path, advantage="token_ppo")
    with pytest.raises(ValueError, match="needs exactly one Grad2RewardFunction in reward_funcs \\(found 0\\)"):
        trainer(TokenGRPOTrainer, lambda completion_ids, **kw: [0.0] * len(completion_ids), dataset,
                bundled_tokenizer, tmp_path)  # fmt: skip
