import numpy as np
import pytest
import torch

pytest.importorskip("verl")

from verl_helpers import RESPONSES, verl_batch  # noqa: E402

from agents.verl.reward import REWARD_MANAGER_NAME, Grad2RewardManager  # noqa: E402
from tasks import load_taskset  # noqa: E402


@pytest.fixture(scope="module")
def batch(bundled_tokenizer):
    tasks = load_taskset("openended-mini")
    tasks = [tasks.get("health-001"), tasks.get("expl-001"), tasks.get("health-001"), tasks.get("expl-001")]
    # response_length wider than the longest response, as verl pads to rollout.response_length
    data, responses = verl_batch(bundled_tokenizer, tasks, RESPONSES[:4], response_length=40)
    return tasks, data, responses


def test_manager_is_registered_in_verl_by_name():
    from verl.workers.reward_manager import get_reward_manager_cls

    assert get_reward_manager_cls(REWARD_MANAGER_NAME) is Grad2RewardManager


@pytest.mark.slow
def test_token_rewards_equal_score_batch_in_place_and_sum_to_sequence_reward(
    batch, bundled_tokenizer, self_judge_scorer
):
    tasks, data, responses = batch
    manager = Grad2RewardManager(bundled_tokenizer, scorer=self_judge_scorer)
    out = manager(data, return_dict=True)
    rewards, extra = out["reward_tensor"], out["reward_extra_info"]
    expected = self_judge_scorer.score_batch(tasks, responses)

    assert rewards.dtype == torch.float32 and rewards.shape == data.batch["responses"].shape == (4, 40)
    for i, (ids, result) in enumerate(zip(responses, expected)):
        n = len(ids)
        np.testing.assert_array_equal(rewards[i, :n].numpy(), result.token_rewards)  # in place, same values
        assert torch.all(rewards[i, n:] == 0)  # verl's padding gets nothing
        assert rewards[i].sum().item() == pytest.approx(result.sequence_reward, abs=1e-5)
        assert extra["sequence_reward"][i] == result.sequence_reward
        assert extra["criteria_met"][i] == sum(c["met"] and c["weight"] > 0 for c in result.criteria)
        assert extra["pitfalls_met"][i] == sum(c["met"] and c["weight"] < 0 for c in result.criteria)
    assert len({len(r) for r in responses}) > 1  # rows of different lengths: placement is per row
    assert any(r.sequence_reward != 0 for r in expected), "no criterion met: the test would not see placement"


@pytest.mark.slow
def test_sparse_mode_puts_the_sequence_reward_on_the_last_valid_token(batch, bundled_tokenizer, self_judge_scorer):
    tasks, data, responses = batch
    rewards = Grad2RewardManager(bundled_tokenizer, scorer=self_judge_scorer, dense=False)(data)
    expected = self_judge_scorer.score_batch(tasks, responses, dense=False)
    for i, (ids, result) in enumerate(zip(responses, expected)):
        row = np.zeros(40, dtype=np.float32)
        row[len(ids) - 1] = result.sequence_reward
        np.testing.assert_allclose(rewards[i].numpy(), row, atol=1e-7)


def test_rows_without_a_task_are_a_clear_error(batch, bundled_tokenizer, self_judge_scorer):
    _, data, _ = batch
    broken = data.select(batch_keys=list(data.batch.keys()), non_tensor_batch_keys=["data_source", "uid"])
    with pytest.raises(KeyError, match="no 'reward_model' column.*g2r export --format verl"):
        Grad2RewardManager(bundled_tokenizer, scorer=self_judge_scorer)(broken)
    broken = data.select(deepcopy=True)
    broken.non_tensor_batch["reward_model"][1] = {"style": "rule", "ground_truth": "42"}
    with pytest.raises(ValueError, match="batch row 1: reward_model.ground_truth must hold a JSON object"):
        Grad2RewardManager(bundled_tokenizer, scorer=self_judge_scorer)(broken)


def test_an_empty_response_gets_no_reward_and_is_not_judged(bundled_tokenizer):
    from tasks import load_taskset

    task = load_taskset("openended-mini").get("health-001")
    data, _ = verl_batch(bundled_tokenizer, [task, task], ["Sleep.", "Sleep."], response_length=8)
    data.batch["attention_mask"][1, data.batch["prompts"].shape[1] :] = 0  # row 1: no response token

    class Recorder:
        calls = []

        def score_batch(self, tasks, responses, dense=True):
            self.calls.append(responses)
            from g2r_env import ScoreResult

            return [
                ScoreResult(t.task_id, np.array(r), np.full(len(r), 0.25, np.float32), 0.25 * len(r))
                for t, r in zip(tasks, responses)
            ]

    recorder = Recorder()
    rewards = Grad2RewardManager(bundled_tokenizer, scorer=recorder)(data)
    assert len(recorder.calls) == 1 and len(recorder.calls[0]) == 1  # only row 0 went to the judge
    n = len(recorder.calls[0][0])
    assert rewards[0, :n].tolist() == [0.25] * n and rewards[0, n:].abs().sum() == 0
    assert rewards[1].abs().sum() == 0


@pytest.mark.slow
def test_rows_with_only_raw_prompt_find_their_task_in_the_exported_files(
    batch, bundled_tokenizer, self_judge_scorer, tmp_path
):
    """verl 0.9's v1 trainer hands the colocated reward path prompts, responses, the mask and
    raw_prompt only: the task is found by its prompt in the exported parquet files."""
    from agents.verl.data import write_verl_parquet
    from tasks import TaskSet

    tasks, data, _ = batch
    files = write_verl_parquet(TaskSet(list({t.task_id: t for t in tasks}.values())), tmp_path, splits=("all",))
    bare = data.select(batch_keys=["prompts", "responses", "attention_mask"], non_tensor_batch_keys=[])
    bare.non_tensor_batch["raw_prompt"] = np.array([t.messages for t in tasks], dtype=object)
    manager = Grad2RewardManager(bundled_tokenizer, scorer=self_judge_scorer, tasks=str(files["all"]))
    full = Grad2RewardManager(bundled_tokenizer, scorer=self_judge_scorer)(data)
    assert manager(bare).equal(full)
    bare.non_tensor_batch["raw_prompt"][2] = [{"role": "user", "content": "Something else."}]
    with pytest.raises(KeyError, match="batch row 2: its prompt is not the prompt of any task"):
        manager(bare)
