"""Teach tc3d new actions from a few clips: the teach set, and one run that makes a model of it.

A pretrained backbone does not know the user's actions (``motion``'s features find another clip
of the same real action no better than chance), so the way out is to fine-tune on a few clips
from the user's own camera. This module is that workflow for every front end (the page's teach
mode, ``tc3d teach``, Python):

* :class:`TeachSet` is a folder: ``ROOT/clips/<label>/<clip>`` (the ``folder`` layout, so
  ``tc3d train --data ROOT/clips`` reads it as it is), ``ROOT/runs/<name>/`` (a ``tc3d train``
  run folder, plus ``status.json``) and ``ROOT/models/<name>.tc3d`` (the taught model).
* :func:`teach` fine-tunes from ``motion`` with :data:`TEACH_RECIPE` through the library's one
  training loop (:func:`tc3d.training.train.train`), then writes a ``.tc3d`` with the
  compression pipeline's lossless stages (k-means sharing of every weight, Huffman coding; no
  pruning: there is no data left to fine-tune a pruned model on). The equivalent commands are
  ``tc3d train --data ROOT/clips --out ROOT/runs/NAME`` with the recipe's flags and ``tc3d
  compress --model ROOT/runs/NAME/best.pt --out ROOT/models/NAME.tc3d --stages
  quantize,huffman`` (:func:`teach_commands` writes them out).

``status.json`` (``state``, ``progress`` 0-100, ``model``, ``error``) is rewritten as the run goes,
so a page that was closed, or another process, can follow or pick up a run.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tc3d.compress.pipeline import CompressConfig, compress
from tc3d.datasets.files import is_video
from tc3d.errors import TC3DError, first_line
from tc3d.io import atomic_write_text
from tc3d.modelfile.calibration import cache_dir
from tc3d.progress import Progress
from tc3d.training.config import make_config
from tc3d.training.train import train

log = logging.getLogger(__name__)

# Measured in docs/RESULTS.md ("Teach"): a few 1-2 s clips per class, 2 cores, under 3 minutes.
# Two segments of 8 frames cover a 1 s clip; only layer4, the fusion and the classifier learn
# (the rest of ``motion`` stays as pretrained: few clips cannot retrain it, and frozen stages
# cost no backward pass).
TEACH_RECIPE = dict(
    segments=2,
    frames=8,
    iters=120,
    batch_size=6,
    freeze=4,
    lr=1e-3,
    warmup=10,
    dropout=0.5,
    eval_every=10_000,  # validate once, at the end (when the set holds 5 or more per class)
    workers=1,
)
TRAIN_SHARE = 90  # progress: training is 0-90, writing the .tc3d the rest
STATES = ("running", "done", "failed")


class TeachError(TC3DError, ValueError):
    """A teach set or run that cannot be used; str(e) is one line for the user."""


def default_dir() -> Path:
    """Where taught clips and runs are kept unless told otherwise: tc3d's cache folder."""
    return cache_dir() / "teach"


def clean_label(text: str) -> str:
    """A class name that is also a safe folder name: letters, digits, ``_ -`` and spaces."""
    label = re.sub(r"[^\w \-]+", "", str(text), flags=re.UNICODE).strip()[:60]
    if not label or label.startswith("."):
        raise TeachError(f"give the class a name (letters, digits, - or _): {text!r}")
    return label


def new_name() -> str:
    return time.strftime("taught-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]


def valid_name(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,80}", name)) and ".." not in name


@dataclass
class TeachSet:
    """A teach folder (see the module docstring for its layout)."""

    root: Path

    def __post_init__(self):
        self.root = Path(self.root).expanduser()

    @property
    def clips(self) -> Path:
        return self.root / "clips"

    def run_dir(self, name: str) -> Path:
        return self.root / "runs" / name

    def model_file(self, name: str) -> Path:
        return self.root / "models" / f"{name}.tc3d"

    def add(self, label: str, video: str | Path, suffix: str | None = None) -> Path:
        """Copy ``video`` into the set as a clip of ``label``; the clip's path."""
        label = clean_label(label)
        src = Path(video)
        suffix = (suffix or src.suffix or ".webm").lower()
        if not is_video(f"x{suffix}"):
            suffix = ".webm"
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        dest = self.clips / label / f"{stamp}{suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        shutil.copyfile(src, tmp)
        tmp.replace(dest)
        return dest

    def counts(self) -> dict[str, int]:
        """{label: clips} of the classes that hold clips."""
        if not self.clips.is_dir():
            return {}
        out = {}
        for d in sorted(p for p in self.clips.iterdir() if p.is_dir()):
            n = sum(1 for f in d.rglob("*") if f.is_file() and is_video(f.name))
            if n:
                out[d.name] = n
        return out

    def status(self, name: str) -> dict | None:
        """The run's ``status.json`` (None when there is no such run)."""
        path = self.run_dir(name) / "status.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def write_status(self, name: str, state: str, progress: float, error: str | None = None):
        status = {"state": state, "progress": round(float(progress), 1), "model": name,
                  "error": error}  # fmt: skip
        run = self.run_dir(name)
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_text(json.dumps(status) + "\n", run / "status.json")
        return status


def _training_config(ts: TeachSet, name: str, flags: dict, counts: dict[str, int]):
    values = {**TEACH_RECIPE, **{k: v for k, v in flags.items() if v is not None}}
    # the folder layout keeps every 5th clip of a class for validation: a batch is at most the rest
    training = sum(n - n // 5 for n in counts.values())
    values["batch_size"] = max(1, min(values["batch_size"], training))
    return make_config("finetune", data=str(ts.clips), format="folder",
                       out=str(ts.run_dir(name)), **values)  # fmt: skip


def teach_commands(root: str | Path, name: str, **flags) -> list[str]:
    """The ``tc3d train`` and ``tc3d compress`` command lines that :func:`teach` runs."""
    ts = TeachSet(Path(root))
    values = {**TEACH_RECIPE, **{k: v for k, v in flags.items() if v is not None}}
    train_flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in values.items())
    return [
        f"tc3d train --data {ts.clips} --format folder --out {ts.run_dir(name)} {train_flags}",
        f"tc3d compress --model {ts.run_dir(name) / 'best.pt'} --out {ts.model_file(name)} "
        "--stages quantize,huffman",
    ]


def teach(
    root: str | Path, name: str | None = None, progress: Progress | None = None, **flags
) -> dict:
    """Fine-tune a model of the teach set at ``root`` and write ``models/NAME.tc3d``.

    ``flags`` override :data:`TEACH_RECIPE` (any ``tc3d train`` flag, e.g. ``init="scratch"``).
    Returns ``{model, file, run, classes, clips, iters, seconds, train_seconds}``; raises
    :class:`TeachError` when the set has fewer than two classes. The run's ``status.json``
    says ``failed`` with the reason when anything else goes wrong.
    """
    ts = TeachSet(Path(root))
    name = name or new_name()
    if not valid_name(name):
        raise TeachError(f"a model name is letters, digits, '-', '_' or '.': {name!r}")
    counts = ts.counts()
    if len(counts) < 2:
        raise TeachError(f"teach at least two classes (the set has: {counts or 'none'})")
    start = time.perf_counter()
    ts.write_status(name, "running", 0)
    last = [0.0]

    def tick(done: int, total: int, info: dict | None = None) -> None:
        now = time.perf_counter()
        if now - last[0] > 0.5 or done >= total:  # at most two writes a second
            last[0] = now
            ts.write_status(name, "running", TRAIN_SHARE * done / max(total, 1))
        if progress is not None:
            progress(done, total, info)

    try:
        trained = train(_training_config(ts, name, flags, counts), progress=tick)
        ts.write_status(name, "running", TRAIN_SHARE)
        out = ts.model_file(name)
        out.parent.mkdir(parents=True, exist_ok=True)
        cfg = CompressConfig(model=trained["checkpoint"], out=str(out),
                             stages=["baseline", "quantize", "huffman"], device="cpu")  # fmt: skip
        packed = compress(cfg)
        shutil.rmtree(packed["work_dir"], ignore_errors=True)
    except BaseException as e:  # an interrupt too: the run folder keeps last.pt
        why = "interrupted" if isinstance(e, KeyboardInterrupt) else first_line(e)
        ts.write_status(name, "failed", 0, why)
        raise
    ts.write_status(name, "done", 100)
    return {
        "model": name,
        "file": str(out),
        "file_bytes": out.stat().st_size,
        "run": str(ts.run_dir(name)),
        "classes": sorted(counts),
        "clips": counts,
        "iters": trained["iters"],
        "val_top1": trained["val_top1"],
        "train_seconds": trained["seconds"],
        "seconds": time.perf_counter() - start,
    }
