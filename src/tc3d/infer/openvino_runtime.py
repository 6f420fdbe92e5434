"""The OpenVINO CPU runtime under tc3d's engine: conversion, compilation and the model cache.

int8 runs here (NNCF quantises the converted model, :mod:`tc3d.infer.quantize`), and so does
sustained float work on a CPU when OpenVINO is installed (:func:`float_runtime`): measured on
the same clips (``benchmarks/cpu_backends.py``, docs/BENCHMARKS.md), OpenVINO's fp32 Res3D-18
runs 1.2-1.5× faster than PyTorch eager with channels-last, and its scores differ from
PyTorch's by about 1e-6; on CPUs with bf16 instructions, its bf16 runs twice as fast as
PyTorch's bf16 autocast. Training and its validation stay on PyTorch (the weights change every
step), and so do bf16 on CPUs without bf16 instructions and any GPU.

A backbone is exported with ``torch.export`` (not TorchScript, which PyTorch has deprecated),
converted with ``openvino.convert_model`` for one clip shape with a dynamic batch, and compiled
for this CPU at the precision asked for (fp32 wherever an int8 graph is not int8). Converting
takes seconds, so the converted model is kept in tc3d's cache (``openvino/`` in
:func:`~tc3d.modelfile.calibration.cache_dir`), keyed by the weights, the clip shape, what was
done to it and the versions; a later run reads it back in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from tc3d.errors import first_line
from tc3d.infer.export import dynamic_batch_program
from tc3d.io import atomic_write_files
from tc3d.modelfile.calibration import cache_dir

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "openvino")
SUSTAINED_VIDEOS = 32  # from this many videos on, converting (once) or loading pays back
CACHE_ENTRIES = 24  # converted models kept per kind; the least recently used go first
RUNTIME_ENV = "TC3D_FP32_RUNTIME"  # "torch" keeps fp32 and bf16 on PyTorch where OpenVINO is there
INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16"}  # OpenVINO's names; int8 graphs: fp32


def openvino_version() -> str | None:
    """OpenVINO's version, or None when it is not installed."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__.split("-")[0]


def float_runtime(device: torch.device, videos: int | None = None, precision: str = "fp32") -> str:
    """Where ``precision`` ("fp32" or "bf16") inference of ``videos`` videos (None: a stream or
    a server, with no end) runs on ``device``.

    OpenVINO on a CPU where it is installed, for sustained work: it runs the fp32 model
    1.2-1.5× faster, but loading it costs about 0.3 s and converting a new model 2-6 s, which a
    call on a few videos would not win back; such a call runs on PyTorch. bf16 moves only on
    CPUs with bf16 instructions (:func:`native_bf16`), where OpenVINO's runs twice as fast as
    PyTorch's autocast; elsewhere OpenVINO would compute it in fp32. ``$TC3D_FP32_RUNTIME``
    (``torch`` or ``openvino``) decides instead where it is set.
    """
    wanted = os.environ.get(RUNTIME_ENV, "").strip().lower()
    if wanted and wanted not in RUNTIMES:
        log.warning("$%s=%s is neither of %s; ignored", RUNTIME_ENV, wanted, RUNTIMES)
        wanted = ""
    if device.type != "cpu" or wanted == "torch":
        return "torch"
    if not wanted and videos is not None and videos < SUSTAINED_VIDEOS:
        return "torch"  # decided without importing OpenVINO (0.1 s)
    if openvino_version() is None:
        if wanted:
            log.warning("$%s=openvino, but OpenVINO is not installed: %s runs on PyTorch "
                        "(pip install 'tc3d[int8]')", RUNTIME_ENV, precision)  # fmt: skip
        return "torch"
    if precision == "bf16" and not native_bf16():
        if wanted:
            log.warning("$%s=openvino, but this CPU has no bf16 instructions: bf16 runs on "
                        "PyTorch", RUNTIME_ENV)  # fmt: skip
        return "torch"
    return "openvino"


@functools.cache
def native_bf16() -> bool:
    """Whether OpenVINO computes bf16 natively on this CPU (AVX-512 BF16 or AMX). Without it,
    OpenVINO runs a bf16 request in fp32, which is not what ``--precision bf16`` asks for."""
    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class _MapsAndScores(nn.Module):
    """A Res3D backbone that returns its last conv map (res5b) beside the class scores.

    Converted in this form, one graph serves both the classifier commands and those that need
    the map (``features``, ``cam``); the extra output costs a copy of a small tensor. In eval
    mode the scores equal ``backbone(x)`` (dropout is the identity).
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.net = backbone

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.net.res5b(x)
        return fmap, self.net.fc(self.net.avgpool(fmap).flatten(1))


def convert(backbone: nn.Module, example: torch.Tensor):
    """The fp32 OpenVINO model of ``x -> (res5b map, scores)`` for clips shaped like
    ``example``, any batch size."""
    import openvino as ov

    net = copy.deepcopy(_MapsAndScores(backbone)).cpu().float().eval()
    net = net.to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        program = dynamic_batch_program(net, example[:1].float(), max_batch=4096)
    with warnings.catch_warnings():
        # OpenVINO's reader of exported programs still uses torch.utils._pytree names that
        # torch has deprecated; that is OpenVINO's call to make, not the user's to read.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ov.convert_model(program)


@functools.cache
def core():
    """One OpenVINO runtime per process (reading and compiling models)."""
    import openvino as ov

    return ov.Core()


def compile_for_cpu(model, precision: str = "fp32"):
    """Compiled for this CPU at ``precision``: the inference precision is always set (left to
    itself, OpenVINO computes an fp32 or int8 graph's float parts in bf16 on CPUs that have
    bf16 instructions, so fp32 would not be fp32 and figures would differ between machines)."""
    config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[precision]}  # fmt: skip
    return core().compile_model(model, "CPU", config)


class OpenVinoBackbone:
    """A backbone compiled by OpenVINO, called like the float one it came from:
    clips ``(N, 3, k, H, W)`` -> (res5b maps, class scores), float32 torch tensors.

    Each thread gets its own inference request (a request runs one call at a time), so the
    page's connections and the stream workers can share one engine.
    """

    def __init__(self, compiled):
        self.compiled = compiled
        self._local = threading.local()

    def __call__(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        request.infer({0: clips.detach().float().contiguous().numpy()})
        fmap, scores = (request.get_output_tensor(i).data.copy() for i in range(2))
        return torch.from_numpy(fmap), torch.from_numpy(scores)


def cache_path(kind: str, backbone: nn.Module, example: torch.Tensor, extra: object) -> Path:
    """Where the ``kind`` ("fp32", "int8") model of these weights, clip shape and ``extra``
    (what else shaped it: ranges, versions) is kept."""
    h = hashlib.sha256(json.dumps([extra, list(example.shape)]).encode())
    for k, v in backbone.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return cache_dir() / "openvino" / f"{kind}-{h.hexdigest()[:24]}.xml"


def read_cached(path: Path):
    """The cached model at ``path``, or None (missing, or damaged: then it is rebuilt)."""
    if not path.is_file() or not path.with_suffix(".bin").is_file():
        return None
    try:
        os.utime(path)  # recently used: the last to be pruned
        return core().read_model(str(path))
    except Exception as e:  # noqa: BLE001 - a damaged cache entry is rebuilt, not fatal
        log.warning("rebuilding the damaged cached model %s (%s)", path, first_line(e))
        return None


def write_cached(path: Path, model) -> None:
    """The IR pair, written atomically with the .xml last, so a reader never sees an .xml
    without its .bin. A cache that cannot be written is only slower."""
    import openvino as ov

    def save(folder: Path) -> None:
        ov.save_model(model, str(folder / path.name), compress_to_fp16=False)

    try:
        atomic_write_files([path.with_suffix(".bin"), path], save)
    except OSError as e:
        log.info("cannot cache the converted model in %s (%s)", path.parent, e)
        return
    _prune(path.parent, path.name.split("-")[0])


def _prune(folder: Path, kind: str, keep: int = CACHE_ENTRIES) -> None:
    """Keep the ``keep`` most recently used ``kind`` models: each new model or clip shape
    adds one (8 MB at width 0.25, 130 MB at full width), and a cache must not grow forever.
    A model removed under a reader that was about to read it is converted again."""

    def used(p: Path) -> float:
        with contextlib.suppress(OSError):
            return p.stat().st_mtime
        return 0.0

    entries = sorted(folder.glob(f"{kind}-*.xml"), key=used, reverse=True)
    for xml in entries[keep:]:
        for p in (xml, xml.with_suffix(".bin")):
            p.unlink(missing_ok=True)


def compiled_from_cache(
    path: Path, build: Callable[[], object], precision: str = "fp32"
) -> OpenVinoBackbone:
    """The model cached at ``path``, else ``build()`` and cache it; compiled for this CPU."""
    model = read_cached(path)
    if model is None:
        model = build()
        write_cached(path, model)
    return OpenVinoBackbone(compile_for_cpu(model, precision))


def float_backbone(
    backbone: nn.Module, example: torch.Tensor, precision: str = "fp32"
) -> OpenVinoBackbone:
    """``backbone`` at ``precision`` ("fp32" or "bf16") on OpenVINO for clips shaped like
    ``example``: the converted fp32 model read from the cache, or converted (seconds, once per
    model and clip shape on a machine) and cached; compiled at ``precision``."""

    def build():
        log.info("%s: converting the model for OpenVINO (once per model and clip shape on "
                 "this machine, a few seconds)", precision)  # fmt: skip
        start = time.perf_counter()
        model = convert(backbone, example)
        log.debug("%s: converted in %.1f s", precision, time.perf_counter() - start)
        return model

    path = cache_path("fp32", backbone, example[:1], {"openvino": openvino_version()})
    return compiled_from_cache(path, build, precision)


class FloatOnOpenVino:
    """A float backbone run by OpenVINO at ``precision`` ("fp32" or "bf16"), one compiled
    model per clip shape it is given.

    The engine prepares the shape the model was trained on when it starts; another shape (a
    ``--crop`` or ``--frames`` override) is converted at its first batch. Thread-safe: the
    page's connections and stream workers share it.
    """

    def __init__(self, backbone: nn.Module, precision: str = "fp32"):
        self.backbone = backbone
        self.precision = precision
        self._compiled: dict[tuple[int, ...], OpenVinoBackbone] = {}
        self._lock = threading.Lock()

    def prepare(self, clip_shape: tuple[int, ...]) -> OpenVinoBackbone:
        """The compiled model for clips ``(3, k, H, W)``, made now if there is none yet."""
        with self._lock:
            if clip_shape not in self._compiled:
                example = torch.zeros(1, *clip_shape)
                self._compiled[clip_shape] = float_backbone(self.backbone, example, self.precision)
            return self._compiled[clip_shape]

    def __call__(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        compiled = self._compiled.get(tuple(clips.shape[1:])) or self.prepare(
            tuple(clips.shape[1:])
        )
        return compiled(clips)
