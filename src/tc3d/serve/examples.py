"""Example videos for the page, rendered offline at start-up by the synthetic data set's code.

Nothing is downloaded and nothing ships: the page's examples are three videos of the embedded
benchmark (:mod:`tc3d.synthetic.synth`), rendered into the server's working folder in a few seconds.
One is a long-term action of several phases, long enough for a timeline of many windows. They
double as the int8 calibration videos of a model that has no training set at hand.
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from tc3d.synthetic.synth import CLASS_DESCRIPTIONS, VideoSpec, write_video
from tc3d.video.decode import read_frames

log = logging.getLogger(__name__)

# (class, frames at 25 fps): short ones for a quick look, a long one for the timeline
EXAMPLES = (("SlideLeft", 60), ("SpinClockwise", 60), ("RunThenLongJump", 200))


@dataclass(frozen=True)
class Example:
    name: str  # the file name the page shows and asks for
    path: Path
    description: str
    frames: int
    poster: str  # a data URL of the middle frame

    def describe(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "frames": self.frames,
            "seconds": self.frames / 25.0,
            "poster": self.poster,
        }


def _poster(path: Path, frame: int) -> str:
    from PIL import Image

    rgb = read_frames(path, [frame], short_side=96)[0]
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def make_examples(folder: Path, seed: int = 7) -> dict[str, Example]:
    """Render the examples into ``folder``; ``{file name: Example}`` in page order."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Example] = {}
    for cls, frames in EXAMPLES:
        name = f"{cls}.avi"
        path = folder / name
        write_video(VideoSpec(cls, 1, 1, seed, frames), path)
        out[name] = Example(name, path, CLASS_DESCRIPTIONS[cls], frames, _poster(path, frames // 2))
    log.debug("rendered %d example videos in %s", len(out), folder)
    return out
