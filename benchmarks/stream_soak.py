"""Stamina of ``tc3d stream``: one long paced run over a looped video, resident memory sampled.

Runs ``tc3d stream VIDEO --realtime --loop --json --max-seconds S`` (default model ``motion``,
default precision and stride) as a child process and samples its resident set size from
``/proc/PID/status`` every few seconds. Every sample is appended to ``OUT/rss.jsonl`` as it is
taken and every decision line to ``OUT/stream.jsonl``, so an interrupted run keeps what it
measured and ``--report`` recomputes the result from those files. The bar: mean RSS over the
last 10 minutes within 5% of the mean over minutes 5-15.

    python benchmarks/stream_soak.py OUT [--video V] [--minutes 60] [--model motion]
    python benchmarks/stream_soak.py OUT --report     # result and plot from OUT's files

Writes ``OUT/soak.json`` (the result, with the stream's summary) and ``OUT/soak_rss.png``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

# ../shared/real-video beside the checkout (or beside the folder of worktrees)
HERE = Path(__file__).resolve()
REAL = next(
    (
        c
        for p in HERE.parents[1:4]
        if (c := p.parent / "shared/real-video/clips/vtest.avi").exists()
    ),
    Path("vtest.avi"),
)


def rss_mib(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB (None once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def run(args, out: Path) -> None:
    cmd = [sys.executable, "-m", "tc3d", "stream", args.video, "--model", args.model,
           "--realtime", "--loop", "--json", "--max-seconds", str(args.minutes * 60)]  # fmt: skip
    cmd += args.extra
    (out / "command.json").write_text(json.dumps({"command": cmd, "started": time.time()}))
    with open(out / "stream.jsonl", "w") as lines, open(out / "rss.jsonl", "w") as samples:
        log = open(out / "stderr.log", "w")  # noqa: SIM115 (closed when the child ends)
        child = subprocess.Popen(cmd, stdout=lines, stderr=log)
        start = time.monotonic()
        while child.poll() is None:
            mib = rss_mib(child.pid)
            if mib is not None:
                samples.write(json.dumps({"s": round(time.monotonic() - start, 1), "rss_mib": mib}))
                samples.write("\n")
                samples.flush()
            time.sleep(args.interval)
        log.close()
    if child.returncode:
        print(f"tc3d stream exited with {child.returncode}", file=sys.stderr)


def report(out: Path) -> dict:
    samples = [json.loads(line) for line in (out / "rss.jsonl").read_text().splitlines() if line]
    end = samples[-1]["s"]

    def mean(lo: float, hi: float) -> float:
        window = [x["rss_mib"] for x in samples if lo <= x["s"] < hi]
        return sum(window) / len(window) if window else float("nan")

    early, late = mean(300, 900), mean(end - 600, end + 1)
    late_max = max(x["rss_mib"] for x in samples if x["s"] >= end - 600)
    lines = (out / "stream.jsonl").read_text().splitlines()
    summary = json.loads(lines[-1]).get("summary") if lines else None
    result = {
        "minutes": round(end / 60, 1),
        "samples": len(samples),
        "rss_mib_minute_1": next((x["rss_mib"] for x in samples if x["s"] >= 60), None),
        "rss_mib_minutes_5_15": round(early, 1),
        "rss_mib_last_10_minutes": round(late, 1),
        "rss_mib_last_10_minutes_max": round(late_max, 1),
        "change_percent": round(100 * (late / early - 1), 2),
        "passes": end >= 1500 and abs(late / early - 1) <= 0.05,
        "summary": summary,
    }
    (out / "soak.json").write_text(json.dumps(result, indent=1))
    plot(samples, early, out / "soak_rss.png")
    return result


def plot(samples: list[dict], early: float, path: Path) -> None:
    from tc3d.figures import save_figure

    def draw(fig, ax) -> None:
        ax.plot([x["s"] / 60 for x in samples], [x["rss_mib"] for x in samples], lw=1)
        band = (early * 0.95, early * 1.05)
        ax.axhspan(*band, color="g", alpha=0.15, label="±5% of minutes 5-15")
        ax.set_xlabel("minutes")
        ax.set_ylabel("resident memory (MiB)")
        ax.set_ylim(0, max(x["rss_mib"] for x in samples) * 1.15)
        ax.legend(loc="lower right")
        ax.set_title("tc3d stream --realtime --loop over vtest.avi")

    save_figure(path, draw, (7, 3))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--video", default=str(REAL))
    p.add_argument("--model", default="motion")
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--report", action="store_true", help="only recompute the result")
    p.add_argument("extra", nargs="*", help="more tc3d stream flags (after --)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.report:
        run(args, out)
    print(json.dumps({k: v for k, v in report(out).items() if k != "summary"}))


if __name__ == "__main__":
    main()
