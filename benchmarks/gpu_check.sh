#!/usr/bin/env bash
# tc3d's CUDA path end to end on one GPU machine, as one prepared run (issue: the GPU path,
# verified on a real GPU). On a bare machine that has torch with CUDA but no network, it
# installs tc3d beside that torch (wheels from .gpu-wheels/, see benchmarks/gpu_wheels.sh; no
# torch is ever downloaded), then runs, each step under a time limit:
#
#   tests   the device tests with TC3D_TEST_DEVICE=cuda (tests/test_on_device.py, test_device.py)
#   synth   a synthetic set (16 classes x 24 videos)
#   train   full width from scratch, 300 steps, bf16 autocast, channels-last (steps/s, data wait)
#   test, predict, stream, cam   on the model it trained
#   bench   full width, fp32 and bf16 (Table IV's whole-pipeline fps against the paper's 969),
#           each with the time decoding alone and the model alone would take, and a sweep of
#           reader threads (how many it takes to keep the GPU busy); bf16 channels-last too
#   ddp     torchrun --nproc-per-node 1: DistributedDataParallel over nccl
#
# and writes OUT/gpu_check.json (every figure, each step's exit code, time and JSON) and
# OUT/gpu_check.log. It stops at the first failure (exit 1, the end of the log on stderr)
# unless --keep-going. Planned to take under 6 minutes on an H100 with 16 cores.
#
#   bash benchmarks/gpu_check.sh [--device cuda|cpu] [--out DIR] [--work DIR] [--keep-going]
#
# --device cpu runs the same steps, much smaller (width 0.25, a few steps), in about a minute
# on 2 cores: tests/test_gpu_check.py runs it so that this script keeps working between GPU
# sessions.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benchmarks/gpu_common.sh
source benchmarks/gpu_common.sh
gpu_parse_args gpu_check check "$@"
[ ${#EXTRA_ARGS[@]} -eq 0 ] || { echo "unknown arguments: ${EXTRA_ARGS[*]}" >&2; exit 2; }

if [ "$DEVICE" = cuda ]; then
    WIDTH=1.0
    SYNTH=(--per-class 24)
    TRAIN=(--width 1.0 --crop 112 --iters 300 --eval-every 300 --batch-size 16
           --workers $((CORES > 6 ? CORES - 4 : 2)))
    DDP=(--width 1.0 --iters 30 --eval-every 30 --batch-size 8 --workers 4)
    TESTS=(tests/test_on_device.py tests/test_device.py)
    BENCH_VIDEOS=192
    WARMUP=8
    FAST=bf16  # the precision of the reader-thread sweep
    SWEEP=(1 4 8)
    BACKEND=nccl
else
    WIDTH=0.25
    SYNTH=(--classes 3 --per-class 4)
    TRAIN=(--width 0.25 --crop 32 --frames 4 --iters 4 --eval-every 4 --batch-size 2 --workers 0)
    DDP=(--width 0.25 --crop 32 --frames 4 --iters 2 --eval-every 2 --batch-size 2 --workers 0)
    TESTS=(-m cuda tests/test_on_device.py)  # all skipped: checks the call, CI runs the rest
    BENCH_VIDEOS=6
    WARMUP=1
    FAST=fp32  # this CPU emulates bf16 (a bf16 row alone takes minutes): fp32 rows only
    SWEEP=(1)
    BACKEND=gloo
fi
DATA=$WORK/data
RUN=$WORK/train
D=(--device "$DEVICE")

gpu_setup
step tests 240 env TC3D_TEST_DEVICE="$DEVICE" "$PYTHON" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
step synth 120 "${TC3D[@]}" synth "$DATA" "${SYNTH[@]}" --workers "$CORES" --seed 0 --json
# From scratch at full width (no full-width pretrained backbone ships yet); the step's log
# lines (RUN/log.jsonl) hold steps_per_s and data_wait.
step train 240 env TC3D_MEMORY_FORMAT=channels_last "${TC3D[@]}" train --data "$DATA" \
    --out "$RUN" --init scratch --amp bf16 --seed 0 "${TRAIN[@]}" "${D[@]}" --json
MODEL=$RUN/best.pt
mapfile -t VIDEOS < <(find "$DATA" -name '*.avi' 2> /dev/null | sort | head -n "$BENCH_VIDEOS")
# (with --keep-going after a failed synth: the steps below fail on a missing file, recorded)
[ ${#VIDEOS[@]} -ge 3 ] || VIDEOS=("$DATA/missing.avi" "$DATA/missing.avi" "$DATA/missing.avi")
step test 120 "${TC3D[@]}" test --model "$MODEL" --data "$DATA" --workers 4 "${D[@]}" --json
step predict 60 "${TC3D[@]}" predict "${VIDEOS[@]:0:3}" --model "$MODEL" "${D[@]}" --json
step stream 90 "${TC3D[@]}" stream "${VIDEOS[0]}" --model "$MODEL" "${D[@]}" --json
step cam 60 "${TC3D[@]}" cam "${VIDEOS[1]}" --model "$MODEL" --out "$WORK/cam" "${D[@]}" --json

# Table IV on this machine: a fresh full-width Res3D-18 (speed does not depend on the weights)
# over the same videos in every row; each row also times decoding alone and the model alone.
mkdir -p "$WORK/bench_videos"
for v in "${VIDEOS[@]}"; do ln -sf "$v" "$WORK/bench_videos/$(basename "$v")"; done
bench() {  # bench NAME PRECISION WORKERS [ENV...]
    local name=$1 precision=$2 workers=$3
    shift 3
    step "bench_$name" 120 env "$@" "${TC3D[@]}" bench --width "$WIDTH" \
        --videos "$WORK/bench_videos" --precision "$precision" --workers "$workers" \
        --warmup "$WARMUP" --breakdown "${D[@]}" --json
}
bench fp32 fp32 "$CORES"
if [ "$FAST" = bf16 ]; then
    bench bf16 bf16 "$CORES"
    bench bf16_channels_last bf16 "$CORES" TC3D_MEMORY_FORMAT=channels_last
fi
for w in "${SWEEP[@]}"; do  # fewer reader threads (the rows above have one per core)
    bench "sweep_w$w" "$FAST" "$w"
done

# DistributedDataParallel under torchrun with one process: the nccl (gloo on CPU) process group
step ddp 180 "$PYTHON" -m torch.distributed.run --nproc-per-node 1 --master-port 29533 \
    -m tc3d train --data "$DATA" --out "$WORK/ddp" --init scratch --amp bf16 "${DDP[@]}" \
    "${D[@]}" --json
step ddp_backend 30 "$PYTHON" -c "
import json, sys
r = json.loads(open('$WORK/ddp.out').read().strip().splitlines()[-1])
d = r.get('distributed') or {}
print(json.dumps(d))
sys.exit(0 if d.get('backend') == '$BACKEND' and d.get('world') == 1 else 1)"

gpu_finish
