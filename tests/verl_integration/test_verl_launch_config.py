from pathlib import Path

import pytest

pytest.importorskip("verl")

from hydra import compose, initialize_config_dir, initialize_config_module  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parents[2] / "examples" / "verl" / "config"
FREE_FORM = ("reward.reward_kwargs",)  # read by agents.verl.reward_loop, not part of verl's schema


def leaf_keys(node, prefix=""):
    for key, value in node.items():
        path = f"{prefix}{key}"
        if path in FREE_FORM:
            continue
        if isinstance(value, dict):
            yield from leaf_keys(value, path + ".")
        else:
            yield path


@pytest.fixture(scope="module")
def composed():
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        ours = compose("grad2reward_paper")
    with initialize_config_module("verl.trainer.config", version_base=None):
        base = compose("ppo_trainer")
    return ours, base


def test_launch_config_holds_the_papers_setting(composed):
    config, _ = composed
    assert config.actor_rollout_ref.model.path == "Qwen/Qwen2.5-1.5B-Instruct"
    rollout = config.actor_rollout_ref.rollout
    assert (rollout.n, rollout.temperature, rollout.top_p, rollout.top_k) == (8, 0.7, 0.8, 20)
    assert config.actor_rollout_ref.actor.optim.lr == 1e-6
    assert config.actor_rollout_ref.actor.clip_ratio == 0.2
    assert config.algorithm.adv_estimator == "grad2reward_token_grpo"
    assert config.reward.reward_manager.name == "grad2reward"
    assert config.reward.reward_kwargs.judge == "self"
    assert list(config.reward.reward_kwargs.tasks) == [config.data.train_files, config.data.val_files]


def test_every_key_of_the_launch_config_is_one_verl_knows(composed):
    """Hydra merges unknown keys of a config file silently; a typo would be ignored by verl."""
    _, base = composed
    raw = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "grad2reward_paper.yaml"))
    raw.pop("hydra"), raw.pop("defaults")
    known = OmegaConf.to_container(base, resolve=False)  # "???" (values verl requires) count as known

    def present(path):
        node = known
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    unknown = [key for key in leaf_keys(raw) if not present(key)]
    assert unknown == []


def test_the_names_it_uses_are_registered_in_verl():
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    from agents.verl.reward_loop import Grad2RewardLoopManager, compute_score

    assert get_reward_manager_cls("grad2reward") is Grad2RewardLoopManager  # what verl's trainer resolves
    assert get_adv_estimator_fn("grad2reward_token_grpo").__name__ == "grad2reward_token_grpo"
    with pytest.raises(RuntimeError, match="only routes verl to the manager"):
        compute_score()


def test_a_fresh_verl_process_finds_the_names_through_the_plugin_entry_point():
    """verl's Ray workers import nothing of ours: verl loads the ``verl.plugins`` entry point of this
    package on ``import verl``, in every process."""
    import subprocess
    import sys

    code = (
        "import verl\n"
        "from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER\n"
        "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY\n"
        "from verl.workers.reward_manager.registry import REWARD_MANAGER_REGISTRY\n"
        "print('grad2reward' in REWARD_MANAGER, 'grad2reward' in REWARD_MANAGER_REGISTRY,\n"
        "      sorted(k for k in ADV_ESTIMATOR_REGISTRY if k.startswith('grad2reward_')))\n"
    )
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    from agents.advantages import ADVANTAGES

    expected = sorted(f"grad2reward_{name}" for name in ADVANTAGES)
    assert out.stdout.strip().splitlines()[-1] == f"True True {expected}"
