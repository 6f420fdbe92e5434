"""Video reading: exact frames, any container, seeking without decoding everything, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import frame_for, frame_index, indexed_video, write_video

from tc3d.video import seeking
from tc3d.video.decode import VideoReadError, probe, read_all_frames, read_frames


@pytest.mark.parametrize(
    "name,codec,options",
    [
        ("a.avi", "mpeg4", None),
        ("a.mp4", "libx264", {"bf": "3", "g": "30"}),  # B-frames: display order != decode order
        ("a.mkv", "ffv1", None),
        ("a.webm", "libvpx", None),  # no frame count in the header
        ("a.mov", "mjpeg", None),
    ],
)
def test_any_container_reads_the_requested_frames(tmp_path, name, codec, options):
    path = indexed_video(tmp_path / name, 50, codec=codec, options=options)
    info = probe(path)
    assert (info.num_frames, info.width, info.height) == (50, 64, 48)
    assert info.fps == pytest.approx(25.0)
    wanted = [37, 3, 3, 0, 49, 20, 21, 22, 12]
    frames = read_frames(path, wanted)
    assert frames.shape == (len(wanted), 48, 64, 3)
    assert [frame_index(f) for f in frames] == wanted
    everything = read_all_frames(path)
    assert np.array_equal(frames, everything[wanted])


def test_lossless_frames_are_exactly_the_source(tmp_path):
    source = [frame_for(i) for i in range(30)]
    path = write_video(tmp_path / "lossless.mkv", source, codec="ffv1")
    for i, frame in zip([29, 0, 14], read_frames(path, [29, 0, 14]), strict=True):
        assert np.array_equal(frame, source[i])


def test_random_index_sets_match_sequential_decoding(tmp_path):
    path = indexed_video(tmp_path / "long.mp4", 120, codec="libx264", options={"bf": "2"})
    everything = read_all_frames(path)
    rng = np.random.default_rng(0)
    for _ in range(25):
        wanted = rng.integers(0, 130, size=rng.integers(1, 25))
        expected = everything[np.minimum(wanted, len(everything) - 1)]
        assert np.array_equal(read_frames(path, wanted), expected)


def test_reads_only_what_it_needs(tmp_path, monkeypatch):
    path = indexed_video(tmp_path / "v.avi", 300)
    decoded = 0
    original = seeking.Decoder.next

    def counting(self):
        nonlocal decoded
        frame = original(self)
        decoded += frame is not None
        return frame

    monkeypatch.setattr(seeking.Decoder, "next", counting)
    wanted = [i for start in (20, 140, 260) for i in range(start, start + 16, 2)]
    assert [frame_index(f) for f in read_frames(path, wanted)] == [i % 60 for i in wanted]
    assert decoded < 100  # 24 frames asked: three short runs from key frames, not 300 frames


def test_past_the_end_gives_the_last_frame(tmp_path):
    path = indexed_video(tmp_path / "short.avi", 10)
    assert [frame_index(f) for f in read_frames(path, [9, 10, 500])] == [9, 9, 9]


def test_one_frame_video(tmp_path):
    path = indexed_video(tmp_path / "one.avi", 1)
    assert probe(path).num_frames == 1
    assert read_frames(path, [0, 1, 2, 3]).shape[0] == 4


def test_truncated_file_still_gives_its_last_decodable_frames(tmp_path):
    path = indexed_video(tmp_path / "full.avi", 60)
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    frames = read_frames(cut, [0, 5, 59])
    decodable = read_all_frames(cut)
    assert 5 < len(decodable) < 60
    assert frame_index(frames[0]) == 0 and frame_index(frames[1]) == 5
    assert np.array_equal(frames[2], decodable[-1])


@pytest.mark.parametrize(
    "content,message",
    [(b"", "empty file"), (b"not a video at all" * 50, "cannot open as video")],
)
def test_bad_files_raise_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.avi"
    path.write_bytes(content)
    for call in (lambda: probe(path), lambda: read_frames(path, [0])):
        with pytest.raises(VideoReadError, match=message) as info:
            call()
        assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(VideoReadError, match="not found"):
        probe(tmp_path / "nope.mp4")


def test_frame_folder(tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(frame_for(i)).save(folder / f"img_{i + 1:05d}.jpg", quality=95)
    assert probe(folder).num_frames == 12
    assert [frame_index(f) for f in read_frames(folder, [11, 0, 4])] == [11, 0, 4]
