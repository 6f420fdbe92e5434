"""tc3d cam: PNG per frame of the S segment clips, an animated GIF, the predicted label."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import random_checkpoint, write_video
from PIL import Image

from tc3d.cli import main


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_cam_outputs(tmp_path, capsys, precision):
    model = random_checkpoint(tmp_path / "m.pt", ["left", "right"], segments=2, frames=4)
    frames = []
    for t in range(30):
        img = np.full((48, 64, 3), 30, np.uint8)
        img[16:32, 2 * t : 2 * t + 12] = (240, 200, 40)
        frames.append(img)
    video = write_video(tmp_path / "v.mp4", frames)
    out = tmp_path / "cam"
    assert main(["cam", str(video), "--model", str(model), "--out", str(out), "--size", "96",
                 "--precision", precision, "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["label"] in ("left", "right") and 0.5 <= result["prob"] <= 1
    pngs = sorted(out.glob("cam_*.png"))
    assert len(pngs) == 2 * 4 and {str(p) for p in pngs} | {str(out / "cam.gif")} == set(
        result["files"]
    )
    img = Image.open(pngs[0])
    assert img.size == (96, 96) and img.mode == "RGB"
    gif = Image.open(out / "cam.gif")
    assert gif.n_frames == 8
    # Heat is blended in: the output differs from a plain resized crop, and carries the label
    assert np.asarray(img).std() > 5
    assert len(result["heat_centre"]) == 8 and not list(out.glob(".*"))
