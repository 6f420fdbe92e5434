"""``tc3d tag`` over 200 short videos: locally, on a one-node and on a two-node Ray cluster of
this machine, in one run; Ray's overhead in % of the local time.

    python benchmarks/ray_tag.py [--videos 200] [--model motion] [--repeats 2]

Needs root (each cluster runs in its own loopback-only network namespace, as in the tests) and
``pip install 'tc3d[ray]'``. Both clusters are started first and left idle between runs; then,
in each repeat, the three settings run one after the other (interleaved, so that the machine's
noise hits them alike) on a fresh output file. Each run is timed by a driver process, through
the same functions as the command line (``tag_folder`` / ``tc3d.cluster.tag_on_ray``):

* ``total_s``: from the call to its return, loading the model (on every worker) included;
* ``steady_s``: from the first result to the last, i.e. the work once the workers are up,
  and ``videos_per_s``, the videos done in that time per second.

Both clusters have the machine's 2 CPUs: the one-node cluster as one node of 2 CPUs, the
two-node cluster as two nodes of 1 CPU. They run one worker (one model) per CPU, tc3d's
default; the one-node cluster also runs once with a single worker of 2 CPUs, the local run's
layout (one process, 2 threads), which isolates what Ray itself costs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def drive(target: str, model: str, videos: str, out: str, cpus: str = "1") -> dict:
    """One timed ``tag`` run in this process (``target``: ``local`` or a Ray address, with
    workers of ``cpus`` CPUs each)."""
    first: list[tuple[float, int, float]] = []  # (time, videos done, CPU time) at the first

    def progress(done: int, total: int) -> None:
        if done and not first:
            first.append((time.perf_counter(), done, time.process_time()))

    start = time.perf_counter()
    if target == "local":
        import tc3d
        from tc3d.apps.tag import tag_folder

        m = tc3d.load_model(model)
        result = tag_folder(m, videos, out, progress=progress)
        workers = 1
    else:
        from tc3d.cluster import tag_on_ray

        result = tag_on_ray(target, model, {}, videos, out, progress=progress,
                            cpus_per_worker=float(cpus))  # fmt: skip
        workers = result["cluster"]["workers"]
    end, cpu = time.perf_counter(), time.process_time()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"tagged": result["tagged"], "failed": len(result["failed"]), "workers": workers,
            "driver_rss_mb": round(rss_mb), "total_s": end - start, "steady_s": end - first[0][0],
            "steady_videos": result["tagged"] + len(result["failed"]) - first[0][1],
            "driver_cpu_s": cpu - first[0][2]}  # fmt: skip


def cost_split(model: str, videos: str) -> dict:
    """Per video, on one thread: reading and preparing its clips (the selective reader), and
    the model on them (batched as the engine batches them), in ms; and the mean file size."""
    import torch

    import tc3d
    from tc3d.datasets.files import list_videos
    from tc3d.video.clips import load_clips

    torch.set_num_threads(1)
    m = tc3d.load_model(model)
    paths = [p for p in list_videos(videos) if p.stat().st_size > 1024]  # no broken files
    t = time.perf_counter()
    clips = [load_clips(p, None, m.clip, None)[0][0] for p in paths]  # (n, 3, k, H, W)
    read = time.perf_counter() - t
    engine = m.engine()
    engine.clip_scores(clips[0])  # first call: allocations, kernel selection
    t = time.perf_counter()
    for i in range(0, len(clips), m.batch_size):  # batched across videos, as the engine does
        engine.clip_scores(torch.cat(clips[i : i + m.batch_size]))
    run = time.perf_counter() - t
    n = len(paths)
    return {"read_ms": round(1000 * read / n, 1), "model_ms": round(1000 * run / n, 1),
            "clips_per_video": round(sum(len(c) for c in clips) / n, 2),
            "file_kb": round(sum(Path(p).stat().st_size for p in paths) / n / 1024, 1)}  # fmt: skip


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(x.split()[1]) / 1024 for x in status.splitlines() if x.startswith("VmRSS")), 0)


def _rows(path: Path) -> dict[str, list[str]]:
    lines = path.read_text().splitlines()[1:]  # CSV, header first
    return {x.split(",")[0]: x.split(",")[1::2] for x in lines}  # video -> labels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=200, help="number of videos (5 classes)")
    p.add_argument("--model", default="motion")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print one JSON line at the end")
    args = p.parse_args()

    sys.path.insert(0, str(TESTS))
    from netns import Namespace
    from raycluster import RayCluster

    from tc3d.synthetic.synth import make_synthetic_dataset

    work = Path(tempfile.mkdtemp(prefix="tc3d-raybench-"))
    stack: list = []
    try:
        data = make_synthetic_dataset(work / "videos", classes=5, per_class=args.videos // 5)
        videos = str(data.root)
        print(f"{data.videos} videos in {videos}", file=sys.stderr)
        clusters = {}
        for name, nodes, cpus in (("one node", 1, 2), ("two nodes", 2, 1)):
            ns = Namespace()
            stack.append(ns)
            t = time.perf_counter()
            clusters[name] = RayCluster(ns, work / f"ray{nodes}", nodes=nodes, cpus=cpus)
            print(f"{name}: cluster up in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        settings = {  # name: (cluster, CPUs per worker)
            "local": (None, 1),
            "one node, one 2-CPU worker": ("one node", 2),
            "one node": ("one node", 1),
            "two nodes": ("two nodes", 1),
        }
        runs: dict[str, list[dict]] = {k: [] for k in settings}
        for r in range(args.repeats):
            for i, name in enumerate(runs):
                out = work / f"run{i}_{r}.csv"
                c = clusters.get(settings[name][0])
                driver = [sys.executable, str(Path(__file__).resolve()), "--drive",
                          c.address if c else "local", args.model, videos, str(out),
                          str(settings[name][1])]  # fmt: skip
                enter, env = (c.ns.enter, c.env) if c else ([], os.environ)
                proc = subprocess.Popen(enter + driver, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
                worker_mb = 0.0
                while proc.poll() is None:  # the workers' memory, model loaded and working
                    if c:
                        worker_mb = max([worker_mb, *map(_rss_mb, c.workers())])
                    time.sleep(0.2)
                stdout, stderr = proc.communicate()
                if proc.returncode != 0:
                    raise SystemExit(f"{name}: {stderr[-2000:]}")
                run = json.loads(stdout.strip().splitlines()[-1])
                run["worker_rss_mb"] = round(worker_mb) if c else run["driver_rss_mb"]
                run["rows"] = _rows(out)
                runs[name].append(run)
                print(f"repeat {r + 1} {name}: {run['total_s']:.1f} s", file=sys.stderr)
        split = json.loads(subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--split", args.model, videos],
            capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        ).stdout.strip().splitlines()[-1])  # fmt: skip
        reference = runs["local"][0]["rows"]
        same = all(x["rows"] == reference for v in runs.values() for x in v)
        summary = {}
        for name, rs in runs.items():
            total = statistics.median(x["total_s"] for x in rs)
            steady = statistics.median(x["steady_s"] for x in rs)
            summary[name] = {"total_s": round(total, 2), "steady_s": round(steady, 2),
                             "videos_per_s": round(rs[0]["steady_videos"] / steady, 2),
                             "workers": rs[0]["workers"], "tagged": rs[0]["tagged"],
                             "threads_per_worker": settings[name][1] if name != "local"
                             else os.cpu_count(),
                             "worker_rss_mb": max(x["worker_rss_mb"] for x in rs),
                             "driver_rss_mb": max(x["driver_rss_mb"] for x in rs),
                             "driver_cpu_ms_per_video": round(statistics.median(
                                 1000 * x["driver_cpu_s"] / x["steady_videos"] for x in rs),
                                 2)}  # fmt: skip
        base = summary["local"]
        for s in summary.values():
            s["overhead_total_pct"] = round(100 * (s["total_s"] / base["total_s"] - 1), 1)
            s["overhead_steady_pct"] = round(100 * (s["steady_s"] / base["steady_s"] - 1), 1)
        print(f"\n{data.videos} videos, model {args.model}, median of {args.repeats} runs; "
              f"same labels everywhere: {same}")  # fmt: skip
        print("| setting | workers × threads | total s | vs local | steady s | videos/s | vs local "
              "| RSS per worker MB | driver MB |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, s in summary.items():
            print(f"| {name} | {s['workers']} × {s['threads_per_worker']} | {s['total_s']:.1f} | "
                  f"{s['overhead_total_pct']:+.1f}% | {s['steady_s']:.1f} | "
                  f"{s['videos_per_s']:.1f} | {s['overhead_steady_pct']:+.1f}% | "
                  f"{s['worker_rss_mb']} | {s['driver_rss_mb']} |")  # fmt: skip
        print(
            f"\nper video on one thread: reading {split['read_ms']} ms, model "
            f"{split['model_ms']} ms ({split['clips_per_video']} clips, files of "
            f"{split['file_kb']} KiB); driver CPU per video: "
            + ", ".join(f"{k} {v['driver_cpu_ms_per_video']} ms" for k, v in summary.items())
        )
        if args.json:
            print(json.dumps({"videos": data.videos, "same_labels": same, "runs": summary,
                              "per_video": split}))  # fmt: skip
    finally:
        for c in locals().get("clusters", {}).values():
            c.stop()
        for ns in stack:
            ns.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--drive"]:
        print(json.dumps(drive(*sys.argv[2:7])))
    elif sys.argv[1:2] == ["--split"]:
        print(json.dumps(cost_split(*sys.argv[2:4])))
    else:
        main()
