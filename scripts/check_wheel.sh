#!/usr/bin/env bash
# Builds the wheel and checks what installing it (not the checkout) gives, from a folder outside the
# checkout: gym.make, a preset by name, g2r train on a preset, the shipped judges and task data.
#   bash scripts/check_wheel.sh          (after scripts/setup_env.sh; about a minute)
# The wheel goes into a fresh venv made from .venv's base interpreter (none of .venv's packages). Its
# third-party dependencies are read from .venv's site-packages, appended to sys.path by a .pth file:
# a directory named in a .pth file is searched but its own .pth files are not run, so the editable
# install of this checkout in .venv stays invisible. The script checks that every package of ours
# is imported from the new venv.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
export G2R_CACHE="${G2R_CACHE:-$ROOT/.cache/g2r}"
unset PYTHONPATH
WORK=$(mktemp -d "${TMPDIR:-/tmp}/g2r-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# the files git would commit (tracked and new, not ignored), so no stale build/ folder leaks in
mkdir -p "$WORK/src"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
done | xargs -0 cp --parents -t "$WORK/src"
"$PY" -m pip wheel -q --no-deps --no-build-isolation "$WORK/src" -w "$WORK/dist"
WHEEL=$(ls "$WORK"/dist/grad2reward-*.whl)
echo "built $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"

"$PY" -m venv --without-pip "$WORK/venv"
VPY=$WORK/venv/bin/python
"$PY" -m pip --python "$VPY" install -q --no-deps --no-index "$WHEEL"
NEW_SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
"$PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))' >"$NEW_SITE/g2r-check-dependencies.pth"

mkdir -p "$WORK/run" && cd "$WORK/run"
"$VPY" - "$ROOT" <<'EOF'
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

import agents
import g2r_cli
import g2r_env
import g2r_judge
import tasks

root = Path(sys.argv[1]).resolve()
for module in (agents, g2r_cli, g2r_env, g2r_judge, tasks):
    where = Path(module.__file__).resolve()
    assert where.is_relative_to(Path(sys.prefix).resolve()) and not where.is_relative_to(root), (
        f"{module.__name__} is imported from {where}, not from the wheel installed in {sys.prefix}"
    )

from agents import TrainConfig
from agents.study import load_study_preset
from g2r_env import Judge
from g2r_judge.corpus import corpus_of

assert TrainConfig.preset("cpu_demo").total_steps == 6 and TrainConfig.preset("gpu_paper").group_size == 8
assert sorted(load_study_preset("cpu")["arms"]) == sorted(load_study_preset("quick")["arms"])
assert len(tasks.load_taskset("openended-mini")) > 0 and len(tasks.load_taskset("judge-extra")) > 0
assert corpus_of("openended-mini").split("train"), "the evidence corpus is missing"
for name in ("bundled-judge", "bundled-eval-judge"):
    Judge.load(name, device="cpu")

env = gym.make("Grad2Reward/OpenEnded-v0", max_new_tokens=8, device="cpu")
obs, info = env.reset(seed=0)
done = False
while not done:
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    done = terminated or truncated
assert np.isclose(info["token_rewards"].sum(), info["sequence_reward"], atol=1e-5)
print(f"wheel imports from {sys.prefix}: presets, task data, evidence, both judges and gym.make work")
EOF
"$WORK/venv/bin/g2r" train --preset cpu_demo --total-steps 0 --eval-every 0 --no-report --no-tensorboard \
    --run-dir "$WORK/run/demo"
test -f "$WORK/run/demo/model/config.json"
test -s "$WORK/run/demo/vllm.log"  # vLLM's output went to the run folder, not the terminal
echo "wheel check passed"
