"""The one clip builder: files and already-decoded frames give the same clips."""

from __future__ import annotations

import av
import numpy as np
import torch
from conftest import frame_index, indexed_video

from tc3d.video.clips import ClipSpec, clips_from_frames, load_clips, read_clips
from tc3d.video.decode import frame_rgb, read_frames
from tc3d.video.sampling import SamplingConfig, eval_indices, sliding_indices, train_indices
from tc3d.video.transforms import MEAN, STD

SPEC = ClipSpec(SamplingConfig(segments=3, frames=4, offset=2), crop=32)


def test_a_video_file_and_its_decoded_frames_give_the_same_clips(tmp_path):
    video = indexed_video(tmp_path / "v.avi", 40)
    frames = read_frames(video, range(40), SPEC.short_side)  # what a stream holds
    for spec in (SPEC, ClipSpec(SPEC.sampling, 32, "allclips", 10)):
        clips, n = load_clips(video, None, spec, None)
        indices = eval_indices(40, spec.sampling, spec.protocol)
        assert n == 40 and torch.equal(clips, clips_from_frames(frames, indices, spec))
        assert clips.shape == (spec.crops, len(indices), 3, 4, 32, 32)
    # training: the same draws in the same order (indices, then the crop box)
    clips, _ = load_clips(video, None, SPEC, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    indices = train_indices(40, SPEC.sampling, rng)
    assert torch.equal(clips, clips_from_frames(frames, indices, SPEC, rng))


def test_clips_hold_the_frames_asked_for(tmp_path):
    video = indexed_video(tmp_path / "v.avi", 30)
    indices = sliding_indices(np.array([0, 10, 27]), SPEC.sampling, 30)  # past the end: last
    assert indices.tolist() == [[0, 2, 4, 6], [10, 12, 14, 16], [27, 29, 29, 29]]
    clips = read_clips(video, indices, SPEC)[0]  # (n, 3, k, h, w), centre crop
    mean, std = torch.tensor(MEAN), torch.tensor(STD)
    for clip, want in zip(clips, indices, strict=True):
        pixels = clip.permute(1, 2, 3, 0) * std + mean  # (k, h, w, 3) back in [0, 1]
        got = [frame_index((p.numpy() * 255).round().astype(np.uint8)) for p in pixels]
        assert got == want.tolist()


def test_streamed_frames_are_converted_as_files_are(tmp_path):
    """A stream converts frame by frame what read_frames converts from a file: same pixels."""
    video = indexed_video(tmp_path / "v.avi", 20)
    with av.open(str(video)) as container:
        streamed = np.stack([frame_rgb(f, SPEC.short_side) for f in container.decode(video=0)])
    assert streamed.shape[1:3] == (37, 49)  # 48x64 scaled to a short side of 37
    assert np.array_equal(streamed, read_frames(video, range(20), SPEC.short_side))


def test_clip_spec_round_trips_what_a_model_file_stores():
    spec = ClipSpec(SamplingConfig(2, 8, "uniform", 3), crop=96, protocol="allclips", crops=10)
    d = spec.to_dict()
    assert d == {"segments": 2, "frames": 8, "strategy": "uniform", "offset": 3, "crop": 96,
                 "flip": True}  # fmt: skip
    assert ClipSpec.from_dict(d) == ClipSpec(spec.sampling, crop=96)  # run choices not stored
