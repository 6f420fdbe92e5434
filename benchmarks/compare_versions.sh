#!/usr/bin/env bash
# Same figures and same speed before and after a refactor, in one run:
#
#   bash benchmarks/compare_versions.sh OLD_REV [OUT]      # from the repository root
#
# OLD_REV is checked out in a temporary git worktree; both versions run from this venv with
# PYTHONPATH pointing at their src/. 1) A 40-step training run from scratch on data/synth,
# then tc3d test (fp32 and int8) and tc3d predict: weights, logs and JSON must be identical
# (timings aside). 2) tc3d bench (full width, int8, with the baseline) twice per version,
# interleaved (old, new, old, new) so that the machine's noise hits both alike.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: compare_versions.sh OLD_REV [OUT]}
OUT=${2:-runs/compare}
PY=${PY:-.venv/bin/python}
DATA=${DATA:-data/synth}
mkdir -p "$OUT"
[ -d "$DATA" ] || $PY -m tc3d synth "$DATA" --per-class 24 --seed 0
tree=$(mktemp -d)
git worktree add -q --detach "$tree" "$OLD"
trap 'git worktree remove --force "$tree"' EXIT
src() { if [ "$1" = old ]; then echo "$tree/src"; else echo "$PWD/src"; fi; }
videos=("$DATA"/*/*.avi)
video1=${videos[0]}
video2=${videos[-1]}

for side in old new; do
  o="$OUT/$side"; rm -rf "$o"; mkdir -p "$o"
  run() { PYTHONPATH=$(src $side) $PY -m tc3d "$@" 2>>"$o/stderr"; }
  run train --data "$DATA" --out "$o/run" --init scratch --width 0.25 --crop 64 --iters 40 \
    --eval-every 40 --seed 0 --json | tail -1 > "$o/train.json"
  run test --model "$o/run/last.pt" --data "$DATA" --json | tail -1 > "$o/test.json"
  run test --model "$o/run/last.pt" --data "$DATA" --precision int8 --json | tail -1 \
    > "$o/test_int8.json"
  run predict "$video1" "$video2" --model "$o/run/last.pt" --json | tail -1 > "$o/predict.json"
done
$PY - "$OUT" <<'PY'
import json, re, sys
from pathlib import Path
import torch
out = Path(sys.argv[1])
def strip(d):  # timings and paths differ by construction
    if isinstance(d, dict):
        return {k: strip(v) for k, v in d.items() if k not in ("seconds", "fps", "model", "file", "calibration")}
    return [strip(x) for x in d] if isinstance(d, list) else d
for name in ("test", "test_int8", "predict"):
    a, b = (strip(json.loads((out / s / f"{name}.json").read_text())) for s in ("old", "new"))
    print(f"{name}: {'identical' if a == b else 'DIFFERENT'}")
a, b = (torch.load(out / s / "run" / "last.pt", weights_only=False)["model"] for s in ("old", "new"))
print("weights:", "identical" if all(torch.equal(a[k], b[k]) for k in a) else "DIFFERENT")
logs = [re.sub(r'"seconds": [0-9.e-]+', "", (out / s / "run" / "log.jsonl").read_text()) for s in ("old", "new")]
print("training log:", "identical" if logs[0] == logs[1] else "DIFFERENT")
PY

lscpu | grep "^Model name"
for r in 1 2; do
  for side in old new; do
    uptime
    PYTHONPATH=$(src $side) $PY -m tc3d bench --width 1.0 --synthetic 20 \
      --synthetic-dir "$OUT/bench_videos" --precision int8 --baseline --json 2>/dev/null \
      | tail -1 > "$OUT/bench_${side}_$r.json"
    $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], \
'fps %.0f clips/s %.1f p50 %.0f ms baseline fps %.0f speedup %.1fx agreement %.0f%%' % (d['fps'], \
d['clips_per_s'], d['latency_ms_p50'], d['baseline']['fps'], d['speedup'], d['agreement']))" \
      "$OUT/bench_${side}_$r.json" "$side" "$r"
  done
done
