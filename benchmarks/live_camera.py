"""The "Live" figure: the page's camera mode in headless Chromium with a fake camera playing a
real clip, for minutes, at the default model and precision (docs/BENCHMARKS.md, "Live camera").

Starts ``tc3d serve`` (default model ``motion``, default precision) on a free loopback port,
makes a ``.y4m`` of a real clip from ``../shared/real-video/clips`` (320x240, 30 fps; Chromium
loops it), clicks "Start camera" and reads what the page measured (``window.tc3dLive``): the
seconds from the click to the first label, every decision's ``latency_ms`` (the server's: from
the arrival of the clip's last frame to the decision), the page's round trip (from sending the
frame to showing its decision), frames dropped. Every ``--every`` seconds it samples the
server's resident memory (``/proc/PID/status``), so that memory can be seen to stay flat.

    python benchmarks/live_camera.py --minutes 10 --out live.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from live_harness import decode, fake_camera_chromium, real_clips, write_y4m  # noqa: E402
from serve_harness import start_server  # noqa: E402

READ = ("const l = window.tc3dLive; return {first: l.first, decisions: l.decisions, "
        "latencies: l.latencies, roundTrips: l.roundTrips, dropped: l.dropped, "
        "skipped: l.skipped, sent: l.sent, label: l.last && l.last.label}")  # fmt: skip


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def measure(driver, server, minutes: float, every: float) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(server.url)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return info.models.length"))
    driver.find_element(By.ID, "camera").click()
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(READ)["first"] is not None)
    first = driver.execute_script(READ)["first"]
    start, samples = time.time(), []
    while time.time() - start < minutes * 60:
        time.sleep(every)
        s = driver.execute_script(READ)
        samples.append({"t": round(time.time() - start, 1), "rss_mib": rss_mib(server.proc.pid),
                        "decisions": s["decisions"], "dropped": s["dropped"] + s["skipped"],
                        "label": s["label"]})  # fmt: skip
        print(json.dumps(samples[-1]), file=sys.stderr)
    s = driver.execute_script(READ)
    return {"first_label_s": first, "final": s, "samples": samples}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--every", type=float, default=10, help="seconds between memory samples")
    p.add_argument("--clip", default="v_SoccerJuggling_g23_c01.avi")
    p.add_argument("--model", default=None, help="served model (default: tc3d serve's, motion)")
    p.add_argument("--precision", default=None)
    p.add_argument("--out", default=None, help="write the JSON here too")
    args = p.parse_args()
    flags = [f for k in ("model", "precision") if getattr(args, k)
             for f in (f"--{k}", getattr(args, k))]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="tc3d-live-") as tmp:
        y4m = write_y4m(Path(tmp) / "camera.y4m", decode(real_clips() / args.clip, width=320))
        server = start_server(*flags, "--teach-dir", str(Path(tmp) / "teach"))
        driver = fake_camera_chromium(y4m, Path(tmp) / "profile")
        try:
            r = measure(driver, server, args.minutes, args.every)
        finally:
            driver.quit()
            server.stop()
    f, samples = r["final"], r["samples"]
    rss = [s["rss_mib"] for s in samples]
    third = max(1, len(rss) // 3)
    lat, trip = f["latencies"], f["roundTrips"]
    summary = {
        "clip": args.clip, "minutes": args.minutes, "model": args.model or "motion",
        "precision": args.precision or "default",
        "first_label_s": round(r["first_label_s"], 3), "decisions": f["decisions"],
        "frames_sent": f["sent"], "dropped": f["dropped"] + f["skipped"],
        "latency_ms_p50": pct(lat, 50), "latency_ms_p95": pct(lat, 95),
        "round_trip_ms_p50": pct(trip, 50), "round_trip_ms_p95": pct(trip, 95),
        "rss_mib_first_third": float(np.mean(rss[:third])),
        "rss_mib_last_third": float(np.mean(rss[-third:])),
        "rss_mib_max": max(rss), "samples": samples,
    }  # fmt: skip
    line = json.dumps(summary)
    if args.out:
        Path(args.out).write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
