"""The env, the vector env and step_sequences, on the tiny model (and once on the bundled model)."""

import contextlib
import io

import gymnasium as gym
import numpy as np
import pytest

from g2r_env import models
from g2r_env.env import OpenEndedEnv

CONTRACT_KEYS = {"token_rewards", "sequence_reward", "criteria", "response_ids", "task_id"}


@pytest.fixture
def make_env(tiny_model):
    def make(**kwargs):
        kwargs.setdefault("max_new_tokens", 12)
        return gym.make("Grad2Reward/OpenEnded-v0", model=tiny_model, **kwargs)

    return make


def play(env, tokens, **reset_kwargs):
    obs, info = env.reset(**reset_kwargs)
    steps = []
    for token in tokens:
        obs, reward, terminated, truncated, info = env.step(token)
        steps.append((reward, terminated, truncated))
        if terminated or truncated:
            break
    return obs, steps, info


def test_env_passes_gymnasium_and_sb3_checkers(make_env):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = make_env(max_new_tokens=4)
    check_env(env.unwrapped)
    sb3_check_env(env.unwrapped)


def test_full_episode_carries_the_contract(make_env):
    env = make_env(render_mode="ansi")
    tokens = [504, 1135, 314, 260, 2]  # ends on EOS (<|im_end|>)
    obs, steps, info = play(env, tokens, seed=3)
    assert CONTRACT_KEYS <= set(info)
    assert [s[1:] for s in steps] == [(False, False)] * 4 + [(True, False)]
    rewards = [s[0] for s in steps]
    assert rewards[:-1] == [0.0] * 4 and rewards[-1] == info["sequence_reward"]
    assert info["token_rewards"].dtype == np.float32 and len(info["token_rewards"]) == len(tokens)
    assert float(info["token_rewards"].sum()) == pytest.approx(info["sequence_reward"], abs=1e-6)
    assert list(info["response_ids"]) == tokens
    assert {"criterion", "weight", "met", "p_true"} <= set(info["criteria"][0])
    assert list(obs["response_ids"][:5]) == tokens and obs["response_mask"].sum() == 5
    assert obs["prompt_mask"][-1] == 1  # prompts are left-padded up to the response
    text = env.render()
    assert "\x1b[48;2;" in text and "sequence reward" in text


def test_truncation_and_bad_steps(make_env):
    env = make_env(max_new_tokens=3)
    _, steps, info = play(env, [500, 501, 502, 503], seed=0)
    assert [s[1:] for s in steps] == [(False, False), (False, False), (False, True)]
    with pytest.raises(RuntimeError, match="episode has ended"):
        env.step(500)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"not a token id in Discrete\(49152\)"):
        env.step(49152)
    with pytest.raises(ValueError, match="not a token id"):
        env.step(-1)
    with pytest.raises(ValueError, match="one integer token id"):
        env.step([1, 2])
    fresh = OpenEndedEnv(model=env.unwrapped.tokenizer.name_or_path, max_new_tokens=3)
    with pytest.raises(RuntimeError, match="call reset"):
        fresh.step(5)


def test_sparse_mode_puts_the_reward_on_the_last_token(make_env):
    env = gym.make(
        "Grad2Reward/OpenEnded-Sparse-v0", model=make_env().unwrapped.tokenizer.name_or_path, max_new_tokens=6
    )
    _, steps, info = play(env, [600, 601, 2], seed=1)
    assert info["token_rewards"][:-1].tolist() == [0.0, 0.0]
    assert info["token_rewards"][-1] == pytest.approx(info["sequence_reward"]) == pytest.approx(steps[-1][0])


def test_step_cost_does_not_grow_with_response(make_env):
    # the env keeps preallocated arrays: stepping never decodes, so the tokenizer is never called
    env = make_env(max_new_tokens=64)
    env.reset(seed=0)
    calls = []
    tokenizer = env.unwrapped.tokenizer
    original = tokenizer.decode
    tokenizer.decode = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        for _ in range(50):
            env.step(700)
    finally:
        tokenizer.decode = original
    assert calls == []


def test_models_are_shared_between_envs(tiny_model):
    before = len(models._shared)
    vec = gym.make_vec("Grad2Reward/OpenEnded-v0", num_envs=16, model=tiny_model, max_new_tokens=4)
    envs = [gym.make("Grad2Reward/OpenEnded-v0", model=tiny_model) for _ in range(3)]
    assert len(models._shared) - before <= 1
    assert all(e.unwrapped.scorer.judge.model is vec.unwrapped.scorer.judge.model for e in envs)


def test_plugin_id_and_registry(tiny_model):
    assert "Grad2Reward/OpenEnded-v0" in gym.registry and "Grad2Reward/OpenEnded-Sparse-v0" in gym.registry
    env = gym.make("g2r_env:Grad2Reward/OpenEnded-v0", model=tiny_model)
    assert isinstance(env.unwrapped, OpenEndedEnv)
    spec = gym.spec("Grad2Reward/OpenEnded-v0")
    assert spec.entry_point == "g2r_env.env:OpenEndedEnv"
    assert spec.vector_entry_point == "g2r_env.vector:OpenEndedVectorEnv"


RESPONSES = [[504, 1135, 2], [700, 701, 702, 703, 704, 705], [9, 2], [800, 801, 802, 803, 804, 805, 806, 2]]


def test_vector_env_equals_single_envs_stepped_token_by_token(tiny_model):
    vec = gym.make_vec("Grad2Reward/OpenEnded-v0", num_envs=4, model=tiny_model, max_new_tokens=6)
    task_ids = ["expl-001", "sci-002", "howto-003", "expl-001"]
    vec.reset(seed=0, options={"task_ids": task_ids})
    calls = []
    score_batch = vec.unwrapped.scorer.score_batch
    vec.unwrapped.scorer.score_batch = lambda tasks, responses, **kw: (
        calls.append(len(tasks)) or score_batch(tasks, responses, **kw)
    )
    try:
        obs, step_rewards, terminated, truncated, infos = vec.step_sequences(RESPONSES)
    finally:
        del vec.unwrapped.scorer.score_batch
    assert calls == [4]  # one batched judge call for all sub-envs

    single = gym.make("Grad2Reward/OpenEnded-v0", model=tiny_model, max_new_tokens=6)
    for n, (task_id, response) in enumerate(zip(task_ids, RESPONSES)):
        last_obs, steps, info = play(single, response, options={"task_id": task_id})
        np.testing.assert_allclose(step_rewards[n], [s[0] for s in steps], atol=1e-6)
        assert (terminated[n], truncated[n]) == steps[-1][1:]
        np.testing.assert_allclose(infos["token_rewards"][n], info["token_rewards"], atol=1e-6)
        assert infos["sequence_reward"][n] == pytest.approx(info["sequence_reward"], abs=1e-6)
        assert list(infos["response_ids"][n]) == list(info["response_ids"]) and infos["task_id"][n] == task_id
        for key in last_obs:
            np.testing.assert_array_equal(obs[key][n], last_obs[key])
    assert list(map(len, step_rewards)) == [3, 6, 2, 6]  # response 3 stops at max_new_tokens

    # the same episodes stepped token by token through the vector env: ends on the same step are judged together
    vec.reset(options={"task_ids": task_ids})
    vec.unwrapped.scorer.score_batch = lambda tasks, responses, **kw: (
        calls.append(len(tasks)) or score_batch(tasks, responses, **kw)
    )
    calls.clear()
    finals = {}
    try:
        for t in range(6):
            actions = [r[t] if t < len(r) else 7 for r in RESPONSES]  # 7: no stop token
            _, rewards, term, trunc, info = vec.step(actions)
            for n in np.flatnonzero(term | trunc):
                if n not in finals:
                    finals[n] = (rewards[n], info["token_rewards"][n])
    finally:
        del vec.unwrapped.scorer.score_batch
    assert calls == [1, 1, 2]  # steps 2, 3 and 6 end episodes
    for n, (reward, token_rewards) in finals.items():
        assert reward == pytest.approx(infos["sequence_reward"][n], abs=1e-6)
        np.testing.assert_allclose(token_rewards, infos["token_rewards"][n], atol=1e-6)


def test_vector_env_groups_autoreset_and_errors(tiny_model):
    vec = gym.make_vec("Grad2Reward/OpenEnded-v0", num_envs=6, group_size=3, model=tiny_model, max_new_tokens=2)
    _, info = vec.reset(seed=5)
    assert len(set(info["task_id"][:3])) == 1 and len(set(info["task_id"][3:])) == 1
    vec.step_sequences([[5, 2]] * 6)
    with pytest.raises(RuntimeError, match="not at the start of an episode"):
        vec.step_sequences([[5, 2]] * 6)
    obs, rewards, term, trunc, info = vec.step(np.full(6, 7))  # autoreset step: actions ignored
    assert not rewards.any() and not term.any() and info["_task_id"].all()
    assert obs["response_mask"].sum() == 0
    with pytest.raises(ValueError, match="no stop token"):
        vec.step_sequences([[5]] * 6)
    with pytest.raises(ValueError, match="multiple of group_size"):
        gym.make_vec("Grad2Reward/OpenEnded-v0", num_envs=4, group_size=3, model=tiny_model)


@pytest.mark.slow
def test_bundled_model_end_to_end():
    """The real SmolLM2 writes a response (greedy), judges it and attributes it in the env."""
    import torch

    env = gym.make("Grad2Reward/OpenEnded-v0", max_new_tokens=24)
    obs, info = env.reset(seed=0, options={"task_id": "expl-001"})
    model, tokenizer = models.shared_model("bundled", "cpu")
    prompt = [int(t) for t, m in zip(obs["prompt_ids"], obs["prompt_mask"]) if m]
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=24, do_sample=False)
    for token in out[0, len(prompt) :].tolist():
        obs, reward, terminated, truncated, info = env.step(token)
        if terminated or truncated:
            break
    assert CONTRACT_KEYS <= set(info)
    assert float(info["token_rewards"].sum()) == pytest.approx(info["sequence_reward"], abs=1e-6)
    assert tokenizer.decode(info["response_ids"]).strip()
    judged = [c for c in info["criteria"] if c["decided_by"] == "judge"]
    assert any(c["met"] for c in info["criteria"]) and 0 < max(c["p_true"] for c in judged) < 1
    assert np.abs(info["token_rewards"]).max() > 0


ENV_ID = "Grad2Reward/OpenEnded-v0"


# ---- Gymnasium manners (wrappers, spec round trip, registry) ----------------------------------------------------------------------


def test_record_episode_statistics_and_time_limit(tiny_model):
    env = gym.wrappers.RecordEpisodeStatistics(
        gym.wrappers.TimeLimit(gym.make(ENV_ID, model=tiny_model, max_new_tokens=6, soft=True), max_episode_steps=3)
    )
    env.reset(seed=0)
    for step in range(3):
        _, reward, terminated, truncated, info = env.step(600 + step)
    assert truncated and not terminated and info["episode"]["l"] == 3
    assert "token_rewards" not in info and info["episode"]["r"] == 0  # cut by the wrapper: never judged

    env = gym.wrappers.RecordEpisodeStatistics(gym.make(ENV_ID, model=tiny_model, max_new_tokens=4, soft=True))
    env.reset(seed=0)
    total = 0.0
    for step in range(4):
        _, reward, terminated, truncated, info = env.step(600 + step)
        total += reward
    assert truncated and info["episode"]["l"] == 4
    assert info["episode"]["r"] == pytest.approx(info["sequence_reward"]) == pytest.approx(total)
    assert info["sequence_reward"] != 0


def test_spec_kwargs_round_trip_through_make(tiny_model):
    env = gym.make(ENV_ID, model=tiny_model, max_new_tokens=5, tau=0.5, reward_mode="sparse")
    assert env.spec.kwargs == {"model": tiny_model, "max_new_tokens": 5, "tau": 0.5, "reward_mode": "sparse"}
    again = gym.make(env.spec)
    assert again.spec.kwargs == env.spec.kwargs
    assert again.unwrapped.max_new_tokens == 5 and again.unwrapped.reward_mode == "sparse"
    assert again.observation_space == env.observation_space and again.action_space == env.action_space
    first, _ = env.reset(seed=3)
    second, _ = again.reset(seed=3)
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_pprint_registry_lists_the_ids():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        gym.pprint_registry()
    assert "Grad2Reward/OpenEnded-v0" in out.getvalue() and "Grad2Reward/OpenEnded-Sparse-v0" in out.getvalue()


def test_readme_lists_exactly_the_env_keywords():
    import re
    from dataclasses import fields
    from pathlib import Path

    from g2r_env.env import EnvOptions

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("- `gym.make` keywords:")
    item = readme[start : readme.index("\n- ", start + 1)]
    listed = {name for name in re.findall(r"`(\w+)`", item) if name not in ("Grad2Reward", "make")}
    listed |= set(re.findall(r"`(\w+)=", item))
    assert listed == {f.name for f in fields(EnvOptions)} | {"render_mode"}


def test_unknown_env_keyword_is_named():
    from g2r_env.env import EnvOptions

    with pytest.raises(TypeError, match=r"unknown keyword\(s\) \['max_tokens'\].*max_new_tokens"):
        EnvOptions.from_keywords("OpenEndedEnv", {"max_tokens": 8})
