#!/usr/bin/env bash
# The paper's Table IV on this machine: full-width Res3D-18 (S=3, k=8, 112 crop), fps over the
# whole pipeline (open, decode, sample, model, fusion) on synthetic 7 s 320x240 25-fps videos.
# Each row is one `tc3d bench` run holding the benchmark lock exclusively; JSON lines go to $OUT.
# Usage: bash benchmarks/table4.sh [OUT.jsonl]   (about 10 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/table4.jsonl}
TC3D=${TC3D:-.venv/bin/tc3d}
LOCK=${LOCK:-}  # a prefix for each timed run, e.g. LOCK="flock -x /tmp/tc3d-bench.lock"
: > "$OUT"
row() {  # row NAME ARGS...
    local name=$1; shift
    echo "== $name: tc3d bench $*" >&2
    $LOCK "$TC3D" bench "$@" --json | tail -1 \
        | python3 -c "import json,sys; r=json.load(sys.stdin); r['row']='$name'; print(json.dumps(r))" >> "$OUT"
}
# The issue's headline: S clips, centre crop, int8, with the conventional pipeline in the same run.
row "S clips centre int8" --width 1.0 --synthetic 20 --precision int8 --baseline
row "S clips centre fp32" --width 1.0 --synthetic 20 --precision fp32
row "S clips centre bf16" --width 1.0 --synthetic 20 --precision bf16
row "all clips centre int8" --width 1.0 --synthetic 5 --precision int8 --protocol allclips
row "all clips multi-crop int8" --width 1.0 --synthetic 2 --precision int8 --protocol allclips --crops 10
row "S clips multi-crop int8" --width 1.0 --synthetic 5 --precision int8 --crops 10
python3 - "$OUT" <<'PY'
import json, sys
print(f"{'row':28} {'fps':>8} {'videos/s':>9} {'clips/s':>8} {'GFLOPs/video':>13} {'speedup':>8}")
for line in open(sys.argv[1]):
    r = json.loads(line)
    sp = f"{r['speedup']:.2f}" if "speedup" in r else "-"
    print(f"{r['row']:28} {r['fps']:8.0f} {r['videos_per_s']:9.2f} {r['clips_per_s']:8.1f} "
          f"{r['gflops_per_video']:13.1f} {sp:>8}")
PY
