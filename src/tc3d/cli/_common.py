"""What every command shares: the parser class, console and progress bar, input checks, the
common flags, the model loader and the flag-to-config copy."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from tc3d.api import Model, load_model
from tc3d.datasets.formats import FORMATS
from tc3d.device import DEVICES, PRECISIONS
from tc3d.errors import TC3DError
from tc3d.modelfile.shipped import SHIPPED, resolve
from tc3d.video.sampling import STRATEGIES


class UsageError(TC3DError):
    """Bad invocation: exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints the whole usage)
        sys.stderr.write(f"tc3d: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def console():
    from rich.console import Console

    # Under torchrun only rank 0 talks; the other ranks' consoles are silent.
    return Console(stderr=True, quiet=os.environ.get("RANK", "0") != "0")


def progress(description: str, lazy: bool = False):
    """A rich progress bar on stderr that takes the library's one progress protocol
    (:class:`tc3d.progress.Progress`): ``with progress(...) as update: update(done, total,
    info)``; ``info`` figures show beside the bar, and ``info["stage"]`` renames it (a new phase).

    ``lazy``: the bar shows at the first update, for library calls that prepare (read a data
    set, check it) before they report ``update(0, total)``: a failure there is then one line
    with no empty bar above it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    class _Bar:
        progress = None

        def start(self):
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=console(),
                transient=False,
            )
            self.progress.__enter__()
            self.task = self.progress.add_task(description, total=None, info="")

        def __enter__(self):
            if not lazy:
                self.start()
            return self.update

        def update(self, done: int, total: int, info: dict | None = None):
            if self.progress is None:
                self.start()
            info = dict(info or {})
            stage = info.pop("stage", None)
            text = "  ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items()
            )
            fields = {"description": f"{description}: {stage}"} if stage else {}
            self.progress.update(self.task, completed=done, total=total, info=text, **fields)

        def __exit__(self, *exc):
            if self.progress is not None:
                self.progress.__exit__(*exc)

    return _Bar()


def model_file(name: str, what: str = "model file") -> Path:
    """A model file, or the file of a shipped model name (``tc3d models``)."""
    path = resolve(name)
    if not path.exists():
        names = ", ".join(SHIPPED)
        raise UsageError(f"{what} not found: {name} (not a file, nor a shipped model: {names})")
    return path


def existing(path: str, what: str = "path") -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} not found: {path}")
    return p


def print_skipped(c, skipped: list[dict], tag: str = "skipped") -> None:
    """One line per unreadable video that a command left out."""
    for s in skipped:
        c.print(f"[yellow]{tag}[/yellow] {s['path']}: {s['error']}", highlight=False)


def load(args) -> Model:
    """``--model`` on ``--device`` at ``--precision``, with the clip-geometry overrides given."""
    model_file(args.model)
    precision = getattr(args, "precision", "fp32")
    geometry = {k: getattr(args, k, None) for k in ("segments", "frames", "sampling", "offset")}
    model = load_model(
        args.model,
        args.device,
        precision,
        crop=getattr(args, "crop", None),
        batch_size=getattr(args, "batch_size", 4),
        **geometry,
    )
    if precision == "int8":
        console().print("[dim]int8: loading or making the calibration...[/dim]")
    return model


def flag_values(cls, args) -> dict:
    """The flags named like the fields of the dataclass ``cls``, by field name."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def config(cls, args, **values):
    """A config dataclass from the flags of the same names, then ``values``."""
    return cls(**{**flag_values(cls, args), **values})


# --- flags shared by several commands


def common(json_only: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    if not json_only:
        p.add_argument(
            "--device",
            default="auto",
            choices=DEVICES,
            help="where to run the model (default: cuda if available)",
        )
    return p


def split_flags(p: argparse.ArgumentParser, help: str = "data set layout (default: detect)"):
    p.add_argument("--format", choices=FORMATS, default=None, help=help)
    p.add_argument("--split", type=int, default=1, help="official split number (default 1)")
    p.add_argument("--splits", default=None, help="folder holding the split files")


def data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="data set root (or list file)")
    split_flags(p)


def precision_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="inference precision: fp32 (PyTorch; on a CPU with OpenVINO installed, streams, "
        "servers and runs of 32 or more videos use OpenVINO, converted once per model and "
        "cached; TC3D_FP32_RUNTIME=torch|openvino decides instead); bf16 (PyTorch "
        "autocast; the same OpenVINO rule on CPUs with bf16 instructions); int8 (OpenVINO, "
        "quantised by NNCF, calibrated once on a few training "
        "videos and stored with the model; needs pip install 'tc3d[int8]', and without it "
        "int8 stops with that hint while fp32 runs on PyTorch and bf16 as usual)",
    )


def model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        required=True,
        help="checkpoint (.pt), compressed model (.tc3d) or a shipped model name ('motion'; "
        "see 'tc3d models')",
    )
    precision_flag(p)
    p.add_argument("--batch-size", type=int, default=4, help="videos per forward pass")
    p.add_argument("--segments", type=int, default=None, help="override the model's S")
    p.add_argument("--frames", type=int, default=None, help="override the model's k")
    p.add_argument(
        "--sampling",
        choices=STRATEGIES,
        default=None,
        help="override the model's sampling strategy",
    )
    p.add_argument("--offset", type=int, default=None, help="override the model's frame step")
    p.add_argument("--crop", type=int, default=None, help="override the model's crop size")


def add_command(sub, name: str, func, help: str, description: str, prog: str | None = None):
    """A model command's parser: the common flags, then the model's, and ``func`` to run."""
    extra = {"prog": prog} if prog else {}
    p = sub.add_parser(name, parents=[common()], help=help, description=description, **extra)
    model_flags(p)
    p.set_defaults(func=func)
    return p
