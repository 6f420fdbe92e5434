"""tc3d.training.init_weights: ``--init`` from a checkpoint or a torchvision-style r3d_18
state dict; a classifier for another class count starts fresh; another width is an error."""

from __future__ import annotations

import pytest
import torch

from tc3d.errors import TC3DError
from tc3d.modelfile.checkpoint import CheckpointError, save_model
from tc3d.models.res3d import res3d18
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.training.init_weights import backbone_state_from_file, init_backbones, model_geometry
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig


def _model(classes: int, width: float = 0.25, seed: int = 0, shared: bool = True) -> TC3D:
    torch.manual_seed(seed)
    return TC3D(ModelConfig(classes, width=width, segments=2, shared=shared, dropout=0))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A saved 3-class width-0.25 checkpoint and the model it holds."""
    model = _model(3, seed=1)
    path = tmp_path_factory.mktemp("init") / "src.pt"
    save_model(path, model, ["a", "b", "c"], ClipSpec(SamplingConfig(2, 4, "consecutive", 2), 40))
    return path, model


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a, b)


@pytest.mark.parametrize("shared", [True, False])
def test_every_backbone_gets_the_checkpoint_weights(source, shared):
    path, src = source
    model = _model(3, seed=2, shared=shared)
    assert init_backbones(model, path) == []
    want = src.backbone.state_dict()
    assert len(model.backbones) == (1 if shared else 2)
    for backbone in model.backbones:
        got = backbone.state_dict()
        assert got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)


def test_another_class_count_keeps_the_body_and_reinitialises_fc(source):
    path, src = source
    model = _model(5, seed=2)
    fresh_fc = {k: v.clone() for k, v in model.backbone.fc.state_dict().items()}
    assert init_backbones(model, path) == ["fc.bias", "fc.weight"]
    got, want = model.backbone.state_dict(), src.backbone.state_dict()
    assert all(_same(got[k], want[k]) for k in want if not k.startswith("fc."))
    assert all(_same(model.backbone.fc.state_dict()[k], v) for k, v in fresh_fc.items())


@pytest.mark.parametrize("wrap", ["bare", "state_dict", "module"])
def test_a_torchvision_style_r3d_18_state_dict(tmp_path, wrap):
    torch.manual_seed(4)
    r3d = res3d18(400, width=0.25)  # Kinetics-400 head, r3d_18 key names
    state = r3d.state_dict()
    assert "stem.0.weight" in state and "layer4.1.conv2.0.weight" in state
    stored = {
        "bare": state,
        "state_dict": {"state_dict": state},
        "module": {f"module.{k}": v for k, v in state.items()},
    }[wrap]
    path = tmp_path / "r3d_18.pth"
    torch.save(stored, path)
    assert model_geometry(path) == (None, None)  # a bare state dict does not say
    assert backbone_state_from_file(path).keys() == state.keys()
    model = _model(3)
    assert init_backbones(model, path) == ["fc.bias", "fc.weight"]
    got = model.backbone.state_dict()
    assert all(_same(got[k], v) for k, v in state.items() if not k.startswith("fc."))


def test_a_checkpoint_says_its_geometry(source):
    path, _ = source
    assert model_geometry(path) == (0.25, 40)


def test_another_width_raises_a_checkpoint_error(source):
    path, _ = source
    with pytest.raises(CheckpointError, match="--width") as info:
        init_backbones(_model(3, width=0.5), path)
    assert isinstance(info.value, TC3DError) and "\n" not in str(info.value)


def test_a_file_without_r3d_18_weights_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="no Res3D-18 weights"):
        init_backbones(_model(3), path)
