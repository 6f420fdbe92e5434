"""tc3d tag/features --ray on a real two-node Ray cluster, inside a loopback-only namespace.

The cluster's output must be the local run's (same rows, same labels, same features), resume
the same way, list failures the same way; a worker killed mid-run loses no video; a video that
kills every worker it is sent to is reported as failed. One cluster serves the module and is
stopped at its end, also when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import random_checkpoint, run_cli, write_video
from netns import Namespace
from raycluster import RayCluster

from tc3d.cli import main

TOP = "3"


@pytest.fixture(scope="module")
def cluster():
    temp = Path(tempfile.mkdtemp(prefix="tc3d-ray-"))  # short: Ray's socket paths have a limit
    try:
        with Namespace() as ns:
            c = RayCluster(ns, temp, nodes=2, cpus=1, env={"OMP_NUM_THREADS": "1"})
            try:
                yield c
            finally:
                c.stop()
    finally:
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """20 tiny videos in two folders, one broken file, a 3-class model and the local run."""
    root = tmp_path_factory.mktemp("cluster")
    rng = np.random.default_rng(1)
    videos = root / "videos"
    for i in range(20):
        frames = rng.integers(0, 255, (int(rng.integers(5, 12)), 32, 32, 3), dtype=np.uint8)
        write_video(videos / f"part{i % 2}" / f"v{i:02d}.mp4", list(frames))
    (videos / "part1" / "broken.avi").write_bytes(b"not a video" * 40)
    model = random_checkpoint(root / "model.pt", ["a", "b", "c"], segments=2)
    local = root / "local.jsonl"
    result = run_cli("tag", str(videos), "--model", str(model), "--out", str(local), "--top", TOP,
                     "--json")  # fmt: skip
    assert (result["tagged"], len(result["failed"])) == (20, 1)
    return videos, model, local, result


def _rows(path: Path) -> dict[str, list[dict]]:
    return {r["video"]: r["labels"] for r in map(json.loads, path.read_text().splitlines())}


def _assert_same_rows(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for video, labels in want.items():
        assert [x["label"] for x in got[video]] == [x["label"] for x in labels], video
        np.testing.assert_allclose([x["prob"] for x in got[video]],
                                   [x["prob"] for x in labels], rtol=0, atol=1e-5)  # fmt: skip


def _failed_names(result: dict) -> list[str]:
    return sorted(Path(f["path"]).name for f in result["failed"])


def test_without_ray_a_one_line_usage_error(data, tmp_path, monkeypatch, capsys):
    videos, model, _, _ = data
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    out = tmp_path / "t.jsonl"
    code = main(["tag", str(videos), "--model", str(model), "--out", str(out), "--ray", "auto"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install 'tc3d[ray]'" in err[0]
    assert not out.exists()


@pytest.mark.slow
def test_tag_on_two_nodes_equals_the_local_run_and_resumes(cluster, data, tmp_path):
    videos, model, local, local_result = data
    # a run killed earlier: 8 rows written, then a torn line
    out = tmp_path / "tags.jsonl"
    lines = local.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:8]) + lines[8][:20])
    got = cluster.tc3d("tag", str(videos), "--model", str(model), "--out", str(out),
                       "--top", TOP, "--ray", cluster.address)  # fmt: skip
    assert (got["videos"], got["tagged"], got["skipped"]) == (21, 12, 8)
    info = got["cluster"]
    assert (info["address"], info["nodes"]) == (cluster.address, 2)
    assert 1 <= info["workers"] <= 2  # one per CPU; a slow starter may find no work left
    assert _failed_names(got) == _failed_names(local_result) == ["broken.avi"]
    assert got["failed"][0]["error"] == local_result["failed"][0]["error"]
    _assert_same_rows(_rows(out), _rows(local))
    # the failure is remembered as a local run remembers it, so a re-run will not retry it
    failed_file = tmp_path / "tags.jsonl.failed.jsonl"
    assert [json.loads(x)["video"] for x in failed_file.read_text().splitlines()] == [
        "part1/broken.avi"
    ]


@pytest.mark.slow
def test_features_on_two_nodes_equal_the_local_run(cluster, data, tmp_path):
    videos, model, _, _ = data
    args = ["features", "--model", str(model), "--data", str(videos), "--layer", "pool5,prob"]
    local = run_cli(*args, "--out", str(tmp_path / "local.npz"), "--json")
    got = cluster.tc3d(*args, "--out", str(tmp_path / "ray.npz"), "--ray", cluster.address)
    assert got["cluster"]["nodes"] == 2 and got["cluster"]["workers"] >= 1
    assert (got["videos"], got["dims"]) == (local["videos"], local["dims"]) == (20, got["dims"])
    assert got["failed"] == local["failed"] and len(got["failed"]) == 1
    a, b = np.load(tmp_path / "local.npz"), np.load(tmp_path / "ray.npz")
    assert list(a["videos"]) == list(b["videos"]) and list(a["classes"]) == list(b["classes"])
    for layer in ("pool5", "prob"):
        np.testing.assert_allclose(b[layer], a[layer], rtol=0, atol=1e-6)


def _kill_first_busy_worker(cluster: RayCluster, deadline: float) -> int | None:
    """SIGKILL the first worker seen running a task (its title names the method)."""
    while time.time() < deadline:
        for pid in cluster.workers("predict"):
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.02)
    return None


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_no_video(cluster, data, tmp_path):
    videos, model, local, _ = data
    out = tmp_path / "tags.jsonl"
    killer = {}
    thread = threading.Thread(
        target=lambda: killer.update(pid=_kill_first_busy_worker(cluster, time.time() + 120))
    )
    thread.start()
    try:
        got = cluster.tc3d("tag", str(videos), "--model", str(model), "--out", str(out),
                           "--top", TOP, "--ray", cluster.address)  # fmt: skip
    finally:
        thread.join()
    assert killer["pid"] is not None, "no worker was seen running a task"
    assert "worker died" in got["stderr"]
    assert (got["tagged"], _failed_names(got)) == (20, ["broken.avi"])
    _assert_same_rows(_rows(out), _rows(local))


class _Reaper(threading.Thread):
    """Kills every worker that opens ``video``, as a decoder that crashes on it would.

    The video is large enough that reading it takes a worker a while (tenths of a second),
    and the reaper looks at the files the workers hold every few milliseconds."""

    def __init__(self, cluster: RayCluster, video: Path):
        super().__init__(daemon=True)
        self.cluster, self.video = cluster, str(video)
        self.killed: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.005):
            for pid in set(self.cluster.workers()) - set(self.killed):  # a kill takes a while
                try:
                    held = [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir()]
                except OSError:  # it exited meanwhile
                    continue
                if self.video in held:
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)


@pytest.mark.slow
def test_a_video_that_kills_workers_is_reported_failed(cluster, data, tmp_path):
    videos, model, local, _ = data
    folder = tmp_path / "videos"
    shutil.copytree(videos / "part0", folder / "part0")
    frames = np.random.default_rng(2).integers(0, 255, (64, 360, 640, 3), dtype=np.uint8)
    poison = write_video(folder / "part0" / "v00_poison.mp4", list(frames), gop=64)
    out = tmp_path / "tags.jsonl"
    reaper = _Reaper(cluster, poison)
    reaper.start()
    try:
        got = cluster.tc3d("tag", str(folder), "--model", str(model), "--out", str(out),
                           "--top", TOP, "--ray", cluster.address)  # fmt: skip
    finally:
        reaper.done.set()
        reaper.join()
    assert len(reaper.killed) == 2  # once among its chunk, once alone; then given up
    assert [f["path"] for f in got["failed"]] == [str(poison)]
    assert "worker died while reading this video" in got["failed"][0]["error"]
    assert got["tagged"] == 10
    want = {k: v for k, v in _rows(local).items() if k.startswith("part0/")}
    _assert_same_rows(_rows(out), want)
    remembered = (tmp_path / "tags.jsonl.failed.jsonl").read_text().splitlines()
    assert [json.loads(x)["video"] for x in remembered] == ["part0/v00_poison.mp4"]
