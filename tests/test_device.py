"""tc3d.device: the one place that knows about hardware (device names, layout, precision,
random generators)."""

from __future__ import annotations

import pytest
import torch

from tc3d.device import (
    DeviceError,
    autocast,
    memory_format,
    prepare_model,
    resolve_device,
    rng_state,
    set_rng_state,
    to_device,
)
from tc3d.errors import TC3DError

CUDA = torch.cuda.is_available()


def test_resolve_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu")
    assert resolve_device().type == resolve_device("auto").type


@pytest.mark.parametrize("name", ["gpu", "CPU", "cuda:0", "", "mps"])
def test_bad_device_names_raise_a_one_line_device_error(name):
    with pytest.raises(DeviceError) as info:
        resolve_device(name)
    assert isinstance(info.value, TC3DError) and "\n" not in str(info.value)
    assert repr(name) in str(info.value)


@pytest.mark.skipif(CUDA, reason="this machine has a CUDA device")
def test_cuda_without_a_gpu_is_a_device_error():
    with pytest.raises(DeviceError, match="no CUDA device"):
        resolve_device("cuda")


def test_memory_format_is_channels_last_on_cpu_only():
    assert memory_format(torch.device("cpu")) == torch.channels_last_3d
    assert memory_format(torch.device("cuda", 0)) == torch.contiguous_format


def test_models_and_clip_batches_take_the_device_layout():
    cpu = torch.device("cpu")
    conv = prepare_model(torch.nn.Conv3d(3, 8, 3), cpu)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert not torch.nn.Conv3d(3, 8, 3).weight.is_contiguous(memory_format=torch.channels_last_3d)
    clips = to_device(torch.randn(2, 3, 4, 8, 8), cpu)
    assert clips.is_contiguous(memory_format=torch.channels_last_3d)
    flat = torch.randn(2, 3, 8, 8)
    assert to_device(flat, cpu).is_contiguous()  # only 5-d clip batches change layout


def test_autocast_is_none_for_fp32_and_bf16_when_asked():
    cpu = torch.device("cpu")
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast(cpu, "fp32"):
        assert (a @ b).dtype == torch.float32
    with autocast(cpu, "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with autocast(cpu):
        assert (a @ b).dtype == torch.float32
    with pytest.raises(DeviceError, match="precision"):
        autocast(cpu, "fp16")


def test_rng_state_round_trip_gives_the_same_draws():
    torch.manual_seed(3)
    state = rng_state()
    first = (torch.rand(5), torch.nn.functional.dropout(torch.ones(100), 0.5))
    torch.rand(7)  # move on
    set_rng_state(state)
    again = (torch.rand(5), torch.nn.functional.dropout(torch.ones(100), 0.5))
    for x, y in zip(first, again, strict=True):
        assert torch.equal(x, y)
    # a bare tensor (checkpoints written before CUDA's generators were kept) is the CPU's
    set_rng_state(state["cpu"])
    assert torch.equal(torch.rand(5), first[0])
