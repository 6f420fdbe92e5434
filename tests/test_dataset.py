"""VideoDataset and EpochSampler: tensors, determinism, resumability, bad files."""

from __future__ import annotations

import numpy as np
import torch
from conftest import indexed_video

from tc3d.datasets.dataset import EpochSampler, VideoDataset, collate_train
from tc3d.datasets.formats import VideoItem
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig

SPEC = ClipSpec(SamplingConfig(segments=3, frames=4, strategy="consecutive", offset=2), crop=32)


def _items(tmp_path, n=4):
    return [
        VideoItem(indexed_video(tmp_path / f"v{i}.avi", 30 + 5 * i), label=i % 2) for i in range(n)
    ]


def test_training_items_have_the_video_layout(tmp_path):
    ds = VideoDataset(_items(tmp_path), SPEC, train=True)
    item = ds[(1, 123)]
    assert item["video"].shape == (3, 3, 4, 32, 32)  # (S, C, k, H, W)
    assert item["label"] == 1 and item["errors"] == []
    again = ds[(1, 123)]
    assert torch.equal(item["video"], again["video"])  # the seed decides everything
    assert not torch.equal(item["video"], ds[(1, 124)]["video"])


def test_test_items_stack_crops_and_clips(tmp_path):
    items = _items(tmp_path)
    one = VideoDataset(items, SPEC, train=False)[0]["video"]
    ten = VideoDataset(items, ClipSpec(SPEC.sampling, 32, "allclips", 10), train=False)[0]
    assert one.shape == (1, 3, 3, 4, 32, 32)  # (crops, n, C, k, H, W)
    # allclips: every non-overlapping 7-frame clip (k=4, o=2) of the 30-frame video
    assert ten["video"].shape[:2] == (10, 30 // 7)


def test_unreadable_training_video_is_replaced_and_reported(tmp_path):
    items = _items(tmp_path, 3)
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"")
    items.insert(1, VideoItem(bad, 0))
    item = VideoDataset(items, SPEC, train=True)[(1, 5)]
    assert item["index"] == 2 and item["video"].shape[0] == 3
    assert item["errors"] == [{"path": str(bad), "error": "empty file (0 bytes)"}]
    batch = collate_train([item, VideoDataset(items, SPEC, train=True)[(0, 1)]])
    assert batch["video"].shape[:2] == (2, 3) and len(batch["errors"]) == 1


def test_unreadable_test_video_is_an_error_entry(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"garbage" * 20)
    item = VideoDataset([VideoItem(bad, 0)], SPEC, train=False)[0]
    assert "cannot open" in item["error"] and item["path"] == str(bad)


def test_sampler_resumes_mid_epoch_and_splits_ranks():
    full = list(EpochSampler(20, 3, seed=1))
    assert len(full) == 18 and len({i for i, _ in full}) == 18
    resumed = EpochSampler(20, 3, seed=1)
    resumed.set_epoch(0, start_batch=2)
    assert list(resumed) == full[6:]
    other_epoch = EpochSampler(20, 3, seed=1)
    other_epoch.set_epoch(1)
    assert [i for i, _ in other_epoch] != [i for i, _ in full]
    ranks = [list(EpochSampler(20, 3, seed=1, rank=r, world=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 9
    assert not {i for i, _ in ranks[0]} & {i for i, _ in ranks[1]}


def test_items_from_a_sampler_are_reproducible_across_runs(tmp_path):
    ds = VideoDataset(_items(tmp_path), SPEC, train=True)
    keys = list(EpochSampler(4, 2, seed=3))
    a = [ds[k]["video"] for k in keys]
    b = [ds[k]["video"] for k in keys]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert np.unique([k[1] for k in keys]).size == len(keys)
