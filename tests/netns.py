"""A private network and PID namespace for tests that start clusters (Ray, torchrun nodes).

Ray advertises the machine's own interface address even when told 127.0.0.1, and our tests
send traffic to 127.0.0.1 only, so clusters run in a network namespace that has nothing but
loopback (``unshare --net``, ``ip link set lo up``). A PID namespace around it makes the
clean-up certain: its first process waits on a pipe from the test process, and when that
process exits (closed by :meth:`Namespace.close`, or because the test process died) the
kernel kills every process left in the namespace. Nothing outside it is ever signalled. That
first process is a shell (not ``exec cat``) because it must reap the orphans it adopts: ``ray
stop`` waits until the processes it killed are gone, and a zombie never is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


class Namespace:
    """``with Namespace() as ns: ns.run([...])`` runs commands inside; ``ns.pids()`` lists
    its processes (as seen from outside, so a test can kill one by id)."""

    def __init__(self):
        if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
            pytest.skip("needs root with unshare and nsenter (network namespaces)")
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
             "sh", "-c", "ip link set lo up && echo up && cat >/dev/null"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        if self.holder.stdout.readline().strip() != "up":
            self.close()
            pytest.skip("could not make a network namespace here")
        p = self.holder.pid
        self.net = os.readlink(f"/proc/{p}/ns/net")
        ns = f"/proc/{p}/ns"
        self.enter = ["nsenter", f"--net={ns}/net", f"--pid={ns}/pid_for_children",
                      f"--mount={ns}/mnt", "--"]  # fmt: skip

    def __enter__(self) -> Namespace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.enter + list(cmd), **kw)

    def popen(self, cmd: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(self.enter + list(cmd), **kw)

    def pids(self, title: str = "") -> list[int]:
        """Processes inside the namespace whose command line starts with ``title``."""
        out = []
        for d in Path("/proc").iterdir():
            try:
                if (
                    d.name.isdigit()
                    and os.readlink(d / "ns" / "net") == self.net
                    and (d / "cmdline").read_bytes().decode(errors="replace").startswith(title)
                ):
                    out.append(int(d.name))
            except OSError:  # gone meanwhile
                continue
        return sorted(out)

    def close(self) -> None:
        """End the namespace: every process still in it is killed by the kernel."""
        if self.holder.poll() is None:
            self.holder.stdin.close()
            try:
                self.holder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.holder.kill()
                self.holder.wait()
