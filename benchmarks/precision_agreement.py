"""Does reduced precision change the answers? top-1 and agreement with fp32, per precision.

Scores the test split of a data set with a trained model at fp32, bf16 and int8 through the
inference engine (int8 calibrated on the model's training videos, as ``tc3d test`` does), and
prints video top-1 for each and the share of videos whose top-1 label equals the first's
(``fp32@torch`` and ``fp32@openvino`` compare the two fp32 runtimes).

Usage: python benchmarks/precision_agreement.py --model RUN/best.pt --data ROOT [--json]
       [--precisions fp32@torch fp32@openvino int8]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from tc3d.datasets.formats import load_dataset
from tc3d.device import resolve_device
from tc3d.infer.calibration import make_engine
from tc3d.infer.engine import Engine
from tc3d.infer.evaluate import accuracy_metrics
from tc3d.modelfile.checkpoint import load_model_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32", "bf16", "int8"],
        help="the first is the reference; bf16 is slow where the CPU emulates it; "
        "fp32@torch or fp32@openvino names the runtime (else the engine's default)",
    )
    args = parser.parse_args()

    split = load_dataset(args.data)
    labels = {i: item.label for i, item in enumerate(split.test)}
    paths = [str(i.path) for i in split.test]
    counts = [i.num_frames for i in split.test]
    rows, top1s = {}, {}
    reference = args.precisions[0]
    for name in args.precisions:
        loaded = load_model_file(args.model)
        precision, _, runtime = name.partition("@")
        if runtime:
            engine = Engine(loaded.model, resolve_device("cpu"), precision, runtime=runtime,
                            clip_shape=loaded.clip.clip_shape)  # fmt: skip
        else:
            engine = make_engine(loaded, resolve_device("cpu"), precision)
        start = time.perf_counter()
        probs = {
            r.index: r.probs for r in engine.run(paths, loaded.clip, counts) if r.probs is not None
        }
        seconds = time.perf_counter() - start
        metrics = accuracy_metrics(probs, labels, loaded.classes)
        top1s[name] = {i: int(np.argmax(p)) for i, p in probs.items()}
        agree = [top1s[name][i] == top1s[reference][i] for i in top1s[name]]
        rows[name] = {
            "top1": metrics["top1"],
            "agreement": 100.0 * float(np.mean(agree)),
            "runtime": engine.runtime,
            "videos": len(probs),
            "seconds": seconds,
        }
        print(
            f"{name} ({engine.runtime}): top-1 {metrics['top1']:.2f}%  agreement with "
            f"{reference} {rows[name]['agreement']:.2f}%  ({len(probs)} videos, {seconds:.1f} s)"
        )
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
