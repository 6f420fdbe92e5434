"""Anomaly detection on a tiny synthetic surveillance set in UCF-Crime layout: the files are
written as the real set ships them, a model trains through `tc3d anomaly train`, and the
frame-level AUC of `anomaly test` is the ROC AUC over all test frames concatenated."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import tc3d
from tc3d.apps.anomaly import clip_starts, frame_labels, frame_scores, spread_clip_scores
from tc3d.cli import main
from tc3d.synthetic.surveillance import EVENTS, make_surveillance_dataset
from tc3d.video.decode import probe


@pytest.fixture(scope="module")
def surveillance(tmp_path_factory):
    root = tmp_path_factory.mktemp("crime") / "data"
    make_surveillance_dataset(root, per_class=2, seed=3, workers=1, seconds=(8, 8.5),
                              event_seconds=(0.8, 1.0))  # fmt: skip
    return root


@pytest.fixture(scope="module")
def model(surveillance, tmp_path_factory):
    out = tmp_path_factory.mktemp("crime_run")
    flags = "--width 0.25 --crop 32 --frames 4 --batch-size 4 --iters 2 --eval-every 2 "
    flags += "--workers 0 --optimizer adamw --lr 1e-3 --dropout 0 --objective classify"
    assert main(["anomaly", "train", "--data", str(surveillance), "--out", str(out),
                 *flags.split()]) == 0  # fmt: skip
    return out / "best.pt"


def test_files_in_the_real_layout(surveillance):
    train = (surveillance / "Anomaly_Train.txt").read_text().splitlines()
    test = (surveillance / "Anomaly_Test.txt").read_text().splitlines()
    notes = (surveillance / "Temporal_Anomaly_Annotation.txt").read_text().splitlines()
    assert "Training_Normal_Videos_Anomaly/Normal_Videos003_x264.mp4" in train
    assert "Testing_Normal_Videos_Anomaly/Normal_Videos_001_x264.mp4" in test
    assert {t.split("/")[0] for t in test} == {*EVENTS, "Testing_Normal_Videos_Anomaly"}
    assert len(notes) == len(test)
    for line in notes:
        name, event, *nums = line.split("  ")  # two-space separators
        assert len(nums) == 4 and name.endswith("_x264.mp4")
        frames = probe(next(surveillance.rglob(name))).num_frames
        a, b, c, d = map(int, nums)
        if event == "Normal":
            assert (a, b, c, d) == (-1, -1, -1, -1)
        else:
            assert 1 <= a <= b <= frames and ((c, d) == (-1, -1) or b < c <= d <= frames)


def test_clip_starts_cover_every_frame():
    for n, span, stride in [(100, 7, 3), (5, 7, 3), (7, 7, 1), (64, 15, 7)]:
        starts = clip_starts(n, span, stride)
        covered = np.zeros(n, bool)
        for s in starts:
            covered[s : s + span] = True
        assert covered.all() and starts[0] == 0 and starts[-1] == max(0, n - span)
    assert frame_labels(6, [(1, 3), (5, 9)]).tolist() == [0, 1, 1, 0, 0, 1]
    # stride longer than a clip: the frame between two clips is interpolated, never 0
    scores = spread_clip_scores(9, clip_starts(9, 4, 5), 4, [0.2, 0.6])
    assert scores.tolist() == pytest.approx([0.2] * 4 + [0.4] + [0.6] * 4)
    assert spread_clip_scores(6, [0, 2], 4, [1.0, 0.0]).tolist() == [1, 1, 0.5, 0.5, 0, 0]


def test_frame_auc_is_over_all_test_frames_concatenated(surveillance, model, capsys):
    assert main(["anomaly", "test", "--model", str(model), "--data", str(surveillance),
                 "--stride", "9", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"frame_auc", "video_auc", "videos"} <= result.keys()
    assert result["videos"] == 6 and not result["skipped"]

    # The same number, computed here from the annotation file and per-frame scores.
    front = tc3d.load_model(model, device="cpu")
    intervals = {}
    for line in (surveillance / "Temporal_Anomaly_Annotation.txt").read_text().splitlines():
        name, _, *nums = line.split()
        a, b, c, d = map(int, nums)
        intervals[name] = [(x - 1, y) for x, y in ((a, b), (c, d)) if x > 0]
    scores, labels = [], []
    for rel in (surveillance / "Anomaly_Test.txt").read_text().splitlines():
        s = frame_scores(front, surveillance / rel, stride=9)
        assert len(s) == probe(surveillance / rel).num_frames and ((s >= 0) & (s <= 1)).all()
        scores.append(s)
        labels.append(frame_labels(len(s), intervals[rel.split("/")[1]]))
    want = 100 * roc_auc_score(np.concatenate(labels), np.concatenate(scores))
    assert result["frame_auc"] == pytest.approx(want, abs=1e-6)
    assert result["frames"] == sum(len(s) for s in scores)
    assert result["anomalous_frames"] == int(np.concatenate(labels).sum())


def test_score_writes_a_timeline(surveillance, model, tmp_path, capsys):
    video = surveillance / "Arson" / "Arson001_x264.mp4"
    plot = tmp_path / "timeline.png"
    assert main(["anomaly", "score", str(video), "--model", str(model), "--plot", str(plot),
                 "--stride", "9", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["video"] == str(video) and result["plot"] == str(plot)
    assert len(result["scores"]) == probe(video).num_frames
    # found the data set's annotation file by itself: the video's intervals, 1-based as there
    notes = (surveillance / "Temporal_Anomaly_Annotation.txt").read_text().splitlines()
    a, b, c, d = map(int, next(n for n in notes if n.startswith(video.name)).split()[2:])
    assert result["intervals"] == [[a, b]] + ([[c, d]] if c > 0 else []) and a > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_classifier_is_not_an_anomaly_model(tmp_path, capsys):
    from conftest import random_checkpoint, write_video

    m = random_checkpoint(tmp_path / "m.pt", ["a", "b"])
    v = write_video(tmp_path / "v.mp4", [np.zeros((32, 32, 3), np.uint8)] * 4)
    assert main(["anomaly", "score", str(v), "--model", str(m)]) == 1
    assert "not an anomaly model" in capsys.readouterr().err
