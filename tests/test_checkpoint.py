"""Checkpoints: atomic writes, safe loading with clear errors, pretrained initialisation."""

from __future__ import annotations

import pytest
import torch

from tc3d.io import atomic_save
from tc3d.modelfile.checkpoint import CheckpointError, load_checkpoint, load_model_file, save_model
from tc3d.models.res3d import res3d18
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.training.init_weights import init_backbones
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig


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


def test_save_model_writes_the_schema_and_load_model_rebuilds_it(tmp_path):
    torch.manual_seed(0)
    model = TC3D(ModelConfig(num_classes=3, width=0.25, segments=2, fusion="weighted"))
    spec = ClipSpec(SamplingConfig(2, 4, "uniform", 3), crop=48, flip=False)
    save_model(tmp_path / "m.pt", model, ["a", "b", "c"], spec, iteration=7)
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert set(ckpt) == {"model", "model_config", "clip", "classes", "iteration"}
    loaded = load_model_file(tmp_path / "m.pt")
    assert loaded.classes == ["a", "b", "c"] and loaded.clip == spec
    assert loaded.model.cfg == model.cfg and not loaded.model.training
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v), k
    with pytest.raises(ValueError, match="model_config"):
        save_model(tmp_path / "x.pt", model, ["a"], spec, model_config={})


def test_loading_skips_random_init_only_in_its_own_thread(tmp_path):
    """Another thread building a model meanwhile still gets its random initialisation."""
    import threading

    from tc3d.modelfile.checkpoint import _WithoutRandomInit

    torch.manual_seed(1)
    expected = res3d18(num_classes=3, width=0.25).stem[0].weight
    built = {}

    def build():
        torch.manual_seed(1)
        built["w"] = res3d18(num_classes=3, width=0.25).stem[0].weight

    with _WithoutRandomInit():
        thread = threading.Thread(target=build)
        thread.start()
        thread.join()
        zeros = torch.zeros(3, 4)
        torch.nn.init.normal_(zeros)  # a no-op here
    assert torch.equal(built["w"], expected)
    assert torch.equal(zeros, torch.zeros(3, 4))
    torch.nn.init.normal_(zeros)
    assert zeros.abs().sum() > 0  # and normal again outside
