"""Open videos with PyAV: one opener, one frame-rate rule, one open video per request.

:func:`open_video` serves files, frame folders (``img_00001.jpg``...), URLs (http, https,
rtsp) and cameras (``/dev/videoN``, v4l2), with one frame-rate rule (:func:`frame_rate`). The
:class:`OpenVideo` reads its :class:`VideoInfo` once, and either reads the frames at given
indices (seeking and decoding only those, :mod:`tc3d.video.seeking`: what makes the pipeline
faster than decoding every frame) or hands out its frames in order (``tc3d stream``). A request
opens its video once and passes it on: every function here that takes a path also takes an
:class:`OpenVideo`, and leaves it open.

Files that are truncated give their last decodable frame for any index past the end; files with
no decodable frame raise :class:`VideoReadError`, the one error type the rest of the code
catches.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tc3d.errors import TC3DError
from tc3d.video.seeking import SEEK_GAP, Decoder, decode_run, frame_rgb, plan_runs

__all__ = [
    "OpenVideo",
    "VideoInfo",
    "VideoReadError",
    "decodable_frames",
    "frame_rate",
    "frame_rgb",  # re-exported: streams convert their frames with it
    "is_live",
    "open_video",
    "opened",
    "probe",
    "read_all_frames",
    "read_frames",
    "shrink_frames",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_FPS = 25  # a stream that states no frame rate, and every frame folder
# Before PyAV 19 a container's tags are decoded with one codec, which fails on a file that mixes
# encodings; 19 reads them byte for byte (surrogateescape) and no longer takes the argument.
_METADATA = {"metadata_errors": "ignore"} if int(av.__version__.split(".")[0]) < 19 else {}

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


def is_live(source: str | Path) -> bool:
    """A URL or a camera: read as its frames come, never counted or sought."""
    return "://" in str(source) or str(source).startswith("/dev/")


def frame_rate(stream: av.video.stream.VideoStream) -> Fraction:
    """The one frame-rate rule: the container's average rate, else FFmpeg's guess, else the
    codec's base rate, else 25."""
    return Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate or DEFAULT_FPS)


def _open_options(source: str) -> dict:
    if source.startswith("/dev/video"):
        return {"format": "v4l2"}
    if source.startswith("rtsp://"):
        return {"options": {"rtsp_transport": "tcp"}, "timeout": 10}
    return {"timeout": 10} if "://" in source else {}


def _open_container(source: str, thread_type: str) -> av.container.InputContainer:
    if not is_live(source):
        path = Path(source)
        if not path.exists():
            raise VideoReadError(source, "file not found")
        if path.stat().st_size == 0:
            raise VideoReadError(source, "empty file (0 bytes)")
    try:
        container = av.open(source, **_METADATA, **_open_options(source))
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise VideoReadError(source, f"cannot open as video: {reason}") from None
    if not container.streams.video:
        container.close()
        raise VideoReadError(source, "no video stream")
    # Set before the first decode (PyAV refuses later): whole-frame threading speeds up a
    # sequential read but delays output after a seek.
    container.streams.video[0].thread_type = thread_type
    return container


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise VideoReadError(path, f"unreadable image ({e})") from None


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


class OpenVideo:
    """One open video (a container, or a frame folder's images) with its :class:`VideoInfo`
    read once. One thread at a time reads it; ``str()`` is its source."""

    def __init__(self, source: str, container: av.container.InputContainer | None):
        self.source = source
        self.path = Path(source)
        self.container = container
        self.files = _frame_files(self.path) if container is None else []
        self._info: VideoInfo | None = None
        self._moved = False  # the container is no longer at its start

    def __str__(self) -> str:
        return self.source

    def __fspath__(self) -> str:
        return self.source

    def __enter__(self) -> OpenVideo:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.container is not None:
            self.container.close()

    @property
    def stream(self) -> av.video.stream.VideoStream:
        return self.container.streams.video[0]

    @property
    def fps(self) -> float:
        """Frames per second by the one rule, without counting frames (a live source has no
        count)."""
        return float(DEFAULT_FPS if self.container is None else frame_rate(self.stream))

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` from the header (a frame folder: its first image)."""
        if self.container is None:
            return self.info.width, self.info.height
        codec = self.stream.codec_context
        return codec.width, codec.height

    @property
    def info(self) -> VideoInfo:
        """Frame count, frame rate and size, from the header where it has them (no decoding)."""
        if self._info is None:
            self._info = self._folder_info() if self.container is None else self._file_info()
        return self._info

    def _folder_files(self) -> list[Path]:
        if not self.files:
            raise VideoReadError(self.path, "frame folder holds no images")
        return self.files

    def _folder_info(self) -> VideoInfo:
        files = self._folder_files()
        width, height = _read_image(files[0]).shape[1::-1]
        return VideoInfo(self.path, len(files), self.fps, width, height)

    def _file_info(self) -> VideoInfo:
        stream, fps = self.stream, self.fps
        num_frames = stream.frames
        if num_frames <= 0 and stream.duration and stream.time_base:
            num_frames = round(float(stream.duration * stream.time_base) * fps)
        if num_frames <= 0:
            self._moved = True
            num_frames = _count_packets(self.container, stream)
        width, height = stream.codec_context.width, stream.codec_context.height
        if num_frames <= 0:
            raise VideoReadError(self.path, "no video frames")
        if width <= 0 or height <= 0:
            raise VideoReadError(self.path, "video stream has no frame size")
        return VideoInfo(self.path, int(num_frames), fps, int(width), int(height))

    def read(self, indices: Sequence[int], short_side: int | None = None) -> np.ndarray:
        """Frames at ``indices`` (display order, 0-based) as ``(len(indices), H, W, 3)`` uint8
        RGB: see :func:`read_frames`."""
        indices = [max(0, int(i)) for i in indices]
        if not indices:
            raise ValueError("no frame indices requested")
        if self.container is None:
            files = self._folder_files()
            cache = {i: _read_image(files[min(i, len(files) - 1)]) for i in set(indices)}
            return shrink_frames(np.stack([cache[i] for i in indices]), short_side)
        self._moved = True
        decoder = Decoder(self.container, frame_rate(self.stream), short_side)
        got = _decode_indices(decoder, indices, self.path)
        last = got[max(got)]
        return np.stack([got.get(i, last) for i in indices])

    def frames(self) -> Iterator[av.VideoFrame]:
        """Every frame from the start, in order, decoded as it comes (a live source's as they
        arrive); a frame folder's images as frames."""
        if self.container is None:
            for file in self._folder_files():
                yield av.VideoFrame.from_ndarray(_read_image(file), format="rgb24")
            return
        if self._moved:
            self.container.seek(0)
        self._moved = True
        yield from self.container.decode(self.stream)

    def decodable_frames(self, num_frames: int | None = None) -> int:
        """See :func:`decodable_frames`."""
        if self.container is None:
            return len(self.files)
        num_frames = num_frames or self.info.num_frames
        self._moved = True
        decoder = Decoder(self.container, frame_rate(self.stream))
        try:
            decoder.restart(max(0, num_frames - 1))
        except av.error.FFmpegError:
            decoder.use_counter = True
            decoder.restart(0)
        last = -1
        while (frame := decoder.next()) is not None:
            last = max(last, decoder.index_of(frame))
        return last + 1


def open_video(source: str | Path | OpenVideo, thread_type: str = "NONE") -> OpenVideo:
    """Open a file, a frame folder, an http(s)/rtsp URL or a camera (``/dev/videoN``), once.

    ``thread_type`` is FFmpeg's decoder threading (``"AUTO"`` for a sequential read). Raises
    :class:`VideoReadError` (one line) for what cannot be opened as a video.
    """
    source = str(source) if is_live(source) else str(Path(source))
    if Path(source).is_dir():
        return OpenVideo(source, None)
    return OpenVideo(source, _open_container(source, thread_type))


@contextlib.contextmanager
def opened(video: str | Path | OpenVideo, thread_type: str = "NONE") -> Iterator[OpenVideo]:
    """``video`` itself when it is open already (left open), else the path opened for the
    duration of the ``with`` block."""
    if isinstance(video, OpenVideo):
        yield video
    else:
        with open_video(video, thread_type) as v:
            yield v


def probe(video: str | Path | OpenVideo) -> VideoInfo:
    """Frame count, frame rate and size, from the header where it has them (no decoding)."""
    with opened(video) as v:
        return v.info


def _decode_indices(decoder: Decoder, indices: list[int], path: Path) -> dict[int, np.ndarray]:
    """Index -> RGB frame for the wanted indices that decode; indices past the end of the
    stream are absent (the caller gives them the last frame)."""
    got: dict[int, np.ndarray] = {}
    try:
        position: int | None = None
        for run in plan_runs(sorted(set(indices))):
            if position is None or run[0] <= position or run[0] - position > SEEK_GAP:
                try:
                    decoder.restart(run[0])
                except av.error.FFmpegError:
                    decoder.use_counter = True  # unseekable (e.g. truncated index): go linearly
                    decoder.restart(0)
            position = decode_run(decoder, run, got)
            if position is None:
                break  # end of stream: later indices fall back to the last frame
    except av.error.FFmpegError as e:
        if not got:
            reason = getattr(e, "strerror", None) or str(e)
            raise VideoReadError(path, f"cannot decode: {reason}") from None
    if not got:
        raise VideoReadError(path, "no decodable video frames")
    return got


def read_frames(
    video: str | Path | OpenVideo, indices: Sequence[int], short_side: int | None = None
) -> np.ndarray:
    """Frames at ``indices`` (display order, 0-based) as ``(len(indices), H, W, 3)`` uint8 RGB.

    Indices may repeat and come in any order. Indices past the last decodable frame (a
    truncated file, or a header that overstates the length) give that last frame.
    ``short_side`` scales larger frames down while converting them (C3D's "resize to 128"),
    which is cheaper than converting at full size and resizing afterwards.
    """
    with opened(video) as v:
        return v.read(indices, short_side)


def decodable_frames(video: str | Path | OpenVideo, num_frames: int | None = None) -> int:
    """How many frames really decode: seeks near the claimed end and decodes to the last one.

    A truncated file keeps its header's frame count; this finds where its data stops without
    decoding the whole file (the seek lands on the last key frame that still exists).
    """
    with opened(video) as v:
        return v.decodable_frames(num_frames)


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


def read_all_frames(video: str | Path | OpenVideo) -> np.ndarray:
    """Every frame, decoded sequentially: the conventional pipeline's reader (for comparison)."""
    frames = []
    with opened(video, thread_type="SLICE") as v:  # FFmpeg's default threading
        if v.container is None:
            return v.read(range(len(v._folder_files())))
        try:
            for frame in v.frames():
                frames.append(frame.to_ndarray(format="rgb24"))
        except (av.error.FFmpegError, EOFError):
            pass  # truncated: keep what decoded
    if not frames:
        raise VideoReadError(v.path, "no decodable video frames")
    return np.stack(frames)
