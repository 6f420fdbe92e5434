"""The whole pipeline against what a CPU user would build instead, alternating in one run.

Three pipelines on the same videos and the same full-width Res3D-18 (seeded, as ``tc3d bench``
makes it), S=3 centre clips of 8 frames at 112×112:

* ``tc3d``: ``tc3d bench``'s timed pass (the engine: only the sampled frames decoded, in
  background readers; clips batched across videos) at ``--precision``;
* ``openvino``: the conventional pipeline as a user builds it on OpenVINO: decode every
  frame of the file with PyAV, take the same clips and crops (tc3d's own transforms, so only
  the reading and the runtime differ), and run the S clips of each video through an OpenVINO
  model (at ``--precision int8``: quantised by NNCF with its defaults; at ``fp32`` and
  ``bf16``: as converted) compiled the way their documentation shows: with OpenVINO's
  defaults, or with ``--openvino-precision`` as its inference precision (OpenVINO's defaults
  compute an fp32 model in bf16 on CPUs with bf16 instructions); scores averaged over the
  clips;
* ``eager fp32``: ``tc3d bench --baseline``'s conventional pipeline (every frame decoded, the
  fp32 PyTorch model, one clip at a time).

Rounds alternate the three, so load from elsewhere on the machine falls on each alike; medians
and ranges of frames per second, and the ratios of the medians, are printed and written as JSON.

    python benchmarks/pipeline_vs_openvino.py [--precision int8|fp32|bf16] [--videos 20]
        [--rounds 3] [--openvino-precision f32|bf16] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from tc3d.apps.bench import (
    BenchConfig,
    _conventional_clips,
    _model,
    _videos,
    baseline_pass,
    fast_pass,
    machine,
)
from tc3d.infer.engine import Engine
from tc3d.video.decode import VideoReadError


def openvino_model(
    backbone: torch.nn.Module, calibration: list[np.ndarray], precision: str, hint: str = ""
):
    """The backbone converted by OpenVINO (int8: quantised with NNCF's defaults), compiled
    with OpenVINO's defaults, or with ``hint`` ("f32", "bf16") as its inference precision."""
    import openvino as ov

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        example = torch.from_numpy(calibration[0])
        model = ov.convert_model(copy.deepcopy(backbone).eval(), example_input=example)
        if precision == "int8":
            import nncf

            dataset = nncf.Dataset(calibration)
            model = nncf.quantize(model, dataset, subset_size=len(calibration))
    config = {"INFERENCE_PRECISION_HINT": hint} if hint else {}
    return ov.Core().compile_model(model, "CPU", config)


def openvino_pass(compiled, paths, spec) -> tuple[dict[int, np.ndarray], int, float]:
    """One video at a time: every frame decoded, S clips in one call, scores averaged."""
    request = compiled.create_infer_request()
    probs, frames = {}, 0
    start = time.perf_counter()
    for i, path in enumerate(paths):
        try:
            video, num = _conventional_clips(path, spec)  # (crops, n, 3, k, H, W)
        except VideoReadError:
            continue
        scores = request.infer({0: video.flatten(0, 1).numpy()})[0]
        e = np.exp(scores - scores.max(1, keepdims=True))
        probs[i] = (e / e.sum(1, keepdims=True)).mean(0)
        frames += num
    return probs, frames, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=20, help="synthetic 7 s videos, as tc3d bench")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--precision", default="int8", choices=("int8", "fp32", "bf16"),
                   help="tc3d's precision, and the OpenVINO pipeline's")  # fmt: skip
    p.add_argument("--openvino-precision", default="", choices=("", "f32", "bf16"),
                   help="the OpenVINO pipeline's inference precision (default: its own "
                   "choice, bf16 on CPUs with bf16 instructions)")  # fmt: skip
    p.add_argument("--workers", type=int, default=1, help="tc3d's reader threads")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    cfg = BenchConfig(width=1.0, synthetic=args.videos, precision=args.precision,
                      workers=args.workers, device="cpu")  # fmt: skip
    paths = _videos(cfg)
    info = machine()
    model = _model(cfg, paths)
    spec = model.clip
    engine = model.engine()
    fp32 = Engine(model.loaded.model, model.device, "fp32", runtime="torch")
    calibration = [_conventional_clips(p, spec)[0].flatten(0, 1).numpy() for p in paths[:8]]
    compiled = openvino_model(
        model.loaded.model.backbones[0], calibration, args.precision, args.openvino_precision
    )

    passes = {
        "tc3d": lambda: _fps_tc3d(engine, paths, spec, cfg),
        "openvino": lambda: openvino_pass(compiled, paths, spec)[1:],
        "eager fp32": lambda: baseline_pass(fp32, paths, spec)[1:],
    }
    for run in passes.values():  # warm-up on everything once
        run()
    fps: dict[str, list[float]] = {name: [] for name in passes}
    for r in range(args.rounds):
        for name, run in passes.items():
            frames, seconds = run()
            fps[name].append(frames / seconds)
        print(f"round {r + 1}/{args.rounds}: "
              + ", ".join(f"{n} {v[-1]:.0f}" for n, v in fps.items()), flush=True)  # fmt: skip
    median = {name: statistics.median(v) for name, v in fps.items()}
    result = {
        "machine": info, "videos": len(paths), "precision": args.precision,
        "runtime": engine.runtime, "openvino_precision": args.openvino_precision or "default",
        "workers": args.workers, "rounds": args.rounds,
        "fps": {n: [round(x, 1) for x in v] for n, v in fps.items()},
        "fps_median": {n: round(v, 1) for n, v in median.items()},
        "ratio_vs_openvino": round(median["tc3d"] / median["openvino"], 3),
        "ratio_vs_eager_fp32": round(median["tc3d"] / median["eager fp32"], 3),
    }  # fmt: skip
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


def _fps_tc3d(engine, paths, spec, cfg) -> tuple[int, float]:
    results, seconds = fast_pass(engine, paths, spec, cfg, None)
    return sum(r.frames for r in results if r.error is None), seconds


if __name__ == "__main__":
    main()
