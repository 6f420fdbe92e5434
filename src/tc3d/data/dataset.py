"""VideoDataset: a list of (video, label) items -> clip tensors, never dying on a bad file.

Training items are ``(S, 3, k, H, W)``: S clips sampled by strategy A or B, one crop and flip
for the whole video. Test items are ``(crops, n, 3, k, H, W)`` for the test protocol's n clips.

Randomness is explicit: the training sampler hands every item its own seed, derived from the
run seed, the epoch and the item's position, so a resumed run draws exactly the same clips and
crops as an uninterrupted one, whatever the number of loader workers.

A video that cannot be read is replaced by the next readable item of the data set and the
failure travels with the batch (``errors``), so the training loop can count and report it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from tc3d.data.formats import VideoItem
from tc3d.data.sampling import SamplingConfig, eval_indices, train_indices
from tc3d.data.transforms import (
    centre_crop_box,
    crop_and_normalise,
    random_crop_box,
    ten_crop_boxes,
)
from tc3d.data.video import VideoReadError, probe, read_frames

log = logging.getLogger(__name__)

# A data set where this many items in a row cannot be read is broken, not unlucky.
MAX_REPLACEMENTS = 16


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to turn a video into model input."""

    sampling: SamplingConfig
    crop: int = 112
    protocol: str = "sclips"  # test protocol
    crops: int = 1  # test crops: 1 (centre) or 10
    flip: bool = True  # random horizontal flips in training (and mirrored test crops)

    @property
    def short_side(self) -> int:
        """Frames are decoded at this short side: 128 for a 112 crop, as C3D and Res3D do."""
        return round(self.crop * 128 / 112)


def load_clips(path, num_frames: int | None, spec: ClipSpec, rng: np.random.Generator | None):
    """Decode and transform one video. ``rng`` given: training sample; None: test sample.

    Returns ``(clips, frames)``: ``(S, 3, k, H, W)`` for training or ``(crops, n, 3, k, H, W)``
    for test, and the video's frame count.
    """
    if num_frames is None:
        num_frames = probe(path).num_frames
    k = spec.sampling.frames
    if rng is not None:
        indices = train_indices(num_frames, spec.sampling, rng)
    else:
        indices = eval_indices(num_frames, spec.sampling, spec.protocol)
    frames = read_frames(path, indices.reshape(-1), spec.short_side)  # (n·k, H, W, 3)
    height, width = frames.shape[1:3]
    if rng is not None:
        boxes = [random_crop_box(height, width, rng, flip=spec.flip)]
    elif spec.crops == 10:
        boxes = ten_crop_boxes(height, width, flip=spec.flip)
    else:
        boxes = [centre_crop_box(height, width)]
    n = indices.shape[0]
    # (n·k, H, W, 3) -> per box (3, n·k, h, w) -> (n, 3, k, h, w)
    views = [
        crop_and_normalise(frames, box, spec.crop)
        .view(3, n, k, spec.crop, spec.crop)
        .transpose(0, 1)
        for box in boxes
    ]
    clips = views[0] if rng is not None else torch.stack(views)
    return clips, num_frames


class VideoDataset(Dataset):
    """Items -> dicts ``{video, label, index, frames, errors}``.

    Keys may be an int (test: deterministic) or ``(int, seed)`` (training: the seed drives
    sampling and augmentation).
    """

    def __init__(self, items: Sequence[VideoItem], spec: ClipSpec, train: bool):
        self.items = list(items)
        self.spec = spec
        self.train = train

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, None)
        if not self.train:
            return self._load(index, None)
        errors = []
        for attempt in range(MAX_REPLACEMENTS):
            i = (index + attempt) % len(self.items)
            try:
                item = self._load(i, np.random.default_rng([seed or 0, i]))
            except VideoReadError as e:
                errors.append({"path": e.path, "error": e.reason})
                continue
            item["errors"] = errors
            return item
        # Raising here would reach the training loop as a worker traceback; a marker item
        # lets it stop with this one line instead.
        return {
            "fatal": f"{MAX_REPLACEMENTS} unreadable videos in a row (from "
            f"{self.items[index].path}); check the data set with 'tc3d data check'"
        }

    def _load(self, index: int, rng: np.random.Generator | None) -> dict:
        item = self.items[index]
        if rng is None:
            try:
                clips, frames = load_clips(item.path, item.num_frames, self.spec, None)
            except VideoReadError as e:
                return {"index": index, "label": item.label, "error": e.reason, "path": e.path}
        else:
            clips, frames = load_clips(item.path, item.num_frames, self.spec, rng)
        return {"video": clips, "label": item.label, "index": index, "frames": frames}


def collate_train(batch: list[dict]) -> dict:
    fatal = [b["fatal"] for b in batch if "fatal" in b]
    if fatal:
        return {"fatal": fatal[0]}
    return {
        "video": torch.stack([b["video"] for b in batch]),  # (N, S, 3, k, H, W)
        "label": torch.tensor([b["label"] for b in batch]),
        "errors": [e for b in batch for e in b["errors"]],
    }


def collate_test(batch: list[dict]) -> list[dict]:
    """Test items keep their own clip counts (allclips varies per video): a plain list."""
    return batch


class EpochSampler(Sampler):
    """Shuffled ``(index, seed)`` keys for one epoch, resumable mid-epoch, split across ranks.

    Each epoch is a fixed permutation of the data set (from ``seed`` and the epoch number),
    cut to a multiple of ``batch_size × world_size`` and dealt round-robin to the ranks.
    ``set_epoch(epoch, start_batch)`` positions the sampler, so resuming reads no skipped item.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world = rank, world
        self.epoch, self.start_batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.size // (self.batch_size * self.world)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.size)[: self.batches_per_epoch * self.batch_size * self.world]
        seeds = rng.integers(0, 2**31 - 1, size=len(order))
        mine = np.arange(self.rank, len(order), self.world)[self.start_batch * self.batch_size :]
        for j in mine:
            yield int(order[j]), int(seeds[j])
