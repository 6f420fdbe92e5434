"""Does reduced precision change the answers? top-1 and agreement with fp32, per precision.

Scores the test split of a data set with a trained model at fp32, bf16 and int8 through the
inference engine (int8 calibrated on the model's training videos, as ``tc3d test`` does), and
prints video top-1 for each and the share of videos whose top-1 label equals fp32's.

Usage: python benchmarks/precision_agreement.py --model RUN/best.pt --data ROOT [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from tc3d.datasets.formats import load_dataset
from tc3d.device import resolve_device
from tc3d.infer.calibration import make_engine
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
        help="fp32 first (the reference); bf16 is slow where the CPU emulates it",
    )
    args = parser.parse_args()

    split = load_dataset(args.data)
    labels = {i: item.label for i, item in enumerate(split.test)}
    paths = [str(i.path) for i in split.test]
    counts = [i.num_frames for i in split.test]
    rows, top1s = {}, {}
    for precision in args.precisions:
        loaded = load_model_file(args.model)
        engine = make_engine(loaded, resolve_device("cpu"), precision)
        start = time.perf_counter()
        probs = {
            r.index: r.probs for r in engine.run(paths, loaded.clip, counts) if r.probs is not None
        }
        seconds = time.perf_counter() - start
        metrics = accuracy_metrics(probs, labels, loaded.classes)
        top1s[precision] = {i: int(np.argmax(p)) for i, p in probs.items()}
        agree = [top1s[precision][i] == top1s["fp32"][i] for i in top1s[precision]]
        rows[precision] = {
            "top1": metrics["top1"],
            "agreement": 100.0 * float(np.mean(agree)),
            "videos": len(probs),
            "seconds": seconds,
        }
        print(
            f"{precision}: top-1 {metrics['top1']:.2f}%  agreement with fp32 "
            f"{rows[precision]['agreement']:.2f}%  ({len(probs)} videos, {seconds:.1f} s)"
        )
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
