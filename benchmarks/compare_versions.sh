#!/usr/bin/env bash
# Same figures and same speed before and after a refactor, in one run:
#
#   bash benchmarks/compare_versions.sh OLD_REV [OUT]      # from the repository root
#
# OLD_REV is checked out in a temporary git worktree; both versions run from this venv with
# PYTHONPATH pointing at their src/. 1) Every command that prints --json runs on both versions
# with the same inputs: synth (all three kinds), data check, a 40-step training run from
# scratch, test (fp32, int8, allclips with 10 crops), predict, compress (one-shot and with
# fine-tuning), inspect, stream, features, similarity, anomaly train/test/score, cam, tag,
# export, pretrain and models. Their JSON must be identical once timings and the side's own
# paths are taken out, the synthetic videos byte for byte, the weights and training logs
# bit for bit. (demo and serve are left out: demo is these commands in sequence and takes
# eight minutes; serve prints no JSON and is covered by the browser tests.)
# 2) tc3d bench (full width, int8, with the baseline) twice per version, interleaved
# (old, new, old, new) so that the machine's noise hits both alike.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: compare_versions.sh OLD_REV [OUT]}
OUT=$(realpath -m "${2:-runs/compare}")
PY=${PY:-.venv/bin/python}
[[ $PY = /* ]] || PY=$PWD/$PY  # absolute (commands run in the side's folder), link kept
BENCH=${BENCH:-1}  # BENCH=0 skips the timing part
mkdir -p "$OUT"
tree=$(mktemp -d)
git worktree add -q --detach "$tree" "$OLD"
trap 'git worktree remove --force "$tree"' EXIT
src() { if [ "$1" = old ]; then echo "$tree/src"; else echo "$PWD/src"; fi; }

for side in old new; do
  o="$OUT/$side"; rm -rf "$o"; mkdir -p "$o/json"
  echo "== $side: $(src $side)" >&2
  run() {  # run NAME ARGS...: the command's last stdout line goes to json/NAME.json
    local name=$1; shift
    (cd "$o" && PYTHONPATH=$(src $side) $PY -m tc3d "$@" --json 2>>"$o/stderr" | tail -1 \
      > "json/$name.json") || echo "$side: $name exited $?" >&2
  }
  run synth synth data --per-class 4 --seed 0
  run synth_surveillance synth surv --kind surveillance --per-class 2 --seed 0
  run synth_pairs synth pairs --kind pairs --per-class 10 --seed 0
  (cd "$o" && find data surv pairs -type f ! -name .tc3d_synth.json | sort | xargs sha256sum > videos.sha256)
  run data_check data check --data data
  run train train --data data --out run --init scratch --width 0.25 --crop 64 --iters 40 \
    --eval-every 40 --seed 0
  run test test --model run/last.pt --data data
  run test_int8 test --model run/last.pt --data data --precision int8
  run test_allclips test --model run/last.pt --data data --protocol allclips --crops 10
  # (globs in a process substitution: no pipe that SIGPIPE or pipefail could end)
  mapfile -t videos < <(cd "$o" && printf '%s\n' data/*/*.avi)
  three=("${videos[@]:0:3}")
  run predict predict "${three[@]}" --model run/last.pt
  run compress_oneshot compress --model run/last.pt --out oneshot.tc3d
  run compress compress --model run/last.pt --out run.tc3d --data data --epochs 0.25
  run inspect inspect run.tc3d
  (cd "$o" && PYTHONPATH=$(src $side) $PY -m tc3d stream "${three[0]}" --model run/last.pt \
    --json 2>>stderr > json/stream.jsonl) || echo "$side: stream failed" >&2
  run features features --model run/last.pt --data data --layer pool5 --out feats.npz
  run similarity similarity --model motion --pairs pairs/pairs.txt --videos pairs
  run anomaly_train anomaly train --data surv --out anomaly --iters 20 --eval-every 20 --seed 0
  run anomaly_test anomaly test --model anomaly/last.pt --data surv
  mapfile -t survs < <(cd "$o" && find surv -name '*.avi' -o -name '*.mp4' | sort)
  run anomaly_score anomaly score "${survs[0]}" --model anomaly/last.pt --plot score.png
  run cam cam "${three[0]}" --model run/last.pt --out cam
  run tag tag data --model run/last.pt --out tags.csv
  run export export --model run/last.pt --format onnx --out model.onnx
  run pretrain pretrain --out pre --width 0.25 --iters 6 --batch-size 4 --eval-every 6 \
    --workers 1 --seed 0
  run models models
done

$PY benchmarks/compare_outputs.py "$OUT" "$(src old)" "$(src new)"

[ "$BENCH" = 0 ] && exit 0
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
