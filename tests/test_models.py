"""Res3D-18 layout (torchvision r3d_18 names), the four fusions, T-C3D, counts."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tc3d.models.complexity import count_flops, count_parameters
from tc3d.models.fusion import FUSIONS, make_fusion
from tc3d.models.res3d import res3d18
from tc3d.models.tc3d import TC3D, ModelConfig

TORCHVISION_SOURCE = Path(__file__).parent / "data" / "torchvision" / "video_resnet.py.txt"


def torchvision_source_namespace() -> dict:
    """Execute torchvision 0.28.0's ``models/video/resnet.py`` (tests/data/torchvision) with
    plain ``torch.nn``: its relative imports, which would pull in the rest of torchvision, are
    dropped and the few names they provide are replaced by inert stand-ins. Everything that
    builds modules (``r3d_18``, ``VideoResNet``, ``BasicBlock``, ``BasicStem``,
    ``Conv3DSimple``) runs as torchvision wrote it."""
    tree = ast.parse(TORCHVISION_SOURCE.read_text())
    tree.body = [n for n in tree.body if not (isinstance(n, ast.ImportFrom) and n.level > 0)]

    class WeightsEnum:
        @classmethod
        def verify(cls, weights):
            return weights

    def passthrough(*args, **kwargs):
        return lambda f: f

    namespace = {
        "__name__": "torchvision_video_resnet",
        "VideoClassification": lambda **kwargs: None,
        "_log_api_usage_once": lambda module: None,
        "register_model": passthrough,
        "handle_legacy_interface": passthrough,
        "Weights": SimpleNamespace,
        "WeightsEnum": WeightsEnum,
        "_KINETICS400_CATEGORIES": [],
        "_ovewrite_named_param": lambda kwargs, name, value: None,
        "_ModelURLs": dict,
    }
    exec(compile(tree, str(TORCHVISION_SOURCE), "exec"), namespace)
    return namespace


def test_full_width_matches_torchvision_r3d_18_key_by_key():
    """Every state-dict entry of torchvision's r3d_18, built by torchvision's own code: same
    names in the same order, same shapes, and the same function once the weights are copied
    across (strides, paddings and the residual wiring agree, not only the shapes)."""
    tv = torchvision_source_namespace()
    reference = tv["r3d_18"](num_classes=400).eval()
    want = [(k, tuple(v.shape)) for k, v in reference.state_dict().items()]
    model = res3d18(num_classes=400, width=1.0).eval()
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert got == want
    assert len(want) == 122 and want[0] == ("stem.0.weight", (64, 3, 3, 7, 7))
    num_params = tv["R3D_18_Weights"].KINETICS400_V1.meta["num_params"]
    assert count_parameters(model) == count_parameters(reference) == num_params == 33_371_472
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)


def test_full_width_flops_match_the_design():
    model = TC3D(ModelConfig(num_classes=101))
    gmacs_per_clip = count_flops(model, clips=1) / 2 / 1e9
    assert gmacs_per_clip == pytest.approx(20.4, abs=0.1)


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("shared", [True, False])
def test_tc3d_forward_backward(fusion, shared):
    torch.manual_seed(0)
    model = TC3D(
        ModelConfig(
            num_classes=5, width=0.25, segments=3, fusion=fusion, shared=shared, dropout=0.5
        )
    )
    video = torch.randn(2, 3, 3, 4, 32, 32)  # (N, S, C, T, H, W)
    out = model(video)
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all()
        for p in model.parameters()
        if p.requires_grad
    )
    assert len(model.backbones) == (1 if shared else 3)


def test_fusions_start_as_average_and_only_weighted_sees_order():
    torch.manual_seed(0)
    scores = torch.randn(4, 3, 6)
    reversed_scores = scores.flip(1)
    avg = make_fusion("avg", 3, 6)
    assert torch.allclose(avg(scores), scores.mean(1))
    assert torch.allclose(make_fusion("max", 3, 6)(scores), scores.amax(1))
    for name in ("weighted", "attention"):
        assert torch.allclose(make_fusion(name, 3, 6)(scores), scores.mean(1), atol=1e-6)
    weighted = make_fusion("weighted", 3, 6)
    attention = make_fusion("attention", 3, 6)
    with torch.no_grad():
        weighted.weight.copy_(torch.tensor([[1.0], [0.0], [-1.0]]).expand(3, 6))
        attention.query.normal_()
    for name, fusion in [("avg", avg), ("max", make_fusion("max", 3, 6)), ("attention", attention)]:
        assert torch.allclose(fusion(scores), fusion(reversed_scores), atol=1e-6), name
    assert not torch.allclose(weighted(scores), weighted(reversed_scores))


def test_width_scales_channels():
    model = res3d18(num_classes=10, width=0.25)
    assert model.fc.in_features == 128 and model.stem[0].out_channels == 16
    assert count_parameters(model) < count_parameters(res3d18(num_classes=10)) / 10


def test_features_for_the_paper_layers():
    model = res3d18(num_classes=7, width=0.25).eval()
    x = torch.randn(2, 3, 8, 64, 64)
    assert model.res5b(x).shape == (2, 128, 1, 4, 4)
    assert model.pool5(x).shape == (2, 128)
    assert model(x).shape == (2, 7)


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="fusion must be one of"):
        make_fusion("median", 3, 4)
    with pytest.raises(ValueError, match="arch must be one of"):
        TC3D(ModelConfig(num_classes=3, arch="c3d"))


@pytest.mark.parametrize("fusion", FUSIONS)
def test_one_fusion_path_for_any_number_of_clips(fusion):
    """Training (S clips), allclips (more), a stream's first decisions and anomaly's sliding
    clips (fewer) all go through ``TC3D.fuse``: the same Q on S time-ordered inputs."""
    torch.manual_seed(0)
    model = TC3D(ModelConfig(num_classes=4, width=0.25, segments=3, fusion=fusion, dropout=0))
    model.eval()
    with torch.no_grad():
        for p in model.fusion.parameters():
            p.normal_()  # away from the average-pooling start, so groupings would show
        video = torch.randn(2, 3, 3, 4, 32, 32)  # (N, S, C, T, H, W)
        clips = model.backbone(video.flatten(0, 1)).view(2, 3, -1)
        assert torch.allclose(model(video), model.fusion(clips), atol=1e-6)
        six = torch.randn(2, 6, 4)  # allclips: two clips per segment, averaged in time order
        assert torch.allclose(model.fuse(six), model.fusion(six.view(2, 3, 2, 4).mean(2)))
        if fusion == "weighted":  # order matters to it: a reversed video is another input
            assert not torch.allclose(model.fuse(six), model.fuse(six.flip(1)))
        one = torch.randn(5, 1, 4)  # a lone clip stands for every segment
        assert torch.equal(model.fuse(one), model.fusion(one.expand(5, 3, 4)))
        two = torch.randn(1, 2, 4)  # fewer clips than segments: the nearest one each
        assert torch.equal(model.fuse(two), model.fusion(two[:, [0, 0, 1]]))
        crops = torch.randn(10, 3, 4)  # test time: softmax per crop, then the crops averaged
        want = torch.softmax(model.fusion(crops), dim=-1).mean(0)
        assert torch.allclose(model.video_probs(crops), want)
