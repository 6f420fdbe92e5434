"""Seek, then decode forward: the frames a sampler asks for, and only those.

The reader seeks to the key frame before each run of requested frames, decodes forward,
converts to RGB only the frames that were asked for, and stops as soon as it has them
(:class:`tc3d.video.decode.OpenVideo` drives it). Frame indices are positions in display order
derived from timestamps (``(pts - start) * fps``), so a seek lands on the frame a sequential
decode would give.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter

# Requested frames closer than this to the decoder's position are reached by decoding forward
# rather than seeking: decoding a frame costs far less than a seek plus a key-frame restart.
SEEK_GAP = 24


def frame_rgb(
    frame: av.VideoFrame, short_side: int | None = None, reformatter: VideoReformatter | None = None
) -> np.ndarray:
    """RGB ``(H, W, 3)`` uint8, scaled (area averaging) so the short side is ``short_side``.

    Every decoded frame the model sees is converted here (files through :func:`read_frames`,
    live streams frame by frame), so they all look the same to it.
    """
    width, height = frame.width, frame.height
    if short_side and min(width, height) > short_side:
        scale = short_side / min(width, height)
        width, height = round(width * scale), round(height * scale)
    out = (reformatter or VideoReformatter()).reformat(
        frame, format="rgb24", width=width, height=height, interpolation="AREA"
    )
    return out.to_ndarray()


class Decoder:
    """Forward decoding with seeks, mapping every decoded frame to its display index."""

    def __init__(
        self, container: av.container.InputContainer, fps: Fraction, short_side: int | None = None
    ):
        self.container = container
        self.short_side = short_side
        # One reformatter for the whole file: creating a conversion context per frame costs
        # more than the YUV -> RGB conversion itself.
        self.reformatter = VideoReformatter()
        self.stream = container.streams.video[0]
        self.fps = fps
        self.time_base = self.stream.time_base or Fraction(1, 1000)
        self.start = self.stream.start_time or 0
        self.frames = None  # the current decode generator
        self.counter = -1  # fallback index when frames carry no timestamps
        self.use_counter = False

    def index_of(self, frame: av.VideoFrame) -> int:
        self.counter += 1
        if frame.pts is None or self.use_counter:
            self.use_counter = True
            return self.counter
        return int(round(float((frame.pts - self.start) * self.time_base * self.fps)))

    def restart(self, target: int) -> None:
        """Position the decoder at the key frame at or before ``target`` (or the start)."""
        if target <= 0 or self.use_counter:
            self.container.seek(0)
            self.counter = -1
        else:
            pts = self.start + int(Fraction(target) / self.fps / self.time_base)
            self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        self.frames = self.container.decode(self.stream)

    def rgb(self, frame: av.VideoFrame) -> np.ndarray:
        return frame_rgb(frame, self.short_side, self.reformatter)

    def next(self) -> av.VideoFrame | None:
        try:
            return next(self.frames)
        except StopIteration:
            return None
        except (av.error.FFmpegError, EOFError):
            return None  # corrupt or truncated data: treat as the end of the stream


def plan_runs(wanted: list[int]) -> list[list[int]]:
    """Split sorted frame indices into runs that one forward decode covers cheaply."""
    runs: list[list[int]] = []
    for i in wanted:
        if runs and i - runs[-1][-1] <= SEEK_GAP:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def decode_run(decoder: Decoder, run: list[int], got: dict[int, np.ndarray]) -> int | None:
    """Decode one run of frames; returns the last index seen, or None at end of stream.

    At the end of the stream, indices still pending take the last frame decoded, so a
    truncated file still yields clips made of its last decodable frames.
    """
    pending = list(run)
    first = True
    previous: av.VideoFrame | None = None
    while pending:
        frame = decoder.next()
        if frame is None:
            if previous is not None:
                rgb = decoder.rgb(previous)
                for i in pending:
                    got[i] = rgb
            return None
        idx = decoder.index_of(frame)
        if first and idx > pending[0] and pending[0] > 0 and not decoder.use_counter:
            # The seek overshot (inexact index in the container): restart from the beginning.
            decoder.restart(0)
            first = False
            continue
        first = False
        previous = frame
        if idx >= pending[0]:
            rgb = decoder.rgb(frame)
            while pending and pending[0] <= idx:
                got[pending.pop(0)] = rgb  # frames missing from the stream take the next one
    return idx
