#!/usr/bin/env bash
# Remakes the shipped model src/tc3d/weights/motion.tc3d, as recorded in
# docs/RESULTS.md ("The shipped backbone"). Safe to run again after an interruption: the
# pretraining resumes from runs/motion/last.pt and the finished steps are skipped.
#
#   bash benchmarks/pretrain_motion.sh            # ~45 min on 2 idle CPU cores
#   DEVICE=cuda WIDTH=1.0 bash benchmarks/pretrain_motion.sh   # a full-width one on a GPU
set -euo pipefail
cd "$(dirname "$0")/.."
TC3D=${TC3D:-.venv/bin/tc3d}
PY=${PY:-.venv/bin/python}
RUN=${RUN:-runs/motion}
WIDTH=${WIDTH:-0.25}
ITERS=${ITERS:-3600}
STOP=${STOP:-3600}
DEVICE=${DEVICE:-auto}
OUT=${OUT:-src/tc3d/weights/motion.tc3d}

# 1. pretraining on procedural clips rendered on the fly (resumable)
$TC3D pretrain --out "$RUN" --width "$WIDTH" --iters "$ITERS" --stop-at "$STOP" --seed 0 \
    --device "$DEVICE" --resume --json | tail -1 > "$RUN/pretrain.json"
# 2. deep compression without data: k-means sharing (256 centroids per conv layer, 32 for the
#    classifier) and Huffman coding; no pruning, so the features are kept as they are
$TC3D compress --model "$RUN/last.pt" --out "$RUN/motion.tc3d" --stages quantize,huffman \
    --json | tail -1 > "$RUN/compress.json"
# 3. its int8 calibration, made on 8 clips of its own pretraining stream, into the header
"$PY" benchmarks/calibrate_motion.py "$RUN/motion.tc3d" --seed 0
$TC3D inspect "$RUN/motion.tc3d" --json | tail -1 > "$RUN/inspect.json"
cp "$RUN/motion.tc3d" "$OUT.tmp" && chmod 644 "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo "wrote $OUT ($(stat -c %s "$OUT") bytes)"
