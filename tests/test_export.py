"""``tc3d export`` in every format on a tiny real checkpoint: the files are loaded back with their
own runtime and compared with PyTorch, the metadata is where the docs say, and a failed write
leaves no file behind."""

from __future__ import annotations

import errno
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tc3d.cli import main
from tc3d.modelfile.checkpoint import load_model_file, save_model
from tc3d.models.tc3d import TC3D, ModelConfig
from tc3d.video.clips import ClipSpec
from tc3d.video.sampling import SamplingConfig

CLASSES = ["A", "B", "C", "D"]
SPEC = ClipSpec(SamplingConfig(segments=3, frames=4, offset=2), crop=32)
SUFFIX = {"onnx": ".onnx", "pt2": ".pt2", "openvino": ".xml", "torchscript": ".pt"}
FORMATS = [pytest.param("onnx", marks=pytest.mark.slow), "pt2", "openvino", "torchscript"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A seeded width-0.25 checkpoint (S=3, k=4, crop 32, 4 classes)."""
    path = tmp_path_factory.mktemp("export") / "tiny.pt"
    torch.manual_seed(0)
    save_model(path, TC3D(ModelConfig(len(CLASSES), width=0.25, segments=3)), CLASSES, SPEC)
    return path


def _export(checkpoint: Path, fmt: str, out: Path, capsys) -> tuple[int, dict | None, list[str]]:
    """Exit code, the JSON result (None on failure) and the stderr lines of one export."""
    code = main(["export", "--model", str(checkpoint), "--format", fmt, "--out", str(out),
                 "--device", "cpu", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1]) if code == 0 else None
    return code, result, captured.err.strip().splitlines()


def _load(fmt: str, path: Path):
    """The exported model run by its own runtime, and the metadata read from where it is kept."""
    if fmt == "onnx":
        import onnx
        import onnxruntime as ort

        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}["tc3d"]
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return (lambda x: session.run(None, {"video": x.numpy()})[0]), json.loads(meta)
    if fmt == "openvino":
        import openvino as ov

        model = ov.Core().read_model(str(path))
        compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        meta = model.get_rt_info("tc3d").astype(str)
        return (lambda x: compiled(x.numpy())[0]), json.loads(meta)
    extra = {"tc3d.json": ""}
    if fmt == "pt2":
        module = torch.export.load(str(path), extra_files=extra).module()
    else:
        with warnings.catch_warnings():  # torch.jit.load is deprecated: tc3d itself says so
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)  # how torch 2.14 says it
            module = torch.jit.load(str(path), _extra_files=extra)
    return (lambda x: module(x).detach().numpy()), json.loads(extra["tc3d.json"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_loads_back_and_matches_pytorch(checkpoint, tmp_path, capsys, caplog, fmt):
    out = tmp_path / f"model{SUFFIX[fmt]}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, r, err = _export(checkpoint, fmt, out, capsys)
    assert code == 0, err
    noise = [f"{w.category.__name__}: {w.message}" for w in caught
             if issubclass(w.category, DeprecationWarning | FutureWarning)]  # fmt: skip
    assert not noise, noise
    assert r["file"] == str(out) and r["format"] == fmt and out.is_file()
    assert r["max_abs_diff"] <= 1e-4 and r["max_abs_diff_batch"] <= 1e-4
    written = [out.name, "model.bin"] if fmt == "openvino" else [out.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(written)  # no temporary left
    if fmt == "openvino":
        assert r["weights_file"] == str(out.with_suffix(".bin"))
        assert r["file_bytes"] == out.stat().st_size + out.with_suffix(".bin").stat().st_size
    # the CLI prints the library's warnings on stderr, one line each ("tc3d: WARNING: ...")
    note = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert not [line for line in err if "eprecat" in line], err
    if fmt == "torchscript":  # said once, in tc3d's words, and pt2 named as the way forward
        assert len(note) == 1 and "TorchScript" in note[0] and "pt2" in note[0], note
        assert "\n" not in note[0]
    else:
        assert not note, note

    run, meta = _load(fmt, out)
    assert meta["classes"] == CLASSES and meta["crop"] == 32
    assert (meta["segments"], meta["frames"], meta["offset"]) == (3, 4, 2)
    model = load_model_file(checkpoint).model.eval()
    x = torch.randn(3, 3, 3, 4, 32, 32)  # a batch size the export never saw
    with torch.no_grad():
        expected = model(x).numpy()
    got = run(x)
    assert got.shape == (3, len(CLASSES))
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_openvino_missing_is_one_line_that_says_how_to_install(
    checkpoint, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino: ImportError
    code, _, err = _export(checkpoint, "openvino", tmp_path / "m.xml", capsys)
    assert code == 1 and len(err) == 1, err
    assert "OpenVINO" in err[0] and "pip install 'tc3d[int8]'" in err[0]
    assert not any(tmp_path.iterdir())


def test_openvino_out_must_name_the_xml(checkpoint, tmp_path, capsys):
    code, _, err = _export(checkpoint, "openvino", tmp_path / "m.ir", capsys)
    assert code == 1 and len(err) == 1 and ".xml" in err[0], err
    assert not any(tmp_path.iterdir())


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_pt2_write_keeps_the_old_file_and_leaves_no_temp(
    checkpoint, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "model.pt2"
    out.write_bytes(b"the previous export")

    def half_then_full(program, f, **kwargs):
        f.write(b"PK\x03\x04 half an archive")
        _disk_full()

    monkeypatch.setattr(torch.export, "save", half_then_full)
    code, _, err = _export(checkpoint, "pt2", out, capsys)
    assert code == 1 and len(err) == 1, err
    assert "cannot write" in err[0] and "No space left on device" in err[0]
    assert out.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt2"]


def test_a_failed_openvino_write_leaves_neither_file(checkpoint, tmp_path, capsys, monkeypatch):
    import openvino

    def xml_then_full(model, path, **kwargs):
        Path(path).write_text("<net/>")
        Path(path).with_suffix(".bin").write_bytes(b"\x00" * 10)
        _disk_full()

    monkeypatch.setattr(openvino, "save_model", xml_then_full)
    code, _, err = _export(checkpoint, "openvino", tmp_path / "model.xml", capsys)
    assert code == 1 and len(err) == 1 and "No space left on device" in err[0], err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("fmt", ["pt2", "openvino"])
def test_an_unwritable_out_path_is_one_line(checkpoint, tmp_path, capsys, fmt):
    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "afile" / f"model{SUFFIX[fmt]}"
    code, _, err = _export(checkpoint, fmt, out, capsys)
    assert code == 1 and len(err) == 1 and "cannot write" in err[0], err
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]


def test_help_explains_each_format_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--help"])
    assert exit_.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    for fmt in SUFFIX:
        described = [line for line in lines if line.split()[:1] == [fmt]]
        assert len(described) == 1 and len(described[0].split()) > 3, fmt
