"""A real Ray cluster of N nodes on this machine, inside a :class:`netns.Namespace`.

Used by tests/test_cluster.py and benchmarks/ray_tag.py. Every port a node opens is fixed
(the namespace is private, so they are free). Run as a script, this file is ``ray`` itself with
one change, see :func:`_main`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from conftest import run_cli
from netns import Namespace

HEAD_PORT = 6390


def node_ports(base: int) -> tuple[list[str], int]:
    """``ray start`` flags that fix every port of one node, and its dashboard agent's port."""
    names = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
             "--metrics-export-port")  # fmt: skip
    flags = [x for i, n in enumerate(names) for x in (n, str(base + i))]
    flags += ["--min-worker-port", str(base + 10), "--max-worker-port", str(base + 60)]
    return flags, base + 2


class RayCluster:
    """``ray start --head`` and ``ray start --address`` for the other nodes, each with ``cpus``
    CPUs and a small object store, no dashboard and no usage statistics. ``tc3d`` runs the
    command line on the cluster's side of the namespace."""

    def __init__(self, ns: Namespace, temp: Path, nodes: int = 2, cpus: int = 1, env=None):
        import tc3d

        self.ns, self.temp = ns, temp
        src = str(Path(tc3d.__file__).resolve().parents[1])  # the tc3d under test, on workers
        path = os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])
        self.env = {**os.environ, "PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0",
                    **(env or {})}  # fmt: skip
        self.address = f"127.0.0.1:{HEAD_PORT}"
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
                  "--object-store-memory", str(80 * 2**20), "--disable-usage-stats"]  # fmt: skip
        for node in range(nodes):
            flags, agent = node_ports(HEAD_PORT + 100 * (node + 1))
            if node == 0:
                where = ["--head", "--port", str(HEAD_PORT), "--include-dashboard=false",
                         "--ray-client-server-port", str(HEAD_PORT + 1),
                         "--temp-dir", str(temp)]  # fmt: skip
            else:
                where = ["--address", self.address]
            self._ray(str(agent), "start", *where, *common, *flags)

    def _ray(self, *args: str) -> None:
        cmd = [sys.executable, __file__, *args]
        done = self.ns.run(cmd, env=self.env, timeout=300)
        assert done.returncode == 0, f"ray {' '.join(args[1:3])}: {done.stderr[-2000:]}"

    def tc3d(self, *args: str, expect: int = 0, timeout: float = 600) -> dict:
        """``tc3d ARGS --json`` inside the namespace (conftest.run_cli): its JSON + ``stderr``."""
        return run_cli(*args, "--json", expect=expect, env=self.env, timeout=timeout,
                       runner=self.ns.run)  # fmt: skip

    def workers(self, method: str = "") -> list[int]:
        """Process ids of the tc3d actors (one model each); with ``method``, those running it."""
        return self.ns.pids("ray::TC3DWorker" + (f".{method}" if method else ""))

    def stop(self) -> None:
        self.ns.run([sys.executable, __file__, "0", "stop", "--force"], env=self.env, timeout=120)


def _main() -> None:
    """``python raycluster.py AGENT_PORT ARGS...`` is ``ray ARGS...``, except that the raylet is
    told its dashboard agent's port. Otherwise Ray 2.60's raylet waits at most 15 s, a fixed
    time, for the agent to report it, and on a busy machine the agent (a Python process with
    many imports) can take longer: the raylet then exits and ``ray start`` fails."""
    import ray._private.services as services
    from ray.scripts.scripts import main

    port = sys.argv.pop(1)
    start = services.start_ray_process

    def start_ray_process(command, *args, **kwargs):
        if port != "0" and command and command[0] == services.RAYLET_EXECUTABLE:
            command = [*command, f"--dashboard_agent_listen_port={port}"]
        return start(command, *args, **kwargs)

    services.start_ray_process = start_ray_process
    sys.argv[0] = "ray"
    main()


if __name__ == "__main__":
    _main()
