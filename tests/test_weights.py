"""The shipped pretrained backbone ``motion``: inside the package, listed, valid, loaded by
name everywhere a model is taken, the default ``--init``, and a feature extractor that sees
motion rather than look with no training at all."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_cli, write_video

from tc3d.modelfile.checkpoint import load_model_file
from tc3d.modelfile.shipped import SHIPPED, resolve, shipped_path
from tc3d.synthetic.procedural import class_names
from tc3d.training.init_weights import backbone_state_from_file

MOTION = shipped_path("motion")


@pytest.mark.slow
def test_motion_ships_small_inside_the_package_and_is_listed():
    assert MOTION is not None and MOTION.parent.name == "weights"
    assert MOTION.stat().st_size <= 3 * 2**20
    listed = run_cli("models", "--json")["models"]
    row = next(r for r in listed if r["name"] == "motion")
    assert row["bytes"] == MOTION.stat().st_size and row["width"] == 0.25
    assert row["classes"] == len(class_names()) == 49
    inspected = run_cli("inspect", "motion", "--json")
    assert inspected["valid"] is True and inspected["file_bytes"] == MOTION.stat().st_size


@pytest.mark.slow
def test_load_by_name_and_a_missing_name_is_a_usage_error(tmp_path):
    loaded = load_model_file("motion")
    assert loaded.classes == class_names() and loaded.model.cfg.width == 0.25
    assert loaded.clip.crop == 96 and loaded.clip.sampling.frames == 8
    assert resolve("motion") == MOTION and set(SHIPPED) == {"motion"}
    video = write_video(tmp_path / "x.mp4", _scene("right", (230, 40, 40), n=12))
    missing = run_cli("predict", str(video), "--model", "nonesuch", expect=2)
    assert "nonesuch" in missing["stderr"] and "motion" in missing["stderr"]


def _scene(kind: str, colour, n: int = 40) -> list[np.ndarray]:
    """A 160x120 clip: a patch that moves right, circles or stands still on dark noise."""
    rng = np.random.default_rng(abs(hash((kind, tuple(colour)))) % 2**32)
    frames = []
    for i in range(n):
        img = rng.integers(10, 40, (120, 160, 3)).astype(np.uint8)
        if kind == "right":
            x, y = 10 + 3 * i, 50
        elif kind == "circle":
            x, y = 70 + 30 * np.cos(i / 3), 50 + 30 * np.sin(i / 3)
        else:
            x, y = 70, 50
        img[int(y) : int(y) + 22, int(x) : int(x) + 22] = colour
        frames.append(img)
    return frames


@pytest.mark.slow
def test_motion_features_group_by_motion_not_look(tmp_path):
    """With no training, pool5 features of the same motion in other colours are closer than
    those of the same colours doing something else."""
    colours = {"red": (230, 40, 40), "blue": (40, 60, 230), "yellow": (230, 220, 40)}
    names = []
    for kind in ("right", "circle", "still"):
        for cname, colour in colours.items():
            write_video(tmp_path / "v" / f"{kind}_{cname}.mp4", _scene(kind, colour))
            names.append(f"{kind}_{cname}")
    out = run_cli(
        "features", "--model", "motion", "--data", str(tmp_path / "v"), "--layer", "pool5",
        "--out", str(tmp_path / "f.npz"), "--json",
    )  # fmt: skip
    assert out["videos"] == 9 and out["dim"] == 128
    data = np.load(tmp_path / "f.npz")
    feats = {
        v.split("/")[-1].removesuffix(".mp4"): f
        for v, f in zip(data["videos"], data["pool5"], strict=True)
    }
    same_motion, same_look = [], []  # other colour, same motion / same colour, other motion
    for a in names:
        for b in names:
            (kind_a, colour_a), (kind_b, colour_b) = a.split("_"), b.split("_")
            sim = float(feats[a] @ feats[b])
            if kind_a == kind_b and colour_a < colour_b:
                same_motion.append(sim)
            elif colour_a == colour_b and kind_a < kind_b:
                same_look.append(sim)
    assert np.mean(same_motion) > np.mean(same_look)


@pytest.mark.slow
def test_train_fine_tunes_motion_by_default(tiny_dataset, tmp_path):
    """The default recipe: motion's stem stays as shipped (weights and batch-norm
    statistics), layer1-4 adapt, and the new classifier and fusion learn 40x faster."""
    out = tmp_path / "ft"
    run_cli(
        "train", "--data", str(tiny_dataset), "--out", str(out), "--iters", "2",
        "--frames", "4", "--batch-size", "4", "--workers", "0", "--json",
    )  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["init"] == "motion" and config["width"] == 0.25 and config["crop"] == 96
    assert config["freeze"] == 1 and config["head_lr_scale"] == 40
    trained = load_model_file(out / "last.pt").model.backbone.state_dict()
    shipped = backbone_state_from_file("motion")
    for key in ("stem.0.weight", "stem.1.weight", "stem.1.running_mean", "stem.1.running_var"):
        assert torch.equal(trained[key], shipped[key]), key
    for key in ("layer1.1.conv2.0.weight", "layer1.1.conv2.1.running_var",
                "layer2.0.conv1.0.weight", "layer2.0.conv1.1.running_mean",
                "layer4.1.conv2.0.weight", "layer4.1.conv2.1.running_mean"):  # fmt: skip
        assert not torch.equal(trained[key], shipped[key]), key
    assert trained["fc.weight"].shape[0] == 3  # a new classifier for the 3 classes
    groups = torch.load(out / "last.pt", weights_only=True)["optimizer"]["param_groups"]
    assert [g["lr_scale"] for g in groups] == [1.0, 40.0]
    assert groups[1]["lr"] == pytest.approx(40 * groups[0]["lr"])


@pytest.mark.slow
@pytest.mark.parametrize("init", [None, "scratch"])
def test_another_width_without_init_trains_from_scratch_and_says_so(tiny_dataset, tmp_path, init):
    flags = ["--init", init] if init else []
    result = run_cli(
        "train", "--data", str(tiny_dataset), "--out", str(tmp_path / "w"), "--width", "0.125",
        "--iters", "1", "--frames", "4", "--crop", "32", "--batch-size", "4", "--workers", "0",
        *flags, "--json",
    )  # fmt: skip
    config = json.loads((tmp_path / "w" / "config.json").read_text())
    assert config["init"] == "scratch" and config["width"] == 0.125
    assert config["freeze"] == 0 and config["head_lr_scale"] == 1  # nothing to keep
    assert ("training from scratch" in result["stderr"]) == (init is None)
