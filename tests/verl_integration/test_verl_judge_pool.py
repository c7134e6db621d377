import time

import numpy as np
import pytest

pytest.importorskip("verl")

from verl_helpers import RESPONSES, SELF_JUDGE, verl_batch  # noqa: E402

from agents.verl.judge_pool import JudgeActorDied, JudgePool, JudgeSpec, split_by_cost  # noqa: E402
from agents.verl.reward import Grad2RewardManager  # noqa: E402
from tasks import Criterion, Task  # noqa: E402


def test_split_by_cost_keeps_rows_in_order_and_balances():
    assert split_by_cost([1, 1, 1, 1], 2) == [[0, 1], [2, 3]]
    assert split_by_cost([10, 1, 1, 1], 2) == [[0], [1, 2, 3]]
    assert split_by_cost([5], 2) == [[0]]
    assert split_by_cost([1, 2, 3, 4, 5, 6], 3) == [[0, 1, 2, 3], [4], [5]]


@pytest.fixture(scope="module")
def pool(ray_cluster):
    judges = JudgePool(JudgeSpec(**SELF_JUDGE, threads=1), num_judges=2)
    yield judges
    judges.shutdown()


@pytest.fixture(scope="module")
def batch(bundled_tokenizer):
    """Six short responses to two-criterion tasks: 12 judged pairs, seconds on one CPU thread."""
    tasks = [
        Task(
            f"sleep-{i}",
            "Give one tip for better sleep.",
            (Criterion("Mentions a regular bedtime", 2.0), Criterion("Blames the moon", -1.0 - i)),
        )
        for i in range(len(RESPONSES))
    ]
    data, responses = verl_batch(bundled_tokenizer, tasks, RESPONSES)
    return tasks, data, responses


@pytest.mark.slow
def test_two_judge_actors_give_what_one_in_process_judge_gives(pool, batch, self_judge_scorer):
    # to float32 rounding: the packed verdict pass batches each actor's share in other shapes
    tasks, _, responses = batch
    pending = pool.submit(tasks, responses)
    assert len(pending.rows) == 2  # both actors got a share
    results = pool.gather(pending)
    expected = self_judge_scorer.score_batch(tasks, responses)
    assert [r.task_id for r in results] == [t.task_id for t in tasks]
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got.response_ids, want.response_ids)
        np.testing.assert_allclose(got.token_rewards, want.token_rewards, rtol=1e-4, atol=1e-6)
        assert got.sequence_reward == pytest.approx(want.sequence_reward, abs=1e-6)
        assert [c["met"] for c in got.criteria] == [c["met"] for c in want.criteria]
        np.testing.assert_allclose([c["p_true"] for c in got.criteria], [c["p_true"] for c in want.criteria], atol=1e-5)
    assert len({p for p in (__import__("ray").get([a.pid.remote() for a in pool.actors]))}) == 2


@pytest.mark.slow
def test_reward_manager_on_the_pool_equals_the_in_process_manager(pool, batch, bundled_tokenizer, self_judge_scorer):
    _, data, _ = batch
    on_pool = Grad2RewardManager(bundled_tokenizer, scorer=pool)(data, return_dict=True)
    in_process = Grad2RewardManager(bundled_tokenizer, scorer=self_judge_scorer)(data, return_dict=True)
    assert on_pool["reward_tensor"].equal(in_process["reward_tensor"])
    assert on_pool["reward_extra_info"] == in_process["reward_extra_info"]


@pytest.mark.slow
def test_a_judge_actor_dying_mid_batch_is_a_clear_error(ray_cluster, batch):
    tasks, _, responses = batch
    # reserving no CPU: the module's pool holds both of this Ray's CPUs, and a pool Ray cannot place waits
    doomed = JudgePool(JudgeSpec(**SELF_JUDGE, threads=1), num_judges=2, num_cpus_per_judge=0)
    try:
        doomed.score_batch(tasks[:2], responses[:2])  # both actors loaded and working
        pending = doomed.submit(tasks, responses)
        time.sleep(0.5)  # the actors are judging their shares now
        ray_cluster.kill(doomed.actors[1], no_restart=True)
        with pytest.raises(
            JudgeActorDied, match=r"judge actor 1 of 2 died while scoring batch rows \d+\.\.5 .*no reward"
        ):
            doomed.gather(pending)
        with pytest.raises(JudgeActorDied, match="judge actor 1 of 2 died"):  # and it stays an error
            doomed.score_batch(tasks, responses)
    finally:
        doomed.shutdown()
