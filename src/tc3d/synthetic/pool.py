"""The one render pool of the synthetic sets: every video of a set, rendered in worker processes.

Resume rule: a video whose file exists is finished and is not rendered again. Every set writes
its videos through :func:`tc3d.synthetic.sprites.encode_yuv420`, which is atomic (a killed run
never leaves a partial file under the final name), so a file that exists is a whole video, and
re-running an interrupted ``tc3d synth`` renders only what is missing. Each video is rendered
from its own seed, so the bytes are the same for any worker count and any resume point.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from tc3d.progress import Progress

log = logging.getLogger(__name__)


class _Spec(Protocol):
    frames: int


S = TypeVar("S", bound=_Spec)


def render_all(
    write: Callable[[S, Path], int],
    jobs: Sequence[tuple[S, Path]],
    workers: int = 2,
    progress: Progress | None = None,
) -> int:
    """Write every ``(spec, path)`` job whose file does not exist yet with ``write(spec, path)``
    (a module-level function, so that worker processes can import it); returns the frames
    rendered. ``progress(done, total)`` counts the videos already on disk as done."""
    todo = sorted((j for j in jobs if not j[1].exists()), key=lambda j: -j[0].frames)
    total, done, frames = len(jobs), len(jobs) - len(todo), 0
    start = time.perf_counter()
    for n in _run(write, todo, workers):
        frames += n
        done += 1
        if progress:
            progress(done, total)
    seconds = time.perf_counter() - start
    fps = frames / max(seconds, 1e-9)
    log.info("rendered %d of %d videos, %d frames in %.1fs (%.0f frames/s)",
             len(todo), total, frames, seconds, fps)  # fmt: skip
    return frames


def _run(write: Callable[[S, Path], int], todo: list[tuple[S, Path]], workers: int):
    """Yield each job's frame count as it finishes: in this process for one worker or one job,
    else in spawned processes, longest first (the order ``todo`` is in) to balance them."""
    if workers <= 1 or len(todo) < 2:
        for spec, path in todo:
            yield write(spec, path)
        return
    ctx = mp.get_context("spawn")  # fork is unsafe once torch has started its threads
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx) as pool:
        futures = [pool.submit(write, spec, path) for spec, path in todo]
        for fut in as_completed(futures):
            yield fut.result()
