"""The teach folder (tc3d.apps.teach.TeachSet) and the live path's frame decoder, without a
server: names that are safe as folders and URLs, the layout, the run status, bad frames."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import write_video
from PIL import Image

from tc3d.apps.teach import TeachError, TeachSet, clean_label, teach, valid_name
from tc3d.serve.live import BadFrame, decode_jpeg


def test_labels_and_names_are_safe_folder_and_url_names():
    assert clean_label("  wave ") == "wave"
    assert clean_label("Arm wrestling-2") == "Arm wrestling-2"
    assert clean_label("../../etc") == "etc"
    assert clean_label("größe_1") == "größe_1"
    for bad in ("", "  ", "../..", "/"):
        with pytest.raises(TeachError):
            clean_label(bad)
    assert valid_name("taught-20261207-064111-7243")
    assert not any(map(valid_name, ["", "../x", "a/b", ".hidden", "x..y", "a b"]))


def test_teach_set_layout_counts_and_status(tmp_path):
    ts = TeachSet(tmp_path / "t")
    assert ts.counts() == {}
    clip = write_video(tmp_path / "c.mp4", [np.zeros((32, 32, 3), np.uint8)] * 4)
    a = ts.add("wave", clip)
    ts.add("wave", clip, ".weird")  # not a video suffix: kept as .webm
    b = ts.add("jump", clip)
    assert a.parent == tmp_path / "t" / "clips" / "wave" and a.suffix == ".mp4"
    assert b.read_bytes() == clip.read_bytes()
    assert ts.counts() == {"jump": 1, "wave": 2}
    assert not list((tmp_path / "t").rglob("*.part"))
    assert ts.status("nothing") is None
    ts.write_status("r1", "running", 42.123)
    assert ts.status("r1") == {"state": "running", "progress": 42.1, "model": "r1", "error": None}
    TeachSet(tmp_path / "one").add("wave", clip)
    with pytest.raises(TeachError, match="at least two classes"):
        teach(tmp_path / "one")
    with pytest.raises(TeachError, match="model name"):
        teach(tmp_path / "t", name="../escape")


def test_frame_decoder_refuses_what_is_not_an_image():
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(buf, "JPEG")
    rgb = decode_jpeg(buf.getvalue())
    assert rgb.shape == (48, 64, 3) and rgb[..., 0].mean() > 150
    for data in (b"", b"garbage", buf.getvalue()[:40]):
        with pytest.raises(BadFrame):
            decode_jpeg(data)
    huge = io.BytesIO()
    Image.new("L", (5000, 4000)).save(huge, "PNG")  # decompresses to 20 MP: refused unread
    with pytest.raises(BadFrame, match="4096x4096"):
        decode_jpeg(huge.getvalue())
