"""Where a model's int8 calibration comes from and where it is kept.

The calibration (:class:`~tc3d.infer.quantize.Calibration`) is made once and travels with the
model, so an int8 run gives the same figures on any machine, from any directory:

* a ``.pt`` checkpoint stores it under ``int8_calibration``, added at its first int8 use
  (atomically, and never over a file that changed meanwhile; the modification time is kept,
  since the weights did not change);
* a ``.tc3d`` file gets it from ``tc3d compress``, made on the compressed weights, in its JSON
  header (or, made without reachable training videos, at its first int8 use like a checkpoint);
* a file that cannot be written (a shipped model inside site-packages, or in a source checkout)
  and a model with no file keep it in a cache, ``$TC3D_CACHE`` or ``~/.cache/tc3d``, keyed by
  a digest of the weights.

It is made from a few videos of the model's training set when the checkpoint names that set
and it is reachable; otherwise from the videos being processed, with a logged warning saying
so (the figures then depend on those videos, until the stored calibration is reused).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tc3d.datasets.annotations import anomaly_binary
from tc3d.datasets.formats import load_dataset
from tc3d.infer.quantize import (
    CALIBRATION_VIDEOS,
    FORMAT,
    Calibration,
    CalibrationError,
    calibrate,
)
from tc3d.io import atomic_write_text, atomic_write_with
from tc3d.modelfile import tc3dfile as encode
from tc3d.modelfile.checkpoint import load_checkpoint
from tc3d.modelfile.shipped import WEIGHTS as PACKAGE_WEIGHTS
from tc3d.models.tc3d import TC3D
from tc3d.video.clips import ClipSpec

log = logging.getLogger(__name__)

KEY = "int8_calibration"  # in a checkpoint dict and in a .tc3d header


def cache_dir() -> Path:
    """tc3d's cache folder (int8 calibrations of read-only models, bench videos):
    ``$TC3D_CACHE`` or ``~/.cache/tc3d``."""
    if os.environ.get("TC3D_CACHE"):
        return Path(os.environ["TC3D_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "tc3d"


def pick_videos(paths: Sequence) -> list[str]:
    """:data:`CALIBRATION_VIDEOS` paths spread evenly over a list (classes are usually listed
    one after another, so the first few would all be one class)."""
    step = max(1, len(paths) // CALIBRATION_VIDEOS)
    return [str(p) for p in list(paths)[::step][:CALIBRATION_VIDEOS]]


def training_videos(train_config: dict | None) -> list[str]:
    """A few training videos of the data set a checkpoint's ``train_config`` names, or ``[]``
    when it names none or it is not reachable from here."""
    cfg = train_config or {}
    if not cfg.get("data") or not Path(cfg["data"]).expanduser().exists():
        return []
    try:
        split = load_dataset(cfg["data"], cfg.get("format"), cfg.get("split", 1),
                             cfg.get("splits"))  # fmt: skip
    except Exception as e:  # noqa: BLE001 - an unreadable data set is simply not used
        log.info("training set %s not usable for int8 calibration (%s)", cfg["data"], e)
        return []
    if cfg.get("anomaly"):
        split = anomaly_binary(split)
    return [p for p in pick_videos([it.path for it in split.train]) if Path(p).exists()]


def _weights_digest(model: nn.Module) -> str:
    h = hashlib.sha256(f"int8-{FORMAT}".encode())
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def _from_cache(model: TC3D) -> tuple[Path, Calibration | None]:
    path = cache_dir() / f"int8-{_weights_digest(model)}.json"
    if not path.is_file():
        return path, None
    try:
        calibration = Calibration.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as e:  # damaged: made again, not fatal
        log.warning("ignoring unreadable int8 cache %s (%s)", path, e)
        return path, None
    calibration.file, calibration.stored = str(path), True
    return path, calibration


def _to_cache(path: Path, calibration: Calibration) -> None:
    try:
        atomic_write_text(json.dumps(calibration.to_dict()), path)
        calibration.file = str(path)
    except OSError as e:
        log.warning("could not write the int8 cache %s (%s)", path, e)


def weights_calibration(model: TC3D, spec: ClipSpec, paths: Sequence[str | Path]) -> Calibration:
    """For a model with no file (``bench`` without ``--model``): cached by its weights."""
    cache, calibration = _from_cache(model)
    if calibration is None:
        calibration = calibrate(model, spec, paths, "given videos")
        _to_cache(cache, calibration)
    return calibration


def _is_package_file(path: Path) -> bool:
    return path.resolve().parent == PACKAGE_WEIGHTS


def _writable(path: Path) -> bool:
    """Whether the calibration may be added to the model file itself. Files shipped inside
    the package never are (in an editable install they are the repository's own files)."""
    return (
        path.is_file()
        and not _is_package_file(path)
        and os.access(path, os.W_OK)
        and os.access(path.parent, os.W_OK)
    )


@dataclass
class _ModelFile:
    """What a model file says about int8: its stored calibration, clip and training set."""

    path: Path
    tc3d: bool
    contents: dict  # the checkpoint dict, or the .tc3d header
    raw: bytes | None  # the .tc3d file's bytes (to add a header field)
    stat: os.stat_result


def _read_model_file(path: Path) -> _ModelFile:
    stat = path.stat()
    if encode.is_tc3d(path):
        raw = path.read_bytes()
        return _ModelFile(path, True, encode.read_header(path, raw), raw, stat)
    return _ModelFile(path, False, load_checkpoint(path), None, stat)


def _same_weights(contents: dict, model: nn.Module) -> bool:
    saved = contents.get("model") or {}
    own = model.state_dict()
    return saved.keys() == own.keys() and all(
        torch.equal(saved[k], v.detach().cpu()) for k, v in own.items()
    )


class _Changed(Exception):
    pass


def _store_in_file(f: _ModelFile, calibration: Calibration) -> bool:
    """Add the calibration to the model file, atomically; False when the file changed since
    it was read (a training run writing it, another process calibrating): nothing is lost.

    The modification time is kept: the weights did not change, and ``tc3d compress`` decides
    by it whether an interrupted run may resume.
    """

    def unchanged() -> bool:
        st = f.path.stat()
        return (st.st_ino, st.st_size, st.st_mtime_ns) == (
            f.stat.st_ino,
            f.stat.st_size,
            f.stat.st_mtime_ns,
        )

    def write(out) -> None:
        if f.tc3d:
            out.write(encode.with_header_fields(f.raw, {KEY: calibration.to_dict()}, f.path))
        else:
            torch.save({**f.contents, KEY: calibration.to_dict()}, out)
        out.flush()
        if not unchanged():  # checked last, just before the rename
            raise _Changed

    try:
        atomic_write_with(f.path, write)
    except _Changed:
        log.info("%s changed while it was calibrated: the calibration is not stored", f.path)
        return False
    except OSError as e:
        log.warning("could not store the int8 calibration in %s (%s)", f.path, e)
        return False
    os.utime(f.path, ns=(f.stat.st_atime_ns, f.stat.st_mtime_ns))
    calibration.file = str(f.path)
    return True


def model_calibration(loaded, fallback: Sequence[str | Path] = (), renew: bool = False):
    """The int8 :class:`Calibration` of a loaded model
    (:class:`~tc3d.modelfile.checkpoint.LoadedModel`): the one stored with it, else made now
    (on its training videos when reachable, else on ``fallback``, with a warning) and stored
    with it (see the module docstring)."""
    path = Path(loaded.source)
    model_file = _read_model_file(path) if path.is_file() else None
    cache: Path | None = None
    if model_file is not None and not renew and KEY in model_file.contents:
        try:
            calibration = Calibration.from_dict(model_file.contents[KEY])
            calibration.file, calibration.stored = str(path), True
            return calibration
        except (ValueError, KeyError, TypeError) as e:
            log.warning("%s: ignoring its stored int8 calibration (%s)", path, e)
    writable = model_file is not None and _writable(path)
    if writable and not model_file.tc3d and not _same_weights(model_file.contents, loaded.model):
        log.info("%s changed since it was loaded: its calibration goes to the cache", path)
        writable = False
    if not writable:
        cache, calibration = _from_cache(loaded.model)
        if calibration is not None and not renew:
            return calibration
    own = (model_file.contents if model_file is not None else {}).get("clip")
    spec = ClipSpec.from_dict(own) if own else loaded.clip
    train_config = model_file.contents.get("train_config") if model_file is not None else None
    paths, source = training_videos(train_config), "training videos"
    if not paths:
        paths, source = [str(p) for p in list(fallback)[:CALIBRATION_VIDEOS]], "given videos"
        where = f"stored in {path}" if writable else f"cached in {cache_dir()}"
        log.warning(
            "int8: the training videos of %s are not reachable from here; calibrating on %d of "
            "the videos given instead, so int8 results depend on them (the calibration is %s "
            "and reused from now on)",
            path.name,
            len(paths),
            where,
        )
    if not paths:
        raise CalibrationError("int8 needs a few videos to calibrate on; none were given")
    calibration = calibrate(loaded.model, spec, paths, source)
    if not (writable and _store_in_file(model_file, calibration)):
        _to_cache(cache or _from_cache(loaded.model)[0], calibration)
    return calibration


def compress_calibration(model: TC3D, loaded, settings: dict) -> Calibration | None:
    """The calibration ``tc3d compress`` writes into a ``.tc3d`` header: made on the compressed
    weights, with a few videos of the training split (``--data``, else the checkpoint's own
    training set); None when neither is reachable (the first int8 run then makes one)."""
    train_config = None
    if settings.get("data"):
        train_config = {k: settings.get(k) for k in ("data", "format", "split", "splits")}
    elif settings.get("model") and Path(settings["model"]).is_file():
        train_config = load_checkpoint(settings["model"]).get("train_config")
    paths = training_videos(train_config)
    if not paths:
        log.warning(
            "no training videos reachable: the .tc3d file carries no int8 calibration; the "
            "first int8 run will make one"
        )
        return None
    return calibrate(model, loaded.clip, paths, "training videos")
