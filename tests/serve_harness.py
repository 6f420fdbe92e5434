"""Start ``tc3d serve`` as a user would (a subprocess on a free loopback port) and open its page
in headless Chromium. Used by tests/test_serve.py and the benchmarks/serve_*.py scripts.

Chromium and its driver are Debian's (``apt-get install chromium chromium-driver``; .ci/run
does it): Selenium is pointed at both binaries, so nothing is downloaded at run time.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import subprocess
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from conftest import tc3d_command

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Root in a container needs --no-sandbox; without the background-networking flags Chromium
# tries to reach Google's services, which a closed network refuses.
CHROMIUM_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run "
    "--disable-background-networking --disable-component-update --disable-sync "
    "--disable-dev-shm-usage --disable-default-apps --disable-extensions"
).split()


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log: list[str] = field(default_factory=list)

    def stop(self) -> int:
        """Stop the server as Ctrl-C would; its exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(*args: str, env: dict | None = None, timeout: float = 900) -> Server:
    """``python -m tc3d serve --port 0 ARGS``; returns once it prints the URL it listens on.

    Its stderr is read on a thread (kept in ``Server.log``) so the pipe never fills up.
    """
    cmd = tc3d_command("serve", "--port", "0", *args)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    log: list[str] = []
    found: queue.Queue = queue.Queue()

    def read():
        for line in proc.stderr:
            log.append(line.rstrip("\n"))
            m = re.search(r"at (http://\S+/)", line)
            if m:
                found.put(m.group(1))
        found.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        url = found.get(timeout=timeout)
    except queue.Empty:
        url = None
    if url is None:
        proc.kill()
        proc.wait()
        raise RuntimeError("tc3d serve did not start:\n" + "\n".join(log[-30:]))
    return Server(proc, url, log)


def chromium(width: int = 1280, height: int = 1000, profile: str | Path | None = None,
             extra: list[str] | tuple[str, ...] = ()):  # fmt: skip
    """A headless Chromium driven by Selenium through Debian's chromedriver (``extra``: more
    command-line flags, e.g. a fake camera)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            raise RuntimeError(f"{path} missing: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, *extra]:
        options.add_argument(flag)
    profile = profile or tempfile.mkdtemp(prefix="tc3d-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def raw_request(url: str, method: str, path: str, body: bytes = b"", headers=None, chunked=False):
    """One raw HTTP request (the path is sent exactly as given, ``..`` included)."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    try:
        if chunked:
            conn.putrequest(method, path)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for i in range(0, len(body), 65536):
                part = body[i : i + 65536]
                conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            conn.send(b"0\r\n\r\n")
        else:
            conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheader("content-type") or "", r.read()
    finally:
        conn.close()


def multipart(fields: dict[str, tuple[str, bytes] | str]) -> tuple[bytes, dict]:
    """A multipart/form-data body: ``(file name, bytes)`` values are files, strings fields."""
    boundary = uuid.uuid4().hex
    out = b""
    for name, value in fields.items():
        if isinstance(value, tuple):
            filename, data = value
            head = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            head += "Content-Type: application/octet-stream\r\n"
        else:
            head, data = f'Content-Disposition: form-data; name="{name}"\r\n', value.encode()
        out += f"--{boundary}\r\n{head}\r\n".encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def post_video(url: str, path: Path, field: str = "video", chunked=False, **extra: str):
    """Upload ``path`` to ``/api/predict`` as a browser form would; (HTTP status, JSON)."""
    body, headers = multipart({field: (path.name, path.read_bytes()), **extra})
    status, ctype, data = raw_request(url, "POST", "/api/predict", body, headers, chunked)
    assert ctype.startswith("application/json"), (status, ctype, data[:200])
    return status, json.loads(data)
