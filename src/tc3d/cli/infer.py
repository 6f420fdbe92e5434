"""``tc3d bench`` (frames per second of the whole pipeline), ``tc3d stream`` (online
recognition) and ``tc3d export`` (ONNX, torch.export, OpenVINO IR, TorchScript)."""

from __future__ import annotations

import argparse
import json
import sys

from tc3d.cli._common import (
    common,
    config,
    console,
    existing,
    load,
    model_file,
    model_flags,
    precision_flag,
    progress,
)
from tc3d.infer.export import FORMATS, export_model
from tc3d.video.sampling import PROTOCOLS


def cmd_bench(args) -> dict:
    from tc3d.apps.bench import BenchConfig, run_bench

    if args.model:
        model_file(args.model)
    if args.videos:
        existing(args.videos, "video folder")
    r = run_bench(config(BenchConfig, args, num_classes=args.classes), progress=progress)
    c = console()
    c.print(
        f"{r['videos']} videos, {r['frames']} frames in {r['seconds']:.2f} s: "
        f"[bold]{r['fps']:.0f} frames/s[/bold], {r['videos_per_s']:.2f} videos/s, "
        f"{r['clips_per_s']:.1f} clips/s ({r['precision']}, {r['protocol']}, "
        f"{r['crops']} crop{'s' if r['crops'] > 1 else ''}); "
        f"{r['gflops_per_video']:.1f} GFLOPs/video",
        highlight=False,
    )
    if "baseline" in r:
        b = r["baseline"]
        c.print(
            f"conventional pipeline (decode all frames, fp32 eager): {b['fps']:.0f} frames/s, "
            f"{b['videos_per_s']:.2f} videos/s -> speedup [bold]{r['speedup']:.2f}x[/bold]",
            highlight=False,
        )
    if r.get("agreement") is not None:
        c.print(f"top-1 agreement with fp32: {r['agreement']:.1f}%")
    if "breakdown" in r:
        d = r["breakdown"]
        c.print(
            f"alone: decoding ({r['workers']} threads) {d['decode_fps']:.0f} frames/s, "
            f"{d['decode_share']:.0f}% of the pipeline's time; the model "
            f"{d['model_clips_per_s']:.1f} clips/s, {d['model_share']:.0f}%: "
            f"{d['bound']}-bound",
            highlight=False,
        )
    m = r["machine"]
    gpu = f", {m['gpu']}" if "gpu" in m else ""
    c.print(f"[dim]{m['cpu']}, {m['torch_threads']} threads{gpu}, load {m['load_average']}[/dim]")
    if r["failed"]:
        c.print(f"[yellow]{len(r['failed'])} videos failed[/yellow]")
    return r


def cmd_stream(args) -> dict:
    from tc3d.infer.stream import StreamConfig, _is_live, run_stream

    files = [s for s in args.sources if not _is_live(s)]
    for s in files:
        existing(s, "source")
    model = load(args)
    emit = (lambda d: print(json.dumps(d), flush=True)) if args.json else _say_reconnects
    summary = run_stream(
        model.engine(files),
        model.loaded,
        args.sources,
        config(StreamConfig, args),
        emit=emit,
        console=console(),
    )
    s = summary["summary"]
    console().print(
        f"{s['decisions']} decisions, latency p50 {s['latency_ms_p50']:.0f} ms, "
        f"p95 {s['latency_ms_p95']:.0f} ms, {s['dropped_frames']} dropped frames",
        highlight=False,
    )
    failed = [src for src in s["sources"] if "error" in src]
    for src in failed:
        sys.stderr.write(f"tc3d: error: {src['source']}: {src['error']}\n")
    return summary, 1 if failed else 0


def _say_reconnects(line: dict) -> None:
    """Without --json, only a live source's gaps are worth a line (on stderr)."""
    if r := line.get("reconnect"):
        what = r.get("error") or f"back after a gap of {r['gap_s']:.1f} s"
        console().print(f"{r['source']}: {what}", highlight=False)


def cmd_export(args) -> dict:
    r = export_model(load(args).loaded, args.format, args.out, batch=args.batch)
    files = r["file"] + (f" and {r['weights_file']}" if "weights_file" in r else "")
    console().print(
        f"wrote {files} ({r['format']}), max |diff| vs PyTorch {r['max_abs_diff']:.2e}",
        highlight=False,
    )
    return r


def add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        parents=[common()],
        help="frames per second of the whole pipeline",
        description="Time the whole pipeline (open, decode, sample, transform, model, "
        "fusion) on real video files; --baseline also times the conventional pipeline "
        "(decode every frame, fp32 eager) in the same run.",
    )
    p.add_argument("--model", default=None, help="checkpoint (default: a fresh Res3D-18)")
    p.add_argument("--width", type=float, default=1.0, help="width of the fresh model")
    p.add_argument("--classes", type=int, default=101, help="classes of the fresh model")
    p.add_argument("--videos", default=None, help="folder of video files to time")
    p.add_argument(
        "--synthetic", type=int, default=None, help="write N synthetic 7 s 320x240 videos"
    )
    p.add_argument("--synthetic-dir", default=None, help="where (default: ~/.cache/tc3d)")
    precision_flag(p)
    p.add_argument("--baseline", action="store_true", help="also time the conventional pipeline")
    p.add_argument("--protocol", choices=PROTOCOLS, default="sclips")
    p.add_argument("--crops", type=int, choices=(1, 10), default=1)
    p.add_argument("--batch-clips", type=int, default=12, help="clips per forward pass")
    p.add_argument("--workers", type=int, default=1, help="reader threads")
    p.add_argument("--warmup", type=int, default=2, help="videos run before timing")
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="also time decoding alone (--workers threads) and the model alone on the same "
        "videos, each as a share of the pipeline's time (JSON: breakdown)",
    )
    p.set_defaults(func=cmd_bench)


def add_stream(sub) -> None:
    p = sub.add_parser(
        "stream",
        parents=[common()],
        help="online recognition from files, URLs or cameras",
        description="Recognise actions online: a decision every --stride frames from the "
        "last S clips (each clip's scores computed once). Several sources share one model "
        "with batched inference. With --json, one JSON line per decision and a summary.",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="file, http/rtsp URL, /dev/videoN")
    model_flags(p)
    p.add_argument("--window", type=int, default=None, help="frames per clip (default: k)")
    p.add_argument("--stride", type=int, default=4, help="frames between decisions")
    p.add_argument("--realtime", action="store_true", help="pace files at their frame rate")
    p.add_argument("--out", default=None, help="write the (first) source with labels overlaid")
    p.add_argument("--smoothing", type=float, default=0.5, help="EMA factor of the smoothed label")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--loop", action="store_true", help="start files again when they end")
    p.add_argument(
        "--reconnect",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="reopen a lost URL or camera for this long before failing (0: never; default 30)",
    )
    p.set_defaults(func=cmd_stream)


def add_export(sub) -> None:
    width = max(map(len, FORMATS))
    p = sub.add_parser(
        "export",
        parents=[common()],
        help="export to ONNX, torch.export (pt2), OpenVINO IR or TorchScript",
        description="Write the model in a portable format (input: a batch of S clips, dynamic\n"
        "batch size), load it back with its runtime and check it against PyTorch.",
        epilog="formats:\n"
        + "\n".join(f"  {name:<{width}}  {text}" for name, text in FORMATS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="checkpoint (.pt), .tc3d or shipped name")
    p.add_argument("--format", choices=tuple(FORMATS), required=True, help="see below")
    p.add_argument("--out", required=True, help="output file (openvino: FILE.xml)")
    p.add_argument("--batch", type=int, default=1, help="batch size of the check input")
    p.set_defaults(func=cmd_export)
