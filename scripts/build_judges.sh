#!/usr/bin/env bash
# Rebuilds the two judges shipped in g2r_env/judges from the evidence corpus, calibrates and measures them:
#   bundled-judge       the bundled model + a LoRA adapter trained on half 0 of the passages, seed 0
#   bundled-eval-judge  the same on half 1 of the passages, seed 1 (the sample-efficiency study's eval judge)
# Training composes near misses, claims and varied responses (g2r judge train's defaults), prints the
# AUC / accuracy / ECE of the development cases (where settings such as STEPS are chosen) and of the
# independent cases (the measurement) every 100 steps (neither is trained on), and ends with the
# calibration on judge-extra's val split. Resumable: run it again after a kill and each run
# continues from its last checkpoint, and a judge already shipped from its finished run is
# left as it is. Hours on 2 CPU cores; minutes on a GPU.
#
#   bash scripts/build_judges.sh                      # both judges, LoRA rank 16, STEPS steps each
#   STEPS=1200 bash scripts/build_judges.sh           # longer (train while the independent-case curve rises)
#   bash scripts/build_judges.sh --compare-full       # also: full fine-tuning for the LoRA run's training
#                                                     # time (runs/judge-a-full), measured beside it
#   EVAL_EVERY=50 G2R="python -m g2r_cli" bash scripts/build_judges.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"  # no OpenMP spin-waits on a busy machine
G2R="${G2R:-.venv/bin/g2r}"
STEPS="${STEPS:-600}"
EVAL_STEPS="${EVAL_STEPS:-600}"
EVAL_EVERY="${EVAL_EVERY:-100}"
CASES=benchmarks/data/judged_cases.jsonl
DEV=benchmarks/data/judged_cases_dev.jsonl
COMPARE_FULL=0
for arg in "$@"; do
    case "$arg" in
        --compare-full) COMPARE_FULL=1 ;;
        *) echo "unknown option $arg (known: --compare-full)" >&2; exit 2 ;;
    esac
done

train() {  # run folder, passage half, seed, steps, extra options...
    local run=$1 half=$2 seed=$3 steps=$4
    shift 4
    $G2R judge train --out-dir "runs/$run" --passage-half "$half" --seed "$seed" --steps "$steps" \
        --eval-cases "$DEV" "$CASES" --eval-every "$EVAL_EVERY" "$@"
}
ship() {  # run folder, shipped name, attribution methods whose credit is measured ("" for verdicts only)
    rm -rf "g2r_env/judges/$2" && mkdir -p "g2r_env/judges/$2"
    cp "runs/$1/judge/"* "g2r_env/judges/$2/"
    # shellcheck disable=SC2086
    $G2R judge eval --judge "$2" --cases "$CASES" "$DEV" --methods $3 --credit-cases 60 \
        --json-out "g2r_env/judges/$2/eval.json"
}

shipped() {  # run folder, shipped name, steps: the shipped judge is that run's, trained to those steps, and measured
    # (in a checkout without runs/, the shipped g2r-judge.json, a copy of the run's, is the record)
    [ -f "g2r_env/judges/$2/eval.json" ] && python3 - "$1" "$2" "$3" <<'PY'
import json, os, sys
run, name, steps = sys.argv[1:]
shipped = json.load(open(f"g2r_env/judges/{name}/g2r-judge.json"))["config"]
made = f"runs/{run}/judge/g2r-judge.json"
same = json.load(open(made))["config"] == shipped if os.path.exists(made) else shipped["out_dir"] == f"runs/{run}"
sys.exit(0 if same and shipped["steps"] == int(steps) else 1)
PY
}
build() {  # run folder, shipped name, passage half, seed, steps, credit methods
    if shipped "$1" "$2" "$5"; then
        echo "$2: already shipped from runs/$1 at $5 steps and measured (g2r_env/judges/$2/eval.json)"
        return
    fi
    train "$1" "$3" "$4" "$5"
    ship "$1" "$2" "$6"
}

build judge-a bundled-judge 0 0 "$STEPS" "grad_x_embed grad_l1 grad_l2 contrastive_grad_x_embed contrastive_grad_l2"
build judge-b bundled-eval-judge 1 1 "$EVAL_STEPS" ""  # verdicts only: it scores, it gives no credit

if [ "$COMPARE_FULL" = 1 ]; then
    # full fine-tuning for as long as the LoRA run trained (its g2r-judge.json records the total time)
    minutes=$(python3 -c "import json; print(json.load(open('g2r_env/judges/bundled-judge/g2r-judge.json'))['train_seconds_total'] / 60)")
    train judge-a-full 0 0 "$STEPS" --lora-rank 0 --learning-rate 3e-5 --max-train-minutes "$minutes"
    $G2R judge eval --judge runs/judge-a-full/judge --cases "$CASES" --methods \
        --json-out runs/judge-a-full/eval.json
    echo "LoRA: g2r_env/judges/bundled-judge/eval.json, full fine-tuning: runs/judge-a-full/eval.json; curves: runs/judge-a*/metrics.jsonl (eval/... every $EVAL_EVERY steps)"
fi
