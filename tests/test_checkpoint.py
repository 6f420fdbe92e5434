"""Checkpoints: atomic writes, safe loading with clear errors, pretrained initialisation."""

from __future__ import annotations

import pytest
import torch

from tc3d.checkpoint import CheckpointError, atomic_save, init_backbones, load_checkpoint
from tc3d.models.res3d import res3d18
from tc3d.models.tc3d import TC3D, ModelConfig


def test_atomic_save_leaves_only_the_target(tmp_path):
    atomic_save({"x": torch.arange(3)}, tmp_path / "a.pt")
    atomic_save({"x": torch.arange(4)}, tmp_path / "a.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]
    assert torch.equal(load_checkpoint(tmp_path / "a.pt")["x"], torch.arange(4))


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: p.write_bytes(b""), "not a tc3d model file"),
        (lambda p: p.write_text("hello"), "not a tc3d model file"),
        (lambda p: None, "not found"),
    ],
)
def test_bad_model_files_give_one_line(tmp_path, make, message):
    path = tmp_path / "m.pt"
    make(path)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_truncated_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "m.pt"
    atomic_save({"w": torch.randn(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"cfg": ModelConfig(num_classes=3)}, path)  # a class instance, not plain data
    with pytest.raises(CheckpointError, match="not a readable tc3d checkpoint"):
        load_checkpoint(path)


def test_init_from_a_torchvision_style_state_dict(tmp_path):
    source = res3d18(num_classes=400, width=0.25)
    torch.save(source.state_dict(), tmp_path / "r3d_18.pth")
    model = TC3D(ModelConfig(num_classes=5, width=0.25, shared=False, segments=2))
    fresh = init_backbones(model, tmp_path / "r3d_18.pth")
    assert fresh == ["fc.bias", "fc.weight"]
    for backbone in model.backbones:
        assert torch.equal(backbone.layer3[0].conv1[0].weight, source.layer3[0].conv1[0].weight)
        assert backbone.fc.weight.shape == (5, 128)


def test_init_with_the_wrong_width_is_an_error(tmp_path):
    torch.save(res3d18(num_classes=5, width=0.5).state_dict(), tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="check --width"):
        init_backbones(TC3D(ModelConfig(num_classes=5, width=0.25)), tmp_path / "w.pth")
