"""``tc3d export``: the whole T-C3D model as ONNX, a torch.export program, OpenVINO IR or
TorchScript, checked against PyTorch.

The exported graph takes a batch of videos as S clips, ``(N, S, 3, k, H, W)`` normalised as at
test time (mean/std in the metadata), and returns fused class scores ``(N, K)`` (softmax gives
probabilities). The batch dimension is dynamic. After writing, the file is loaded back and run
with the runtime that will serve it on one random clip batch and on a batch one larger;
``max_abs_diff`` is the largest difference from the PyTorch model's scores on the first.

Where each format keeps tc3d's metadata (:func:`_metadata`, one JSON object):

* ``onnx``: ``metadata_props["tc3d"]``.
* ``pt2``: the archive's extra file ``tc3d.json``
  (``torch.export.load(f, extra_files={"tc3d.json": ""})`` fills it in).
* ``openvino``: ``rt_info["tc3d"]`` of the IR
  (``openvino.Core().read_model(xml).get_rt_info("tc3d").astype(str)``).
* ``torchscript``: the extra file ``tc3d.json`` (``torch.jit.load(f, _extra_files=...)``).

Every file is written atomically (:mod:`tc3d.io`); OpenVINO's ``.xml`` and ``.bin`` as a pair.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tc3d.errors import TC3DError
from tc3d.io import atomic_write_files, atomic_write_with
from tc3d.video.transforms import MEAN, STD

log = logging.getLogger(__name__)

# One line each: the epilog of 'tc3d export --help'.
FORMATS = {
    "onnx": "ONNX (torch.onnx's torch.export-based exporter), checked with onnxruntime",
    "pt2": "torch.export program (.pt2), PyTorch's maintained format: torch.export.load",
    "openvino": "OpenVINO IR: FILE.xml and its FILE.bin (pip install 'tc3d[int8]')",
    "torchscript": "TorchScript (torch.jit.trace): deprecated by PyTorch, prefer pt2",
}
INSTALL_OPENVINO = "pip install 'tc3d[int8]' (or pip install openvino)"
TORCHSCRIPT_NOTE = (
    "PyTorch has deprecated TorchScript (torch.jit); --format pt2 (torch.export) is the "
    "maintained format"
)
# torch.jit warns on every trace, save and load; tc3d says it once (TORCHSCRIPT_NOTE).
_JIT_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"

Runner = Callable[[torch.Tensor], np.ndarray]


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


def dynamic_batch_program(
    model, example: torch.Tensor, max_batch: int = 1024
) -> torch.export.ExportedProgram:
    """``torch.export`` with a dynamic batch. It specialises a dimension it sees at size 1, so
    a batch of one is traced as a batch of two (the same clip twice)."""
    if example.shape[0] == 1:
        example = example.expand(2, *example.shape[1:]).contiguous()
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    return torch.export.export(model, (example,), dynamic_shapes=({0: batch},))


def _export_onnx(model, example: torch.Tensor, path: Path, meta: dict) -> None:
    try:
        import onnx
    except ImportError as e:
        raise ExportError(f"ONNX export needs onnx and onnxscript ({e})") from None

    batch = torch.export.Dim("batch", min=1, max=1024)
    try:
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
    except ImportError as e:
        raise ExportError(f"ONNX export needs onnx and onnxscript ({e})") from None
    proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = "tc3d", json.dumps(meta)
    onnx.checker.check_model(proto)
    atomic_write_with(path, lambda f: onnx.save(proto, f))


def _load_onnx(path: Path) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x.numpy()})[0]


def _export_pt2(model, example: torch.Tensor, path: Path, meta: dict) -> None:
    program = dynamic_batch_program(model, example)
    extra = {"tc3d.json": json.dumps(meta)}
    atomic_write_with(path, lambda f: torch.export.save(program, f, extra_files=extra))


def _load_pt2(path: Path) -> Runner:
    module = torch.export.load(str(path)).module()

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return module(x).numpy()

    return run


def _openvino():
    try:
        import openvino
    except ImportError:
        raise ExportError(f"--format openvino needs OpenVINO: {INSTALL_OPENVINO}") from None
    return openvino


def _export_openvino(model, example: torch.Tensor, path: Path, meta: dict) -> None:
    ov = _openvino()
    program = dynamic_batch_program(model, example)
    ir = ov.convert_model(program)
    ir.reshape(ov.PartialShape([-1, *example.shape[1:]]))  # only the batch is dynamic
    ir.inputs[0].get_tensor().set_names({"video"})
    ir.outputs[0].get_tensor().set_names({"scores"})
    ir.set_rt_info(json.dumps(meta), "tc3d")
    weights = path.with_suffix(".bin")  # the name save_model gives them, and the xml refers to

    def save(folder: Path) -> None:
        ov.save_model(ir, str(folder / path.name), compress_to_fp16=False)

    atomic_write_files([weights, path], save)


def _load_openvino(path: Path) -> Runner:
    ov = _openvino()
    # f32 explicitly: on CPUs with bf16 or fp16 units OpenVINO would otherwise run in those.
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda x: compiled(x.numpy())[0]


def _export_torchscript(model, example: torch.Tensor, path: Path, meta: dict) -> None:
    with torch.no_grad():
        traced = torch.jit.trace(model, (example,), check_trace=False)
    extra = {"tc3d.json": json.dumps(meta)}
    atomic_write_with(path, lambda f: torch.jit.save(traced, f, _extra_files=extra))


def _load_torchscript(path: Path) -> Runner:
    module = torch.jit.load(str(path), map_location="cpu")

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return module(x).numpy()

    return run


_WRITERS = {
    "onnx": (_export_onnx, _load_onnx),
    "pt2": (_export_pt2, _load_pt2),
    "openvino": (_export_openvino, _load_openvino),
    "torchscript": (_export_torchscript, _load_torchscript),
}


@contextlib.contextmanager
def _quiet():
    """The exporters print on stdout, which belongs to --json, log their registries and warn
    about their own internals (UserWarning, TracerWarning); the torch.jit deprecation is said
    once (TORCHSCRIPT_NOTE). Any other deprecation of what tc3d calls stays visible: the tests
    make it an error (pyproject.toml, filterwarnings)."""
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping ..." and such
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            for category in (DeprecationWarning, FutureWarning):  # torch 2.13, 2.14
                warnings.filterwarnings("ignore", _JIT_DEPRECATED, category)
            # torch.onnx and OpenVINO's PyTorch frontend copy the program through a pytree
            # class that torch deprecates: between those libraries and torch, not tc3d's call.
            warnings.filterwarnings("ignore", r".*treespec, LeafSpec", FutureWarning)
            yield
    finally:
        onnx_log.setLevel(level)


def _check_out(fmt: str, out: Path) -> None:
    if fmt == "openvino" and out.suffix != ".xml":
        raise ExportError(
            f"{out}: --format openvino writes FILE.xml and FILE.bin; end --out in .xml"
        )
    if out.is_dir():
        raise ExportError(f"{out}: is a folder; --out names the file to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e}") from None
    if fmt == "openvino":
        _openvino()  # before the work: one line if it is not installed


def export_model(loaded, fmt: str, out: str | Path, batch: int = 1) -> dict:
    """Write ``out`` in ``fmt`` and check it; returns ``{file, format, max_abs_diff, ...}``."""
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {tuple(FORMATS)}, not {fmt!r}")
    out = Path(out)
    _check_out(fmt, out)
    if fmt == "torchscript":
        log.warning(TORCHSCRIPT_NOTE)
    write, load = _WRITERS[fmt]
    model = loaded.model.float().cpu().eval().to(memory_format=torch.contiguous_format)
    example = _example(loaded, max(1, batch))
    other = _example(loaded, max(1, batch) + 1)  # a different batch size: dynamic batch
    with _quiet():
        try:
            write(model, example, out, _metadata(loaded))
        except OSError as e:
            raise ExportError(f"cannot write {out}: {e}") from e
        run = load(out)
        got, got_other = run(example), run(other)
    with torch.no_grad():
        reference, other_ref = model(example).numpy(), model(other).numpy()
    if got_other.shape != other_ref.shape:
        raise ExportError(f"exported model gave shape {got_other.shape} for {other_ref.shape}")
    files = [out, out.with_suffix(".bin")] if fmt == "openvino" else [out]
    result = {
        "file": str(out),
        "format": fmt,
        "max_abs_diff": float(np.abs(got - reference).max()),
        "max_abs_diff_batch": float(np.abs(got_other - other_ref).max()),
        "file_bytes": sum(f.stat().st_size for f in files),
        "input_shape": ["N", *example.shape[1:]],
        "classes": len(loaded.classes),
    }
    if fmt == "openvino":
        result["weights_file"] = str(files[1])
    return result
