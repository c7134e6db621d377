"""SB3 integration: the LLM actor-critic policy, the dense-reward backfill, PPO training, Gymnasium manners.

Most tests use the tiny in-code Llama (conftest.tiny_model) as policy and self-judge; one runs
PPO with the bundled model.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import g2r_env  # noqa: F401
from agents.sb3 import DenseRewardBackfill, EpisodeRolloutBuffer, LLMActorCriticPolicy, prefix_groups
from g2r_env import models

ENV_ID = "Grad2Reward/OpenEnded-v0"
STOP_ID = 2  # <|im_end|> of the bundled tokenizer


def make_policy(env: gym.Env, model: str, **kwargs) -> LLMActorCriticPolicy:
    return LLMActorCriticPolicy(env.observation_space, env.action_space, lambda _: 1e-3, model=model, **kwargs)


def favour_stop_token(policy: LLMActorCriticPolicy, boost: float = 9.0) -> None:
    """Raise the stop token's logit so that responses end at varied lengths (p(stop) ~ 0.14 per step)."""
    bias = torch.zeros(policy.lm.config.vocab_size)
    bias[STOP_ID] = boost
    policy.lm.get_output_embeddings().register_forward_hook(lambda module, inputs, output: output + bias)


def as_batch(observations: list[dict]) -> dict[str, torch.Tensor]:
    """Stack env observations as SB3 hands them to a policy: float tensors."""
    return {key: torch.as_tensor(np.stack([o[key] for o in observations])).float() for key in observations[0]}


def play_episode(env: gym.Env, tokens: list[int], task_id: str) -> list[dict]:
    """The observation before each action of one episode."""
    obs, _ = env.reset(options={"task_id": task_id})
    seen = []
    for token in tokens:
        seen.append(obs)
        obs, _, terminated, truncated, _ = env.step(token)
        if terminated or truncated:
            break
    return seen


# --- the policy ---------------------------------------------------------------------------------


def test_policy_distribution_is_the_lm_on_the_unpadded_sequence(tiny_model):
    env = gym.make(ENV_ID, model=tiny_model, max_new_tokens=6)
    policy = make_policy(env, tiny_model)
    # two rows with prompts of different lengths and responses of different lengths, padded together
    short = play_episode(env, [500, 501, 502], "expl-001")[-1]
    long = play_episode(env, [700], "howto-001")[-1]
    batch = as_batch([short, long])
    with torch.no_grad():
        distribution = policy.get_distribution(batch).distribution
        values = policy.predict_values(batch)
        for row, obs in enumerate((short, long)):
            ids = np.concatenate(
                [obs["prompt_ids"][obs["prompt_mask"] == 1], obs["response_ids"][obs["response_mask"] == 1]]
            )
            out = policy.lm(torch.as_tensor(ids)[None], output_hidden_states=True)
            expected = torch.log_softmax(out.logits[0, -1], -1)
            torch.testing.assert_close(distribution.logits[row], expected, atol=1e-5, rtol=1e-5)
            assert abs(distribution.probs[row].sum().item() - 1) < 1e-5
    assert values.shape == (2, 1) and torch.all(values == 0)  # the value head starts at 0


def test_prefix_groups_map_each_transition_to_its_longest_continuation():
    # columns: 3 prompt (left-padded) + 3 response; rows 0-2 one episode, 3 another prompt, 4 diverges from 0
    ids = torch.tensor(
        [[0, 5, 6, 7, 0, 0], [0, 5, 6, 7, 8, 0], [0, 5, 6, 7, 8, 9], [4, 5, 6, 7, 0, 0], [0, 5, 6, 3, 0, 0]]
    )
    mask = torch.tensor(
        [[0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [0, 1, 1, 1, 0, 0]]
    )
    last = mask.shape[1] - 1 - mask.flip(1).argmax(1)
    assert prefix_groups(ids, mask, last).tolist() == [2, 2, 2, 3, 4]


def test_shared_prefix_evaluation_equals_one_forward_per_transition(tiny_model):
    env = gym.make(ENV_ID, model=tiny_model, max_new_tokens=6)
    episodes = [
        play_episode(env, [900, 901, 902, 903, 904, 905], "expl-001"),
        play_episode(env, [300, 301, STOP_ID], "sci-002"),
        play_episode(env, [900, 901, 950, 951], "expl-001"),
    ]  # shares a 2-token prefix with the first
    observations = [o for episode in episodes for o in episode]
    order = np.random.default_rng(0).permutation(len(observations))  # SB3 minibatches are shuffled
    batch = as_batch([observations[i] for i in order])
    actions = torch.as_tensor(np.random.default_rng(1).integers(0, env.action_space.n, len(order)))
    shared, naive = make_policy(env, tiny_model), make_policy(env, tiny_model, share_prefix=False)
    torch.nn.init.normal_(shared.value_head.weight)
    naive.load_state_dict(shared.state_dict())

    calls = []
    shared.lm.base_model.register_forward_hook(
        lambda m, args, kwargs, out: calls.append(kwargs["input_ids"].shape), with_kwargs=True
    )
    values, log_prob, entropy = shared.evaluate_actions(batch, actions)
    naive_values, naive_log_prob, naive_entropy = naive.evaluate_actions(batch, actions)
    torch.testing.assert_close(log_prob, naive_log_prob, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values, naive_values, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(entropy, naive_entropy, atol=1e-4, rtol=1e-5)
    assert calls[0][0] == 3 < len(observations) == 13  # one sequence per episode, not per transition
    log_prob.sum().backward()
    naive_log_prob.sum().backward()
    for a, b in zip(shared.lm.parameters(), naive.lm.parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4)


def test_predict_gives_a_token_the_env_accepts(tiny_model):
    env = gym.make(ENV_ID, model=tiny_model, max_new_tokens=3)
    policy = make_policy(env, tiny_model)
    obs, _ = env.reset(seed=0)
    action, _ = policy.predict(obs, deterministic=True)
    with torch.no_grad():
        expected = policy.get_distribution(as_batch([obs])).distribution.logits.argmax().item()
    assert action.shape == () and int(action) == expected
    env.step(action)


# --- dense rewards inside SB3 -------------------------------------------------------------------


class RolloutRecorder(BaseCallback):
    """Keeps, per rollout, every episode end (env, buffer row, token_rewards) and the buffer's rewards/returns."""

    def __init__(self) -> None:
        super().__init__()
        self.rollouts: list[dict] = []

    def _on_rollout_start(self) -> None:
        self.ends: list[tuple[int, int, np.ndarray, float]] = []

    def _on_step(self) -> bool:
        for env_index, (done, info) in enumerate(zip(self.locals["dones"], self.locals["infos"])):
            if done:
                self.ends.append(
                    (env_index, self.model.rollout_buffer.pos, info["token_rewards"], info["sequence_reward"])
                )
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer  # not yet flattened: [n_steps, n_envs]
        self.rollouts.append({"ends": self.ends, "rewards": buffer.rewards.copy(), "returns": buffer.returns.copy()})


def test_backfill_writes_token_rewards_into_each_episodes_buffer_rows(tiny_model):
    max_new_tokens, n_steps = 8, 20
    env = make_vec_env(
        ENV_ID,
        n_envs=2,
        seed=0,
        vec_env_cls=DummyVecEnv,
        env_kwargs=dict(model=tiny_model, max_new_tokens=max_new_tokens, soft=True, render_mode=None),
    )
    ppo = PPO(
        LLMActorCriticPolicy,
        env,
        policy_kwargs=dict(model=tiny_model),
        n_steps=n_steps,
        batch_size=20,
        n_epochs=1,
        gamma=1.0,
        gae_lambda=1.0,
        learning_rate=1e-3,
        seed=0,
    )
    favour_stop_token(ppo.policy)
    recorder, backfill = RolloutRecorder(), DenseRewardBackfill()
    ppo.learn(3 * n_steps * 2, callback=[backfill, recorder])

    lengths, crossing = [], 0
    for rollout in recorder.rollouts:
        rewards, returns = rollout["rewards"], rollout["returns"]
        last_end = {0: -1, 1: -1}
        for env_index, row, token_rewards, sequence_reward in rollout["ends"]:
            first = row - len(token_rewards) + 1
            if first >= 0:  # the whole episode is in this rollout
                np.testing.assert_array_equal(rewards[first : row + 1, env_index], token_rewards)
                assert rewards[first : row + 1, env_index].sum() == pytest.approx(sequence_reward, abs=1e-5)
                # gamma = lambda = 1: the first step's return is the episode's whole reward, no bootstrap at the end
                assert returns[first, env_index] == pytest.approx(sequence_reward, abs=1e-5)
                assert returns[row, env_index] == pytest.approx(token_rewards[-1], abs=1e-6)
                lengths.append(len(token_rewards))
            else:  # began in the previous rollout: this one holds its tail
                np.testing.assert_array_equal(rewards[: row + 1, env_index], token_rewards[-(row + 1) :])
                crossing += 1
            last_end[env_index] = row
        for env_index, row in last_end.items():  # an unfinished episode keeps the env's zeros
            assert not rewards[row + 1 :, env_index].any()
    assert backfill.backfilled_episodes == sum(len(r["ends"]) for r in recorder.rollouts)
    assert crossing >= 1 and min(lengths) < max_new_tokens and max_new_tokens in lengths
    assert len({round(float(r), 6) for r in recorder.rollouts[-1]["rewards"].ravel()}) > 3  # dense, varied


class TwoTokensPerStep(gym.Wrapper):
    """Plays each action twice: SB3 then sees half as many steps as the episode has tokens."""

    def step(self, action):
        result = self.env.step(action)
        return result if result[2] or result[3] else self.env.step(action)


def test_backfill_rejects_a_wrapper_that_changes_the_step_count(tiny_model):
    env = make_vec_env(
        ENV_ID,
        n_envs=1,
        wrapper_class=TwoTokensPerStep,
        env_kwargs=dict(model=tiny_model, max_new_tokens=4, render_mode=None),
    )
    ppo = PPO(LLMActorCriticPolicy, env, policy_kwargs=dict(model=tiny_model), n_steps=4, batch_size=4)
    with pytest.raises(RuntimeError, match="an episode of 4 token rewards ended at rollout row 1"):
        ppo.learn(4, callback=DenseRewardBackfill())


def test_episode_rollout_buffer_minibatches_are_whole_episodes(tiny_model):
    env = make_vec_env(ENV_ID, n_envs=2, seed=1, env_kwargs=dict(model=tiny_model, max_new_tokens=6, render_mode=None))
    ppo = PPO(
        LLMActorCriticPolicy,
        env,
        policy_kwargs=dict(model=tiny_model),
        n_steps=16,
        batch_size=8,
        n_epochs=1,
        rollout_buffer_class=EpisodeRolloutBuffer,
        seed=1,
    )
    favour_stop_token(ppo.policy)
    ppo.learn(32)
    buffer = ppo.rollout_buffer
    sizes = []
    for batch in buffer.get(8):
        obs = batch.observations
        lengths = obs["response_mask"].sum(1).long().tolist()
        # whole episodes of the first rollout, in order: response lengths run 0, 1, 2, ... per episode
        starts = [i for i, n in enumerate(lengths) if i == 0 or n != lengths[i - 1] + 1]
        assert all(lengths[i] == 0 for i in starts)
        assert len(lengths) <= 8 or len(starts) == 1
        ids, mask, last = ppo.policy._sequences(ppo.policy.extract_features(obs))
        assert len(set(prefix_groups(ids, mask, last).tolist())) == len(starts)  # one forward per episode
        sizes.append(len(lengths))
    assert sum(sizes) == 32 and len(sizes) > 1


# --- training -----------------------------------------------------------------------------------


def test_example_trains_a_tiny_model_and_logs_episode_reward(tiny_model, tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))
    try:
        import train_sb3_ppo
    finally:
        sys.path.pop(0)
    start, _ = models.load_model(tiny_model, device="cpu")
    with contextlib.redirect_stdout(io.StringIO()) as out:
        ppo = train_sb3_ppo.main(
            [
                "--model",
                tiny_model,
                "--steps",
                "256",
                "--max-new-tokens",
                "8",
                "--n-envs",
                "2",
                "--n-steps",
                "32",
                "--batch-size",
                "32",
                "--learning-rate",
                "1e-3",
                "--soft",
                "--eval-episodes",
                "1",
                "--output-dir",
                str(tmp_path),
            ]
        )
    assert ppo.num_timesteps == 256
    after = list(ppo.policy.lm.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(start.parameters(), after))
    assert ppo.policy.value_head.weight.abs().sum() > 0
    text = out.getvalue()
    assert "judge score before training" in text and "steps/s" in text
    header, *rows = (tmp_path / "progress.csv").read_text().splitlines()
    column = header.split(",").index("rollout/ep_rew_mean")
    ep_rew = [float(r.split(",")[column]) for r in rows]
    assert len(ep_rew) == 4 and all(np.isfinite(ep_rew)) and all(r <= 1 for r in ep_rew)
    assert ppo.ep_info_buffer and all(1 <= e["l"] <= 8 for e in ppo.ep_info_buffer)


@pytest.mark.slow
def test_ppo_with_the_bundled_model_updates_it():
    env = make_vec_env(ENV_ID, n_envs=1, seed=0, env_kwargs=dict(max_new_tokens=4, render_mode=None))
    ppo = PPO(
        LLMActorCriticPolicy,
        env,
        policy_kwargs=dict(model="bundled"),
        n_steps=4,
        batch_size=4,
        n_epochs=1,
        gamma=1.0,
        learning_rate=1e-5,
        rollout_buffer_class=EpisodeRolloutBuffer,
        seed=0,
    )
    recorder = RolloutRecorder()
    embeddings = ppo.policy.lm.get_input_embeddings().weight.detach().clone()
    ppo.learn(4, callback=[DenseRewardBackfill(), recorder])
    rollout = recorder.rollouts[0]
    assert rollout["ends"]  # 4 tokens: at least one response ended and was judged
    for _, row, token_rewards, sequence_reward in rollout["ends"]:
        np.testing.assert_array_equal(rollout["rewards"][row + 1 - len(token_rewards) : row + 1, 0], token_rewards)
        assert token_rewards.sum() == pytest.approx(sequence_reward, abs=1e-5)
    after = ppo.policy.lm.get_input_embeddings().weight
    assert torch.isfinite(after).all() and not torch.equal(embeddings, after)


def test_make_vec_env_dummy_shares_one_judge_per_process(tiny_model):
    before = dict(models._shared)
    vec = make_vec_env(
        ENV_ID,
        n_envs=3,
        vec_env_cls=DummyVecEnv,
        env_kwargs=dict(model=tiny_model, max_new_tokens=2, render_mode=None),
    )
    assert len(set(models._shared) - set(before)) <= 1
    judges = {id(scorer.judge.model) for scorer in vec.get_attr("scorer")}
    assert len(judges) == 1
    vec.reset()
    vec.step(np.array([700, 701, 702]))
    _, rewards, dones, infos = vec.step(np.array([703, 704, 705]))
    assert dones.all() and all(len(info["token_rewards"]) == 2 for info in infos)
    np.testing.assert_allclose(rewards, [info["sequence_reward"] for info in infos], atol=1e-6)


class SharedModelCount(gym.Wrapper):
    """Reports the size of the judge cache of the process the env lives in."""

    def shared_model_count(self) -> int:
        return len(models._shared)


def test_make_vec_env_subproc_loads_the_judge_once_per_process(tiny_model):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the worker may not import this test module
    vec = make_vec_env(
        ENV_ID,
        n_envs=2,
        vec_env_cls=SubprocVecEnv,
        wrapper_class=SharedModelCount,
        env_kwargs=dict(model=tiny_model, max_new_tokens=2, render_mode=None),
    )
    try:
        vec.reset()
        vec.step(np.array([700, 701]))
        _, rewards, dones, infos = vec.step(np.array([702, 703]))
        assert dones.all() and all(len(info["token_rewards"]) == 2 for info in infos)
        np.testing.assert_allclose(rewards, [info["sequence_reward"] for info in infos], atol=1e-6)
        assert vec.env_method("shared_model_count") == [1, 1]
    finally:
        vec.close()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
