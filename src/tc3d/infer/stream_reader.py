"""The reader of one ``tc3d stream`` source: decoding, pacing, looping and reconnection.

A reader thread decodes its source's frames in order at the model's short side, keeps the
newest ones in a ring and, every ``stride`` frames, builds the newest clip with the clip
builder every other command uses (:mod:`tc3d.video.clips`) and leaves it in its slot for the
model thread (:mod:`tc3d.infer.stream`), which takes the clips of all sources at once.

A file is paced at its frame rate with ``realtime`` and read as fast as the model takes its
clips otherwise; with ``loop`` it starts again from its first frame when it ends (frame numbers
keep counting), which turns a short recording into an endless paced source.

A network source (a URL) that goes away is opened again, every half second, until it answers
or ``reconnect`` seconds have passed since it was lost; then the source ends with a one-line
error. Its frame numbers keep counting across the gap, the ring starts empty (no clip mixes
frames from both sides of a gap), and each gap becomes a :class:`Gap` the model thread
reports. A URL counts as lost when reading fails, or when it ends without having stated a
duration (a live MPEG-TS or RTSP feed has none; a file served over HTTP has one and just
ends). A source that cannot be opened at all fails at once, as before.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from tc3d.video.clips import ClipSpec, clips_from_frames
from tc3d.video.decode import OpenVideo, VideoReadError, frame_rgb, is_live, opened

RETRY_SECONDS = 0.5  # between two attempts to reopen a lost network source


@dataclass
class ReaderConfig:
    """What a reader needs of :class:`tc3d.infer.stream.StreamConfig`."""

    stride: int
    realtime: bool
    loop: bool
    reconnect: float  # seconds a lost network source is retried (0: never)


@dataclass
class Job:
    source: int
    frame: int  # index of the clip's last frame
    t: float  # its time in the stream (seconds)
    available: float  # perf_counter when that frame was available
    clip: torch.Tensor  # (3, k, crop, crop), normalised


@dataclass
class Gap:
    """A network source lost and back again (or given up on, when ``error`` is set)."""

    source: int
    frame: int  # frames read before the gap
    seconds: float  # from the last frame before it to the first frame after it (to giving up)
    error: str | None = None


@dataclass
class SourceState:
    name: str
    fps: float = 25.0
    frames: int = 0
    decisions: int = 0
    dropped: int = 0
    loops: int = 0  # times a looped file started again
    error: str | None = None
    done: bool = False
    gaps: list[Gap] = field(default_factory=list)
    scores: deque = field(default_factory=deque)  # last S clip scores (K,)
    smoothed: torch.Tensor | None = None
    label: str = ""
    out: str | None = None  # the overlay file written (``--out``, first source)


class Slots:
    """The newest due clip of each source and the gaps not yet reported, handed from the
    readers to the model thread."""

    def __init__(self, n: int):
        self.jobs: list[Job | None] = [None] * n
        self.gaps: list[Gap] = []
        self.cond = threading.Condition()


class _Lost(VideoReadError):
    """A live source that stopped giving frames."""


@dataclass
class Reader:
    """One source's reader: what it decodes, how it is paced, where its clips go."""

    index: int
    source: str | OpenVideo
    state: SourceState
    slots: Slots
    cfg: ReaderConfig
    spec: ClipSpec
    stop: threading.Event
    out: str | None = None  # --out, for the first source
    phase: int = 0  # shifts the decision frames (paced and live sources only)
    _frame: int = 0  # frames read so far, over loops and reconnections
    _start: float = 0.0
    _last: float = 0.0  # perf_counter of the newest frame
    _lost_at: tuple[float, str] | None = None  # when and why a live source was lost

    @property
    def live(self) -> bool:
        return is_live(self.source)

    @property
    def paced(self) -> bool:
        return self.cfg.realtime and not self.live

    def run(self) -> None:
        """Read the source to its end (or ``stop``); errors end up in the state."""
        writer: _Overlay | None = None
        try:
            while not self.stop.is_set():
                try:
                    with opened(self.source, thread_type="AUTO") as video:
                        writer = writer or self._first_open(video)
                        self._decode(video, writer)
                    return
                except (VideoReadError, av.error.FFmpegError, OSError) as e:
                    self._retry(e, was_open=writer is not None)
        except VideoReadError as e:
            self.state.error = e.reason
        except (av.error.FFmpegError, OSError) as e:
            self.state.error = f"read error: {e}"
        finally:
            if writer is not None:
                writer.close()
            with self.slots.cond:
                self.state.done = True
                self.slots.cond.notify_all()

    def _first_open(self, video: OpenVideo) -> _Overlay:
        """The frame rate, the clock and the overlay, from the first connection."""
        self.state.fps = video.fps
        self._start = time.perf_counter()
        if self.out:
            self.state.out = self.out
            return _Overlay.of(video, self.out)
        return _NoOverlay()

    def _retry(self, error: Exception, was_open: bool) -> None:
        """Wait before the next attempt; re-raise when the source cannot come back."""
        if not (was_open and self.live and self.cfg.reconnect > 0):
            raise error
        now = time.perf_counter()
        if self._lost_at is None:
            self._lost_at = (now, getattr(error, "reason", None) or str(error))
        since, why = self._lost_at
        if now - since > self.cfg.reconnect:
            reason = f"lost ({why}) and not back within {self.cfg.reconnect:g} s"
            self._report(Gap(self.index, self._frame, now - self._last, reason))
            raise VideoReadError(str(self.source), reason)
        self.stop.wait(RETRY_SECONDS)

    def _report(self, gap: Gap) -> None:
        with self.slots.cond:
            self.state.gaps.append(gap)
            self.slots.gaps.append(gap)
            self.slots.cond.notify_all()

    def _frames(self, video: OpenVideo) -> Iterator[av.VideoFrame]:
        """The source's frames; a looped file's again and again; a lost URL raises."""
        while True:
            try:
                yield from video.frames()
            except (av.error.FFmpegError, OSError) as e:
                if not (self.live and self.cfg.reconnect > 0):
                    raise
                raise _Lost(str(self.source), f"read error: {e}") from None
            if self.stop.is_set():
                return
            if self.live and self.cfg.reconnect > 0 and _endless(video):
                raise _Lost(str(self.source), "the stream ended")
            if not (self.cfg.loop and not self.live):
                return
            self.state.loops += 1

    def _decode(self, video: OpenVideo, writer: _Overlay) -> None:
        """Keep a ring buffer of frames, hand a clip to the model every ``stride`` frames."""
        spec, state, stride = self.spec, self.state, self.cfg.stride
        span = spec.sampling.span
        picks = np.arange(0, span, spec.sampling.offset)[None]  # (1, k): positions in the ring
        ring: deque = deque(maxlen=span)
        reformatter = VideoReformatter()
        phase = self.phase if (self.paced or self.live) else 0
        for frame in self._frames(video):
            if self.stop.is_set():
                break
            if self._lost_at is not None:  # the first frame after a gap
                self._report(Gap(self.index, self._frame, time.perf_counter() - self._last))
                self._lost_at = None
            i = self._frame
            self._frame += 1
            self._last = time.perf_counter()
            release = self._start + i / state.fps
            if self.paced and self._late(release, i):
                continue
            available = release if self.paced else time.perf_counter()
            ring.append(frame_rgb(frame, spec.short_side, reformatter))
            state.frames += 1
            writer.write(frame, state.label)
            if (i + 1 + phase) % stride or len(ring) < span:
                continue
            clip = clips_from_frames(np.stack(ring), picks, spec)[0, 0]  # (3, k, crop, crop)
            self._hand_over(Job(self.index, i, i / state.fps, available, clip))

    def _late(self, release: float, i: int) -> bool:
        """Wait for frame ``i``'s time; True when it is dropped instead (more than a decision
        period late: a camera would have lost it)."""
        wait = release - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        elif -wait > self.cfg.stride / self.state.fps and i % self.cfg.stride:
            self.state.dropped += 1
            self.state.frames += 1
            return True
        return False

    def _hand_over(self, job: Job) -> None:
        slots, index = self.slots, self.index
        with slots.cond:
            if not (self.paced or self.live):
                # A file read as fast as possible: wait for the model, never drop.
                while slots.jobs[index] is not None and not self.stop.is_set():
                    slots.cond.wait(0.1)
            elif slots.jobs[index] is not None:
                self.state.dropped += self.cfg.stride  # the model did not take the previous clip
            slots.jobs[index] = job
            slots.cond.notify_all()


def _endless(video: OpenVideo) -> bool:
    """A live source that states no duration (a live feed, not a file served over HTTP)."""
    return video.container is None or video.container.duration is None


class _NoOverlay:
    def write(self, frame: av.VideoFrame, label: str) -> None:
        pass

    def close(self) -> None:
        pass


class _Overlay:
    """Writes a source's frames with the current label drawn on them (``--out``)."""

    def __init__(self, path: str, width: int, height: int, fps: float):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.part{self.path.suffix}")
        self.container = av.open(str(self.tmp), "w")
        self.stream = self.container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator())
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.bit_rate = 2_000_000

    @classmethod
    def of(cls, video: OpenVideo, path: str) -> _Overlay:
        """An overlay the size (rounded down to even) and rate of ``video``."""
        w, h = video.size
        return cls(path, w - w % 2, h - h % 2, video.fps)

    def write(self, frame: av.VideoFrame, label: str) -> None:
        from PIL import ImageDraw

        img = frame.to_image()
        if label:
            draw = ImageDraw.Draw(img)
            draw.rectangle((0, 0, img.width, 16), fill=(0, 0, 0))
            draw.text((4, 2), label, fill=(255, 255, 0))
        out = av.VideoFrame.from_image(img)
        for packet in self.stream.encode(out):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        self.tmp.replace(self.path)
