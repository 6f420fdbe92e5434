"""tc3d serve, end to end: the real server in a subprocess on a free loopback port, its API
over real HTTP, and its page in headless Chromium (Debian's chromium + chromedriver).

The models are tiny real checkpoints (an action model with 2 segments, an anomaly model); what
the server answers is compared with what the Python API answers in this process for the same
file, so a wrong or mixed-up result cannot pass.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import random_checkpoint, write_video
from serve_harness import chromium, post_video, raw_request, start_server

import tc3d
from tc3d.infer.stream import StreamConfig, run_stream
from tc3d.serve.analysis import timeline_stride

ACTIONS = ["Dance", "Jump", "Run", "Swim", "Throw", "Walk"]
LIMIT_MB = 1


def _video(path: Path, colour, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        img = rng.integers(0, 70, (48, 64, 3)).astype(np.uint8)
        y, x = (3 * i * (seed + 1)) % 32, (5 * i + 7 * seed) % 48
        img[y : y + 16, x : x + 16] = colour
        frames.append(img)
    return write_video(path, frames)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    actions = random_checkpoint(root / "actions.pt", ACTIONS, segments=2, frames=4, seed=3)
    guard = random_checkpoint(root / "guard.pt", ["Normal", "Anomaly"], frames=4, seed=5)
    colours = [(230, 40, 40), (40, 230, 40), (40, 40, 230), (230, 230, 40), (230, 40, 230)]
    videos = [_video(root / f"clip{i}.mp4", c, 40, i) for i, c in enumerate(colours)]
    short = _video(root / "short.mp4", (200, 200, 200), 6, 9)  # shorter than one window
    text = root / "notes.txt"
    text.write_text("this is not a video\n" * 20)
    model = tc3d.load_model(actions, device="cpu")
    expected = {str(v): model.predict([v])[0]["labels"] for v in [*videos, short]}
    tmpdir = root / "server_tmp"  # the server's TMPDIR: where uploads land, and must not stay
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    server = start_server("--model", str(actions), "--model", str(guard),
                          "--max-upload-mb", str(LIMIT_MB), env=env)  # fmt: skip
    try:
        yield {"server": server, "videos": videos, "short": short, "text": text, "model": model,
               "expected": expected, "tmpdir": tmpdir, "root": root}  # fmt: skip
    finally:
        code = server.stop()
        assert code in (0, 130), "\n".join(server.log[-20:])
        assert not list(tmpdir.iterdir()), "the server's working folder outlived it"


def same_labels(got: list[dict], want: list[dict]) -> bool:
    return [g["label"] for g in got] == [w["label"] for w in want] and np.allclose(
        [g["prob"] for g in got], [w["prob"] for w in want], atol=1e-4
    )


def leftover_uploads(tmpdir: Path) -> list[Path]:
    """Files in the server's TMPDIR other than its example videos."""
    return [p for p in tmpdir.rglob("*") if p.is_file() and p.parent.name != "examples"]


def test_api_predict_is_the_library_predict_plus_the_stream_timeline(setup):
    url, model = setup["server"].url, setup["model"]
    assert url.startswith("http://127.0.0.1:")  # loopback unless --host says otherwise
    video = setup["videos"][0]
    status, r = post_video(url, video)
    assert status == 200, r
    assert r["results"][0]["video"] == video.name  # never the server's temporary path
    assert same_labels(r["results"][0]["labels"], setup["expected"][str(video)])
    # The timeline is the streaming path's decisions, at the stride the page uses
    decisions: list[dict] = []
    cfg = StreamConfig(stride=timeline_stride(40))
    run_stream(model.engine(), model.loaded, [str(video)], cfg, emit=decisions.append)
    assert len(decisions) >= 2
    assert [(w["frame"], w["label"]) for w in r["timeline"]] == [
        (d["frame"], d["label"]) for d in decisions
    ]
    assert r["frames"] == 40 and r["seconds"] > 0 and r["fps"] > 0 and "cam" not in r
    # One window or less: labels, no timeline
    status, r = post_video(url, setup["short"])
    assert status == 200 and "timeline" not in r
    assert same_labels(r["results"][0]["labels"], setup["expected"][str(setup["short"])])
    # The page's request: the CAM over the S x k frames read, as an animated GIF
    status, r = post_video(url, video, cam="1")
    assert status == 200 and r["cam"]["frames"] == 2 * 4
    assert r["cam"]["label"] == setup["expected"][str(video)][0]["label"]
    assert r["cam"]["gif"].startswith("data:image/gif;base64,")
    # The anomaly model gives one score per frame
    status, r = post_video(url, video, model="guard")
    assert status == 200 and len(r["anomaly"]["scores"]) == 40
    assert all(0 <= s <= 1 for s in r["anomaly"]["scores"])
    assert leftover_uploads(setup["tmpdir"]) == []


def test_four_concurrent_uploads_each_get_their_own_label(setup):
    url, videos = setup["server"].url, setup["videos"][1:5]
    want = [setup["expected"][str(v)] for v in videos]
    # Mixing must be visible: every file has its own answer
    assert not any(same_labels(want[i], want[j]) for i in range(4) for j in range(i))
    got: list = [None] * 4
    gate = threading.Barrier(4)

    def client(i: int):
        gate.wait()
        got[i] = post_video(url, videos[i])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (status, r), v, w in zip(got, videos, want, strict=True):
        assert status == 200, r
        assert r["results"][0]["video"] == v.name and same_labels(r["results"][0]["labels"], w)
    assert leftover_uploads(setup["tmpdir"]) == []


def test_bad_uploads_get_a_4xx_json_error_and_the_server_keeps_serving(setup):
    url, root = setup["server"].url, setup["root"]
    status, r = post_video(url, setup["text"])
    assert status == 422 and "notes.txt" in r["error"] and "not a readable video" in r["error"]
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    status, r = post_video(url, empty)
    assert status == 400 and "empty" in r["error"]
    status, r = post_video(url, setup["videos"][0], field="file")
    assert status == 400 and "'video'" in r["error"]
    status, r = post_video(url, setup["videos"][0], model="../../etc/passwd")
    assert status == 400 and "unknown model" in r["error"]
    big = root / "big.mp4"
    big.write_bytes(os.urandom(LIMIT_MB * 2**20 + 100_000))
    for chunked in (False, True):  # declared length, and a body that only turns out too long
        status, r = post_video(url, big, chunked=chunked)
        assert status == 413 and "limit" in r["error"], r
    status, ctype, data = raw_request(url, "POST", "/api/predict", b"raw bytes",
                                   {"Content-Type": "video/mp4"})  # fmt: skip
    assert status == 400 and "error" in json.loads(data)
    # ... and a good upload still works
    status, r = post_video(url, setup["videos"][0])
    assert status == 200 and same_labels(r["results"][0]["labels"],
                                         setup["expected"][str(setup["videos"][0])])  # fmt: skip
    assert leftover_uploads(setup["tmpdir"]) == []


def test_no_url_reads_a_file_of_the_server(setup):
    url, root = setup["server"].url, setup["root"]
    secret = root / "secret.txt"
    token = uuid.uuid4().hex
    secret.write_text(token)
    static = Path(tc3d.__file__).parent / "serve" / "static"
    up = os.path.relpath(secret, static)  # ../../../...secret.txt, from the page's folder
    paths = [
        f"/static/{up}", f"/static/{up.replace('/', '%2F')}", f"/examples/{up}",
        f"/examples/{up.replace('/', '%2f')}", f"/{secret}", f"/{secret}".replace("/", "//"),
        f"/static/{secret}", f"/examples/{str(secret).replace('/', '%2F')}",
        f"/static/%2e%2e/{up}", "/static/../__init__.py", "/static/index.html/../app.py",
        f"/api/info/../../{up}", "/static/..%5c..%5capp.py",
    ]  # fmt: skip
    for path in paths:
        status, ctype, body = raw_request(url, "GET", path)
        assert status == 404, (path, status)
        assert token.encode() not in body and b"import" not in body
        assert json.loads(body) == {"error": "not found"}
    status, _, body = raw_request(url, "GET", "/examples/SlideLeft.avi")
    assert status == 200 and body[:4] == b"RIFF"


@pytest.mark.slow
def test_page_in_headless_chromium(setup, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    url, videos = setup["server"].url, setup["videos"]
    driver = chromium(1200, 1500, profile=tmp_path / "profile")
    wait = WebDriverWait(driver, 600)
    try:
        driver.get(url)
        assert driver.title.startswith("tc3d")
        picker = Select(driver.find_element(By.ID, "model"))
        wait.until(lambda d: len(picker.options) == 2)
        assert driver.find_element(By.ID, "model-row").is_displayed()

        def analysed(name: str):
            wait.until(lambda d: d.find_element(By.ID, "video-name").text == name
                       and not d.find_element(By.ID, "status").text)  # fmt: skip
            return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#labels .label")]

        # Choosing a file starts the analysis: labels, timeline, CAM, timing
        file_input = driver.find_element(By.ID, "file")
        file_input.send_keys(str(videos[0]))
        labels = analysed(videos[0].name)
        assert labels == [x["label"] for x in setup["expected"][str(videos[0])]]
        segments = driver.find_elements(By.CSS_SELECTOR, "#timeline .seg")
        assert len(segments) >= 2 and driver.find_element(By.ID, "timeline").is_displayed()
        assert all(s.get_attribute("data-label") in ACTIONS for s in segments)
        cam = driver.find_element(By.ID, "cam")
        assert cam.get_attribute("src").startswith("data:image/gif")
        assert driver.execute_script("return arguments[0].naturalWidth", cam) > 0
        assert "frames/s" in driver.find_element(By.ID, "timing").text
        shot = tmp_path / "serve.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")

        # A text file: the error on the page; then the page still works
        file_input.send_keys(str(setup["text"]))
        wait.until(lambda d: d.find_element(By.ID, "error").is_displayed())
        assert "not a readable video" in driver.find_element(By.ID, "error").text
        assert not driver.find_element(By.ID, "result").is_displayed()
        file_input.send_keys(str(videos[2]))
        assert analysed(videos[2].name) == [x["label"] for x in setup["expected"][str(videos[2])]]
        assert not driver.find_element(By.ID, "error").is_displayed()

        # The anomaly model draws one point per frame
        picker.select_by_value("guard")
        file_input.send_keys(str(videos[1]))
        wait.until(lambda d: d.find_element(By.ID, "anomaly-box").is_displayed())
        points = driver.find_element(By.CSS_SELECTOR, "#anomaly polyline").get_attribute("points")
        assert len(points.split()) == 40

        # Dropping a file on the page works as choosing it does
        picker.select_by_value("actions")
        driver.execute_script(
            """return (async () => {
                const blob = await (await fetch('/examples/SlideLeft.avi')).blob();
                const drop = new DataTransfer();
                drop.items.add(new File([blob], 'dropped.avi'));
                document.getElementById('drop').dispatchEvent(
                    new DragEvent('drop', {dataTransfer: drop, bubbles: true, cancelable: true}));
            })();"""
        )
        assert len(analysed("dropped.avi")) == 5

        # An example is one click away
        driver.find_element(By.CSS_SELECTOR, ".example[data-name='RunThenLongJump.avi']").click()
        assert len(analysed("RunThenLongJump.avi")) == 5
        assert len(driver.find_elements(By.CSS_SELECTOR, "#timeline .seg")) >= 2
        # Nothing was refused or failed to load (a CDN fetch would show up here)
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert [e for e in severe if "/api/predict" not in e["message"]] == [], severe
    finally:
        driver.quit()
    assert leftover_uploads(setup["tmpdir"]) == []


@pytest.mark.parametrize("objective", ["classify", "ranking"])
def test_one_upload_is_opened_at_most_twice(tmp_path, monkeypatch, objective):
    """The page's whole analysis of an upload (labels, timeline, CAM, anomaly curve) opens the
    file with PyAV at most twice, and each part still equals what the library gives for the
    file on its own; with a ranking anomaly model, the curve is its scorer's."""
    import av

    from tc3d.apps.anomaly import frame_scores
    from tc3d.infer.anomaly_evidence import LocalScorer
    from tc3d.serve.analysis import ServedModel, analyse

    extra = {}
    if objective == "ranking":
        rng = np.random.default_rng(0)
        scorer = LocalScorer(rng.normal(0, 1, 18).tolist(), 0.0, [0.0] * 18, [1.0] * 18)
        extra["anomaly_scorer"] = scorer.to_dict()
    guard = random_checkpoint(tmp_path / "guard.pt", ["Normal", "Anomaly"], frames=4, seed=5,
                              **extra)  # fmt: skip
    video = _video(tmp_path / "upload.mp4", (230, 40, 40), 40, 1)
    model = tc3d.load_model(guard, device="cpu")
    want_labels = model.predict([video], top=2)[0]["labels"]
    want_scores = frame_scores(model, video)
    served = ServedModel.wrap("guard", tc3d.load_model(guard, device="cpu"))
    opens: list[str] = []
    real_open = av.open

    def counting_open(file, *args, **kwargs):
        if str(file) == str(video):
            opens.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting_open)
    result = analyse(served, video, "upload.mp4", top=2, cam=True)
    assert served.anomaly and {"timeline", "cam", "anomaly"} <= result.keys()
    assert 1 <= len(opens) <= 2, opens
    assert same_labels(result["results"][0]["labels"], want_labels)
    assert np.allclose(result["anomaly"]["scores"], want_scores, atol=1e-4)
    assert len(result["timeline"]) > 1
    if objective == "classify":
        assert result["cam"]["frames"] == 4 and result["timeline_source"] == "stream"
    else:  # the curve, the timeline and the heat map are the scorer's, not the classifier's
        assert np.allclose(want_scores, scorer.frame_scores(scorer.read(video)))
        assert result["timeline_source"] == "anomaly scores" and result["cam"]["frames"] == 8
        assert result["cam"]["kind"] == "anomaly scorer"
        top = int(np.argmax(want_scores))
        assert result["cam"]["prob"] == pytest.approx(want_scores[top])
        for w in result["timeline"]:
            assert w["label"] == ("Anomaly" if want_scores[w["frame"]] > 0.5 else "Normal")
