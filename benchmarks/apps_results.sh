#!/usr/bin/env bash
# Reproduces docs/RESULTS.md (Tables VI and VII analogs, CAM images) on synthetic data.
# Usage: bash benchmarks/apps_results.sh [WORKDIR] [BENCHMARK_RUNS]
#   BENCHMARK_RUNS: the folder of benchmarks/synthetic_tables.sh (its s3_avg and s1 models are
#   the feature extractors of Table VII and the initialisation of Table VI's models).
# Finished steps are skipped when the script is started again.
set -euo pipefail
WORK=${1:-runs/apps}
TABLES=${2:-runs/synthetic}
TC3D=${TC3D:-tc3d}
mkdir -p "$WORK"

# Table VI: anomaly detection. 192 static-camera videos of 30-60 s (96 with 3-8 s anomalies),
# 144 train / 48 test. Same recipe for every model, only S differs (max fusion: a video is
# anomalous when one of its segments is).
[ -f "$WORK/surv/Anomaly_Test.txt" ] || $TC3D synth "$WORK/surv" --kind surveillance \
  --per-class 24 --json > "$WORK/surv.json"
RECIPE=(--width 0.25 --crop 64 --optimizer adamw --lr 5e-4 --weight-decay 0.05 --dropout 0
        --warmup 20 --iters 400 --lr-steps 300,360 --eval-every 400 --seed 0 --fusion max
        --init "$TABLES/s3_avg/best.pt" --freeze 0 --head-lr-scale 1)  # as recorded: all layers
for S in 6 3 1; do
  name=anomaly_s$S
  [ -f "$WORK/$name/test.json" ] && continue
  $TC3D anomaly train --data "$WORK/surv" --out "$WORK/$name" "${RECIPE[@]}" --segments $S \
    --resume --json > "$WORK/$name.train.json"
  $TC3D anomaly test --model "$WORK/$name/last.pt" --data "$WORK/surv" --stride 16 --json \
    > "$WORK/$name/test.json"
done
for S in 6 1; do
  $TC3D anomaly score "$WORK/surv/Falling/Falling002_x264.mp4" \
    --model "$WORK/anomaly_s$S/last.pt" --plot "$WORK/timeline_s$S.png" --json \
    > "$WORK/score_s$S.json"
done

# Table VII: same/different action on 8 classes the models never saw (300 pairs, 10 folds).
[ -f "$WORK/pairs/pairs.txt" ] || $TC3D synth "$WORK/pairs" --kind pairs --json \
  > "$WORK/pairs.json"
for m in s3_avg s1; do
  [ -f "$WORK/similarity_$m.json" ] && continue
  $TC3D similarity --model "$TABLES/$m/best.pt" --pairs "$WORK/pairs/pairs.txt" \
    --videos "$WORK/pairs" --roc "$WORK/roc_$m.png" --json > "$WORK/similarity_$m.json"
done

# CAM images (Figure 3 analog) from the benchmark's test videos.
for v in SlideLeft/v_SlideLeft_g01_c01.avi RunThenLongJump/v_RunThenLongJump_g01_c01.avi; do
  n=$(basename "$v" .avi)
  $TC3D cam "$TABLES/data/$v" --model "$TABLES/s3_avg/best.pt" --out "$WORK/cam/$n" \
    --size 160 --json > "$WORK/cam_$n.json"
done
