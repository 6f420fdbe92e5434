"""Motion-energy anomaly detector: a non-learned baseline for ``tc3d anomaly test``.

Measures how much of UCF-Crime-style frame-level and video-level AUC is explained by "something
moves a lot here", with no learning at all. Each test frame is scored by

* ``energy``: the mean absolute difference between it and the previous grayscale frame
  (160x120), smoothed by a centred moving average over ``--window`` (16) frames, and
* ``diff``: plain frame differencing, the same difference unsmoothed,
* ``moving``: motion energy as the share of pixels that changed by more than 25 grey levels
  since the previous frame, smoothed the same way, and
* ``flow``: the mean Farneback optical-flow magnitude of the frame (every ``--flow-step``-th
  frame, interpolated in between), smoothed the same way.

A video's score is the maximum of its frame scores. Standardising the score against the mean
and std of training normal videos (the "fitted on normals" variant) is a monotone map, so its
AUCs equal the raw ones and it is not reported separately.

It is a fair baseline because everything but the score comes from the project's evaluation:
the same test list and annotations (:func:`load_dataset`, :func:`anomaly_binary`,
:func:`find_annotation_file`, :func:`read_temporal_annotations`), the same skipping of
anomalous videos the annotation file does not cover, the same frame axis (``probe``'s frame
count, so the same frames enter the ROC), the same labels (:func:`frame_labels`), one ROC over
all test frames concatenated, and the same AUC function (0-100).

Usage: python benchmarks/motion_energy_anomaly.py --data ROOT [--splits DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from multiprocessing import Pool

import av
import cv2
import numpy as np

from tc3d.apps.anomaly import auc, frame_labels
from tc3d.datasets.annotations import (
    anomaly_binary,
    find_annotation_file,
    read_temporal_annotations,
)
from tc3d.datasets.formats import is_normal_folder, load_dataset
from tc3d.video.decode import VideoReadError, probe

SIZE = (160, 120)  # (width, height)
VARIANTS = ("energy", "diff", "moving", "flow")
MOVING_THRESHOLD = 25  # grey levels: above sensor noise, below a walker against the street


def raw_signals(path: str, flow_step: int) -> dict[str, np.ndarray]:
    """Per decoded frame: frame-difference energy and flow magnitude (frame 0 copies frame 1)."""
    energy, moving, flow_at, flow_val = [], [], [], []
    prev = None
    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            cur = frame.reformat(width=SIZE[0], height=SIZE[1], format="gray").to_ndarray()
            if prev is not None:
                diff = cv2.absdiff(prev, cur)
                energy.append(float(diff.mean()))
                moving.append(float((diff > MOVING_THRESHOLD).mean()))
                if i % flow_step == 0:
                    flow = cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 3, 15, 3, 5, 1.2, 0)
                    flow_at.append(i)
                    flow_val.append(float(np.linalg.norm(flow, axis=-1).mean()))
            prev = cur
    n = len(energy) + 1
    if n < 2 or not flow_at:
        raise ValueError(f"{path}: too few frames decoded ({n})")
    energy = np.array([energy[0], *energy])
    moving = np.array([moving[0], *moving])
    flow = np.interp(np.arange(n), flow_at, flow_val)
    return {"energy": energy, "diff": energy, "moving": moving, "flow": flow}


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average; near the ends it averages over the frames that exist."""
    if window <= 1:
        return x
    k = np.ones(window)
    return np.convolve(x, k, "same") / np.convolve(np.ones_like(x), k, "same")


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Onto the project's frame axis (``probe`` count): trim, or repeat the last value."""
    return x[:n] if len(x) >= n else np.concatenate([x, np.full(n - len(x), x[-1])])


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _job(args: tuple[int, str, int]):
    i, path, flow_step = args
    start = time.perf_counter()
    try:
        return i, raw_signals(path, flow_step), "", time.perf_counter() - start
    except (av.FFmpegError, OSError, ValueError) as e:
        return i, None, str(e), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="UCF-Crime-layout ROOT")
    parser.add_argument("--splits", default=None, help="folder with Anomaly_Test.txt etc.")
    parser.add_argument("--window", type=int, default=16, help="smoothing window, frames")
    parser.add_argument("--flow-step", type=int, default=2, help="flow on every N-th frame")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()

    start = time.perf_counter()
    binary = anomaly_binary(load_dataset(args.data, "ucfcrime", 1, args.splits))
    if not binary.test:
        raise SystemExit(f"{args.data}: Anomaly_Test.txt lists no video found on disk")
    notes = read_temporal_annotations(find_annotation_file(args.data, args.splits))
    todo, skipped = [], []
    for item in binary.test:
        normal = item.label == 0 or is_normal_folder(item.path.parent.name)
        note = notes.get(item.path.name)
        if note is None and not normal:
            skipped.append({"path": str(item.path), "error": "not in the annotation file"})
        else:
            todo.append((item.path, normal, note))
    jobs = [(i, str(p), args.flow_step) for i, (p, _, _) in enumerate(todo)]
    scored, video_seconds, length_mismatch = [], [], 0
    with Pool(args.workers, initializer=_init_worker) as pool:
        for i, raw, error, secs in pool.imap(_job, jobs):
            path, normal, note = todo[i]
            video_seconds.append(secs)
            try:
                n = probe(path).num_frames
            except VideoReadError as e:
                raw, error = None, e.reason
            if raw is None:
                skipped.append({"path": str(path), "error": error})
                continue
            length_mismatch += len(raw["energy"]) != n
            scores = {v: fit_length(smooth(raw[v], 1 if v == "diff" else args.window), n)
                      for v in VARIANTS}  # fmt: skip
            labels = frame_labels(n, note.intervals if note else ())
            scored.append((scores, labels, not normal))
    if not scored:
        raise SystemExit("no test video could be scored")
    labels = np.concatenate([s[1] for s in scored])
    truth = np.array([s[2] for s in scored], np.int8)
    res = {}
    for v in VARIANTS:
        res[v] = {
            "frame_auc": auc(labels, np.concatenate([s[0][v] for s in scored])),
            "video_auc": auc(truth, np.array([s[0][v].max() for s in scored])),
        }
    seconds = time.perf_counter() - start
    result = {
        "frame_auc": res["energy"]["frame_auc"],  # the headline: raw frame-difference energy
        "video_auc": res["energy"]["video_auc"],
        "videos": len(scored),
        "frames": int(len(labels)),
        "seconds": seconds,
        "anomalous_frames": int(labels.sum()),
        "variants": res,
        "skipped": skipped,
        "length_mismatch": length_mismatch,  # videos whose decoded count != probe's
        "seconds_per_video": float(np.mean(video_seconds)),  # one worker's time per video
    }

    def fmt(x):
        return "n/a" if x is None else f"{x:.1f}"

    print(f"motion-energy anomaly baseline: {result['videos']} test videos, {result['frames']} "
          f"frames ({result['anomalous_frames']} anomalous), {len(skipped)} skipped")  # fmt: skip
    for v in VARIANTS:
        print(
            f"  {v:7s} frame AUC {fmt(res[v]['frame_auc'])}   video AUC {fmt(res[v]['video_auc'])}"
        )
    print(f"  {seconds:.1f} s total, {result['seconds_per_video']:.2f} s per video per worker")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
