"""``tc3d demo``: the whole pipeline end to end on the synthetic benchmark."""

from __future__ import annotations

from tc3d.cli._common import common, config, console, progress


def cmd_demo(args) -> dict:
    from tc3d.demo import DemoConfig, run_demo

    return run_demo(config(DemoConfig, args), console=console(), progress=progress)


def add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        parents=[common(True)],
        help="the whole pipeline, end to end",
        description="Generate the synthetic benchmark, fine-tune T-C3D (S=3) and a "
        "single-clip model (S=1) from the shipped 'motion' backbone, train the S=3 model "
        "from scratch beside them, test all three, compress, time and predict a few files.",
    )
    p.add_argument("--out", default="demo_run", help="working folder")
    p.add_argument("--classes", type=int, default=None, help="classes (default: all 16)")
    p.add_argument("--per-class", type=int, default=16, help="videos per class")
    p.add_argument("--iters", type=int, default=250, help="training iterations per model")
    p.add_argument("--iters-s1", type=int, default=None, help="for S=1 (default: --iters)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=cmd_demo)
