#!/usr/bin/env bash
# Grad2Reward on verl: the paper's setting (config/grad2reward_paper.yaml) on a Ray cluster of GPUs.
#
#   bash scripts/setup_env.sh --verl                        # once, on every node (.venv-verl)
#   ray start --head  /  ray start --address=HEAD:6379      # a multi-node cluster (one node: skip)
#   NNODES=2 TRAIN_GPUS=6 JUDGE_GPUS=2 bash examples/verl/run_paper_setting.sh [hydra overrides ...]
#
# verl's placement groups hold every GPU it trains on, so the judges (one per GPU) get GPUs of
# their own: TRAIN_GPUS + JUDGE_GPUS per node must not exceed the node's GPUs.
#
# Extra arguments are Hydra overrides, e.g. reward.reward_kwargs.judge=Qwen/Qwen2.5-7B-Instruct
# (a named judge) or actor_rollout_ref.model.path=/models/qwen2.5-1.5b-instruct.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv-verl/bin/python}
TASKS=${TASKS:-openended-mini}          # a bundled set, your JSONL, RaR or HealthBench file
DATA_DIR=${DATA_DIR:-data/grad2reward}
NNODES=${NNODES:-1}
TRAIN_GPUS=${TRAIN_GPUS:-6}             # per node, for rollout and training
JUDGE_GPUS=${JUDGE_GPUS:-2}             # per node, one judge actor each

# the task set as verl parquet (train.parquet, test.parquet)
"$PYTHON" -m g2r_cli export --format verl --tasks "$TASKS" --out "$DATA_DIR"

# verl loads Grad2Reward's reward manager and estimators through this package's verl.plugins entry
# point; naming the module too makes an import error show instead of "unknown estimator"
export VERL_USE_EXTERNAL_MODULES=agents.verl.plugin
exec "$PYTHON" -m verl.trainer.main_ppo \
    --config-path "$PWD/examples/verl/config" --config-name grad2reward_paper \
    data.train_files="$DATA_DIR/train.parquet" data.val_files="$DATA_DIR/test.parquet" \
    reward.custom_reward_function.path="$PWD/agents/verl/reward_loop.py" \
    trainer.nnodes="$NNODES" trainer.n_gpus_per_node="$TRAIN_GPUS" \
    reward.reward_kwargs.num_judges="$((NNODES * JUDGE_GPUS))" \
    "$@"
