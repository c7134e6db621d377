import numpy as np
import pytest

pytest.importorskip("verl")

from omegaconf import OmegaConf  # noqa: E402
from verl.experimental.reward_loop.reward_loop import RewardLoopWorker  # noqa: E402
from verl_helpers import RESPONSES, verl_batch  # noqa: E402

from agents.verl.reward import Grad2RewardManager  # noqa: E402
from agents.verl.reward_loop import Grad2RewardLoopManager  # noqa: E402
from tasks import load_taskset  # noqa: E402


def verl_reward_worker(manager):
    """verl's own RewardLoopWorker (its per-row dispatch), holding our manager, without Ray."""
    worker = object.__new__(RewardLoopWorker)
    worker.config = manager.config
    worker.reward_manager = manager
    worker.loop = manager.loop
    return worker


def config(colocated):
    path = "agents/verl/reward_loop.py" if colocated else None
    return OmegaConf.create(
        {
            "reward": {
                "reward_kwargs": {"micro_batch_size": 1},
                "reward_model": {"enable": colocated},
                "custom_reward_function": {"path": path, "name": "compute_score"},
            }
        }
    )


@pytest.fixture(scope="module")
def batch(bundled_tokenizer):
    tasks = load_taskset("openended-mini")
    tasks = [tasks.get("health-001"), tasks.get("expl-001"), tasks.get("health-001")]
    data, responses = verl_batch(bundled_tokenizer, tasks, RESPONSES[:3], response_length=32)
    return data


class CountingScorer:
    def __init__(self, scorer):
        self.scorer, self.calls = scorer, []

    def score_batch(self, tasks, responses, dense=True):
        self.calls.append(len(responses))
        return self.scorer.score_batch(tasks, responses, dense=dense)


@pytest.mark.slow
def test_colocated_reward_loop_gives_the_batch_managers_token_rewards(batch, bundled_tokenizer, self_judge_scorer):
    scorer = CountingScorer(self_judge_scorer)
    manager = Grad2RewardLoopManager(config(colocated=True), bundled_tokenizer, scorer=scorer)
    worker = verl_reward_worker(manager)
    outputs = manager.loop.run_until_complete(worker.compute_score_batch(batch))  # verl: one run_single per row
    rm_scores = Grad2RewardLoopManager.assemble_rm_scores(batch, [o["reward_score"] for o in outputs])
    expected = Grad2RewardManager(bundled_tokenizer, scorer=self_judge_scorer)(batch, return_dict=True)
    assert scorer.calls == [3]  # the rows verl handed over one by one were judged as one batch
    assert rm_scores.equal(expected["reward_tensor"])
    for key, values in expected["reward_extra_info"].items():
        assert [o["reward_extra_info"][key] for o in outputs] == values


@pytest.mark.slow
def test_streaming_reward_loop_gives_the_sequence_reward(batch, bundled_tokenizer, self_judge_scorer):
    with pytest.warns(UserWarning, match="streaming reward path.*sparse"):
        manager = Grad2RewardLoopManager(config(colocated=False), bundled_tokenizer, scorer=self_judge_scorer)
    outputs = manager.loop.run_until_complete(verl_reward_worker(manager).compute_score_batch(batch))
    expected = Grad2RewardManager(bundled_tokenizer, scorer=self_judge_scorer)(batch, return_dict=True)
    scores = [o["reward_score"] for o in outputs]
    assert all(isinstance(s, float) for s in scores)  # verl's AgentLoopOutput.reward_score is a float
    np.testing.assert_allclose(scores, expected["reward_tensor"].sum(-1).numpy(), atol=1e-5)


def test_a_failing_judge_fails_every_waiting_row(batch, bundled_tokenizer):
    class Broken:
        def score_batch(self, tasks, responses, dense=True):
            raise RuntimeError("judge actor 0 of 1 died")

    manager = Grad2RewardLoopManager(config(colocated=True), bundled_tokenizer, scorer=Broken())
    with pytest.raises(RuntimeError, match="judge actor 0 of 1 died"):
        manager.loop.run_until_complete(verl_reward_worker(manager).compute_score_batch(batch))
