"""``tc3d tag`` and ``tc3d features`` on a Ray cluster (``--ray ADDRESS``).

The paper's tagging application, and the feature extraction that similarity and anomaly
detection start with, run over whole collections; past one machine tc3d runs on Ray rather than
on a scheduler of its own. The shape is Ray's reference design for batch video inference: a
pool of actors, each holding one model loaded through :func:`tc3d.load_model` and decoding its
own videos with the same reader as a local run, fed small chunks of the video list by the driver,
which streams the results into the same output as a local run (for ``tag``,
:class:`tc3d.apps.tag.TagJob`: resumable, failures remembered).

Failures: a worker that dies loses no video. The chunks it held go back in the queue (the one
it was running split into single videos) and Ray restarts its process, which loads the model
again. A video that was on :data:`MAX_DEATHS` workers when they died is reported as failed, as
an unreadable file is, instead of being retried forever.

Videos and model files must be readable at the same path on every node (a shared file
system), as Ray Data expects of its inputs; shipped model names (``motion``) resolve on each
node, in its own installation of tc3d.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tc3d.apps.tag import CHUNK, TagJob
from tc3d.errors import TC3DError
from tc3d.infer.features import Features, check_layers
from tc3d.progress import Progress

log = logging.getLogger(__name__)

IN_FLIGHT = 2  # tasks queued at each worker, so that it never waits for the driver
MAX_DEATHS = 2  # a video on this many workers that died while running it is reported failed
MAX_RESTARTS = 4  # per worker: Ray restarts a dead worker's process this many times
CALIBRATION = 64  # int8: the first videos to process (calibration_videos takes a few of them)
RAY_MISSING = "--ray needs Ray, an optional extra: pip install 'tc3d[ray]'"
# the tc3d.load_model keyword arguments a command line carries
MODEL_OPTIONS = ("device", "precision", "segments", "frames", "sampling", "offset", "crop",
                 "batch_size")  # fmt: skip


class RayMissing(TC3DError, ImportError):
    """``--ray`` without Ray installed; str(e) is one line."""


class ClusterError(TC3DError, RuntimeError):
    """The cluster could not do the work (no worker could start, every worker died)."""


def import_ray():
    """The ``ray`` module, or :class:`RayMissing` with the command that installs it."""
    try:
        import ray
    except ImportError:
        raise RayMissing(RAY_MISSING) from None
    return ray


def model_options(args) -> tuple[str, dict]:
    """The model and the :func:`tc3d.load_model` options a ``tag``/``features`` command line
    gives, for the workers: a file becomes an absolute path (the same on every node), a
    shipped name stays a name."""
    model = str(args.model)
    if Path(model).exists():
        model = str(Path(model).resolve())
    options = {k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k, None) is not None}
    return model, options


@dataclass
class WorkerSpec:
    """What every worker loads: ``tc3d.load_model(model, **options)``, on ``cpus`` threads."""

    model: str
    options: dict = field(default_factory=dict)
    calibration: list[str] = field(default_factory=list)  # int8: the videos a local run uses
    cpus: float = 1.0
    videos: int | None = None  # in the whole job: fp32 picks its runtime as a local run does


class TC3DWorker:
    """A Ray actor: one loaded model that scores (or describes) the videos it is sent.

    Its methods return what :class:`tc3d.api.Model` returns, bad videos included as error
    entries, so the driver handles them exactly as a local run does.
    """

    def __init__(self, spec: WorkerSpec):
        import torch

        import tc3d

        torch.set_num_threads(max(1, int(spec.cpus)))
        self.model = tc3d.load_model(spec.model, **spec.options)
        # int8 calibrates here, once per process
        self.model.engine(spec.calibration, videos=spec.videos)

    def ready(self) -> int:
        return os.getpid()

    def predict(self, videos: list[str], top: int) -> list[dict]:
        return self.model.predict(videos, top)

    def features(self, videos: list[str], layers: list[str], names: list[str]) -> dict:
        return self.model.features(videos, layers, names)


@dataclass
class _Task:
    ids: list[int]  # positions in the driver's list of videos
    deaths: int = 0  # workers that died while running it


class _Pool:
    """Actors fed chunks of a list of videos; each result handed to ``done`` as it comes.

    Ray runs an actor's tasks one at a time in the order they were sent, so when a worker
    dies, the oldest of its tasks that did not finish is the one it was running: only that
    one is blamed (split into single videos when it held several); the tasks queued behind
    it go back in the queue as they were. Blamed videos then run alone on a worker, so that
    the one that is given up on is the one that was running.
    """

    def __init__(self, ray, actors: list):
        self.ray = ray
        self.actors = actors
        self.starting: dict = {}  # ready() calls not answered yet -> actor
        for i in range(len(actors)):
            self._wait_ready(i)
        self.live: set[int] = set()
        self.started: set[int] = set()
        self.deaths = [0] * len(actors)
        self.sent: list[deque] = [deque() for _ in actors]  # per actor: refs, oldest first
        self.inflight: dict = {}  # ref -> (actor, task)
        self.queue: deque[_Task] = deque()
        self.finished = 0
        self.start_error = ""

    def run(
        self,
        n: int,
        send: Callable[[object, list[int]], object],
        done: Callable[[list[int], object], None],
        lost: Callable[[int, str], None],
        progress: Progress | None = None,
    ) -> None:
        """Process videos ``0..n-1``: ``send(actor, ids)`` starts a task, ``done(ids, result)``
        takes its result, ``lost(id, error)`` gives up on one video."""
        self.done, self.lost = done, lost
        self.queue.extend(_Task(list(range(i, min(i + CHUNK, n)))) for i in range(0, n, CHUNK))
        if progress:
            progress(0, n)
        while self.queue or self.inflight:
            for a in sorted(self.live):
                while self.queue and self._has_room(a):
                    task = self.queue.popleft()
                    ref = send(self.actors[a], task.ids)
                    self.sent[a].append(ref)
                    self.inflight[ref] = (a, task)
            if not self.inflight and not self.starting:
                left = sum(len(t.ids) for t in self.queue)
                why = f": {self.start_error}" if self.start_error else ""
                raise ClusterError(f"no worker left on the cluster, {left} videos not done "
                                   f"(run again to continue){why}")  # fmt: skip
            ready, _ = self.ray.wait([*self.starting, *self.inflight], num_returns=1, timeout=60)
            if not ready:
                if not self.live:
                    log.warning("no worker has started yet; waiting for the cluster")
                continue
            if ready[0] in self.starting:
                self._started(ready[0])
                continue
            a = self.inflight[ready[0]][0]
            if self._settle(ready[0]) == "died":
                self._died(a)
            if progress:
                progress(self.finished, n)

    def _has_room(self, a: int) -> bool:
        """Whether worker ``a`` takes the next task. A task that was on a worker when it died
        runs alone: when a worker dies, the reply of a task it had just finished can be lost
        with it, so only a task with nothing queued beside it can be blamed for sure."""
        sent = self.sent[a]
        if self.queue[0].deaths or any(self.inflight[r][1].deaths for r in sent):
            return not sent
        return len(sent) < IN_FLIGHT

    def _wait_ready(self, a: int) -> None:
        """Send worker ``a`` tasks again once it answers: a call to a worker that Ray is
        restarting fails at once, and that is no reason to blame the videos it carried."""
        ready = self.actors[a].ready.options(max_task_retries=-1)  # waits out restarts
        self.starting[ready.remote()] = a

    def _started(self, ref) -> None:
        i = self.starting.pop(ref)
        try:
            self.ray.get(ref)
        except self.ray.exceptions.RayError as e:
            self.start_error = _one_line(e)
            log.warning("a Ray worker could not start: %s", self.start_error)
        else:
            self.live.add(i)
            self.started.add(i)

    def _settle(self, ref) -> str:
        """Take a finished task's result; "died" (and nothing taken) if its worker died."""
        a, task = self.inflight[ref]
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as e:  # the worker raised: it is alive
            if len(task.ids) > 1:  # find the video that raised: retry them one by one
                self.queue.extendleft(_Task([i], task.deaths) for i in reversed(task.ids))
            else:
                self._lose(task.ids[0], _one_line(e))
        except self.ray.exceptions.RayError:  # the worker's process is gone
            return "died"
        else:
            self.done(task.ids, result)
            self.finished += len(task.ids)
        del self.inflight[ref]
        self.sent[a].remove(ref)
        return "settled"

    def _died(self, a: int) -> None:
        """Worker ``a`` died: keep what it finished, blame the task it was running."""
        refs = list(self.sent[a])
        finished, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        gone = [r for r in refs if r not in finished or self._settle(r) == "died"]
        tasks = [self.inflight.pop(r)[1] for r in gone]
        self.sent[a].clear()
        self.queue.extendleft(reversed(tasks[1:]))  # never started: sent again as they were
        self.deaths[a] += 1
        self.live.discard(a)
        if self.deaths[a] <= MAX_RESTARTS:  # else Ray no longer restarts it
            self._wait_ready(a)
        log.warning("a Ray worker died; the videos it was reading are sent again")
        running = tasks[0]
        for i in reversed(running.ids):  # one by one, to find a video that kills workers
            if running.deaths + 1 >= MAX_DEATHS and len(running.ids) == 1:
                self._lose(i, f"a worker died while reading this video ({MAX_DEATHS} times)")
            else:
                self.queue.appendleft(_Task([i], running.deaths + 1))

    def _lose(self, i: int, error: str) -> None:
        self.lost(i, error)
        self.finished += 1


def _one_line(e: BaseException) -> str:
    lines = [x.strip() for x in str(e).strip().splitlines() if x.strip()]
    return lines[-1] if lines else type(e).__name__


class _Cluster:
    """A connection to a Ray cluster and the actors made on it; ``with`` closes both."""

    def __init__(self, address: str):
        self.ray = import_ray()
        self.address = address
        self.actors: list = []
        self.pool: _Pool | None = None
        self._own = False

    def __enter__(self) -> _Cluster:
        if not self.ray.is_initialized():
            self.ray.init(address=self.address, logging_level=logging.WARNING,
                          log_to_driver=False)  # fmt: skip
            self._own = True
        return self

    def __exit__(self, *exc) -> None:
        for a in self.actors:
            self.ray.kill(a)
        if self._own:
            self.ray.shutdown()

    def start(self, spec: WorkerSpec, videos: int, workers: int | None = None) -> _Pool:
        """A pool of workers (by default one per ``spec.cpus`` CPUs of the cluster, or one
        per GPU for ``device="cuda"``), no more than there are chunks of ``videos``."""
        gpu = spec.options.get("device") == "cuda"
        total = self.ray.cluster_resources()
        if gpu and not total.get("GPU"):
            raise ClusterError("--device cuda: the Ray cluster has no GPU")
        if workers is None:
            workers = int(total.get("GPU", 0)) if gpu else int(total.get("CPU", 1) // spec.cpus)
        n = max(1, min(workers, math.ceil(videos / CHUNK)))
        actor = self.ray.remote(TC3DWorker).options(
            num_cpus=spec.cpus,
            num_gpus=1 if gpu else 0,
            max_restarts=MAX_RESTARTS,
            max_task_retries=0,  # the pool decides what to run again
        )
        self.actors = [actor.remote(spec) for _ in range(n)] if videos else []
        self.pool = _Pool(self.ray, self.actors)
        return self.pool

    def info(self) -> dict:
        """``{address, nodes, workers}`` for the command's JSON."""
        try:
            address = self.ray.get_runtime_context().gcs_address or self.address
        except Exception:  # noqa: BLE001 - a Ray Client connection has no GCS address
            address = self.address
        nodes = sum(1 for n in self.ray.nodes() if n.get("Alive"))
        return {"address": address, "nodes": nodes,
                "workers": len(self.pool.started) if self.pool else 0}  # fmt: skip


def tag_on_ray(
    address: str,
    model: str,
    options: dict,
    root: str | Path,
    out: str | Path,
    top_k: int = 5,
    retry_failed: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
) -> dict:
    """``tc3d tag --ray``: :func:`tc3d.apps.tag.tag_folder`'s result and file, computed on the
    cluster (chunks of :data:`~tc3d.apps.tag.CHUNK` videos scored by ``Model.predict`` and
    recorded as a local run records them), plus ``cluster: {address, nodes, workers}``."""
    import_ray()
    job = TagJob(root, out, top_k, retry_failed)
    todo = [str(p) for p in job.todo]
    calibration = todo[:CALIBRATION] if options.get("precision") == "int8" else []
    spec = WorkerSpec(model, options, calibration, cpus_per_worker, len(job.videos))

    def done(ids: list[int], results: list[dict]) -> None:
        job.record_predictions([job.todo[i] for i in ids], results)

    def lost(i: int, error: str) -> None:
        job.record(job.todo[i], error=error)
        job.save_failures()

    with _Cluster(address) as cluster:
        pool = cluster.start(spec, len(todo), workers)
        pool.run(len(todo), lambda a, ids: a.predict.remote([todo[i] for i in ids], top_k),
                 done, lost, progress)  # fmt: skip
        info = cluster.info()
    return {**job.summary(), "cluster": info}


def features_on_ray(
    address: str,
    model: str,
    options: dict,
    paths: Sequence[str | Path],
    names: Sequence[str],
    layers: Sequence[str] = ("pool5",),
    progress: Progress | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
):
    """``tc3d features --ray``: the :class:`~tc3d.infer.features.Features` that
    :meth:`tc3d.api.Model.feature_set` gives for ``paths`` (same rows, same
    order), computed on the cluster; and ``{address, nodes, workers}``."""
    import_ray()
    check_layers(layers)  # before the cluster is asked for anything
    given = [str(p) for p in paths]  # as a local run reports them
    paths = [str(Path(p).resolve()) for p in paths]  # as the workers read them
    calibration = paths[:CALIBRATION] if options.get("precision") == "int8" else []
    spec = WorkerSpec(model, options, calibration, cpus_per_worker, len(paths))
    rows: dict[int, dict[str, np.ndarray]] = {}
    errors: dict[int, str] = {}

    def done(ids: list[int], result: dict) -> None:
        kept = {name: j for j, name in enumerate(result["videos"])}
        bad = {f["video"]: f["error"] for f in result["failed"]}
        for i in ids:
            if names[i] in kept:
                rows[i] = {layer: result[layer][kept[names[i]]] for layer in layers}
            else:
                errors[i] = bad.get(paths[i], "could not be read")

    def lost(i: int, error: str) -> None:
        errors[i] = error

    def send(actor, ids: list[int]):
        return actor.features.remote([paths[i] for i in ids], list(layers), [names[i] for i in ids])

    with _Cluster(address) as cluster:
        cluster.start(spec, len(paths), workers).run(len(paths), send, done, lost, progress)
        info = cluster.info()
    kept = sorted(rows)
    arrays = {layer: np.stack([rows[i][layer] for i in kept]) if kept else np.zeros((0, 0))
              for layer in layers}  # fmt: skip
    failed = [{"path": given[i], "error": errors[i]} for i in sorted(errors)]
    return Features([names[i] for i in kept], arrays, failed), info
