"""Synthetic data set: UCF101 layout, real decodable videos, determinism, and class behaviour
measured on frames decoded back from the files (the sprite is the only saturated thing)."""

from __future__ import annotations

import json
import re
import shutil

import av
import numpy as np
import pytest

from tc3d.io import atomic_write_text
from tc3d.synthetic import pairs, pool, surveillance, synth
from tc3d.synthetic.synth import (
    CLASS_TIERS,
    TIERS,
    VideoSpec,
    class_names,
    make_synthetic_dataset,
    plan_videos,
    write_video,
)

CLASSES, PER_CLASS, SEED = 3, 3, 0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    calls = []
    summary = make_synthetic_dataset(
        root, CLASSES, PER_CLASS, SEED, workers=1, progress=lambda *args: calls.append(args)
    )
    return root, summary, calls


def _lines(path):
    raw = path.read_bytes()
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF, as UCF101
    return raw.decode().split("\r\n")[:-1]


def test_layout_and_split_files(dataset):
    root, summary, calls = dataset
    names = class_names(CLASSES)
    assert summary.classes == names and summary.root == root
    class_ind = [line.split(" ") for line in _lines(root / "splits" / "classInd.txt")]
    assert class_ind == [[str(i), c] for i, c in enumerate(names, 1)]

    pattern = re.compile(r"^(\w+)/v_(\w+)_g(\d\d)_c(\d\d)\.avi$")
    train, test = {}, set()
    for line in _lines(root / "splits" / "trainlist01.txt"):
        rel, label = line.split(" ")
        cls, cls2, group, _ = pattern.match(rel).groups()
        assert cls == cls2 and names[int(label) - 1] == cls
        train[rel] = (cls, int(group))
    for rel in _lines(root / "splits" / "testlist01.txt"):
        assert " " not in rel and pattern.match(rel)
        test.add(rel)
    assert (summary.train, summary.test) == (len(train), len(test))
    assert summary.videos == len(train) + len(test) == CLASSES * PER_CLASS

    on_disk = {p.relative_to(root).as_posix() for p in root.glob("*/*.avi")}
    assert on_disk == set(train) | test
    assert not list(root.rglob("*.part")) and not list(root.rglob(".*.tmp"))  # temp files
    for cls in names:  # train and test never share a group (scene), test = the first group
        test_groups = {int(pattern.match(r).group(3)) for r in test if r.startswith(cls + "/")}
        train_groups = {g for c, g in train.values() if c == cls}
        assert test_groups == {1} and train_groups and not test_groups & train_groups

    tiers = json.loads((root / "tiers.json").read_text())
    assert tiers == summary.tiers and set(tiers) == set(TIERS)
    assert all(tiers[CLASS_TIERS[c]].count(c) == 1 for c in names)
    assert [d for d, _ in calls] == list(range(1, summary.videos + 1))
    assert {t for _, t in calls} == {summary.videos}


def test_every_video_decodes_with_expected_frames_and_keyframes(dataset):
    root, summary, _ = dataset
    for spec in plan_videos(summary.classes, PER_CLASS, SEED):
        with av.open(str(root / spec.cls / spec.name)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "mpeg4"
            assert (stream.width, stream.height, stream.average_rate) == (320, 240, 25)
            assert stream.frames == spec.frames
            keys = [p.is_keyframe for p in container.demux(stream) if p.size]
        assert len(keys) == spec.frames
        key_at = np.flatnonzero(keys)
        assert key_at[0] == 0 and np.diff(np.append(key_at, len(keys))).max() <= 12
        with av.open(str(root / spec.cls / spec.name)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(frames) == spec.frames and frames[0].shape == (240, 320, 3)
    lengths = [s.frames for s in plan_videos(class_names(), 16, SEED)]
    assert min(lengths) >= 18 and max(lengths) <= 330


@pytest.mark.slow
def test_same_seed_same_bytes_for_any_worker_count(dataset, tmp_path):
    root, _, _ = dataset
    make_synthetic_dataset(tmp_path, classes=CLASSES, per_class=PER_CLASS, seed=SEED, workers=2)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for rel in files:
        assert (root / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_rerun_renders_only_the_missing_videos(dataset, tmp_path):
    """With the same settings, a video file that exists is whole (writes are atomic) and is
    kept: only the missing one is rendered."""
    root, summary, _ = dataset
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    videos = sorted(tmp_path.glob("*/*.avi"))
    gone, kept = videos[0], videos[1:]
    first = gone.read_bytes()
    gone.unlink()
    kept[0].write_bytes(b"kept as it is")  # stands for a finished video: not opened, not redone
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    calls = []
    again = make_synthetic_dataset(
        tmp_path, CLASSES, PER_CLASS, SEED, workers=1, progress=lambda *a: calls.append(a)
    )
    assert calls == [(summary.videos, summary.videos)]  # the kept ones count as done
    assert gone.read_bytes() == first
    assert {p: p.stat().st_mtime_ns for p in kept} == stamps
    assert kept[0].read_bytes() == b"kept as it is"
    assert (again.videos, again.train, again.test) == (summary.videos, summary.train, summary.test)


def test_seed_changes_bytes_and_rewrite_overwrites(tmp_path):
    a, b = tmp_path / "a.avi", tmp_path / "b.avi"
    write_video(VideoSpec("FloatBall", 1, 1, 0, 20), a)
    write_video(VideoSpec("FloatBall", 1, 1, 1, 20), b)
    assert a.read_bytes() != b.read_bytes()
    first = a.read_bytes()
    a.write_bytes(b"stale")
    write_video(VideoSpec("FloatBall", 1, 1, 0, 20), a)
    assert a.read_bytes() == first


def _interrupt_video(monkeypatch, n: int) -> None:
    """The n-th video rendered from now on stops after 5 frames, as if Ctrl-C were pressed."""
    real, count = synth.render_video, iter(range(1, 1 << 30))

    def render(spec):
        frames = real(spec)
        if next(count) == n:
            for _ in range(5):
                yield next(frames)
            raise KeyboardInterrupt
        yield from frames

    monkeypatch.setattr(synth, "render_video", render)


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    _interrupt_video(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        write_video(VideoSpec("FloatBall", 1, 1, 0, 20), tmp_path / "v.avi")
    assert list(tmp_path.iterdir()) == []


def _files(root) -> dict[str, bytes]:
    """Every file under root (the settings record too) by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Uninterrupted small sets (one class, 3 videos) of seeds 0 and 1: {seed: folder}."""
    roots = {seed: tmp_path_factory.mktemp(f"small{seed}") for seed in (0, 1)}
    for seed, root in roots.items():
        make_synthetic_dataset(root, classes=1, per_class=3, seed=seed, workers=1)
    return roots


def test_interrupted_run_resumes_to_the_same_bytes(small, tmp_path, monkeypatch):
    _interrupt_video(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic_dataset(tmp_path, classes=1, per_class=3, seed=1, workers=1)
    monkeypatch.undo()
    (done,) = tmp_path.glob("*/*.avi")  # the first video is whole, the second left no file
    stamp, calls = done.stat().st_mtime_ns, []
    make_synthetic_dataset(
        tmp_path, classes=1, per_class=3, seed=1, workers=1, progress=lambda *a: calls.append(a)
    )
    assert calls == [(2, 3), (3, 3)] and done.stat().st_mtime_ns == stamp  # kept, not redone
    assert _files(tmp_path) == _files(small[1])


def test_other_seed_renders_every_video_again(small, tmp_path, monkeypatch, caplog):
    """Another seed's videos are replaced, also when that re-render is interrupted on the way:
    the videos it had not reached yet are not mistaken for finished ones."""
    shutil.copytree(small[0], tmp_path, dirs_exist_ok=True)
    _interrupt_video(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic_dataset(tmp_path, classes=1, per_class=3, seed=1, workers=1)
    monkeypatch.undo()
    old, new, now = _files(small[0]), _files(small[1]), _files(tmp_path)
    videos = [rel for rel in new if rel.endswith(".avi")]
    assert sorted(now[v] == new[v] for v in videos) == [False, False, True]  # one redone
    assert sorted(now[v] == old[v] for v in videos) == [False, True, True]
    with caplog.at_level("WARNING", logger="tc3d.synthetic.pool"):
        make_synthetic_dataset(tmp_path, classes=1, per_class=3, seed=1, workers=1)
    assert "rendering all 3 videos" in caplog.text and _files(tmp_path) == new


def _record_writes(monkeypatch, module, name) -> list[str]:
    """Swap the set's video writer for one that writes the spec as text and lists its files."""
    written = []

    def write(spec, path):
        atomic_write_text(repr(spec), path)
        written.append(path.name)
        return spec.frames

    monkeypatch.setattr(module, name, write)
    return written


@pytest.mark.parametrize(
    "module, writer, make, same, other",
    [
        (surveillance, "write_surveillance_video", surveillance.make_surveillance_dataset,
         {"seconds": (8, 8.5), "event_seconds": (0.8, 1.0)}, {"seconds": (8, 9)}),
        (pairs, "write_pair_video", pairs.make_pairs_dataset,
         {"pairs_per_fold": 2, "frames": (10, 14)}, {"frames": (10, 15)}),
    ],
)  # fmt: skip
def test_every_set_keeps_its_videos_only_under_the_same_settings(
    module, writer, make, same, other, tmp_path, monkeypatch
):
    written = _record_writes(monkeypatch, module, writer)
    args = {"per_class": 3, "seed": 0, "workers": 1, **same}
    planned = []  # videos each run planned

    def run(**change) -> list[str]:
        written.clear()
        planned.append(make(tmp_path, **{**args, **change}).videos)
        return sorted(written)

    everything = run()
    files = _files(tmp_path)
    assert everything and run() == []  # the same settings: nothing to do
    gone = next(tmp_path.rglob(everything[0]))
    gone.unlink()
    assert run() == [gone.name]
    for change in ({"seed": 1}, other):  # one setting differs, then none
        assert run(**change) == everything and run(**change) == []
        assert run() == everything and _files(tmp_path) == files
    assert len(run(per_class=4)) == planned[-1] and run(per_class=4) == []
    assert run() == everything
    (tmp_path / pool.RECORD).write_text("{not json")  # videos, no readable record: all again
    assert run() == everything
    (tmp_path / pool.RECORD).unlink()  # videos and no record (a set from before records)
    assert run() == everything
    assert files.items() <= _files(tmp_path).items()  # per_class 4's other videos stay


def _tracks(path) -> np.ndarray:
    """Per decoded frame: sprite centroid x, y, axis angle (deg, clockwise), touches an edge.

    The sprite is found as the saturated pixels: scene, noise and distractors are muted.
    """
    rows = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24").astype(np.int16)
            ys, xs = np.nonzero(rgb.max(-1) - rgb.min(-1) > 70)
            assert len(xs) > 50, "sprite not found"
            cx, cy = xs.mean(), ys.mean()
            mu20, mu02 = ((xs - cx) ** 2).mean(), ((ys - cy) ** 2).mean()
            mu11 = ((xs - cx) * (ys - cy)).mean()
            angle = 0.5 * np.degrees(np.arctan2(2 * mu11, mu20 - mu02))  # y down: clockwise
            rows.append((cx, cy, angle, xs.min() == 0 or xs.max() == 319))
    return np.array(rows, dtype=float)


def _turn(angles: np.ndarray) -> np.ndarray:
    """Frame-to-frame change of an axis angle, wrapped to [-90, 90)."""
    return (np.diff(angles) + 90) % 180 - 90


@pytest.mark.parametrize(
    "pair, stat",
    [(("SlideLeft", "SlideRight"), "dx"), (("SpinCounterClockwise", "SpinClockwise"), "turn")],
)
def test_motion_pair_differs_in_measured_direction(pair, stat, tmp_path):
    signs = []
    for cls in pair:
        write_video(VideoSpec(cls, 1, 1, SEED, 40), tmp_path / f"{cls}.avi")
        t = _tracks(tmp_path / f"{cls}.avi")
        if stat == "dx":  # skip steps where the sprite wraps around the frame edge
            inner = (t[1:, 3] == 0) & (t[:-1, 3] == 0)
            value = np.median(np.diff(t[:, 0])[inner])
        else:
            value = np.median(_turn(t[:, 2]))
        assert abs(value) > 2, (cls, value)  # pixels or degrees per frame
        signs.append(np.sign(value))
    assert signs == [-1, 1]


@pytest.mark.slow
def test_order_pair_is_time_reversed_in_phase_order(tmp_path):
    n = 150
    first, last = slice(0, int(0.27 * n)), slice(int(0.73 * n), n)  # clear of +-5% jitter
    stats = {}
    for cls in ("HopThenSpin", "SpinThenHop"):
        write_video(VideoSpec(cls, 1, 1, SEED, n), tmp_path / f"{cls}.avi")
        t = _tracks(tmp_path / f"{cls}.avi")
        spin = [np.median(np.abs(_turn(t[s, 2]))) for s in (first, last)]
        bounce = [np.std(t[s, 1]) for s in (first, last)]
        stats[cls] = spin, bounce
    (spin_a, bounce_a), (spin_b, bounce_b) = stats["HopThenSpin"], stats["SpinThenHop"]
    # hop: upright, bouncing; spin: turning several degrees a frame in place
    assert spin_a[0] < 2 < 5 < spin_a[1] and spin_b[1] < 2 < 5 < spin_b[0]
    assert bounce_a[0] > bounce_a[1] and bounce_b[1] > bounce_b[0]


def test_classes_argument(tmp_path):
    assert len(class_names()) == len(CLASS_TIERS) == 16
    assert class_names(4) == class_names()[:4]
    for n in range(3, 17):
        assert {CLASS_TIERS[c] for c in class_names(n)} == set(TIERS)
    counts = {t: sum(v == t for v in CLASS_TIERS.values()) for t in TIERS}
    assert counts == {"appearance": 4, "motion": 6, "long_term": 6}
    for bad in (0, 17):
        with pytest.raises(ValueError, match="classes must be between 1 and 16"):
            make_synthetic_dataset(tmp_path / "out", classes=bad)
    with pytest.raises(ValueError, match="per_class"):
        make_synthetic_dataset(tmp_path / "out", classes=3, per_class=1)
    assert not (tmp_path / "out").exists()
