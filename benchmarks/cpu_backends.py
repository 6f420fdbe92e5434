"""Which CPU runtime should run tc3d's backbone? Speed, first-call latency, accuracy, size.

One Res3D-18 backbone (full width by default), the same clips for every backend, in one run:

* ``torch``: PyTorch eager, channels-last: fp32 (tc3d's fp32 path without OpenVINO) and bf16
  under autocast;
* ``tc3d``: tc3d's own fp32, bf16 and int8 paths, on OpenVINO (``tc3d.infer.openvino_runtime``
  and ``tc3d.infer.quantize``), model only;
* ``torch-fx``: ``torch.ao.quantization`` FX graph mode int8 (tc3d's int8 until now; being
  deleted from PyTorch), when this torch still has it;
* ``torchao``: torchao's PT2E flow (``X86InductorQuantizer``) lowered by ``torch.compile``;
* ``openvino``: OpenVINO's CPU plugin, each row converted and compiled the way OpenVINO's
  documentation shows: ``openvino fp32`` with ``compile_model``'s defaults (which compute in
  bf16 on CPUs with bf16 instructions), ``openvino fp32 f32`` and ``openvino bf16`` with that
  inference precision asked for, and int8 quantised by NNCF with its defaults;
* ``onnxruntime``: the ONNX export at fp32 and onnxruntime's static QDQ int8.

For each: clips/s on batches of ``--batch`` clips (median and range over ``--rounds`` rounds,
the backends alternating within each round, so a noisy neighbour hits all of them alike),
first-call seconds (build, quantise or compile, and the first batch), agreement with the fp32
PyTorch model on real clips (top-1 agreement and the largest score difference), whether two
builds from the same calibration give bit-identical scores, and the installed size of what the
backend needs beyond PyTorch. Backends that are not installed are reported as missing.

    python benchmarks/cpu_backends.py [--width 1.0] [--batch 12] [--rounds 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.metadata
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tc3d.models.res3d import res3d18
from tc3d.video.clips import ClipSpec, load_clips
from tc3d.video.sampling import SamplingConfig

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real-video" / "clips"
Runner = Callable[[np.ndarray], np.ndarray]  # clips (N, 3, k, H, W) float32 -> scores (N, K)


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cpu_flags() -> list[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx512", "amx", "avx_vnni")))
    return []


def real_clips(frames: int, crop: int, count: int) -> torch.Tensor:
    """Centre clips of the real videos beside the project, normalised as at test time."""
    spec = ClipSpec(SamplingConfig(segments=1, frames=frames), crop=crop)
    out = []
    for path in sorted(REAL.glob("*"))[:count]:
        with contextlib.suppress(Exception):
            video, _ = load_clips(path, None, spec, None)
            out.append(video.flatten(0, 1)[:1])
    if not out:
        raise SystemExit(f"no readable videos in {REAL}")
    return torch.cat(out)


def package_bytes(*names: str) -> int:
    """Installed size of the given distributions (their files as pip recorded them)."""
    total = 0
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            for f in importlib.metadata.files(name) or []:
                with contextlib.suppress(OSError):
                    total += f.locate().stat().st_size
    return total


# ---------------------------------------------------------------------------------------------
# backends: each builder takes (fp32 backbone, calibration clips, example) and returns a runner


def torch_fp32(model: nn.Module, calib: torch.Tensor, example: torch.Tensor) -> Runner:
    net = copy.deepcopy(model).to(memory_format=torch.channels_last_3d)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last_3d)
            return net(t).numpy()

    return run


def torch_bf16(model: nn.Module, calib: torch.Tensor, example: torch.Tensor) -> Runner:
    """PyTorch eager under bf16 autocast, channels-last (tc3d's bf16 where OpenVINO is not
    installed or the CPU has no bf16 instructions)."""
    net = copy.deepcopy(model).to(memory_format=torch.channels_last_3d)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last_3d)
            return net(t).float().numpy()

    return run


def torch_fx_int8(model: nn.Module, calib: torch.Tensor, example: torch.Tensor) -> Runner:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        torch.backends.quantized.engine = "x86"
        prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("x86"), (example,))
        with torch.no_grad():
            for batch in calib.split(4):
                prepared(batch)
        net = convert_fx(prepared)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()

    return run


def torchao_int8(model: nn.Module, calib: torch.Tensor, example: torch.Tensor) -> Runner:
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = xiq.X86InductorQuantizer().set_global(
        xiq.get_default_x86_inductor_quantization_config()
    )
    with torch.no_grad():
        batch = torch.export.Dim("batch", min=2, max=1024)
        exported = torch.export.export(
            copy.deepcopy(model), (example.repeat(2, 1, 1, 1, 1),), dynamic_shapes={"x": {0: batch}}
        ).module()
        prepared = prepare_pt2e(exported, quantizer)
        for batch in calib.split(4):
            prepared(batch)
        converted = convert_pt2e(prepared)
    torch._inductor.config.freezing = True
    net = torch.compile(converted)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()

    return run


def _openvino(
    model: nn.Module, example: torch.Tensor, calib: torch.Tensor | None, precision: str = ""
) -> Runner:
    """Converted and compiled as OpenVINO's documentation shows. With ``precision`` ("f32",
    "bf16") the inference precision is set as its documentation shows for that; without it,
    OpenVINO chooses, which is bf16 on CPUs with bf16 instructions."""
    import openvino as ov

    ov_model = ov.convert_model(copy.deepcopy(model), example_input=example)
    if calib is not None:
        import nncf

        dataset = nncf.Dataset([b.numpy() for b in calib.split(1)])
        ov_model = nncf.quantize(ov_model, dataset, subset_size=len(calib))
    config = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
    compiled = ov.Core().compile_model(ov_model, "CPU", config)
    request = compiled.create_infer_request()

    def run(x: np.ndarray) -> np.ndarray:
        return request.infer({0: x})[0].copy()

    return run


def openvino_fp32(model: nn.Module, calib: torch.Tensor, example: torch.Tensor) -> Runner:
    return _openvino(model, example, None)


def openvino_f32(model: nn.Module, calib: torch.Tensor, example: torch.Tensor) -> Runner:
    return _openvino(model, example, None, "f32")


def openvino_bf16(model: nn.Module, calib: torch.Tensor, example: torch.Tensor) -> Runner:
    return _openvino(model, example, None, "bf16")


def openvino_int8(model: nn.Module, calib: torch.Tensor, example: torch.Tensor) -> Runner:
    return _openvino(model, example, calib)


def tc3d_int8(model: nn.Module, calib: torch.Tensor, example: torch.Tensor) -> Runner:
    """tc3d's own int8 path (OpenVINO + NNCF through tc3d.infer.quantize), model only."""
    from tc3d.infer import quantize

    ranges = quantize.calibrate_backbone(model, list(calib.split(1)))
    net = quantize.quantize_backbone(model, ranges, example[:1])
    return lambda x: net(torch.from_numpy(x))[1].numpy()


def tc3d_fp32(
    model: nn.Module, calib: torch.Tensor, example: torch.Tensor, precision: str = "fp32"
) -> Runner:
    """tc3d's fp32 path where OpenVINO is installed (tc3d.infer.openvino_runtime), model only;
    the first call converts (the cache is emptied first, so it is timed as on a new machine)."""
    from tc3d.infer import openvino_runtime

    before = os.environ.get("TC3D_CACHE")
    with tempfile.TemporaryDirectory(prefix="tc3d-cache-") as cache:
        os.environ["TC3D_CACHE"] = cache
        try:
            net = openvino_runtime.float_backbone(model, example[:1], precision)
        finally:
            os.environ.pop("TC3D_CACHE")
            if before is not None:
                os.environ["TC3D_CACHE"] = before
    return lambda x: net(torch.from_numpy(x))[1].numpy()


def tc3d_bf16(model: nn.Module, calib: torch.Tensor, example: torch.Tensor) -> Runner:
    """tc3d's bf16 path on CPUs with bf16 instructions (OpenVINO computing in bf16)."""
    return tc3d_fp32(model, calib, example, "bf16")


def _onnx_file(model: nn.Module, example: torch.Tensor, folder: Path) -> Path:
    path = folder / "model.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(open(os.devnull, "w")):  # noqa: SIM115
        warnings.simplefilter("ignore")
        batch = torch.export.Dim("batch", min=1, max=1024)
        program = torch.onnx.export(copy.deepcopy(model), (example,), dynamo=True,
                                    input_names=["clips"], dynamic_shapes={"x": {0: batch}},
                                    external_data=False, verbose=False)  # fmt: skip
        program.save(str(path))
    return path


def _ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def onnxruntime_fp32(model: nn.Module, calib: torch.Tensor, example: torch.Tensor) -> Runner:
    folder = Path(tempfile.mkdtemp(prefix="tc3d-ort-"))
    return _ort_session(_onnx_file(model, example, folder))


def onnxruntime_int8(model: nn.Module, calib: torch.Tensor, example: torch.Tensor) -> Runner:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    folder = Path(tempfile.mkdtemp(prefix="tc3d-ort-"))
    path = _onnx_file(model, example, folder)
    quant_pre_process(str(path), str(folder / "pre.onnx"))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"clips": b.numpy()} for b in calib.split(1)])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(folder / "pre.onnx"), str(folder / "int8.onnx"), Reader(),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True)  # fmt: skip
    return _ort_session(folder / "int8.onnx")


BACKENDS: dict[str, tuple[Callable, str, tuple[str, ...]]] = {
    # name: (builder, precision, distributions it needs beyond torch)
    "torch fp32": (torch_fp32, "fp32", ()),
    "torch bf16": (torch_bf16, "bf16", ()),
    "torch-fx int8": (torch_fx_int8, "int8", ()),
    "torchao int8": (torchao_int8, "int8", ("torchao",)),
    "tc3d fp32": (tc3d_fp32, "fp32", ("openvino", "openvino-telemetry")),
    "tc3d bf16": (tc3d_bf16, "bf16", ("openvino", "openvino-telemetry")),
    "tc3d int8": (tc3d_int8, "int8", ("openvino", "openvino-telemetry", "nncf")),
    "openvino fp32": (openvino_fp32, "fp32", ("openvino", "openvino-telemetry")),
    "openvino fp32 f32": (openvino_f32, "fp32", ("openvino", "openvino-telemetry")),
    "openvino bf16": (openvino_bf16, "bf16", ("openvino", "openvino-telemetry")),
    "openvino int8": (openvino_int8, "int8", ("openvino", "openvino-telemetry", "nncf")),
    "onnxruntime fp32": (onnxruntime_fp32, "fp32", ("onnxruntime", "onnx", "onnxscript")),
    "onnxruntime int8": (onnxruntime_int8, "int8", ("onnxruntime", "onnx", "onnxscript")),
}


def build(name: str, model, calib, example, batch: np.ndarray) -> tuple[Runner, float]:
    """The runner and its first-call seconds (build plus one batch)."""
    builder = BACKENDS[name][0]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = builder(model, calib, example)
        run(batch)
    return run, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--crop", type=int, default=112)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--iters", type=int, default=3, help="batches per backend per round")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="*", help="backend names to run (default: all)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = res3d18(num_classes=101, width=args.width).eval()
    clips = real_clips(args.frames, args.crop, 16)
    calib, check = clips[:8], clips
    example = clips[:1]
    batch = clips.repeat((args.batch + len(clips) - 1) // len(clips), 1, 1, 1, 1)[: args.batch]
    batch = batch.numpy()
    with torch.no_grad():
        reference = model(check).numpy()

    names = [n for n in BACKENDS if not args.only or n in args.only]
    runners, rows = {}, {}
    for name in names:
        try:
            run, first = build(name, model, calib, example, batch)
        except Exception as e:  # noqa: BLE001 - a backend that fails is reported, not fatal
            rows[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
            print(f"{name:18} failed: {rows[name]['error']}", flush=True)
            continue
        scores = run(check.numpy())
        again, _ = build(name, model, calib, example, batch)
        rows[name] = {
            "precision": BACKENDS[name][1],
            "first_call_s": round(first, 2),
            "agree_top1": float((scores.argmax(1) == reference.argmax(1)).mean() * 100),
            "max_abs_diff": float(np.abs(scores - reference).max()),
            "reproducible": bool(np.array_equal(scores, again(check.numpy()))),
            "install_bytes": package_bytes(*BACKENDS[name][2]),
            "clips_s": [],
        }
        runners[name] = run
        print(f"{name:18} built in {first:6.1f} s", flush=True)

    for r in range(args.rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            for _ in range(args.iters):
                run(batch)
            rows[name]["clips_s"].append(args.batch * args.iters / (time.perf_counter() - start))
        print(f"round {r + 1}/{args.rounds}", flush=True)

    for row in rows.values():
        if "clips_s" in row:
            row["clips_s_median"] = round(statistics.median(row["clips_s"]), 2)
            row["clips_s"] = [round(v, 2) for v in row["clips_s"]]
    result = {
        "cpu": cpu_name(), "cpu_flags": cpu_flags(), "threads": args.threads,
        "torch": torch.__version__, "width": args.width, "batch": args.batch,
        "clip": [3, args.frames, args.crop, args.crop], "rounds": args.rounds, "backends": rows,
    }  # fmt: skip
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


def print_table(result: dict) -> None:
    flags = ", ".join(result["cpu_flags"]) or "no AVX-512"
    print(f"\n{result['cpu']} ({flags}), {result['threads']} threads, "
          f"width {result['width']}, batch {result['batch']}")  # fmt: skip
    print(f"{'backend':18} {'clips/s':>8} {'range':>13} {'first s':>8} {'agree':>6} "
          f"{'max diff':>9} {'repro':>5} {'MB':>6}")  # fmt: skip
    for name, row in result["backends"].items():
        if "error" in row:
            print(f"{name:18} failed: {row['error']}")
            continue
        lo, hi = min(row["clips_s"]), max(row["clips_s"])
        print(f"{name:18} {row['clips_s_median']:8.1f} {lo:6.1f}-{hi:<6.1f} "
              f"{row['first_call_s']:8.1f} {row['agree_top1']:6.1f} {row['max_abs_diff']:9.4f} "
              f"{'yes' if row['reproducible'] else 'no':>5} "
              f"{row['install_bytes'] / 1e6:6.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
