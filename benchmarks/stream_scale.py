"""Scale of the online engine: N live 25-fps streams at once through one ``tc3d stream``.

Eight real clips from ``../shared/real-video/clips`` (UCF101/Kinetics footage, 28-30 fps) are
re-timed to 25 fps (the same frames, written again with PyAV at rate 25) and each is paced at
real time (``--realtime --loop``), so every stream is an endless 25-fps source; N streams take
the first N clips in turn. One ``tc3d stream`` process serves them all with a decision every 8
frames (``--stride 8``): 25/8 decisions per second per stream. A run lasts ``--seconds``.

The models: full width (``--width 1``: a fresh seeded Res3D-18 checkpoint with 101 classes;
speed does not depend on the weights) and the shipped ``motion`` (width 0.25), each at the
given precision (int8 by default; its calibration is made from the stream's clips on the first
run and cached). For each model and stream count the summary's decisions, p50/p95 latency and
dropped frames are recorded, and whether the run meets the bar: p95 <= 200 ms and nothing
dropped. Hold the machine's CPU lock while it runs.

    python benchmarks/stream_scale.py OUT [--runs 1.0:8,4,2,1 motion:8,12,16] [--seconds 60]

Appends one JSON line per run to ``OUT/scale.jsonl`` and prints it; ``--plot`` draws
``OUT/stream_scale.png`` from that file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import torch

from tc3d.modelfile.checkpoint import save_model
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.video.clips import ClipSpec
from tc3d.video.decode import read_all_frames
from tc3d.video.sampling import SamplingConfig

HERE = Path(__file__).resolve()
CLIPS = next(
    (c for p in HERE.parents[1:4] if (c := p.parent / "shared/real-video/clips").is_dir()),
    Path("clips"),
)
NAMES = [  # 280-333 frames each: 11-13 s at 25 fps
    "R6llTwEh07w.mp4", "SOX5yA1l24A.mp4", "WUzgd7C1pWA.mp4", "basketball.mp4",
    "mmaction2_demo_arm_wrestling.mp4", "mmaction2_test_pool_cleaning.mp4",
    "clean_and_jerk.mp4", "tai_chi.mp4",
]  # fmt: skip


def retime(src: Path, dst: Path, fps: int = 25) -> Path:
    """``src``'s frames written again at ``fps`` (MPEG-4 in AVI)."""
    if dst.exists():
        return dst
    frames = read_all_frames(src)
    h, w = (frames.shape[1] // 2) * 2, (frames.shape[2] // 2) * 2
    tmp = dst.with_suffix(".part.avi")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate = 2_000_000
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb[:h, :w].copy(), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(dst)
    return dst


def model_file(work: Path, name: str) -> str:
    """A shipped model's name, or a fresh seeded checkpoint of width ``name``."""
    if not name[0].isdigit():
        return name
    path = work / f"width{name}.pt"
    if not path.exists():
        torch.manual_seed(0)
        model = TC3D(ModelConfig(num_classes=101, width=float(name), segments=3))
        spec = ClipSpec(SamplingConfig(3, 8, "consecutive", 2), crop=112)
        save_model(path, model, [f"class{i:03d}" for i in range(101)], spec)
    return str(path)


def run(model: str, videos: list[Path], n: int, args) -> dict:
    sources = [str(videos[i % len(videos)]) for i in range(n)]
    cmd = [sys.executable, "-m", "tc3d", "stream", *sources, "--model", model,
           "--precision", args.precision, "--stride", "8", "--realtime", "--loop",
           "--max-seconds", str(args.seconds), "--json"]  # fmt: skip
    load = os.getloadavg()[0]  # other work on the machine shows here
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    s = json.loads(out.strip().splitlines()[-1])["summary"]
    due = sum(src["frames"] // 8 for src in s["sources"])  # decisions a stream asks for
    return {
        "model": model,
        "streams": n,
        "precision": s["precision"],
        "seconds": round(s["seconds"], 1),
        "decisions": s["decisions"],
        "decisions_due": due,
        "decisions_per_s": round(s["decisions"] / s["seconds"], 2),
        "latency_ms_p50": round(s["latency_ms_p50"], 1),
        "latency_ms_p95": round(s["latency_ms_p95"], 1),
        "dropped_frames": s["dropped_frames"],
        "frames": s["frames"],
        "meets_bar": s["latency_ms_p95"] <= 200 and s["dropped_frames"] == 0,
        "load_average": [round(load, 1), round(os.getloadavg()[0], 1)],  # before, after
    }


def plot(out: Path) -> Path:
    """p95 latency against the number of streams, one line per model (the last run of each
    point), with the drops marked: ``OUT/stream_scale.png``."""
    from tc3d.figures import save_figure

    runs: dict[tuple[str, int], dict] = {}
    for line in (out / "scale.jsonl").read_text().splitlines():
        r = json.loads(line)
        runs[r["width"], r["streams"]] = r

    def draw(fig, ax) -> None:
        for width in sorted({w for w, _ in runs}, key=lambda w: (not w[0].isdigit(), w)):
            points = sorted((n, r) for (w, n), r in runs.items() if w == width)
            label = f"width {width}" if width[0].isdigit() else f"{width} (width 0.25)"
            xs, ys = [n for n, _ in points], [r["latency_ms_p95"] for _, r in points]
            ax.plot(xs, ys, "o-", label=f"{label}, int8")
            for n, r in points:
                if r["dropped_frames"]:
                    share = 100 * (1 - r["decisions"] / max(1, r["decisions_due"]))
                    ax.annotate(f"{share:.0f}% skipped", (n, r["latency_ms_p95"]), fontsize=7,
                                textcoords="offset points", xytext=(4, -10))  # fmt: skip
        ax.axhline(200, color="r", ls="--", lw=1, label="200 ms")
        ax.set_xscale("log", base=2)
        ns = sorted({n for _, n in runs})
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.set_yscale("log")
        ax.set_xlabel("25-fps streams, a decision every 8 frames")
        ax.set_ylabel("p95 decision latency (ms)")
        ax.legend(fontsize=8)

    return save_figure(out / "stream_scale.png", draw, (7, 3.5))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument(
        "--runs",
        nargs="+",
        default=["1.0:8,4,2,1", "motion:8"],
        help="MODEL:N,N,...: a width (a fresh model) or a shipped name, and stream counts",
    )
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--precision", default="int8")
    p.add_argument("--plot", action="store_true", help="only plot OUT/scale.jsonl")
    args = p.parse_args()
    out = Path(args.out)
    if args.plot:
        print(plot(out))
        return
    (out / "videos").mkdir(parents=True, exist_ok=True)
    videos = [
        retime(CLIPS / name, out / "videos" / f"{Path(name).stem}_25fps.avi") for name in NAMES
    ]
    for spec in args.runs:
        name, counts = spec.split(":")
        model = model_file(out, name)
        for n in map(int, counts.split(",")):
            result = {"width": name, **run(model, videos, n, args)}
            print(json.dumps(result), flush=True)
            with open(out / "scale.jsonl", "a") as f:
                f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
