"""``tc3d export``: the whole T-C3D model as ONNX or TorchScript, checked against PyTorch.

The exported graph takes a batch of videos as S clips, ``(N, S, 3, k, H, W)`` normalised as at
test time (mean/std in the metadata), and returns fused class scores ``(N, K)`` (softmax gives
probabilities). The batch dimension is dynamic. After writing, the file is loaded back and run
(ONNX with onnxruntime) on one random clip batch and a batch of two; ``max_abs_diff`` is the
largest difference from the PyTorch model's scores on the first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from tc3d.errors import TC3DError
from tc3d.io import atomic_write_with
from tc3d.video.transforms import MEAN, STD

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")


class ExportError(TC3DError, RuntimeError):
    pass


def _metadata(loaded) -> dict:
    s = loaded.clip.sampling
    return {
        "classes": loaded.classes,
        "input": "video (N, S, 3, k, H, W), RGB in [0,1] normalised by mean/std",
        "segments": s.segments,
        "frames": s.frames,
        "offset": s.offset,
        "sampling": s.strategy,
        "crop": loaded.clip.crop,
        "mean": MEAN,
        "std": STD,
        "output": "fused class scores (N, K); softmax for probabilities",
    }


def _example(loaded, batch: int) -> torch.Tensor:
    s = loaded.clip.sampling
    g = torch.Generator().manual_seed(0)
    shape = (batch, s.segments, 3, s.frames, loaded.clip.crop, loaded.clip.crop)
    return torch.randn(shape, generator=g)


def _export_onnx(model, example: torch.Tensor, path: Path, meta: dict) -> None:
    import onnx

    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        input_names=["video"],
        output_names=["scores"],
        dynamic_shapes={"video": {0: batch}},
        external_data=False,
        verbose=False,
    )
    proto = program.model_proto
    for key, value in {"tc3d": json.dumps(meta)}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    atomic_write_with(path, lambda f: onnx.save(proto, f))


def _run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def _export_torchscript(model, example: torch.Tensor, path: Path, meta: dict) -> None:
    with torch.no_grad():
        traced = torch.jit.trace(model, (example,), check_trace=False)
    extra = {"tc3d.json": json.dumps(meta)}
    atomic_write_with(path, lambda f: torch.jit.save(traced, f, _extra_files=extra))


def _run_torchscript(path: Path, x: torch.Tensor) -> np.ndarray:
    module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(x).numpy()


def export_model(loaded, fmt: str, out: str | Path, batch: int = 1) -> dict:
    """Write ``out`` in ``fmt`` and check it; returns ``{file, format, max_abs_diff, ...}``."""
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {FORMATS}, not {fmt!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = loaded.model.float().cpu().eval().to(memory_format=torch.contiguous_format)
    meta = _metadata(loaded)
    example = _example(loaded, max(1, batch))
    # The exporters talk on stdout and warn about deprecations; stdout belongs to --json.
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            try:
                _export_onnx(model, example, out, meta)
            except ImportError as e:
                raise ExportError(f"ONNX export needs onnx and onnxscript ({e})") from None
            run = _run_onnx
        else:
            _export_torchscript(model, example, out, meta)
            run = _run_torchscript
    with torch.no_grad():
        reference = model(example).numpy()
        other = _example(loaded, max(1, batch) + 1)  # a different batch size: dynamic batch
        other_ref = model(other).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = run(out, example)
        got_other = run(out, other)
    if got_other.shape != other_ref.shape:
        raise ExportError(f"exported model gave shape {got_other.shape} for {other_ref.shape}")
    return {
        "file": str(out),
        "format": fmt,
        "max_abs_diff": float(np.abs(got - reference).max()),
        "max_abs_diff_batch": float(np.abs(got_other - other_ref).max()),
        "file_bytes": out.stat().st_size,
        "input_shape": ["N", *example.shape[1:]],
        "classes": len(loaded.classes),
    }
