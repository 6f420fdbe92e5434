"""Where a model's int8 calibration is kept: in its file, or in tc3d's cache.

This module stores and finds the calibration as a plain dict; what the numbers mean and
when to make them is :mod:`tc3d.infer.calibration`'s business. The places:

* a ``.pt`` checkpoint stores it under :data:`KEY`, added at its first int8 use (atomically,
  and never over a file that changed meanwhile; the modification time is kept, since the
  weights did not change);
* a ``.tc3d`` file holds it in its JSON header, under the same key;
* a file that cannot be written (a shipped model inside site-packages, or in a source
  checkout) and a model with no file keep it in a cache, ``$TC3D_CACHE`` or
  ``~/.cache/tc3d``, keyed by a digest of the weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from tc3d.io import atomic_write_text, atomic_write_with
from tc3d.modelfile import tc3dfile
from tc3d.modelfile.checkpoint import load_checkpoint
from tc3d.modelfile.shipped import WEIGHTS as PACKAGE_WEIGHTS

log = logging.getLogger(__name__)

KEY = "int8_calibration"  # in a checkpoint dict and in a .tc3d header

T = TypeVar("T")


def cache_dir() -> Path:
    """tc3d's cache folder (int8 calibrations of read-only models, bench videos):
    ``$TC3D_CACHE`` or ``~/.cache/tc3d``."""
    if os.environ.get("TC3D_CACHE"):
        return Path(os.environ["TC3D_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "tc3d"


def cache_file(model: nn.Module, salt: str) -> Path:
    """The cache file of a model's calibration: named by a digest of ``salt`` (the stored
    format's name) and the weights, so changed weights never find an old calibration."""
    h = hashlib.sha256(salt.encode())
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return cache_dir() / f"int8-{h.hexdigest()[:20]}.json"


def read_cache(path: Path, parse: Callable[[dict], T]) -> T | None:
    """``parse`` of the cached dict, or None when there is none; a damaged cache file is
    made again, not fatal."""
    if not path.is_file():
        return None
    try:
        return parse(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("ignoring unreadable int8 cache %s (%s)", path, e)
        return None


def write_cache(path: Path, stored: dict) -> bool:
    """Write the cache file; False (with a warning) when it cannot be written."""
    try:
        atomic_write_text(json.dumps(stored), path)
        return True
    except OSError as e:
        log.warning("could not write the int8 cache %s (%s)", path, e)
        return False


@dataclass
class ModelFile:
    """A model file as read before calibrating: its contents and its state on disk."""

    path: Path
    tc3d: bool
    contents: dict  # the checkpoint dict, or the .tc3d header
    raw: bytes | None  # the .tc3d file's bytes (to add a header field)
    stat: os.stat_result

    @classmethod
    def read(cls, path: Path) -> ModelFile:
        stat = path.stat()
        if tc3dfile.is_tc3d(path):
            raw = path.read_bytes()
            return cls(path, True, tc3dfile.read_header(path, raw), raw, stat)
        return cls(path, False, load_checkpoint(path), None, stat)

    def unchanged(self) -> bool:
        st = self.path.stat()
        before = self.stat
        return (st.st_ino, st.st_size, st.st_mtime_ns) == (
            before.st_ino,
            before.st_size,
            before.st_mtime_ns,
        )

    def writable(self) -> bool:
        """Whether the calibration may be added to the file itself. Files shipped inside
        the package never are (in an editable install they are the repository's own files)."""
        path = self.path
        return (
            path.is_file()
            and path.resolve().parent != PACKAGE_WEIGHTS
            and os.access(path, os.W_OK)
            and os.access(path.parent, os.W_OK)
        )

    def holds(self, model: nn.Module) -> bool:
        """Whether a checkpoint still holds ``model``'s weights (a training run may have
        saved new ones since it was loaded); a ``.tc3d`` file is taken as it is."""
        if self.tc3d:
            return True
        saved = self.contents.get("model") or {}
        own = model.state_dict()
        return saved.keys() == own.keys() and all(
            torch.equal(saved[k], v.detach().cpu()) for k, v in own.items()
        )


class _Changed(Exception):
    pass


def store_in_file(f: ModelFile, stored: dict) -> bool:
    """Add the calibration to the model file, atomically; False when the file changed since
    it was read (a training run writing it, another process calibrating): nothing is lost.

    The modification time is kept: the weights did not change, and ``tc3d compress`` decides
    by it whether an interrupted run may resume.
    """

    def write(out) -> None:
        if f.tc3d:
            out.write(tc3dfile.with_header_fields(f.raw, {KEY: stored}, f.path))
        else:
            torch.save({**f.contents, KEY: stored}, out)
        out.flush()
        if not f.unchanged():  # checked last, just before the rename
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
    return True
