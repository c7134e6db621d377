import numpy as np
import pytest
import torch

pytest.importorskip("verl")

from verl.trainer.ppo.core_algos import get_adv_estimator_fn  # noqa: E402

from agents.advantages import ADVANTAGES, compute_advantages  # noqa: E402
from agents.verl.advantages import PREFIX, group_order  # noqa: E402


def grouped_batch(groups=3, group_size=4, length=7, seed=0):
    """Token rewards and a right-padded mask for ``groups`` prompts x ``group_size`` responses, rows
    consecutive by prompt, with a group whose rewards are all equal (it must get zero advantages)."""
    generator = torch.Generator().manual_seed(seed)
    rows = groups * group_size
    lengths = torch.randint(2, length + 1, (rows,), generator=generator)
    mask = (torch.arange(length)[None] < lengths[:, None]).long()
    rewards = torch.randn(rows, length, generator=generator) * mask
    rewards[-group_size:] = 0.0
    rewards[-group_size:, 0] = 0.5 * mask[-group_size:, 0]
    return rewards, mask, [f"prompt-{i // group_size}" for i in range(rows)]


def run_registered(name, rewards, mask, uids, order):
    """verl's call of the registered estimator on the rows of the batch in ``order``."""
    return get_adv_estimator_fn(PREFIX + name)(
        token_level_rewards=rewards[order],
        response_mask=mask[order],
        index=np.array([uids[i] for i in order.tolist()], dtype=object),
        config=None,
    )


@pytest.mark.parametrize("name", sorted(ADVANTAGES))
def test_registered_estimator_equals_agents_advantages_on_interleaved_groups(name):
    rewards, mask, uids = grouped_batch()
    expected = compute_advantages(name, rewards, mask, group_size=4)
    # verl's rows: the groups' responses interleaved (prompt 0, 1, 2, 0, 1, 2, ...)
    interleaved = torch.arange(12).reshape(3, 4).T.reshape(-1)
    advantages, returns = run_registered(name, rewards, mask, uids, interleaved)
    torch.testing.assert_close(advantages, expected[interleaved], rtol=0, atol=0)
    assert torch.all(advantages[mask[interleaved] == 0] == 0)
    torch.testing.assert_close(returns, (rewards * mask).flip(-1).cumsum(-1).flip(-1)[interleaved], rtol=0, atol=0)
    assert expected.abs().sum() > 0
    if name in ("grpo", "rloo"):  # the last group's sequence rewards are all 0.5: no signal
        assert torch.all(expected[-4:] == 0)


@pytest.mark.parametrize("name", sorted(ADVANTAGES))
def test_registered_estimator_is_indifferent_to_any_row_order(name):
    """Within a group the order of rows only changes the order of the sums: equal to float rounding."""
    rewards, mask, uids = grouped_batch()
    expected = compute_advantages(name, rewards, mask, group_size=4)
    shuffle = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    advantages, _ = run_registered(name, rewards, mask, uids, shuffle)
    torch.testing.assert_close(advantages, expected[shuffle], rtol=1e-6, atol=1e-6)


def test_verl_compute_advantage_runs_the_registered_estimator():
    from verl import DataProto
    from verl.trainer.config import AlgoConfig
    from verl.trainer.ppo.ray_trainer import compute_advantage

    rewards, mask, uids = grouped_batch(groups=2, group_size=8, length=5, seed=3)
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask},
        non_tensors={"uid": np.array(uids, dtype=object)},
    )
    out = compute_advantage(data, adv_estimator="grad2reward_token_grpo", config=AlgoConfig())
    torch.testing.assert_close(out.batch["advantages"], compute_advantages("token_grpo", rewards, mask, 8))


def test_groups_of_different_sizes_are_refused():
    assert group_order(["a", "b", "a", "b"])[1] == 2
    assert group_order(["a", "b", "a", "b"])[0].tolist() == [0, 2, 1, 3]
    with pytest.raises(ValueError, match="responses per prompt differ across the batch \\(1 to 2 rows per uid\\)"):
        group_order(["a", "a", "b"])
