"""How much faster is reading only T-C3D's frames than decoding the whole video?

Writes a 300-frame 320x240 25-fps video (the synthetic benchmark's encoder settings: mpeg4 in
AVI, a key frame every 12 frames; and the same frames as H.264 in MP4 with B-frames), then times,
in one run and interleaved so machine noise hits both alike:

* ``read_frames`` for the 24 frames of one T-C3D sample (S=3 segments x k=8 frames), for each
  sampling strategy (consecutive, offset 2, and uniform), and
* ``read_all_frames``: decoding every frame, as the conventional pipeline does.

Usage: python benchmarks/read_speed.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from tc3d.synthetic.synth import VideoSpec, render_video
from tc3d.synthetic.synth import write_video as write_synthetic_video
from tc3d.video.decode import read_all_frames, read_frames
from tc3d.video.sampling import SamplingConfig, eval_indices, train_indices


def transcode_h264(src: Path, dst: Path) -> None:
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"bf": "2", "g": "50"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for frame in inp.decode(video=0):
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        avi = Path(tmp) / "v_RunThenHighJump_g01_c01.avi"
        spec = VideoSpec("RunThenHighJump", 1, 1, 0, 300)
        assert sum(1 for _ in render_video(spec)) == 300
        write_synthetic_video(spec, avi)
        mp4 = Path(tmp) / "same.mp4"
        transcode_h264(avi, mp4)
        rng = np.random.default_rng(0)
        samplers = {
            "consecutive (train)": lambda: train_indices(300, SamplingConfig(), rng),
            "consecutive (test)": lambda: eval_indices(300, SamplingConfig()),
            "uniform (train)": lambda: train_indices(300, SamplingConfig(strategy="uniform"), rng),
        }
        print(
            f"{'file':<6} {'frames read':<22} {'ms (median)':>11} {'all 300 ms':>11} "
            f"{'speed-up':>9}"
        )
        for path in (avi, mp4):
            for name, make in samplers.items():
                sample, full = [], []
                for _ in range(args.repeats):  # interleaved: noise hits both sides alike
                    indices = make().reshape(-1)
                    sample += timed(lambda: read_frames(path, indices), 1)  # noqa: B023
                    full += timed(lambda: read_all_frames(path), 1)  # noqa: B023
                s, f = statistics.median(sample), statistics.median(full)
                print(
                    f"{path.suffix[1:]:<6} {name:<22} {1000 * s:>11.1f} {1000 * f:>11.1f} "
                    f"{f / s:>8.1f}x"
                )


if __name__ == "__main__":
    main()
