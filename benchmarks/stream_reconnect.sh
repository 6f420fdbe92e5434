#!/usr/bin/env bash
# Reconnection of a network source: ffmpeg serves a real video (vtest.avi, looped, at its frame
# rate) as a live MPEG-TS over HTTP on 127.0.0.1; `tc3d stream URL` reads it; ffmpeg is
# stopped (the connection drops) and started again DOWN seconds later, twice; then stopped for
# good, so the stream gives up after --reconnect seconds. Prints the reconnect lines and the
# summary; the stream must exit 1 with one error line, not a traceback.
# Usage: bash benchmarks/stream_reconnect.sh [WORKDIR] [DOWN=3] [RECONNECT=10]
set -uo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/tc3d_reconnect}
DOWN=${2:-3}
RECONNECT=${3:-10}
PY=${PY:-.venv/bin/python}
VIDEO=${VIDEO:-../shared/real-video/clips/vtest.avi}
PORT=${PORT:-8099}
URL="http://127.0.0.1:$PORT/live.ts"
mkdir -p "$WORK"

serve() {  # one ffmpeg HTTP server for one client, in the background
    ffmpeg -nostdin -loglevel error -re -stream_loop -1 -i "$VIDEO" -an -c:v mpeg2video -q:v 4 \
        -f mpegts -listen 1 "$URL" &
    FFMPEG=$!
    sleep 1
}

serve
"$PY" -m tc3d stream "$URL" --model motion --stride 8 --reconnect "$RECONNECT" --json \
    > "$WORK/stream.jsonl" 2> "$WORK/stderr.log" &
STREAM=$!
for _ in 1 2; do
    sleep 12
    kill "$FFMPEG"; wait "$FFMPEG" 2>/dev/null
    echo "$(date -u +%T) ffmpeg stopped for $DOWN s" >&2
    sleep "$DOWN"
    serve
done
sleep 12
kill "$FFMPEG"; wait "$FFMPEG" 2>/dev/null
echo "$(date -u +%T) ffmpeg stopped for good" >&2
wait "$STREAM"
CODE=$?
grep '"reconnect"' "$WORK/stream.jsonl"
tail -1 "$WORK/stream.jsonl" | "$PY" -c "import json,sys; s=json.load(sys.stdin)['summary']; \
print(json.dumps({k: s[k] for k in ('decisions','dropped_frames','frames','seconds','reconnects')}))"
echo "exit code $CODE; stderr:"
cat "$WORK/stderr.log"
