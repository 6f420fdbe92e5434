"""Read videos with PyAV, decoding only the frames a sampler asks for.

T-C3D looks at S×k frames of a video (24 by default), not all of it, so the reader seeks to the
key frame before each run of requested frames, decodes forward, converts to RGB only the frames
that were asked for, and stops as soon as it has them. This is what makes the whole pipeline
faster than decoding every frame. Any container FFmpeg reads works; a directory of
images (``img_00001.jpg``...) works too.

Frame indices are positions in display order derived from timestamps (``(pts - start) * fps``),
so seeking lands on the same frame a sequential decode would give. Files that are truncated
give their last decodable frame for any index past the end; files with no decodable frame
raise :class:`VideoReadError`, the one error type the rest of the code catches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from tc3d.errors import TC3DError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
# Requested frames closer than this to the decoder's position are reached by decoding forward
# rather than seeking: decoding a frame costs far less than a seek plus a key-frame restart.
SEEK_GAP = 24
FRAME_FOLDER_FPS = 25.0

av.logging.set_level(av.logging.PANIC)  # FFmpeg's own warnings would flood stderr


class VideoReadError(TC3DError):
    """A video that cannot be used: missing, unreadable, not a video, or without frames."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    num_frames: int
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else 0.0


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise VideoReadError(path, "file not found")
    if path.stat().st_size == 0:
        raise VideoReadError(path, "empty file (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise VideoReadError(path, f"cannot open as video: {reason}") from None
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "no video stream")
    return container


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    return float(rate) if rate else 25.0


def _count_packets(container: av.container.InputContainer, stream) -> int:
    """Frame count by demuxing (no decoding): for containers whose header does not say."""
    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size:
                count += 1
    except av.error.FFmpegError:
        pass  # a truncated file: count what could be read
    return count


def probe(path: str | Path) -> VideoInfo:
    """Frame count, frame rate and size, from the header where it has them (no decoding)."""
    path = Path(path)
    if path.is_dir():
        files = _frame_files(path)
        if not files:
            raise VideoReadError(path, "frame folder holds no images")
        width, height = _read_image(files[0]).shape[1::-1]
        return VideoInfo(path, len(files), FRAME_FOLDER_FPS, width, height)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        num_frames = stream.frames
        if num_frames <= 0 and stream.duration and stream.time_base:
            num_frames = round(float(stream.duration * stream.time_base) * fps)
        if num_frames <= 0:
            num_frames = _count_packets(container, stream)
        width, height = stream.codec_context.width, stream.codec_context.height
    finally:
        container.close()
    if num_frames <= 0:
        raise VideoReadError(path, "no video frames")
    if width <= 0 or height <= 0:
        raise VideoReadError(path, "video stream has no frame size")
    return VideoInfo(path, int(num_frames), fps, int(width), int(height))


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise VideoReadError(path, f"unreadable image ({e})") from None


def _read_folder(folder: Path, indices: Sequence[int]) -> np.ndarray:
    files = _frame_files(folder)
    if not files:
        raise VideoReadError(folder, "frame folder holds no images")
    cache: dict[int, np.ndarray] = {}
    for i in set(indices):
        cache[i] = _read_image(files[min(max(i, 0), len(files) - 1)])
    return np.stack([cache[i] for i in indices])


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


class _Decoder:
    """Forward decoding with seeks, mapping every decoded frame to its display index."""

    def __init__(self, container: av.container.InputContainer, short_side: int | None = None):
        self.container = container
        self.short_side = short_side
        # One reformatter for the whole file: creating a conversion context per frame costs
        # more than the YUV -> RGB conversion itself.
        self.reformatter = VideoReformatter()
        self.stream = container.streams.video[0]
        self.stream.thread_type = "NONE"  # whole-frame threading delays output after a seek
        self.fps = Fraction(self.stream.average_rate or self.stream.guessed_rate or 25)
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


def _plan_runs(wanted: list[int]) -> list[list[int]]:
    """Split sorted frame indices into runs that one forward decode covers cheaply."""
    runs: list[list[int]] = []
    for i in wanted:
        if runs and i - runs[-1][-1] <= SEEK_GAP:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _decode_run(decoder: _Decoder, run: list[int], got: dict[int, np.ndarray]) -> int | None:
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


def read_frames(
    path: str | Path, indices: Sequence[int], short_side: int | None = None
) -> np.ndarray:
    """Frames at ``indices`` (display order, 0-based) as ``(len(indices), H, W, 3)`` uint8 RGB.

    Indices may repeat and come in any order. Indices past the last decodable frame (a
    truncated file, or a header that overstates the length) give that last frame.
    ``short_side`` scales larger frames down while converting them (C3D's "resize to 128"),
    which is cheaper than converting at full size and resizing afterwards.
    """
    path = Path(path)
    indices = [max(0, int(i)) for i in indices]
    if not indices:
        raise ValueError("no frame indices requested")
    if path.is_dir():
        return shrink_frames(_read_folder(path, indices), short_side)
    container = _open(path)
    got: dict[int, np.ndarray] = {}
    last: np.ndarray | None = None
    try:
        decoder = _Decoder(container, short_side)
        position: int | None = None
        for run in _plan_runs(sorted(set(indices))):
            if position is None or run[0] <= position or run[0] - position > SEEK_GAP:
                try:
                    decoder.restart(run[0])
                except av.error.FFmpegError:
                    decoder.use_counter = True  # unseekable (e.g. truncated index): go linearly
                    decoder.restart(0)
            position = _decode_run(decoder, run, got)
            if got:
                last = got[max(got)]
            if position is None:
                break  # end of stream: later indices fall back to the last frame
    except av.error.FFmpegError as e:
        if not got:
            reason = getattr(e, "strerror", None) or str(e)
            raise VideoReadError(path, f"cannot decode: {reason}") from None
    finally:
        container.close()
    if last is None:
        raise VideoReadError(path, "no decodable video frames")
    return np.stack([got.get(i, last) for i in indices])


def decodable_frames(path: str | Path, num_frames: int | None = None) -> int:
    """How many frames really decode: seeks near the claimed end and decodes to the last one.

    A truncated file keeps its header's frame count; this finds where its data stops without
    decoding the whole file (the seek lands on the last key frame that still exists).
    """
    path = Path(path)
    if path.is_dir():
        return len(_frame_files(path))
    num_frames = num_frames or probe(path).num_frames
    container = _open(path)
    last = -1
    try:
        decoder = _Decoder(container)
        try:
            decoder.restart(max(0, num_frames - 1))
        except av.error.FFmpegError:
            decoder.use_counter = True
            decoder.restart(0)
        while (frame := decoder.next()) is not None:
            last = max(last, decoder.index_of(frame))
    finally:
        container.close()
    return last + 1


def shrink_frames(frames: np.ndarray, short_side: int | None) -> np.ndarray:
    """Downscale ``(T, H, W, 3)`` frames to ``short_side`` (frame folders decode via PIL)."""
    height, width = frames.shape[1:3]
    if not short_side or min(height, width) <= short_side:
        return frames
    import torch
    import torch.nn.functional as F

    scale = short_side / min(height, width)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    x = F.interpolate(
        x, size=(round(height * scale), round(width * scale)), mode="bilinear", antialias=True
    )
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def read_all_frames(path: str | Path) -> np.ndarray:
    """Every frame, decoded sequentially: the conventional pipeline's reader (for comparison)."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, range(len(_frame_files(path))))
    container = _open(path)
    frames = []
    try:
        for frame in container.decode(container.streams.video[0]):
            frames.append(frame.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, EOFError):
        pass  # truncated: keep what decoded
    finally:
        container.close()
    if not frames:
        raise VideoReadError(path, "no decodable video frames")
    return np.stack(frames)
