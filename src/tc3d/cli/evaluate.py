"""``tc3d test`` (video-level metrics on a test split) and ``tc3d predict`` (labels of files)."""

from __future__ import annotations

from tc3d.cli._common import (
    common,
    console,
    data_flags,
    existing,
    load,
    model_flags,
    print_skipped,
    progress,
)
from tc3d.video.sampling import PROTOCOLS


def cmd_test(args) -> dict:
    existing(args.data, "data set root")
    model = load(args)
    with progress("testing", lazy=True) as update:
        result = model.evaluate(
            args.data,
            args.format,
            args.split,
            args.splits,
            args.protocol,
            args.crops,
            args.workers,
            update,
        )
    c = console()
    c.print(
        f"{result['videos']} videos ({args.protocol}, {args.crops} crop"
        f"{'s' if args.crops > 1 else ''}): top-1 {result['top1']:.2f}%  "
        f"top-5 {result['top5']:.2f}%  mean class {result['mean_class_acc']:.2f}%  "
        f"{result['fps']:.0f} frames/s"
    )
    print_skipped(c, result["skipped"])
    return result


def cmd_predict(args) -> dict:
    for v in args.videos:
        existing(v, "video")
    results = load(args).predict(args.videos, args.top)
    c = console()
    for r in results:
        if "error" in r:
            c.print(f"[red]{r['video']}[/red]: {r['error']}", highlight=False)
        else:
            best = ", ".join(f"{x['label']} {100 * x['prob']:.1f}%" for x in r["labels"])
            c.print(f"{r['video']}: {best}", highlight=False)
    return {"results": results}, 1 if any("error" in r for r in results) else 0


def add_test(sub) -> None:
    p = sub.add_parser(
        "test",
        parents=[common()],
        help="video-level evaluation",
        description="Evaluate a model on the test split: top-1, top-5, mean "
        "class accuracy, and frames per second over the whole pipeline.",
    )
    model_flags(p)
    data_flags(p)
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="sclips",
        help="S segment-centre clips, or every non-overlapping clip",
    )
    p.add_argument("--crops", type=int, choices=(1, 10), default=1, help="centre or 10 crops")
    p.add_argument("--workers", type=int, default=2, help="data loader processes")
    p.set_defaults(func=cmd_test)


def add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        parents=[common()],
        help="classify video files",
        description="Print the top-K labels of each video.",
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    model_flags(p)
    p.add_argument("--top", type=int, default=5, help="labels per video")
    p.set_defaults(func=cmd_predict)
