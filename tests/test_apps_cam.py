"""tc3d cam: PNG per frame of the S segment clips, an animated GIF, the predicted label, and a
heat map blended onto the frames where the model found its evidence."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from conftest import random_checkpoint, write_video
from PIL import Image

from tc3d.cli import main
from tc3d.video.transforms import centre_crop_box


def _run(capsys, *args: str) -> dict:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_cam_outputs(tmp_path, capsys, monkeypatch, precision):
    monkeypatch.setenv("TC3D_CACHE", str(tmp_path / "cache"))
    model = random_checkpoint(tmp_path / "m.pt", ["left", "right"], segments=2, frames=4)
    frames = []
    for t in range(30):
        img = np.full((48, 64, 3), 30, np.uint8)
        img[16:32, 2 * t : 2 * t + 12] = (240, 200, 40)
        frames.append(img)
    video = write_video(tmp_path / "v.mp4", frames)
    out = tmp_path / "cam"
    result = _run(capsys, "cam", str(video), "--model", str(model), "--out", str(out),
                  "--size", "96", "--precision", precision)  # fmt: skip
    # The label is the video's prediction: what tc3d predict says for it, at the same precision
    predicted = _run(capsys, "predict", str(video), "--model", str(model), "--top", "1",
                     "--precision", precision)["results"][0]["labels"][0]  # fmt: skip
    assert result["label"] == predicted["label"]
    assert result["prob"] == pytest.approx(predicted["prob"], abs=1e-5)
    pngs = sorted(out.glob("cam_*.png"))
    assert len(pngs) == 2 * 4 and {str(p) for p in pngs} | {str(out / "cam.gif")} == set(
        result["files"]
    )
    img = Image.open(pngs[0])
    assert img.size == (96, 96) and img.mode == "RGB"
    gif = Image.open(out / "cam.gif")
    assert gif.n_frames == 8
    assert len(result["heat_centre"]) == 8 and not list(out.glob(".*"))


def _square_circling(centre: tuple[int, int], n: int = 40) -> tuple[list, list]:
    """A 128x96 video: a yellow 16-pixel square circling ``centre`` on still noise (the only
    motion in the frame). Returns the frames and the square's centre in each."""
    background = np.random.default_rng(0).integers(20, 60, (96, 128, 3)).astype(np.uint8)
    frames, centres = [], []
    for t in range(n):
        x = centre[0] - 8 + int(8 * np.sin(t / 2))
        y = centre[1] - 8 + int(6 * np.cos(t / 2))
        img = background.copy()
        img[y : y + 16, x : x + 16] = (240, 200, 40)
        frames.append(img)
        centres.append((x + 8, y + 8))
    return frames, centres


def test_heat_is_blended_where_the_motion_is(tmp_path, capsys):
    """The shipped 'motion' backbone looks at what moves. Each written frame is the plain frame
    with the heat blended in: unchanged far from the moving square, strongly coloured around
    it, and the heat follows the square from one corner to the other."""
    box = centre_crop_box(96, 128)  # the frame region cam shows, as at test time
    scale = 96 / box.w  # --size 96
    for corner, centre in (("top_left", (46, 30)), ("bottom_right", (82, 62))):
        frames, squares = _square_circling(centre)
        video = write_video(tmp_path / f"{corner}.mp4", frames)
        result = _run(capsys, "cam", str(video), "--model", "motion", "--out",
                      str(tmp_path / corner), "--size", "96")  # fmt: skip
        with av.open(str(video)) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        pngs, indices = result["files"][:-1], result["frame_indices"]
        assert len(pngs) == len(indices) == len(result["heat_centre"]) >= 8
        hot = (slice(20, 48), slice(0, 48)) if corner == "top_left" else (slice(48, 96),) * 2
        cold = (slice(48, 96),) * 2 if corner == "top_left" else (slice(20, 48), slice(0, 48))
        for png, i, heat_centre in zip(pngs, indices, result["heat_centre"], strict=True):
            crop = decoded[i][box.y : box.y + box.h, box.x : box.x + box.w]
            plain = np.asarray(Image.fromarray(crop).resize((96, 96), Image.BILINEAR)).astype(int)
            change = np.abs(np.asarray(Image.open(png)).astype(int) - plain).sum(-1)
            # (rows 0-19 carry the label text, and are left out)
            assert change[hot].mean() > 60 and change[cold].mean() < 10, (corner, i)
            square = ((squares[i][0] - box.x) * scale / 95, (squares[i][1] - box.y) * scale / 95)
            # within one cell of the 6x6 heat grid (1/6 of a 96 crop), well under the 0.35
            # between the two corners
            assert np.abs(np.subtract(heat_centre, square)).max() < 0.15, (corner, i)
