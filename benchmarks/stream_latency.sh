#!/usr/bin/env bash
# Online recognition budget: 4 sources paced at 25 fps, a decision every 8 frames,
# one shared model with batched inference. Reports decisions, p50/p95 latency and dropped
# frames for a full-width Res3D-18 (int8) and a width-0.25 one. Speed does not depend on the
# weights, so the models are fresh seeded ones saved as checkpoints (101 classes, S=3, k=8).
# Usage: bash benchmarks/stream_latency.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/tc3d_stream_bench}
PY=${PY:-.venv/bin/python}
TC3D=${TC3D:-.venv/bin/tc3d}
LOCK=${LOCK:-}  # a prefix for each timed run, e.g. LOCK="flock -x /tmp/tc3d-bench.lock"
mkdir -p "$WORK"
"$PY" - "$WORK" <<'PY'
import sys
from pathlib import Path
import torch
from tc3d.modelfile.checkpoint import save_model
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig
from tc3d.apps.bench import synthetic_videos
from tc3d.models.tc3d import TC3D, ModelConfig

work = Path(sys.argv[1])
for width in (1.0, 0.25):
    torch.manual_seed(0)
    model = TC3D(ModelConfig(101, width=width)).eval()
    save_model(work / f"width{width}.pt", model, [f"class{i:03d}" for i in range(101)],
               ClipSpec(SamplingConfig()))
synthetic_videos(4, work / "videos")
PY
for width in 1.0 0.25; do
    for precision in int8 fp32; do
        echo "== width $width $precision: 4 paced sources, stride 8" >&2
        $LOCK "$TC3D" stream "$WORK"/videos/bench_000{0,1,2,3}_175f.avi \
            --model "$WORK/width$width.pt" --stride 8 --realtime --precision $precision --json \
            | tail -1 | python3 -c "import json,sys; s=json.load(sys.stdin)['summary']; \
print(json.dumps({'width': $width, 'precision': '$precision', **{k: s[k] for k in \
('decisions','latency_ms_p50','latency_ms_p95','dropped_frames','frames','seconds')}}))"
    done
done
