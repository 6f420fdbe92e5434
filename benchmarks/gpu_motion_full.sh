#!/usr/bin/env bash
# A full-width 'motion' backbone made on one GPU machine, sized to the time a GPU session has
# left after benchmarks/gpu_check.sh (issue: the GPU path, part 4). Steps, each under a limit:
#
#   heldout     the held-out pairs and long-term sets (benchmarks/heldout_sets.py, all cores)
#   pretrain_1  tc3d pretrain --width 1.0, its first 100 steps (procedural clips rendered by
#               one process per core but two), to measure steps/s on this machine
#   plan        how many steps fit in --budget seconds (at most --max-iters, 6000 by default;
#               'motion' took 3600), the curriculum scaled as motion's (2000 of 3600)
#   pretrain    the rest of that schedule (--resume)
#   compress    one-shot tc3d compress (prune 0.90/0.95, k-means sharing, Huffman): the size
#               against the paper's 5 MB (5 MiB); on the CPU if it fails on the GPU
#   inspect, load   the file checked and timed loading (on this machine's CPU)
#   similarity  held-out pairs with no training: 'motion' (width 0.25), the full-width
#               checkpoint, the compressed file
#   finetune    600 steps on the held-out long-term set from the compressed file, bf16
#               (--compare: from 'motion' too)
#
# Writes OUT/gpu_motion_full.json, OUT/gpu_motion_full.log, OUT/motion-full.tc3d and
# OUT/pretrain_log.jsonl. --device cpu is a tiny dry run (width 0.25, a few steps; the
# held-out sets take most of its ~5 minutes on 2 cores).
#
#   bash benchmarks/gpu_motion_full.sh [--budget SECONDS] [--max-iters N] [--compare]
#       [--device cuda|cpu] [--out DIR] [--work DIR] [--keep-going]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benchmarks/gpu_common.sh
source benchmarks/gpu_common.sh
gpu_parse_args gpu_motion_full motion "$@"
BUDGET=120
MAX_ITERS=6000
COMPARE=0
set -- "${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}"
while [ $# -gt 0 ]; do
    case $1 in
        --budget) BUDGET=$2; shift 2 ;;
        --max-iters) MAX_ITERS=$2; shift 2 ;;
        --compare) COMPARE=1; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

RENDER=$((CORES > 4 ? CORES - 2 : 1))
if [ "$DEVICE" = cuda ]; then
    WIDTH=1.0
    PRE=(--batch-size 32)
    FIRST=100
    FINETUNE=(--iters 600 --amp bf16 --workers "$RENDER")
else
    WIDTH=0.25
    PRE=(--batch-size 4 --crop 32 --model-crop 32 --warmup 2)
    FIRST=10
    MAX_ITERS=$((MAX_ITERS < 16 ? MAX_ITERS : 16))
    FINETUNE=(--iters 4 --batch-size 2 --crop 32 --frames 4 --workers 0)
fi
H=$WORK/heldout
RUN=$WORK/pretrain
FILE=$WORK/motion-full.tc3d
D=(--device "$DEVICE")
curriculum() { echo $(($1 * 2000 / 3600)); }  # motion: 2000 steps of a 3600-step schedule

gpu_setup
step heldout_pairs 180 "$PYTHON" benchmarks/heldout_sets.py "$H" --seed 0 --only pairs
step heldout_longterm 180 "$PYTHON" benchmarks/heldout_sets.py "$H" --seed 0 --only longterm
step pretrain_1 240 "${TC3D[@]}" pretrain --out "$RUN" --width "$WIDTH" "${PRE[@]}" \
    --iters "$MAX_ITERS" --stop-at "$FIRST" --curriculum "$(curriculum "$MAX_ITERS")" \
    --eval-every "$FIRST" --workers "$RENDER" --seed 0 "${D[@]}" --json
# Steps/s of the first piece (its log lines but the first, which holds the workers' start),
# a fifth held back: later clips carry more clutter and render slower.
step plan 30 "$PYTHON" -c "
import json, statistics
log = [json.loads(x) for x in open('$RUN/log.jsonl') if 'clips_per_s' in x]
piece = json.loads(open('$WORK/pretrain_1.out').read().strip().splitlines()[-1])
rate = statistics.median(r['clips_per_s'] for r in (log[1:] or log or [piece])) / ${PRE[1]}
iters = max($FIRST + 1, min($MAX_ITERS, $FIRST + int(0.8 * rate * $BUDGET)))
print(json.dumps({'steps_per_s': rate, 'budget_s': $BUDGET, 'iters': iters}))"
ITERS=$("$PYTHON" -c "import json; print(json.loads(open('$WORK/plan.out').read())['iters'])") \
    || ITERS=$((FIRST * 10))  # --keep-going after a failed plan
step pretrain $((2 * BUDGET + 120)) "${TC3D[@]}" pretrain --out "$RUN" --width "$WIDTH" \
    "${PRE[@]}" --iters "$ITERS" --curriculum "$(curriculum "$ITERS")" \
    --eval-every $((ITERS / 4 > 1 ? ITERS / 4 : 1)) --workers "$RENDER" --seed 0 --resume \
    "${D[@]}" --json
[ ! -f "$RUN/log.jsonl" ] || cp "$RUN/log.jsonl" "$OUTDIR/pretrain_log.jsonl"

SOFT=1 step compress 300 "${TC3D[@]}" compress --model "$RUN/last.pt" --out "$FILE" "${D[@]}" --json
if [ ! -s "$FILE" ]; then  # never run on a GPU before: keep the figures coming
    step compress_cpu 300 "${TC3D[@]}" compress --model "$RUN/last.pt" --out "$FILE" \
        --device cpu --json
fi
[ ! -f "$FILE" ] || cp "$FILE" "$OUTDIR/motion-full.tc3d"
step inspect 60 "${TC3D[@]}" inspect "$FILE" --json
step load 120 "$PYTHON" benchmarks/compress_load.py "$FILE" "$RUN/last.pt" --repeats 3 --fresh 1

similarity() {  # similarity NAME MODEL
    step "similarity_$1" 180 "${TC3D[@]}" similarity --model "$2" \
        --pairs "$H/pairs/pairs.txt" --videos "$H/pairs" "${D[@]}" --json
}
similarity motion motion
similarity full "$RUN/last.pt"
similarity full_compressed "$FILE"

step finetune_full 300 "${TC3D[@]}" train --data "$H/longterm" --out "$WORK/ft_full" \
    --init "$FILE" --width "$WIDTH" "${FINETUNE[@]}" --seed 0 "${D[@]}" --json
if [ "$COMPARE" = 1 ]; then
    step finetune_motion 300 "${TC3D[@]}" train --data "$H/longterm" --out "$WORK/ft_motion" \
        --init motion "${FINETUNE[@]}" --seed 0 "${D[@]}" --json
fi

gpu_finish
