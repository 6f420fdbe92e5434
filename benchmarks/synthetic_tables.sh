#!/usr/bin/env bash
# Reproduces docs/RESULTS.md Tables I and II on the synthetic benchmark (width 0.25, CPU).
# Usage: bash benchmarks/synthetic_tables.sh [WORKDIR]   (about 65 minutes on 2 idle cores)
# Each run trains from scratch, then `tc3d test` writes its JSON next to the run; a finished
# run is skipped when the script is started again.
set -euo pipefail
WORK=${1:-runs/synthetic}
TC3D=${TC3D:-tc3d}
mkdir -p "$WORK"
[ -f "$WORK/data/splits/classInd.txt" ] || $TC3D synth "$WORK/data" --per-class 24 --seed 0 --json > "$WORK/synth.json"

ITERS=1500
RECIPE=(--init scratch --width 0.25 --crop 64 --no-flip --optimizer adamw --lr 5e-4
        --weight-decay 0.05 --dropout 0 --warmup 20 --iters $ITERS --lr-steps 1125,1380
        --eval-every 500 --seed 0)

run() {  # name, extra train flags...
  local name=$1; shift
  [ -f "$WORK/$name/test.json" ] && return 0
  $TC3D train --data "$WORK/data" --out "$WORK/$name" "${RECIPE[@]}" "$@" --resume --json \
    > "$WORK/$name.train.json"
  $TC3D test --model "$WORK/$name/best.pt" --data "$WORK/data" --json > "$WORK/$name/test.json"
}

# Table I: fusion functions (S = 3, shared weights). Table II: number of segments (weighted
# fusion, the only one that sees order). Ordered so that the figures the README quotes come first.
run s3_avg --segments 3 --fusion avg
run s3_max --segments 3 --fusion max
run s3_weighted --segments 3 --fusion weighted
run s1 --segments 1 --fusion weighted
run s3_attention --segments 3 --fusion attention
run s6_weighted --segments 6 --fusion weighted
