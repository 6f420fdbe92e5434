"""The ranking objective of ``tc3d anomaly train``: lasting local change, judged per cell
against the video's own normal, weighed by multiple-instance ranking on video-level labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_video

import tc3d
from tc3d.apps.anomaly import frame_scores
from tc3d.cli import main
from tc3d.infer.anomaly_evidence import Evidence, LocalScorer, cell_features, read_evidence
from tc3d.training.ranking import fit_local_scorer

H, W, FPS = 96, 128, 25


def street(seconds: float, incident: tuple[int, int] | None, seed: int) -> np.ndarray:
    """A camera over a textured scene: squares cross left to right all the time, a lamp
    flickers in a corner all video long, light drifts; ``incident`` frames hold a dark bag
    that sits still in the middle (it appears, stays, and is taken away)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FPS)
    scene = rng.integers(60, 200, (H // 8, W // 8, 3)).repeat(8, 0).repeat(8, 1)
    walkers = [(rng.uniform(-W, W), rng.uniform(10, H - 20), rng.uniform(3, 5)) for _ in range(6)]
    frames = []
    for t in range(n):
        f = scene.astype(np.float32) * (1 + 0.15 * np.sin(t / 40))
        f[:12, :12] = 150 + 100 * np.sin(t * 2.1)  # the flickering lamp
        for x0, y0, v in walkers:
            x = int((x0 + v * t) % (W + 20)) - 10
            f[int(y0) : int(y0) + 10, max(0, x) : max(0, x + 6)] = (230, 60, 60)
        if incident and incident[0] <= t < incident[1]:
            f[50:60, 60:70] = (20, 20, 20)
        f += rng.normal(0, 4, f.shape)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return np.stack(frames)


def test_lasting_change_stands_out_and_blips_and_flicker_do_not():
    n = 1500  # a minute: the busy stretch below is a small share of it
    rng = np.random.default_rng(0)
    motion = rng.uniform(0, 1, (n, 2, 2)).astype(np.float32)
    change = motion.copy()
    motion[:, 0, 0] += 20 * (np.arange(n) % 2)  # flicker, all video long
    motion[100:106, 0, 1] += 30  # a car crossing: six frames
    motion[150:250, 1, 1] += 30  # something that stays busy in one place for four seconds
    feats = cell_features(Evidence(motion, change, change.copy()), ring=0)  # (N, 4 cells, 9)
    motion_2s = feats[..., 3]  # features: (motion, change, still) for 1, 2 and 3 s
    peak = motion_2s.max(0)  # per cell
    assert peak[3] > 5 and peak[0] < 1 and peak[1] < 1  # cells (1,1), (0,0) and (0,1)
    assert motion_2s[200, 3] > 5 and motion_2s[50, 3] < 1 and motion_2s[600, 3] < 1


def test_a_passer_by_cut_by_the_start_of_the_video_must_last_the_whole_window():
    motion = np.zeros((500, 1, 1), np.float32)
    motion[:40, 0, 0] = 30  # in view for the first 1.6 s, gone before the 2-s window ends
    motion[200:260, 0, 0] = 30  # 2.4 s in the middle of the video: lasts
    motion_2s = cell_features(Evidence(motion, motion, motion), ring=0)[:, 0, 3]
    assert motion_2s[:40].max() == 0 and motion_2s[220:240].min() > 1


def test_contrast_keeps_one_place_and_drops_a_crowd_along_the_row():
    n, rows, cols = 600, 3, 32
    motion = np.zeros((n, rows, cols), np.float32)
    motion[200:300, 0, 3:29] = 30  # a crowd fills most of row 0 for 4 s
    motion[200:300, 2, 16] = 30  # something in one place in row 2, as long
    feats = cell_features(Evidence(motion, motion, motion))  # 9 features, each with its contrast
    assert feats.shape == (n, rows * cols, 18)
    lasting, contrast = feats[250, :, 6], feats[250, :, 7]  # motion over 2 s, and its contrast
    crowd, incident = 16, 2 * cols + 16  # cell (0, 16) and cell (2, 16)
    assert lasting[crowd] == pytest.approx(lasting[incident]) and lasting[incident] > 1
    assert contrast[incident] == pytest.approx(lasting[incident]) and contrast[crowd] < 0.1


def test_a_scorer_stored_before_the_grid_was_kept_reads_as_it_was_trained():
    stored = {"weights": [0.1] * 9, "bias": -2.0, "mean": [0.0] * 9, "std": [1.0] * 9}
    old = LocalScorer.from_dict(stored)
    assert (old.grid, old.ring) == ([12, 16], 0)
    evidence = Evidence(*np.random.default_rng(0).uniform(0, 5, (3, 100, 12, 16)).astype("f4"))
    assert old.frame_scores(evidence).shape == (100,)
    assert LocalScorer.from_dict(old.to_dict()) == old


def test_scoring_map_by_map_equals_weighing_the_stacked_features():
    evidence = Evidence(*np.random.default_rng(1).uniform(0, 9, (3, 300, 24, 32)).astype("f4"))
    rng = np.random.default_rng(2)
    weights, mean, std = rng.normal(0, 1, 18), rng.normal(0, 1, 18), rng.uniform(0.5, 2, 18)
    scorer = LocalScorer(weights.tolist(), -1.0, mean.tolist(), std.tolist())
    stacked = (cell_features(evidence) - mean) / std @ weights - 1.0  # (N, cells): every cell
    by_maps = scorer.cell_logits(evidence).reshape(len(stacked), -1)
    assert np.allclose(by_maps, stacked, atol=1e-4)
    assert np.array_equal(scorer.frame_scores(evidence), scorer.frame_scores_of(by_maps, 25.0))


def test_ranking_learns_from_video_labels_on_real_video(tmp_path, capsys):
    root = tmp_path / "data"
    train, test = [], []
    for i in range(6):
        anomalous = i % 2 == 1
        folder = "Abandonment" if anomalous else "Training_Normal_Videos_Anomaly"
        name = f"Abandonment{i:03d}_x264.mp4" if anomalous else f"Normal_Videos{i:03d}_x264.mp4"
        write_video(root / folder / name, street(12, (100, 200) if anomalous else None, i))
        train.append(f"{folder}/{name}")
    for i, incident in enumerate([(120, 220), None]):
        folder = "Abandonment" if incident else "Testing_Normal_Videos_Anomaly"
        name = f"Abandonment1{i:02d}_x264.mp4" if incident else "Normal_Videos_100_x264.mp4"
        write_video(root / folder / name, street(14, incident, 50 + i))
        test.append((f"{folder}/{name}", incident))
    (root / "Anomaly_Train.txt").write_text("".join(r + "\n" for r in train))
    (root / "Anomaly_Test.txt").write_text("".join(r + "\n" for r, _ in test))
    bounds = [f"{iv[0] + 1}  {iv[1]}  -1  -1" if iv else "-1  -1  -1  -1" for _, iv in test]
    notes = [f"{r.split('/')[1]}  {'Abandonment' if iv else 'Normal'}  {b}"
             for (r, iv), b in zip(test, bounds, strict=True)]  # fmt: skip
    (root / "Temporal_Anomaly_Annotation.txt").write_text("\n".join(notes) + "\n")

    out = tmp_path / "run"
    assert main(["anomaly", "train", "--data", str(root), "--out", str(out), "--iters", "200",
                 "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["objective"] == "ranking" and result["iters"] == 200 and not result["skipped"]
    assert {"checkpoint", "val_top1", "seconds"} <= result.keys()
    assert (out / "log.jsonl").read_text().count("loss") == 20 and (out / "config.json").exists()

    model = tc3d.load_model(out / "best.pt", device="cpu")
    assert model.loaded.anomaly_scorer is not None and model.classes == ["Normal", "Anomaly"]
    scores = frame_scores(model, root / test[0][0])
    assert len(scores) == 14 * FPS and ((scores >= 0) & (scores <= 1)).all()
    assert scores[140:200].min() > scores[:90].max()  # the bag, not the traffic or the lamp
    normal = frame_scores(model, root / test[1][0])
    assert normal.max() < scores.max()

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    videos = [str(root / test[0][0]), str(root / test[1][0]), str(broken)]
    assert main(["predict", *videos, "--model", str(out / "best.pt"), "--json"]) == 1
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    assert results[0]["labels"][0] == {"label": "Anomaly", "prob": pytest.approx(scores.max())}
    assert results[1]["labels"][0]["label"] == "Normal" and "error" in results[2]

    assert main(["anomaly", "test", "--model", str(out / "best.pt"), "--data", str(root),
                 "--json"]) == 0  # fmt: skip
    tested = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert tested["frame_auc"] > 90 and tested["video_auc"] == 100.0 and tested["videos"] == 2

    packed = tmp_path / "anomaly.tc3d"  # the scorer travels inside a compressed model file
    assert main(["compress", "--model", str(out / "best.pt"), "--out", str(packed)]) == 0
    capsys.readouterr()
    again = tc3d.load_model(packed, device="cpu")
    assert again.loaded.anomaly_scorer == model.loaded.anomaly_scorer
    assert np.allclose(frame_scores(again, root / test[0][0]), scores)


def test_ranking_needs_both_kinds_of_video(tmp_path):
    evidence = read_evidence(write_video(tmp_path / "v.mp4", street(3, None, 0)))
    feats = cell_features(evidence)
    with pytest.raises(ValueError, match="both normal and anomalous"):
        fit_local_scorer([feats, feats], [False, False], iters=2)
