"""Screenshots of the tc3d serve page for the README.

``--mode file`` (default): the shipped model on the long example. Starts ``tc3d serve`` (the
``motion`` model unless --model is given) on a free loopback port, opens the page in Debian's
headless Chromium, clicks the long example (a timeline of several windows), waits for the
result and writes the picture atomically.

``--mode camera``: camera mode, Chromium's fake camera playing a real clip from
``../shared/real-video/clips`` (``--clip``), after ``--decisions`` live decisions.

``--mode teach``: teach mode from real clips (``wave``, ``SoccerJuggling``, ``Segway``: fold 0
of benchmarks/teach_figure.py, four 1.3 s WebM clips per class cut from clips other than the
camera's), added as dropped files, trained with the teach recipe, then the camera (playing the
held-out ``v_SoccerJuggling_g23_c01.avi``) labelled by the taught model.

    python benchmarks/serve_screenshot.py [--out docs/img/serve.png] [--model motion]
    python benchmarks/serve_screenshot.py --mode camera --out docs/img/serve_camera.png
    python benchmarks/serve_screenshot.py --mode teach --out docs/img/serve_teach.png
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_harness import chromium, start_server  # noqa: E402


def file_mode(driver, wait, args) -> None:
    from selenium.webdriver.common.by import By

    button = f".example[data-name='{args.example}']"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, button))
    driver.find_element(By.CSS_SELECTOR, button).click()
    wait.until(lambda d: d.find_element(By.ID, "video-name").text == args.example
               and not d.find_element(By.ID, "status").text)  # fmt: skip
    wait.until(lambda d: d.execute_script("return document.getElementById('cam').complete"))


def camera_mode(driver, wait, args) -> None:
    from selenium.webdriver.common.by import By

    wait.until(lambda d: d.execute_script("return info.models.length"))
    driver.find_element(By.ID, "camera").click()
    wait.until(lambda d: d.execute_script("return tc3dLive.decisions") >= args.decisions)


def teach_mode(driver, wait, args, work: Path) -> None:
    """Teach the page fold 0 of the teach figure (benchmarks/teach_figure.py: four subclips per
    class from the clips it does not test on), then show the camera with the taught model."""
    from selenium.webdriver.common.by import By
    from teach_figure import CLASSES, CLIPS, all_frames, subclips, write_webm

    for label, names in CLASSES.items():
        taught = [n for n in names if n != names[0]]  # fold 0 holds out each class's first clip
        per_clip = -(-4 // len(taught))
        cuts = [c for n in taught for c in subclips(all_frames(CLIPS / n), 40, per_clip)]
        files = [write_webm(work / f"{label}-{i}.webm", c) for i, c in enumerate(cuts[:4])]
        box = driver.find_element(By.ID, "teach-label")
        box.clear()
        box.send_keys(label)
        driver.find_element(By.ID, "teach-files").send_keys("\n".join(map(str, files)))
        wait.until(lambda d, label=label: f"{label}: 4 clips" in d.find_element(
            By.ID, "teach-classes").text)  # fmt: skip
    driver.find_element(By.ID, "teach-train").click()
    wait.until(lambda d: d.find_element(By.ID, "teach-download").is_displayed())
    camera_mode(driver, wait, args)
    wait.until(lambda d: d.execute_script("return tc3dLive.recent.length") >= 40)


def save_page(driver, width: int, out: Path) -> None:
    """The whole page in the picture (the window's frame is outer - inner height)."""
    size = driver.execute_script(
        "return [document.documentElement.scrollHeight, window.innerHeight]"
    )
    frame = driver.get_window_size()["height"] - size[1]
    driver.set_window_size(width, size[0] + frame)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part.png")
    driver.save_screenshot(str(tmp))
    os.replace(tmp, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/img/serve.png")
    p.add_argument("--mode", choices=("file", "camera", "teach"), default="file")
    p.add_argument("--model", action="append", default=None)
    p.add_argument("--example", default="RunThenLongJump.avi")
    p.add_argument("--clip", default="v_SoccerJuggling_g23_c01.avi", help="the fake camera's")
    p.add_argument("--decisions", type=int, default=40)
    p.add_argument("--width", type=int, default=1100)
    args = p.parse_args()
    from live_harness import decode, fake_camera_chromium, real_clips, write_y4m
    from selenium.webdriver.support.ui import WebDriverWait

    flags = [f for m in args.model or [] for f in ("--model", m)]
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="tc3d-shot-") as tmp:
        work = Path(tmp)
        server = start_server(*flags, "--teach-dir", str(work / "teach"))
        if args.mode == "file":
            driver = chromium(args.width, 900, work / "profile")
        else:
            y4m = write_y4m(work / "camera.y4m", decode(real_clips() / args.clip, width=320))
            driver = fake_camera_chromium(y4m, work / "profile", args.width, 900)
        try:
            driver.get(server.url)
            wait = WebDriverWait(driver, 900)
            if args.mode == "teach":
                teach_mode(driver, wait, args, work)
            elif args.mode == "camera":
                camera_mode(driver, wait, args)
            else:
                file_mode(driver, wait, args)
            save_page(driver, args.width, out)
        finally:
            driver.quit()
            server.stop()
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    print("\n".join(line for line in server.log if "/api/" in line or " live " in line))


if __name__ == "__main__":
    main()
