"""``tc3d train``, ``tc3d anomaly train`` and ``tc3d pretrain``."""

from __future__ import annotations

import argparse

from tc3d.cli._common import (
    common,
    config,
    console,
    data_flags,
    existing,
    flag_values,
    model_file,
    progress,
)
from tc3d.models.fusion import FUSIONS
from tc3d.models.tc3d import ARCHS
from tc3d.training.config import (
    ANOMALY,
    FINETUNE,
    OBJECTIVES,
    OPTIMIZERS,
    PAPER,
    RECIPES,
    TrainConfig,
    make_config,
)
from tc3d.training.train import train as run_train
from tc3d.video.sampling import STRATEGIES


def _run_training(args, anomaly: bool = False) -> dict:
    flags = flag_values(TrainConfig, args)  # None where not given: the recipe decides
    if args.lr_steps is not None:
        flags["lr_steps"] = [int(s) for s in args.lr_steps.split(",") if s.strip()]
    cfg = make_config(args.recipe, anomaly, **flags)
    existing(args.data, "data set root")
    if args.init not in (None, "scratch"):
        model_file(args.init, "--init weights")
    with progress("training") as update:
        result = run_train(cfg, progress=update)
    c = console()
    top1 = result["val_top1"]
    c.print(
        f"trained {result['iters']} iterations in {result['seconds']:.0f} s; "
        f"video top-1 {top1:.1f}%"
        if top1 is not None
        else "no test split to evaluate"
    )
    c.print(f"best checkpoint: {result['checkpoint']}")
    if result["skipped"]:
        c.print(f"[yellow]{len(result['skipped'])} unreadable videos skipped[/yellow]")
        for s in result["skipped"]:
            c.print(f"  {s['path']}: {s['error']}", highlight=False)
    return result


def cmd_train(args) -> dict:
    return _run_training(args)


def cmd_anomaly_train(args) -> dict:
    return _run_training(args, anomaly=True)


def cmd_pretrain(args) -> dict:
    from tc3d.training.pretrain import PretrainConfig, pretrain

    with progress("pretraining") as update:
        result = pretrain(config(PretrainConfig, args), progress=update)
    c = console()
    c.print(
        f"pretrained {result['iters']} iterations in {result['seconds']:.0f} s "
        f"({result['clips_per_s'] or 0:.1f} clips/s, model waited for data "
        f"{result['data_wait'] or 0:.1f}% of the time); validation accuracy "
        f"{result['val_top1'] or 0:.1f}%"
    )
    c.print(f"best checkpoint: {result['checkpoint']}")
    return result


def _train_flags(p: argparse.ArgumentParser) -> None:
    """The training flags (shared by train and anomaly train).

    Flags whose default depends on ``--recipe`` default to None here; ``make_config`` fills
    them from the recipe, so ``--help`` shows the fine-tuning defaults and the paper's values.
    """

    def both(key: str) -> str:
        return f"default {FINETUNE[key]}; --recipe paper: {PAPER[key]}"

    p.add_argument("--out", required=True, help="run folder (checkpoints, config, log)")
    p.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default="finetune",
        help="default values of the flags below: 'finetune' (measured to work from the shipped "
        "'motion' backbone on small data) or 'paper' (the paper's UCF101 recipe: SGD lr 0.005, "
        "dropout 0.8, crop 112, flips, 20000 iterations, steps 8000,15000); flags given win",
    )
    p.add_argument(
        "--init",
        default=None,
        help="starting weights: 'motion' (the shipped pretrained backbone, default), 'scratch', "
        "a tc3d checkpoint or .tc3d file, or a torchvision r3d_18 state dict",
    )
    p.add_argument("--arch", default="res3d18", choices=ARCHS)
    p.add_argument(
        "--width",
        type=float,
        default=None,
        help="channel multiplier (default: the --init model's, 0.25 for motion; 1.0 from "
        "scratch). A width other than motion's with no --init trains from scratch",
    )
    p.add_argument(
        "--segments", type=int, default=None,
        help=f"S: segments (clips) per video (default 3; anomaly train: {ANOMALY['segments']})",
    )  # fmt: skip
    p.add_argument("--frames", type=int, default=8, help="k: frames per clip")
    p.add_argument(
        "--sampling",
        choices=STRATEGIES,
        default="consecutive",
        help="clip sampling: paper's strategy B (consecutive) or A (uniform)",
    )
    p.add_argument("--offset", type=int, default=2, help="o: frame step in a consecutive clip")
    p.add_argument(
        "--fusion", choices=FUSIONS, default=None,
        help=f"segment fusion ({both('fusion')}; anomaly train: {ANOMALY['fusion']})",
    )  # fmt: skip
    p.add_argument("--unshared", action="store_true", help="separate weights per segment")
    p.add_argument(
        "--crop",
        type=int,
        default=None,
        help="input size (default: the --init model's, 96 for motion; 112 from scratch or "
        "with --recipe paper)",
    )
    p.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random horizontal flips; off by default because a mirror swaps classes such as "
        "left vs right (--recipe paper: on)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="videos per step (per process)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help=both("optimizer"))
    p.add_argument("--lr", type=float, default=None, help=f"learning rate ({both('lr')})")
    p.add_argument("--momentum", type=float, default=None, help="SGD momentum (0.9)")
    p.add_argument("--weight-decay", type=float, default=None, help=both("weight_decay"))
    p.add_argument("--iters", type=int, default=None, help=f"training steps ({both('iters')})")
    p.add_argument(
        "--lr-steps",
        default=None,
        help="iterations where lr drops 10x (default: 75%% and 92%% of --iters; --recipe "
        "paper: 8000,15000)",
    )
    p.add_argument(
        "--warmup", type=int, default=None, help=f"linear warm-up steps ({both('warmup')})"
    )
    p.add_argument("--dropout", type=float, default=None, help=both("dropout"))
    p.add_argument(
        "--freeze", type=int, default=None, choices=range(6), metavar="N",
        help="keep the first N backbone stages (stem, layer1-4) fixed (default 1 from a "
        "pretrained --init, 0 from scratch or with --recipe paper)",
    )  # fmt: skip
    p.add_argument(
        "--head-lr-scale", type=float, default=None, metavar="X",
        help="the classifier and fusion learn at X times --lr (default 40 from a pretrained "
        "--init, 1 from scratch or with --recipe paper)",
    )  # fmt: skip
    p.add_argument("--workers", type=int, default=2, help="data loader processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument(
        "--amp",
        choices=("bf16",),
        default=None,
        help="bf16 autocast (fast on GPU; slow for training on CPU)",
    )
    p.add_argument("--eval-every", type=int, default=1000, help="evaluate + checkpoint period")


def _add_training(sub, name: str, func, **texts):
    """``tc3d train`` and ``tc3d anomaly train``: one set of flags, two tasks."""
    p = sub.add_parser(name, parents=[common()], **texts)
    data_flags(p)
    _train_flags(p)
    p.set_defaults(func=func)
    return p


def add_train(sub) -> None:
    _add_training(
        sub,
        "train",
        cmd_train,
        help="train T-C3D on a data set",
        description="Train T-C3D end to end (S=3 segments of k=8 frames, consecutive "
        "sampling). By default it fine-tunes the shipped pretrained backbone 'motion' (width "
        "0.25, 96-pixel crops) with a recipe measured to work on small data; --recipe paper "
        "gives the paper's values, --init scratch starts from random weights.",
    )


def add_anomaly_train(anomaly) -> None:
    p = _add_training(
        anomaly,
        "train",
        cmd_anomaly_train,
        prog="tc3d anomaly train",
        help="train an anomaly detector on video-level labels",
        description="Train an anomaly detector from Anomaly_Train.txt, video-level labels "
        "only. The default objective, 'ranking', learns by multiple-instance ranking which "
        "lasting local changes in a scene are anomalous, each cell of the frame judged against "
        "its own normal over the video (so traffic, crowds, swaying trees and flicker are not "
        "alarms); it reads each video once, then fits (--iters: its steps; 3-3.5 min for 24 "
        "videos of 24-45 s on 2 cores). "
        "'--objective classify' trains T-C3D as a binary classifier of untrimmed videos with "
        "S segments spread over each video (paper Section IV-A). Flags as 'tc3d train'.",
    )
    p.add_argument(
        "--objective", choices=OBJECTIVES, default=None,
        help="ranking (default): scorer over lasting local change; classify: the paper's "
        "T-C3D video classifier",
    )  # fmt: skip


def add_pretrain(sub) -> None:
    p = sub.add_parser(
        "pretrain",
        parents=[common()],
        help="pretrain a backbone on procedural video rendered on the fly",
        description="Pretrain a Res3D-18 on an endless stream of procedurally generated clips "
        "(moving, turning, growing, splitting, recolouring shapes and photo crops over varied "
        "backgrounds), each labelled by its motion and its change (49 classes); nothing is "
        "read from disk. Writes a run folder like 'tc3d train' (last.pt, best.pt, config.json, "
        "log.jsonl); stop it any time and continue with --resume. The shipped 'motion' model "
        "was made this way (benchmarks/pretrain_motion.sh).",
    )
    p.add_argument("--out", required=True, help="run folder (checkpoints, config, log)")
    p.add_argument("--width", type=float, default=0.25, help="channel multiplier of Res3D-18")
    p.add_argument("--frames", type=int, default=8, help="k: frames per clip")
    p.add_argument("--offset", type=int, default=2, help="frame step the model is used with")
    p.add_argument("--crop", type=int, default=64, help="size the clips are rendered at")
    p.add_argument(
        "--model-crop",
        type=int,
        default=96,
        help="crop the model is used with afterwards (stored with it; predict, features and "
        "--init follow it): larger crops keep more detail of small actors",
    )
    p.add_argument("--batch-size", type=int, default=32, help="clips per step")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay)")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--iters", type=int, default=3600, help="training steps (the schedule's length)")
    p.add_argument(
        "--stop-at",
        type=int,
        default=None,
        help="end this piece of the run at this step (the schedule still spans --iters); "
        "--resume continues it",
    )
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    p.add_argument(
        "--curriculum",
        type=int,
        default=2000,
        help="steps over which the share of fully random looks (textures, photos, distractors, "
        "noise, camera pans) rises from none (plain grey scenes) to all",
    )
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--workers", type=int, default=1, help="rendering processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--eval-every", type=int, default=250, help="validate + checkpoint period")
    p.set_defaults(func=cmd_pretrain)
