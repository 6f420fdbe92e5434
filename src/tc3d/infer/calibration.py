"""When and from which videos a model's int8 calibration is made, and the engine it gives.

The calibration (:class:`~tc3d.infer.quantize.Calibration`) is made once and travels with the
model, so an int8 run gives the same figures on any machine, from any directory. Where it is
kept (the ``.pt`` checkpoint, the ``.tc3d`` header, or the cache for files that cannot be
written) is :mod:`tc3d.modelfile.calibration`'s business; this module decides what to store:

* it is made from a few videos of the model's training set when the checkpoint names that set
  and it is reachable; otherwise from the videos being processed, with a logged warning saying
  so (the figures then depend on those videos, until the stored calibration is reused);
* ``tc3d compress`` makes it on the compressed weights for the ``.tc3d`` header.
* the shipped ``motion`` carries one made on its own pretraining clips
  (``benchmarks/calibrate_motion.py``).

:func:`make_engine` is the one way applications get an engine for a loaded model: the engine
itself (:mod:`tc3d.infer.engine`) takes a calibration and knows nothing of where it came from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from tc3d.datasets.annotations import anomaly_binary
from tc3d.datasets.formats import load_dataset
from tc3d.infer.engine import Engine, check_int8_device
from tc3d.infer.openvino_runtime import float_runtime
from tc3d.infer.quantize import (
    CALIBRATION_VIDEOS,
    FORMAT,
    Calibration,
    CalibrationError,
    CalibrationMismatch,
    backend_versions,
    calibrate,
)
from tc3d.modelfile.calibration import (
    KEY,
    ModelFile,
    cache_dir,
    cache_file,
    read_cache,
    store_in_file,
    write_cache,
)
from tc3d.modelfile.checkpoint import load_checkpoint
from tc3d.models.tc3d import TC3D
from tc3d.video.clips import ClipSpec

log = logging.getLogger(__name__)

__all__ = ["compress_calibration", "make_engine", "model_calibration", "training_videos",
           "weights_calibration"]  # fmt: skip

SALT = f"int8-{FORMAT}"  # names the cache file: another format never reads an old one


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


def _parse(path: Path, stored: dict) -> Calibration:
    calibration = Calibration.from_dict(stored)
    calibration.file, calibration.stored = str(path), True
    return calibration


def _cached(model: TC3D) -> tuple[Path, Calibration | None]:
    path = cache_file(model, SALT)
    return path, read_cache(path, lambda d: _parse(path, d))


def _to_cache(path: Path, calibration: Calibration) -> None:
    if write_cache(path, calibration.to_dict()):
        calibration.file = str(path)


def weights_calibration(model: TC3D, spec: ClipSpec, paths: Sequence[str | Path]) -> Calibration:
    """For a model with no file (``bench`` without ``--model``): cached by its weights."""
    cache, calibration = _cached(model)
    if calibration is None:
        calibration = calibrate(model, spec, paths, "given videos")
        _to_cache(cache, calibration)
    return calibration


def _stored(model_file: ModelFile | None) -> Calibration | None:
    """The calibration the model file holds, if it holds a readable one."""
    if model_file is None or KEY not in model_file.contents:
        return None
    try:
        return _parse(model_file.path, model_file.contents[KEY])
    except (ValueError, KeyError, TypeError) as e:
        log.warning("%s: ignoring its stored int8 calibration (%s)", model_file.path, e)
        return None


def _calibration_videos(model_file: ModelFile | None, path: Path, fallback, where: str):
    """The videos to calibrate on and what they are: the training set's, else ``fallback``."""
    train_config = model_file.contents.get("train_config") if model_file is not None else None
    paths = training_videos(train_config)
    if paths:
        return paths, "training videos"
    paths = [str(p) for p in list(fallback)[:CALIBRATION_VIDEOS]]
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
    return paths, "given videos"


def model_calibration(loaded, fallback: Sequence[str | Path] = (), renew: bool = False):
    """The int8 :class:`Calibration` of a loaded model
    (:class:`~tc3d.modelfile.checkpoint.LoadedModel`): the one stored with it, else made now
    (on its training videos when reachable, else on ``fallback``, with a warning) and stored
    with it (see the module docstring)."""
    path = Path(loaded.source)
    model_file = ModelFile.read(path) if path.is_file() else None
    stored = None if renew else _stored(model_file)
    if stored is not None:
        return stored
    writable = model_file is not None and model_file.writable()
    if writable and not model_file.holds(loaded.model):
        log.info("%s changed since it was loaded: its calibration goes to the cache", path)
        writable = False
    if not writable and not renew:
        _, cached = _cached(loaded.model)
        if cached is not None:
            return cached
    own = (model_file.contents if model_file is not None else {}).get("clip")
    spec = ClipSpec.from_dict(own) if own else loaded.clip
    where = f"stored in {path}" if writable else f"cached in {cache_dir()}"
    paths, source = _calibration_videos(model_file, path, fallback, where)
    calibration = calibrate(loaded.model, spec, paths, source)
    if writable and store_in_file(model_file, calibration.to_dict()):
        calibration.file = str(path)
    else:
        _to_cache(cache_file(loaded.model, SALT), calibration)
    return calibration


def compress_calibration(model: TC3D, loaded, settings: dict) -> Calibration | None:
    """The calibration ``tc3d compress`` writes into a ``.tc3d`` header: made on the compressed
    weights, with a few videos of the training split (``--data``, else the checkpoint's own
    training set); None when neither is reachable or the int8 backend is not installed (the
    first int8 run then makes one)."""
    try:
        backend_versions()
    except CalibrationError as e:
        log.warning("the .tc3d file carries no int8 calibration (%s)", e)
        return None
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


def make_engine(
    loaded,
    device: torch.device,
    precision: str = "fp32",
    fallback_videos: Sequence[str | Path] = (),
    calibration: Calibration | None = None,
    videos: int | None = None,
) -> Engine:
    """The engine for a loaded model, for ``videos`` videos (None: a stream or a server). fp32
    and bf16 run where that work is fastest on ``device``
    (:func:`~tc3d.infer.openvino_runtime.float_runtime`). int8 uses the calibration stored with
    the model, made and stored at this first int8 use when there is none (on its training
    videos when reachable, else on ``fallback_videos``, with a warning)."""
    if precision != "int8":
        runtime = float_runtime(device, videos, precision)
        return Engine(loaded.model, device, precision, runtime=runtime,
                      clip_shape=loaded.clip.clip_shape)  # fmt: skip
    check_int8_device(device)
    if calibration is not None:
        return Engine(loaded.model, device, precision, calibration)
    try:
        return Engine(loaded.model, device, precision, model_calibration(loaded, fallback_videos))
    except CalibrationMismatch as e:
        log.warning("%s: %s; calibrating again", loaded.source, e)
        renewed = model_calibration(loaded, fallback_videos, renew=True)
        return Engine(loaded.model, device, precision, renewed)
