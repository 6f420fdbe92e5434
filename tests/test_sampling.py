"""Sampling strategies A (uniform) and B (consecutive), test-time protocols, short videos."""

from __future__ import annotations

import numpy as np
import pytest

from tc3d.models.fusion import group_clips
from tc3d.video.sampling import SamplingConfig, eval_indices, train_indices

PAPER = SamplingConfig(segments=3, frames=8, strategy="consecutive", offset=2)


@pytest.mark.parametrize("strategy", ["consecutive", "uniform"])
@pytest.mark.parametrize("num_frames", [1, 5, 23, 24, 47, 48, 100, 301])
@pytest.mark.parametrize("segments,frames", [(1, 8), (3, 8), (6, 4)])
def test_shapes_and_range(strategy, num_frames, segments, frames):
    cfg = SamplingConfig(segments, frames, strategy, 2)
    rng = np.random.default_rng(num_frames)
    for idx in (train_indices(num_frames, cfg, rng), eval_indices(num_frames, cfg)):
        assert idx.shape == (segments, frames)
        assert idx.min() >= 0 and idx.max() < num_frames


def test_consecutive_clips_stay_in_their_segment_with_step_o():
    rng = np.random.default_rng(0)
    for _ in range(200):
        clips = train_indices(300, PAPER, rng)
        for s, clip in enumerate(clips):
            assert np.all(np.diff(clip) == 2)
            assert s * 100 <= clip[0] and clip[-1] < (s + 1) * 100


def test_consecutive_offsets_cover_the_whole_segment():
    rng = np.random.default_rng(0)
    starts = {int(train_indices(300, PAPER, rng)[0, 0]) for _ in range(2000)}
    assert min(starts) == 0 and max(starts) == 100 - PAPER.span  # rand(0, M - span)


def test_uniform_clip_takes_one_frame_per_sub_fragment():
    cfg = SamplingConfig(3, 8, "uniform")
    rng = np.random.default_rng(1)
    for _ in range(100):
        clips = train_indices(240, cfg, rng)  # M = 80, fragments of 10 frames
        for s, clip in enumerate(clips):
            fragment = (clip - s * 80) // 10
            assert list(fragment) == list(range(8))


def test_test_clips_are_segment_centres():
    clips = eval_indices(300, PAPER)
    middle_frames = clips[:, 0] + PAPER.span // 2
    segment_centres = np.array([49.5, 149.5, 249.5])
    assert np.all(np.abs(middle_frames - segment_centres) <= 0.5)
    assert np.array_equal(eval_indices(300, PAPER), clips)  # deterministic


def test_allclips_are_non_overlapping_and_cover_the_video():
    clips = eval_indices(300, PAPER, "allclips")
    assert clips.shape == (300 // PAPER.span, 8)
    assert np.all(clips[1:, 0] - clips[:-1, -1] > 0)  # no shared frames
    # Too short for S non-overlapping clips: fall back to the S centre clips.
    assert np.array_equal(eval_indices(40, PAPER, "allclips"), eval_indices(40, PAPER))


def test_uniform_allclips_share_no_frames():
    cfg = SamplingConfig(3, 8, "uniform")
    clips = eval_indices(480, cfg, "allclips")
    flat = clips.reshape(-1)
    assert len(np.unique(flat)) == len(flat) and clips.shape[0] == 3 * (160 // 8)


def test_short_videos_repeat_frames():
    assert np.all(train_indices(1, PAPER, np.random.default_rng(0)) == 0)
    clip = eval_indices(10, SamplingConfig(1, 8, "consecutive", 2))[0]
    assert list(clip) == [0, 2, 4, 6, 8, 0, 2, 4]  # loops over a 10-frame video


def test_seeded_sampling_is_reproducible():
    a = train_indices(300, PAPER, np.random.default_rng(7))
    b = train_indices(300, PAPER, np.random.default_rng(7))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("clips,segments", [(3, 3), (10, 3), (2, 3), (1, 1), (7, 6)])
def test_group_clips_gives_one_contiguous_group_per_segment(clips, segments):
    groups = group_clips(clips, segments)
    assert len(groups) == segments
    assert all(len(g) >= 1 for g in groups)
    if clips >= segments:
        assert np.array_equal(np.concatenate(groups), np.arange(clips))


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="sampling must be one of"):
        SamplingConfig(strategy="random")
