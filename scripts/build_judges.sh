#!/usr/bin/env bash
# Rebuilds the two judges shipped in g2r_env/judges from the evidence corpus, then measures them:
#   bundled-judge       the bundled model + a LoRA adapter trained on half 0 of the passages, seed 0
#   bundled-eval-judge  the same on half 1 of the passages, seed 1, 200 steps (the sample-efficiency study's eval judge)
# About 70 minutes (300 steps) on 2 idle CPU cores (resumable: run it again after a kill); minutes on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"  # no OpenMP spin-waits on a busy machine
G2R=.venv/bin/g2r
build() {  # run folder, shipped name, passage half, seed, steps, attribution methods whose credit is measured
    "$G2R" judge train --out-dir "runs/$1" --passage-half "$3" --seed "$4" --steps "$5"
    rm -rf "g2r_env/judges/$2" && mkdir -p "g2r_env/judges/$2"
    cp "runs/$1/judge/"* "g2r_env/judges/$2/"
    "$G2R" judge eval --judge "$2" --cases benchmarks/data/judged_cases.jsonl --methods $6 --credit-cases 60 \
        --json-out "g2r_env/judges/$2/eval.json"
}
build judge-a bundled-judge 0 0 300 all
build judge-b bundled-eval-judge 1 1 200 ""  # verdicts only: it scores, it gives no credit
