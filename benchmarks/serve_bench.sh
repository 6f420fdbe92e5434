#!/usr/bin/env bash
# docs/BENCHMARKS.md, "The web page": tc3d serve's upload-to-labels time and requests/s under
# four concurrent clients, for the shipped width-0.25 'motion' (fp32, int8) and a full-width
# int8 model (random weights: no trained full-width model exists here; speed does not depend
# on the weights). One JSON line per configuration in OUT/serve_bench.jsonl.
#
#   bash benchmarks/serve_bench.sh [OUT]        # from the repository root, venv active
set -euo pipefail
out=${1:-serve_bench}
mkdir -p "$out"
[ -f "$out/full.pt" ] || python benchmarks/make_fullwidth_checkpoint.py "$out/full.pt"
lscpu | grep -E "^Model name|^CPU\(s\)"
uptime
: > "$out/serve_bench.jsonl"
for config in "motion fp32" "motion int8" "$out/full.pt int8"; do
    set -- $config
    python benchmarks/serve_bench.py --model "$1" --precision "$2" | tail -1 \
        >> "$out/serve_bench.jsonl"
done
uptime
