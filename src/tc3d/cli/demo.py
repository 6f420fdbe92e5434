"""``tc3d demo``: the whole pipeline end to end on the synthetic benchmark."""

from __future__ import annotations

from tc3d.cli._common import common, config, console, progress
from tc3d.demo import DemoConfig


def cmd_demo(args) -> dict:
    from tc3d.demo import run_demo

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
    p.add_argument("--out", default=DemoConfig.out, help="working folder")
    p.add_argument("--classes", type=int, default=None, help="classes (default: all 16)")
    p.add_argument("--per-class", type=int, default=DemoConfig.per_class, help="videos per class")
    p.add_argument(
        "--iters", type=int, default=DemoConfig.iters, help="training iterations per model"
    )
    p.add_argument("--iters-s1", type=int, default=None, help="for S=1 (default: --iters)")
    p.add_argument("--seed", type=int, default=DemoConfig.seed)
    p.add_argument("--workers", type=int, default=DemoConfig.workers)
    p.set_defaults(func=cmd_demo)
