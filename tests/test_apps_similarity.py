"""Features (.npz per layer, averaged over clips, L2-normalised), the ASLAN-style pairs protocol
and the synthetic pairs set of classes the benchmark does not have."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from conftest import random_checkpoint, write_video

from tc3d.apps.similarity import (
    SimilarityError,
    cross_validate,
    pair_vector,
    read_pairs,
)
from tc3d.cli import main
from tc3d.synthetic.pairs import ACTIONS, make_pairs_dataset
from tc3d.synthetic.synth import CLASS_TIERS


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two 'actions': a square moving right, a square moving down; 4 videos each."""
    root = tmp_path_factory.mktemp("sim") / "videos"
    rng = np.random.default_rng(0)
    for act, (dx, dy) in {"right": (3, 0), "down": (0, 3)}.items():
        for i in range(4):
            frames = []
            for t in range(20):
                img = rng.integers(0, 40, (40, 40, 3), dtype=np.uint8)
                x, y = (5 + dx * t + i) % 30, (5 + dy * t + i) % 30
                img[y : y + 10, x : x + 10] = (200, 60 + 30 * i, 60)
                frames.append(img)
            write_video(root / act / f"{act}_{i}.mp4", frames)
    (root / "right" / "broken.mp4").write_bytes(b"\x00" * 100)
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("simm") / "m.pt", ["a", "b", "c"])


def test_features_npz(videos, model, tmp_path, capsys):
    out = tmp_path / "f.npz"
    args = ["features", "--model", str(model), "--data", str(videos), "--layer", "all"]
    assert main([*args, "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"videos", "dim", "file"} <= result.keys() and result["videos"] == 8
    assert [f["path"].endswith("broken.mp4") for f in result["failed"]] == [True]
    data = np.load(out)
    assert set(data.files) == {"videos", "classes", "res5b", "pool5", "prob"}
    # width 0.25: 128 channels; crop 32 -> res5b map 128 x 1 x 2 x 2
    assert data["pool5"].shape == (8, 128) and data["res5b"].shape == (8, 512)
    assert data["prob"].shape == (8, 3) and result["dim"] == 512
    for layer in ("res5b", "pool5", "prob"):
        assert np.allclose(np.linalg.norm(data[layer], axis=1), 1.0, atol=1e-5)
    assert data["videos"][0] == "down/down_0.mp4" and list(data["classes"]) == ["a", "b", "c"]


@pytest.mark.slow
def test_int8_features_follow_fp32(videos, model, tmp_path, capsys):
    """--precision int8 takes res5b/pool5 from the quantised graph: close to fp32's."""
    feats = {}
    for precision in ("fp32", "int8"):
        out = tmp_path / f"{precision}.npz"
        args = ["features", "--model", str(model), "--data", str(videos), "--layer", "all"]
        assert main([*args, "--out", str(out), "--precision", precision, "--json"]) == 0
        capsys.readouterr()
        feats[precision] = np.load(out)
    assert list(feats["int8"]["videos"]) == list(feats["fp32"]["videos"])
    for layer in ("res5b", "pool5"):
        cosine = (feats["int8"][layer] * feats["fp32"][layer]).sum(axis=1)  # both unit length
        assert cosine.min() > 0.9, (layer, cosine)


def test_similarity_keys_and_folds(videos, model, tmp_path, capsys):
    names = [f"{a}/{a}_{i}.mp4" for a in ("right", "down") for i in range(4)]
    lines = [f"{a} {b} {int(a.split('/')[0] == b.split('/')[0])}"
             for j, a in enumerate(names) for b in names[j + 1 :]]  # fmt: skip
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(lines) + "\n")
    roc = tmp_path / "roc.png"
    args = ["similarity", "--model", str(model), "--pairs", str(pairs), "--videos", str(videos)]
    assert main([*args, "--folds", "4", "--roc", str(roc), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"auc", "accuracy", "folds", "pairs"} <= result.keys()
    assert (result["folds"], result["pairs"]) == (4, 28)
    assert set(result["layers"]) == {"res5b", "pool5", "prob", "pool5+std"}
    assert result["descriptor"] == "pool5+std"
    assert roc.read_bytes()[:4] == b"\x89PNG"
    # The figures are the protocol applied to what tc3d features writes: per layer the six
    # distances of each pair, pair i in fold i % 4 + 1, the layers side by side for the total
    feats = tmp_path / "f.npz"
    args = ["features", "--model", str(model), "--data", str(videos), "--layer", "all"]
    assert main([*args, "--out", str(feats), "--json"]) == 0
    capsys.readouterr()
    data = np.load(feats)
    row = {v: i for i, v in enumerate(data["videos"])}
    pairs_read = [line.split() for line in lines]
    same = np.array([int(x[2]) for x in pairs_read])
    folds = np.arange(len(lines)) % 4 + 1
    blocks = []
    for layer in ("res5b", "pool5", "prob"):
        f = data[layer]
        blocks.append(np.stack([pair_vector(f[row[a]], f[row[b]]) for a, b, _ in pairs_read]))
        want = cross_validate(blocks[-1], same, folds)
        assert result["layers"][layer]["auc"] == pytest.approx(want["auc"], abs=1e-6), layer
        assert result["layers"][layer]["accuracy"] == pytest.approx(want["accuracy"], abs=1e-6)
    want = cross_validate(np.concatenate(blocks, axis=1), same, folds)
    assert result["combined"]["auc"] == pytest.approx(want["auc"], abs=1e-6)
    assert result["combined"]["accuracy"] == pytest.approx(want["accuracy"], abs=1e-6)
    # the headline: pool5+std, as tc3d features writes it
    assert main([*args[:-2], "--layer", "pool5+std", "--out", str(feats), "--json"]) == 0
    capsys.readouterr()
    f = np.load(feats)["pool5+std"]
    v = np.stack([pair_vector(f[row[a]], f[row[b]]) for a, b, _ in pairs_read])
    want = cross_validate(v, same, folds)
    assert result["auc"] == pytest.approx(want["auc"], abs=1e-6)
    assert result["layers"]["pool5+std"]["auc"] == result["auc"]


def test_pool5_std_is_the_clips_mean_and_spread(videos, model, tmp_path):
    """pool5+std = [pool5's mean over the clips, their standard deviation], L2-normalised:
    read here clip by clip from the model itself. A one-clip video has no spread."""
    import tc3d
    from tc3d.infer.features import clip_features
    from tc3d.video.clips import load_clips

    m = tc3d.load_model(model)
    long = tmp_path / "long.mp4"
    rng = np.random.default_rng(3)
    write_video(long, list(rng.integers(0, 255, (60, 40, 40, 3), dtype=np.uint8)))
    spec = replace(m.loaded.clip, protocol="allclips", crops=1)
    engine = m.engine()
    short = tmp_path / "short.mp4"
    write_video(short, list(rng.integers(0, 255, (4, 40, 40, 3), dtype=np.uint8)))
    paths = [long, short]
    got = m.feature_set(paths, ("pool5", "pool5+std"))
    for i, path in enumerate(paths):
        clips, _ = load_clips(path, None, spec, None)
        pool5 = clip_features(engine, clips[0])["pool5"]
        want = np.concatenate([pool5.mean(0), pool5.std(0)])
        np.testing.assert_allclose(got.layers["pool5+std"][i], want / np.linalg.norm(want),
                                   atol=1e-5)  # fmt: skip
        assert (len(pool5) > 1) == (i == 0)  # 60 frames: several clips; 4: one
    mean_only = got.layers["pool5+std"][1]
    assert np.allclose(mean_only[128:], 0) and np.allclose(mean_only[:128], got.layers["pool5"][1])


def test_read_pairs(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("a.avi b.avi 1 2\nc/d.avi e.avi 0 1\n")
    assert [(p.a, p.b, p.same, p.fold) for p in read_pairs(f, folds=10)] == [
        ("a.avi", "b.avi", 1, 2), ("c/d.avi", "e.avi", 0, 1)]  # fmt: skip
    f.write_text("a b 1\nc d 0\ne f 1\n")
    assert [p.fold for p in read_pairs(f, folds=2)] == [1, 2, 1]
    for bad in ("a b 2", "a b", "a b 1 x", "a b 1 1\nc d 0"):
        f.write_text(bad + "\n")
        with pytest.raises(SimilarityError):
            read_pairs(f)


def test_pair_vector_and_svm_separate_an_easy_case():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 16))
    feats, same, folds = [], [], []
    for i in range(120):
        a, b = rng.integers(6, size=2) if i % 2 else (rng.integers(6),) * 2
        x = centres[a] + 0.3 * rng.normal(size=16)
        y = centres[b] + 0.3 * rng.normal(size=16)
        feats.append(pair_vector(x / np.linalg.norm(x), y / np.linalg.norm(y)))
        same.append(int(a == b))
        folds.append(i % 10 + 1)
    v = pair_vector(np.array([1.0, 0]), np.array([1.0, 0]))
    assert v[0] == pytest.approx(1) and v[1] == v[2] == 0
    r = cross_validate(np.array(feats), np.array(same), np.array(folds))
    assert r["auc"] > 95 and r["accuracy"] > 85


def test_synthetic_pairs_are_unseen_classes(tmp_path):
    s = make_pairs_dataset(tmp_path / "pairs", per_class=3, seed=0, workers=1,
                           pairs_per_fold=4, frames=(20, 24))  # fmt: skip
    assert not set(ACTIONS) & set(CLASS_TIERS)  # none of the 16 benchmark classes
    assert s.videos == 3 * len(ACTIONS) == len(list((tmp_path / "pairs").rglob("*.avi")))
    pairs = read_pairs(s.pairs_file)
    assert len(pairs) == 40 == s.pairs and {p.fold for p in pairs} == set(range(1, 11))
    assert sum(p.same for p in pairs) == 20
    for p in pairs:
        assert (p.a.split("/")[0] == p.b.split("/")[0]) == bool(p.same)
        assert (tmp_path / "pairs" / p.a).is_file()
    assert len({tuple(sorted((p.a, p.b))) for p in pairs}) == 40
