# shellcheck shell=bash
# Sourced by benchmarks/gpu_check.sh and benchmarks/gpu_motion_full.sh: their flags, the set-up
# of a bare GPU machine (no network: wheels from .gpu-wheels/, made by benchmarks/gpu_wheels.sh),
# and `step`, which runs one command with a time limit, logs it and records its JSON.
#
# Flags: --device cuda|cpu (default cuda), --out DIR (default $OUT, else runs/NAME), --work DIR
# (scratch; default a temporary folder, removed at the end), --keep-going (run every step even
# after a failure; the script still exits 1 at the end).

PYTHON=${PYTHON:-python3}
TC3D=("$PYTHON" -m tc3d)
DEVICE=cuda
OUTDIR=${OUT:-}
WORK=
KEEP_GOING=0
STATUS=0
EXTRA_ARGS=()

gpu_parse_args() {  # gpu_parse_args NAME KIND "$@": the common flags; others in EXTRA_ARGS
    NAME=$1
    KIND=$2
    local name=$1
    shift 2
    while [ $# -gt 0 ]; do
        case $1 in
            --device) DEVICE=$2; shift 2 ;;
            --out) OUTDIR=$2; shift 2 ;;
            --work) WORK=$2; shift 2 ;;
            --keep-going) KEEP_GOING=1; shift ;;
            *) EXTRA_ARGS+=("$1"); shift ;;
        esac
    done
    case $DEVICE in cuda|cpu) ;; *) echo "--device must be cuda or cpu, not '$DEVICE'" >&2; exit 2 ;; esac
    OUTDIR=${OUTDIR:-runs/$name}
    mkdir -p "$OUTDIR"
    OUTDIR=$(cd "$OUTDIR" && pwd)
    if [ -z "$WORK" ]; then
        WORK=$(mktemp -d "${TMPDIR:-/tmp}/tc3d-$name.XXXXXX")
        trap 'rm -rf "$WORK"' EXIT
    fi
    mkdir -p "$WORK"
    WORK=$(cd "$WORK" && pwd)
    LOG=$OUTDIR/$name.log
    STEPS=$WORK/steps.jsonl
    : > "$LOG"
    : > "$STEPS"
    CORES=$(nproc)
    export PYTHONUNBUFFERED=1
    # The checkout's own tc3d comes first, installed or not (the install step below also
    # installs it, as a user would: it must work, but no step depends on it having worked).
    export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
    echo "$name: device $DEVICE, $CORES cores, out $OUTDIR, work $WORK" | tee -a "$LOG" >&2
}

# step NAME LIMIT_SECONDS COMMAND...: run with a time limit; record rc, time, JSON. A failure
# ends the run (see gpu_finish) unless --keep-going, or SOFT=1 for a step with a fallback.
step() {
    local name=$1 limit=$2
    shift 2
    local start=$EPOCHREALTIME rc=0
    echo "== $name (limit ${limit}s): $*" | tee -a "$LOG" >&2
    timeout --kill-after=15 "$limit" "$@" > "$WORK/$name.out" 2>> "$LOG" || rc=$?
    local seconds
    seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {print b - a}')
    cat "$WORK/$name.out" >> "$LOG"
    "$PYTHON" benchmarks/gpu_report.py record "$name" "$rc" "$seconds" "$WORK/$name.out" \
        >> "$STEPS"
    echo "   $name: exit $rc in ${seconds%.*} s" | tee -a "$LOG" >&2
    if [ "$rc" -ne 0 ]; then
        STATUS=1
        echo "FAILED: $name (exit $rc$([ "$rc" -eq 124 ] && echo ', over its time limit')); " \
            "the end of $LOG:" >&2
        tail -25 "$LOG" >&2
        [ "$KEEP_GOING" = 1 ] || [ "${SOFT:-0}" = 1 ] || gpu_finish
    fi
    return 0
}

gpu_setup() {  # the packages tc3d needs beside the machine's torch, from .gpu-wheels/ only
    if ! "$PYTHON" -c "import av, fvcore" 2> /dev/null; then
        if ! ls .gpu-wheels/*.whl > /dev/null 2>&1; then
            echo "PyAV or fvcore is missing and .gpu-wheels/ holds no wheels: run" \
                "'bash benchmarks/gpu_wheels.sh' on a machine with network and carry .gpu-wheels" >&2
            exit 1
        fi
        step wheels 120 "$PYTHON" -m pip install -q --no-index --no-deps --no-cache-dir \
            .gpu-wheels/*.whl
    fi
    if ! "$PYTHON" -m pip show -q tc3d > /dev/null 2>&1; then
        # --no-deps and no build isolation: nothing is downloaded, the machine's torch stays
        step install 120 "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation \
            -e .
    fi
    step env 60 "$PYTHON" benchmarks/gpu_report.py env --device "$DEVICE"
}

gpu_finish() {  # the summary JSON and table; exit 1 after any failure
    local rc=0
    "$PYTHON" benchmarks/gpu_report.py summary "$STEPS" "$OUTDIR/$NAME.json" --kind "$KIND" \
        | tee -a "$LOG" || rc=$?
    [ "$STATUS" = 0 ] && [ "$rc" = 0 ] || exit 1
    exit 0
}
