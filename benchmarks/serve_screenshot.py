"""Screenshot of the tc3d serve page for the README: the shipped model on the long example.

Starts ``tc3d serve`` (the ``motion`` model unless --model is given) on a free loopback port,
opens the page in Debian's headless Chromium, clicks the long example (a timeline of several
windows), waits for the result and writes the picture atomically.

    python benchmarks/serve_screenshot.py [--out docs/img/serve.png] [--model motion]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_harness import chromium, start_server  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/img/serve.png")
    p.add_argument("--model", action="append", default=None)
    p.add_argument("--example", default="RunThenLongJump.avi")
    p.add_argument("--width", type=int, default=1100)
    args = p.parse_args()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    flags = [f for m in args.model or [] for f in ("--model", m)]
    server = start_server(*flags)
    try:
        with tempfile.TemporaryDirectory(prefix="tc3d-shot-") as profile:
            driver = chromium(args.width, 900, profile)
            try:
                driver.get(server.url)
                wait = WebDriverWait(driver, 900)
                button = f".example[data-name='{args.example}']"
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, button))
                driver.find_element(By.CSS_SELECTOR, button).click()
                wait.until(lambda d: d.find_element(By.ID, "video-name").text == args.example
                           and not d.find_element(By.ID, "status").text)  # fmt: skip
                wait.until(lambda d: d.execute_script(
                    "return document.getElementById('cam').complete"))  # fmt: skip
                # the whole page in the picture: the window's frame is outer - inner height
                size = driver.execute_script(
                    "return [document.documentElement.scrollHeight, window.innerHeight]"
                )
                frame = driver.get_window_size()["height"] - size[1]
                driver.set_window_size(args.width, size[0] + frame)
                out = Path(args.out)
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_name(f".{out.name}.part.png")
                driver.save_screenshot(str(tmp))
                os.replace(tmp, out)
            finally:
                driver.quit()
    finally:
        server.stop()
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    print("\n".join(line for line in server.log if "/api/predict" in line))


if __name__ == "__main__":
    main()
