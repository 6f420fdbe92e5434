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

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from tc3d.datasets.formats import VideoItem
from tc3d.video.clips import ClipSpec, load_clips
from tc3d.video.decode import VideoReadError

log = logging.getLogger(__name__)

# A data set where this many items in a row cannot be read is broken, not unlucky.
MAX_REPLACEMENTS = 16


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
