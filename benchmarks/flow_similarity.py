"""Hand-crafted optical-flow baseline for ASLAN-style same/different action similarity.

Measures how well a non-learned motion descriptor answers "do these two videos show the same
action?" under exactly the protocol of ``tc3d similarity``: the same pairs file and folds
(:func:`read_pairs`), the same six distances per pair (:func:`pair_vector`), the same
StandardScaler + linear SVM with fold-wise AUC and accuracy (:func:`cross_validate`). Only the
per-video descriptor differs, so the gap between this and T-C3D's features is the value of the
learned representation.

Descriptor (what ASLAN's own HOF/motion baselines look like): grayscale frames at 160x120
(every ``--step``-th frame), dense Farneback flow between consecutive kept frames, and

* HOF: orientation histograms weighted by flow magnitude over the whole frame and a 2x2 grid,
  plus a histogram of flow magnitudes of the moving pixels;
* motion-centroid dynamics: per frame the magnitude-weighted centroid of the moving pixels
  and the motion energy; histograms of the centroid's velocity direction and speed, low FFT
  magnitudes of centroid x, y and energy over (length-normalised) time, and spread statistics.

Each block is L2-normalised, the blocks are concatenated and the whole is L2-normalised again.

Usage: python benchmarks/flow_similarity.py --pairs PAIRS.txt --videos DIR [--folds 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from multiprocessing import Pool
from pathlib import Path

import av
import cv2
import numpy as np

from tc3d.apps.similarity import cross_validate, l2_normalise, pair_vector, read_pairs

SIZE = (160, 120)  # (width, height) of the frames the flow is computed on
ORIENT_BINS = 8
MAG_EDGES = (0.5, 1.0, 2.0, 4.0, 8.0, np.inf)  # pixels per kept-frame step; below 0.5 = static
MOVING = MAG_EDGES[0]
SPEED_EDGES = (0.0, 0.0025, 0.005, 0.01, 0.02, 0.04, np.inf)  # centroid speed, frame widths/step
SPECTRUM_LEN, SPECTRUM_BINS = 64, 8

log = logging.getLogger("flow_similarity")


def gray_frames(path: str, step: int):
    """Every ``step``-th frame as 120x160 uint8 grayscale."""
    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % step == 0:
                yield frame.reformat(width=SIZE[0], height=SIZE[1], format="gray").to_ndarray()


def orientation_hist(ang: np.ndarray, mag: np.ndarray) -> np.ndarray:
    idx = np.minimum((ang * ORIENT_BINS / (2 * np.pi)).astype(int), ORIENT_BINS - 1)
    return np.bincount(idx.ravel(), weights=mag.ravel(), minlength=ORIENT_BINS)


def spectrum(signal: np.ndarray) -> np.ndarray:
    """|FFT| of the first SPECTRUM_BINS non-DC frequencies, after resampling to a fixed length
    (frequencies are in cycles per video, so videos of any length compare)."""
    x = np.interp(np.linspace(0, len(signal) - 1, SPECTRUM_LEN), np.arange(len(signal)), signal)
    return l2_normalise(np.abs(np.fft.rfft(x - x.mean()))[1 : SPECTRUM_BINS + 1])


def descriptor(path: str, step: int = 2) -> np.ndarray:
    h, w = SIZE[1], SIZE[0]
    ys, xs = np.mgrid[0:h, 0:w]
    cells = [(slice(a, a + h // 2), slice(b, b + w // 2)) for a in (0, h // 2) for b in (0, w // 2)]
    hof_global = np.zeros(ORIENT_BINS)
    hof_grid = np.zeros((len(cells), ORIENT_BINS))
    mag_hist = np.zeros(len(MAG_EDGES) - 1)
    centroids, energy = [], []
    prev = None
    for cur in gray_frames(path, step):
        if prev is not None:
            flow = cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            mag, ang = cv2.cartToPolar(flow[..., 0], flow[..., 1])
            moving = mag >= MOVING
            m = np.where(moving, mag, 0.0)
            hof_global += orientation_hist(ang, m)
            for k, (sy, sx) in enumerate(cells):
                hof_grid[k] += orientation_hist(ang[sy, sx], m[sy, sx])
            mag_hist += np.histogram(mag[moving], bins=MAG_EDGES)[0]
            total = m.sum()
            energy.append(total / m.size)
            if total > 0:
                centroids.append(((m * xs).sum() / total / w, (m * ys).sum() / total / h))
            else:  # no motion: the centroid stays where it was
                centroids.append(centroids[-1] if centroids else (0.5, 0.5))
        prev = cur
    if len(energy) < 2:
        raise ValueError(f"{path}: fewer than 3 frames decoded")
    c = np.array(centroids)
    e = np.array(energy)
    v = np.diff(c, axis=0)
    speed = np.linalg.norm(v, axis=1)
    direction = np.mod(np.arctan2(v[:, 1], v[:, 0]), 2 * np.pi)
    dir_hist = orientation_hist(direction, speed)
    speed_hist = np.histogram(speed, bins=SPEED_EDGES)[0].astype(float)
    spectra = np.concatenate(
        [spectrum(c[:, 0]), spectrum(c[:, 1]), spectrum(e / max(e.mean(), 1e-6))]
    )
    spread = np.array([c[:, 0].std(), c[:, 1].std(), np.ptp(c[:, 0]), np.ptp(c[:, 1]),
                       e.mean(), e.std(), speed.mean()])  # fmt: skip
    blocks = [hof_global, hof_grid.ravel(), mag_hist, dir_hist, speed_hist, spectra, spread]
    return l2_normalise(np.concatenate([l2_normalise(b.astype(float)) for b in blocks]))


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one core per process: the pool already uses both


def _job(args: tuple[str, str, int]) -> tuple[str, np.ndarray | None, str, float]:
    name, path, step = args
    start = time.perf_counter()
    try:
        return name, descriptor(path, step), "", time.perf_counter() - start
    except (av.FFmpegError, OSError, ValueError) as e:
        return name, None, str(e), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True, help="video_a video_b same(0|1) [fold] lines")
    parser.add_argument("--videos", required=True, help="folder the pair paths are relative to")
    parser.add_argument("--folds", type=int, default=10, help="when the file has no fold column")
    parser.add_argument("--step", type=int, default=2, help="use every STEP-th frame (1 or 2)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")

    start = time.perf_counter()
    pairs = read_pairs(args.pairs, args.folds)
    names = sorted({v for p in pairs for v in (p.a, p.b)})
    root = Path(args.videos)
    feats: dict[str, np.ndarray] = {}  # computed once per video
    failed: dict[str, str] = {}
    video_seconds = []
    jobs = [(n, str(root / n), args.step) for n in names]
    with Pool(args.workers, initializer=_init_worker) as pool:
        for name, feat, error, secs in pool.imap_unordered(_job, jobs):
            video_seconds.append(secs)
            if feat is None:
                failed[name] = error
                log.warning("%s: %s", name, error)
            else:
                feats[name] = feat
    usable = [p for p in pairs if p.a in feats and p.b in feats]
    if len(usable) < len(pairs):
        log.warning("%d pairs dropped: a video failed or is missing", len(pairs) - len(usable))
    if not usable:
        raise SystemExit("no pair has both videos readable")
    vectors = np.stack([pair_vector(feats[p.a], feats[p.b]) for p in usable])
    same = np.array([p.same for p in usable])
    folds = np.array([p.fold for p in usable])
    cv = cross_validate(vectors, same, folds)
    seconds = time.perf_counter() - start
    result = {
        "auc": cv["auc"],
        "accuracy": cv["accuracy"],
        "auc_std": cv["auc_std"],
        "accuracy_std": cv["accuracy_std"],
        "folds": int(len(np.unique(folds))),
        "pairs": len(usable),
        "seconds": seconds,
        "videos": len(feats),
        "failed": len(failed),
        "dims": int(next(iter(feats.values())).size),
        "seconds_per_video": float(np.mean(video_seconds)),  # one worker's time per video
    }
    auc = f"{result['auc']:.1f} +- {result['auc_std']:.1f}" if result["auc"] is not None else "n/a"
    print(
        f"flow similarity baseline: {result['pairs']} pairs, {result['folds']} folds, "
        f"{result['videos']} videos ({result['failed']} failed), {result['dims']}-d descriptor"
    )
    print(f"  AUC {auc}   accuracy {result['accuracy']:.1f} +- {result['accuracy_std']:.1f}")
    print(f"  {seconds:.1f} s total, {result['seconds_per_video']:.2f} s per video per worker")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
