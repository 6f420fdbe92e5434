"""The "Teach" figure: teach tc3d three real actions from a few short clips, test on whole clips
it was not taught from (docs/RESULTS.md, "Teach: a few clips from the user's camera").

Classes from ``../shared/real-video/clips`` (UCF101, HMDB51 and Kinetics clips nobody here made):
``wave`` (3 HMDB51 clips), ``SoccerJuggling`` (2 UCF101 clips), ``Segway`` (2 Kinetics clips).
Fold f holds out the f-th clip of each class; the other clips of that class are cut into
subclips of ``--subclip`` frames (at most ``--per-class``, spread evenly, written as VP8 WebM as a
browser's recorder would) and taught through :func:`tc3d.apps.teach.teach`. Then the held-out
whole clips are labelled with ``Model.predict``. Beside it: the same recipe with ``init=scratch``
(same width, crop, frozen stages, steps), and a non-learned baseline: the nearest teaching
subclip by colour histogram (8x8x8 RGB bins over every frame). Anecdotal: six test clips.

    python benchmarks/teach_figure.py --out /tmp/teach-fig [--folds 0,1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import av
import numpy as np

import tc3d
from tc3d.apps.teach import TEACH_RECIPE, TeachSet, teach

# ../shared/real-video/clips beside the checkout (a worktree may sit one level deeper)
_HERE = Path(__file__).resolve().parents
CLIPS = next((p / "shared/real-video/clips" for p in _HERE if (p / "shared/real-video").is_dir()),
             Path("../shared/real-video/clips"))  # fmt: skip
CLASSES = {
    "wave": [
        "RATRACE_wave_f_nm_np1_fr_goo_37.avi",
        "SchoolRulesHowTheyHelpUs_wave_f_nm_np1_ba_med_0.avi",
        "TrumanShow_wave_f_nm_np1_fr_med_26.avi",
    ],
    "SoccerJuggling": ["v_SoccerJuggling_g23_c01.avi", "v_SoccerJuggling_g24_c01.avi"],
    "Segway": ["R6llTwEh07w.mp4", "SOX5yA1l24A.mp4"],
}


def all_frames(path: Path, width: int = 320) -> np.ndarray:
    """Every frame, RGB, scaled down to at most ``width`` wide (even sizes for VP8)."""
    with av.open(str(path), metadata_errors="ignore") as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])  # (F,H,W,3)
    h, w = frames.shape[1:3]
    if w > width:
        from PIL import Image

        nh = int(round(h * width / w)) // 2 * 2
        frames = np.stack([np.asarray(Image.fromarray(f).resize((width, nh))) for f in frames])
    return frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]


def write_webm(path: Path, frames: np.ndarray, fps: int = 30) -> Path:
    with av.open(str(path), "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 1_000_000
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())
    return path


def subclips(frames: np.ndarray, length: int, count: int) -> list[np.ndarray]:
    starts = np.linspace(0, max(len(frames) - length, 0), count).round().astype(int)
    return [frames[s : s + length] for s in sorted(set(starts.tolist()))]


def histogram(frames: np.ndarray) -> np.ndarray:
    q = (frames // 32).reshape(-1, 3).astype(np.int64)
    h = np.bincount(q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2], minlength=512).astype(float)
    return h / h.sum()


def make_fold(root: Path, fold: int, length: int, per_class: int) -> tuple[list, dict]:
    """Teach set under ``root`` (held-out clip ``fold`` of each class); (held-out, hists)."""
    ts = TeachSet(root)
    held, hists = [], []
    tmp = root / "cut"
    tmp.mkdir(parents=True, exist_ok=True)
    for label, files in CLASSES.items():
        test = files[fold % len(files)]
        held.append((CLIPS / test, label))
        teach_files = [f for f in files if f != test]
        per_file = -(-per_class // len(teach_files))
        cuts = [c for f in teach_files for c in subclips(all_frames(CLIPS / f), length, per_file)]
        for i, c in enumerate(cuts[:per_class]):
            ts.add(label, write_webm(tmp / f"{label}-{i}.webm", c))
            hists.append((histogram(c), label))
    return held, hists


def top1(model_file: str, held: list) -> tuple[float, list]:
    model = tc3d.load_model(model_file, device="cpu")
    results = model.predict([p for p, _ in held], top=1)
    got = [r["labels"][0]["label"] if "labels" in r else None for r in results]
    ok = [g == want for g, (_, want) in zip(got, held, strict=True)]
    return 100 * float(np.mean(ok)), got


def run_fold(out: Path, fold: int, args) -> dict:
    root = out / f"fold{fold}"
    held, hists = make_fold(root, fold, args.subclip, args.per_class)
    row: dict = {"fold": fold, "test": [p.name for p, _ in held],
                 "teach_clips": TeachSet(root).counts()}  # fmt: skip
    for init in ("motion", "scratch"):
        flags = {"init": init, "seed": args.seed}
        if init == "scratch":
            flags.update(width=0.25, crop=96)  # motion's geometry: the same recipe, no init
        t0 = time.perf_counter()
        r = teach(root, f"{init}-f{fold}", **flags)
        acc, got = top1(r["file"], held)
        row[init] = {"top1": acc, "labels": got, "train_seconds": r["train_seconds"],
                     "seconds": time.perf_counter() - t0}  # fmt: skip
        print(json.dumps({init: row[init]}), file=sys.stderr)
    got = []
    for path, _ in held:
        h = histogram(all_frames(path))
        got.append(min(hists, key=lambda x: np.abs(x[0] - h).sum())[1])
    acc = 100 * float(np.mean([g == w for g, (_, w) in zip(got, held, strict=True)]))
    row["colour_nn"] = {"top1": acc, "labels": got}
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--folds", default="0,1")
    p.add_argument("--subclip", type=int, default=40, help="frames per teaching clip")
    p.add_argument("--per-class", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    out = Path(args.out)
    rows = [run_fold(out, int(f), args) for f in args.folds.split(",")]
    summary = {"recipe": TEACH_RECIPE, "subclip_frames": args.subclip,
               "per_class": args.per_class, "folds": rows}  # fmt: skip
    for key in ("motion", "scratch", "colour_nn"):
        right = sum(r[key]["top1"] * len(r["test"]) / 100 for r in rows)
        summary[f"{key}_top1"] = 100 * right / sum(len(r["test"]) for r in rows)
    summary["max_train_seconds"] = max(r[k]["train_seconds"] for r in rows for k in
                                       ("motion", "scratch"))  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
