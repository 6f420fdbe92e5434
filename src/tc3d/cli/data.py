"""``tc3d synth`` (every ``--kind``) and ``tc3d data check``."""

from __future__ import annotations

from tc3d.cli._common import Parser, common, console, data_flags, existing, progress
from tc3d.synthetic.synth import KINDS, make_dataset

_WROTE = {  # the summary line of each --kind, filled from its JSON
    "actions": "wrote {videos} videos of {classes} classes to {root} ({train} train / {test} test)",
    "surveillance": "wrote {videos} surveillance videos ({frames} frames) to {root} "
    "({train} train / {test} test)",
    "pairs": "wrote {videos} videos of {classes} unseen classes and {pairs} pairs to {root}",
}


def cmd_synth(args) -> dict:
    with progress("writing videos") as update:
        result = make_dataset(
            args.kind, args.out, args.classes, args.per_class, args.seed, args.workers, update
        )
    console().print(_WROTE[args.kind].format(**result))
    return result


def cmd_data_check(args) -> dict:
    from tc3d.datasets.check import check_dataset

    existing(args.data, "data set root")
    with progress("reading videos") as update:
        report = check_dataset(
            args.data, args.format, args.split, args.splits, workers=args.workers, progress=update
        )
    c = console()
    c.print(
        f"format {report['format']}: {report['classes']} classes, {report['train']} train "
        f"+ {report['test']} test listed, {report['ok']} readable"
    )
    f = report["frames"]
    if f["median"] is not None:
        c.print(f"frames per video: min {f['min']}, median {f['median']}, max {f['max']}")
    for u in report["unreadable"]:
        c.print(f"[red]unreadable[/red] {u['path']}: {u['error']}", highlight=False)
    for t in report["truncated"]:
        c.print(
            f"[yellow]truncated[/yellow] {t['path']}: {t['decodable']} of {t['frames']} "
            "frames decode (the rest repeat the last one)",
            highlight=False,
        )
    for t in report["short"]:
        c.print(
            f"[yellow]short[/yellow] {t['path']}: {t['frames']} frames, fewer than one "
            "S×k sample (frames repeat)",
            highlight=False,
        )
    for m in report["missing"][:20]:
        c.print(f"[yellow]missing[/yellow] {m}", highlight=False)
    if len(report["missing"]) > 20:
        c.print(f"... and {len(report['missing']) - 20} more missing")
    return report


def add_synth(sub) -> None:
    p = sub.add_parser(
        "synth",
        parents=[common(True)],
        help="write the synthetic action benchmark (UCF101 layout)",
        description="Write a synthetic action data set of real encoded videos "
        "(320x240, 25 fps, mpeg4 .avi) in UCF101 layout: appearance, short-term "
        "motion and long-term order classes.",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--classes", type=int, default=None, help="number of classes (default: all 16)")
    p.add_argument(
        "--per-class",
        type=int,
        default=None,
        help="videos per class (default 16; surveillance: 8 per event; pairs: 10)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="rendering processes")
    p.add_argument(
        "--kind",
        choices=KINDS,
        default="actions",
        help="actions: the 16-class benchmark (UCF101 layout); surveillance: long static-camera "
        "videos with short anomalies (UCF-Crime layout); pairs: same/different pairs of "
        "classes the benchmark does not have (ASLAN-style)",
    )
    p.set_defaults(func=cmd_synth)


def add_data(sub) -> None:
    data = sub.add_parser("data", help="data set tools").add_subparsers(
        dest="data_command", metavar="ACTION", parser_class=Parser
    )
    data.required = True
    p = data.add_parser(
        "check",
        parents=[common(True)],
        prog="tc3d data check",
        help="read every listed video; report counts and problems",
        description="Parse the split files, open every listed video and report "
        "counts, unreadable and missing files, and frame statistics.",
    )
    data_flags(p)
    p.add_argument("--workers", type=int, default=4, help="parallel readers")
    p.set_defaults(func=cmd_data_check)
