"""tc3d serve under load: time from upload to labels, and requests/s held by concurrent clients.

Starts ``tc3d serve --model M --precision P`` on a free loopback port (as a user would), then
over real HTTP with a 10 s 320x240 video (rendered by the synthetic set's code, 250 frames):

* upload to labels: the wall time of one ``POST /api/predict`` (labels + timeline, what an API
  client gets) and of the page's request (``cam=1``: + the CAM animation), median of
  ``--repeats`` after one warm-up, with the server's own split (labels, timeline, CAM);
* throughput: ``--clients`` threads each send ``--requests`` API uploads at once; requests/s =
  all requests / wall time, every answer checked (HTTP 200 and the same label as alone).

Prints one JSON object (last line of stdout).

    python benchmarks/serve_bench.py --model motion [--precision fp32] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_harness import post_video, start_server  # noqa: E402


def machine() -> dict:
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in cpu.splitlines()
                 if line.startswith("Model name")), "unknown")  # fmt: skip
    return {"cpu": name, "cores": os.cpu_count(), "load_average": os.getloadavg()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="motion")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--requests", type=int, default=5, help="per client")
    args = p.parse_args()
    from tc3d.synthetic.synth import VideoSpec, write_video

    before = machine()
    with tempfile.TemporaryDirectory(prefix="tc3d-serve-bench-") as tmp:
        video = Path(tmp) / "ten_seconds_320x240.avi"
        write_video(VideoSpec("RunThenLongJump", 1, 1, 11, 250), video)
        t0 = time.perf_counter()
        server = start_server("--model", args.model, "--precision", args.precision)
        startup = time.perf_counter() - t0
        try:
            status, first = post_video(server.url, video)  # warm-up
            assert status == 200, first
            label = first["results"][0]["labels"][0]["label"]
            runs: dict[str, list] = {"api": [], "page": []}
            for kind, extra in (("api", {}), ("page", {"cam": "1"})):
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    status, r = post_video(server.url, video, **extra)
                    runs[kind].append((time.perf_counter() - t0, r["timing"]))
                    assert status == 200 and r["results"][0]["labels"][0]["label"] == label
            answers: list = []
            gate = threading.Barrier(args.clients + 1)

            def client():
                gate.wait()
                for _ in range(args.requests):
                    status, r = post_video(server.url, video)
                    ok = status == 200 and r["results"][0]["labels"][0]["label"] == label
                    answers.append(ok)

            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for t in threads:
                t.start()
            gate.wait()
            t0 = time.perf_counter()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            server.stop()

    def med(kind: str, key: str | None = None) -> float:
        return statistics.median(w if key is None else t.get(key, 0.0) for w, t in runs[kind])

    result = {
        "model": args.model,
        "precision": args.precision,
        "video": {"frames": 250, "width": 320, "height": 240, "seconds": 10.0},
        "label": label,
        "startup_s": startup,
        "api_upload_to_labels_s": med("api"),
        "page_upload_to_result_s": med("page"),
        "server_labels_s": med("api", "labels_s"),
        "server_timeline_s": med("api", "timeline_s"),
        "server_cam_s": med("page", "cam_s"),
        "repeats": args.repeats,
        "clients": args.clients,
        "requests": len(answers),
        "errors": answers.count(False),
        "requests_per_s": len(answers) / wall,
        "machine_before": before,
        "machine_after": machine(),
    }
    print(
        f"{args.model} {args.precision}: upload->labels {result['api_upload_to_labels_s']:.2f} s "
        f"(labels {result['server_labels_s']:.2f} s + timeline "
        f"{result['server_timeline_s']:.2f} s), page {result['page_upload_to_result_s']:.2f} s; "
        f"{args.clients} clients: {result['requests_per_s']:.2f} requests/s, "
        f"{result['errors']} errors of {len(answers)}",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
