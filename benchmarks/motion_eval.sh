#!/usr/bin/env bash
# The figures of docs/RESULTS.md ("The shipped backbone on held-out video"), in one run.
#
#   bash benchmarks/motion_eval.sh [HELDOUT] [OUT]
#
# HELDOUT holds the three held-out sets of benchmarks/heldout_sets.py (made here if missing):
# unseen-action pairs, a surveillance set, a 6-class long-term set. None of them shares code,
# shapes, looks or motion families with the pretraining stream (src/tc3d/synthetic/procedural.py).
# Every tc3d command below runs with default flags except --iters (and --segments 1 / --init
# scratch for the comparisons; SCRATCH=1 adds the long-term run from scratch); each prints its
# JSON line into OUT/results.jsonl.
# Needs the bench extra for the optical-flow baselines: pip install -e '.[bench]'.
set -euo pipefail
cd "$(dirname "$0")/.."
HELDOUT=${1:-data/heldout}
OUT=${2:-runs/eval}
TC3D=${TC3D:-.venv/bin/tc3d}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"

record() {  # record NAME COMMAND...: run, keep the last JSON line under NAME
    local name=$1
    shift
    echo "== $name: $*" >&2
    local line
    line=$("$@" | tail -1)
    echo "{\"name\": \"$name\", \"result\": $line}" >> "$RESULTS"
}

[ -d "$HELDOUT/pairs" ] || $PY benchmarks/heldout_sets.py "$HELDOUT" --seed 0

# 1. similarity on unseen actions, no training: motion vs hand-crafted optical flow
record similarity_motion $TC3D similarity --model motion --pairs "$HELDOUT/pairs/pairs.txt" \
    --videos "$HELDOUT/pairs" --json
record similarity_flow $PY benchmarks/flow_similarity.py --pairs "$HELDOUT/pairs/pairs.txt" \
    --videos "$HELDOUT/pairs" --json

# 2. fine-tuning on the unseen long-term set, default flags, 600 steps: S=3 vs S=1 vs scratch
record longterm_s3 $TC3D train --data "$HELDOUT/longterm" --out "$OUT/longterm_s3" \
    --iters 600 --json
record longterm_s1 $TC3D train --data "$HELDOUT/longterm" --out "$OUT/longterm_s1" \
    --iters 600 --segments 1 --json
if [ -n "${SCRATCH:-}" ]; then  # optional: the same S=3 run from random weights
    record longterm_s3_scratch $TC3D train --data "$HELDOUT/longterm" \
        --out "$OUT/longterm_s3_scratch" --iters 600 --init scratch --width 0.25 --crop 64 --json
fi

# 3. anomaly detection from 24 training videos: anomaly train from motion vs motion energy
record anomaly_train $TC3D anomaly train --data "$HELDOUT/surveillance" --out "$OUT/anomaly" \
    --iters 300 --json
record anomaly_motion $TC3D anomaly test --model "$OUT/anomaly/last.pt" \
    --data "$HELDOUT/surveillance" --json
record anomaly_energy $PY benchmarks/motion_energy_anomaly.py --data "$HELDOUT/surveillance" \
    --json

# 4. the synthetic benchmark: 500 steps from motion vs 1500 from scratch
[ -d data/synth ] || $TC3D synth data/synth --per-class 24 --seed 0
record synth_motion_500 $TC3D train --data data/synth --out "$OUT/synth_motion_500" \
    --iters 500 --json
record synth_scratch_1500 $TC3D train --data data/synth --out "$OUT/synth_scratch_1500" \
    --iters 1500 --init scratch --width 0.25 --crop 64 --json
