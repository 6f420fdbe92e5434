"""``tc3d stream`` sources that do not simply end: looped files and a live HTTP feed that goes
away (a real server on 127.0.0.1, stopped and started again)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import indexed_video
from live_server import LiveFeed, mpegts

from tc3d.cli import main
from tc3d.modelfile.checkpoint import save_model
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig

SPEC = ClipSpec(SamplingConfig(segments=3, frames=4, offset=2), crop=32)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A seeded width-0.25 checkpoint (k=4 frames 2 apart: a clip spans 7 frames)."""
    path = tmp_path_factory.mktemp("sources") / "tiny.pt"
    torch.manual_seed(0)
    save_model(path, TC3D(ModelConfig(4, width=0.25, segments=3)), list("ABCD"), SPEC)
    return path


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.strip().splitlines()]


def _stream(args: list, capsys) -> tuple[int, list[dict], list[dict], dict, str]:
    """Exit code, decision lines, reconnect lines, summary and stderr of one ``tc3d stream``."""
    code = main(["stream", *map(str, args), "--device", "cpu", "--json"])
    out, err = capsys.readouterr()
    lines = _lines(out)
    assert "summary" in lines[-1], lines[-1]
    decisions = [line for line in lines[:-1] if "frame" in line]
    gaps = [line["reconnect"] for line in lines[:-1] if "reconnect" in line]
    assert len(decisions) + len(gaps) == len(lines) - 1
    return code, decisions, gaps, lines[-1]["summary"], err


def test_loop_starts_a_file_again_with_frame_numbers_counting_on(checkpoint, tmp_path, capsys):
    video = indexed_video(tmp_path / "v.avi", 20)
    code, decisions, gaps, summary, _ = _stream(
        [video, "--model", checkpoint, "--stride", "4", "--loop", "--max-seconds", "3"], capsys
    )
    assert code == 0 and not gaps and summary["reconnects"] == []
    frames = [d["frame"] for d in decisions]
    assert frames[:6] == [7, 11, 15, 19, 23, 27]  # on through the end of the 20-frame file
    assert frames == list(range(7, frames[-1] + 1, 4))  # no decision skipped
    source = summary["sources"][0]
    assert source["loops"] >= 1 and summary["frames"] > 28, source  # past the end, again
    assert summary["dropped_frames"] == 0  # a file read as fast as possible waits for the model


def test_a_lost_feed_is_reconnected_and_the_gap_reported(checkpoint, capsys):
    feed = LiveFeed(mpegts(200), seconds=8).start()

    def outage() -> None:
        time.sleep(1.5)
        feed.stop()
        time.sleep(1.0)
        feed.start()  # the same port, the feed from its start

    threading.Thread(target=outage, daemon=True).start()
    try:
        code, decisions, gaps, summary, err = _stream(
            [feed.url, "--model", checkpoint, "--stride", "4", "--reconnect", "5",
             "--max-seconds", "4"], capsys)  # fmt: skip
    finally:
        feed.stop()
    assert code == 0, err
    assert len(gaps) == 1 and summary["reconnects"] == gaps
    gap = gaps[0]
    assert gap["source"] == feed.url and "error" not in gap
    assert 1.0 <= gap["gap_s"] < 4  # the server was away for 1 s; reopening takes a moment
    assert summary["sources"][0]["gap_s"] == gap["gap_s"]
    before = [d["frame"] for d in decisions if d["frame"] < gap["frame"]]
    after = [d["frame"] for d in decisions if d["frame"] >= gap["frame"]]
    assert before and after  # decisions on both sides of the gap
    # frame numbers count on; the ring starts empty, so the first clip after the gap is whole
    assert min(after) >= gap["frame"] + 6


def test_a_feed_that_stays_away_ends_the_stream_with_one_line(checkpoint, capsys):
    feed = LiveFeed(mpegts(200), seconds=8).start()
    threading.Timer(1.0, feed.stop).start()
    start = time.monotonic()
    code, decisions, gaps, summary, err = _stream(
        [feed.url, "--model", checkpoint, "--stride", "4", "--reconnect", "1"], capsys
    )
    assert code == 1 and decisions
    assert time.monotonic() - start < 10  # gave up after about a second, did not hang
    assert len(gaps) == 1 and "not back within 1 s" in gaps[0]["error"]
    assert "not back within 1 s" in summary["sources"][0]["error"]
    errors = [line for line in err.splitlines() if line.startswith("tc3d: error:")]
    assert len(errors) == 1 and feed.url in errors[0]
