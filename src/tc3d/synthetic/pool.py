"""The one render pool of the synthetic sets: every video of a set, rendered in worker processes.

Resume rule: a run keeps what an earlier run rendered only if that run had the same settings.
Each set passes the settings that decide its bytes (kind, seed, sizes, generator options); with
:data:`FORMAT` they make the set's record, ``ROOT/.tc3d_synth.json`` (a dot name, so no data
set reader lists it).

* The same record: a video file that exists is finished and is kept, and only the missing ones
  are rendered. Every set writes through :func:`tc3d.synthetic.sprites.encode_yuv420`, which is
  atomic, so a file that exists is a whole video.
* Another record, or videos and no record (another ``--seed``, ``--per-class``, ``--classes``,
  ``--kind`` or generator option; or a set from before records): every video is rendered again,
  each replacing its file atomically, and a warning says so. The record is removed first and
  written when all are done, so an interrupted re-render starts over instead of keeping old
  videos.
* No videos yet: the record is written first, so an interrupted run resumes.

Each video is rendered from its own seed, so the bytes are the same for any worker count and any
resume point.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tc3d.io import atomic_write_text

if TYPE_CHECKING:
    from tc3d.progress import Progress

log = logging.getLogger(__name__)

RECORD = ".tc3d_synth.json"  # the settings a set's videos were rendered with
FORMAT = 1  # raise it when a renderer's bytes change: sets on disk are then rendered again


class _Spec(Protocol):
    frames: int


S = TypeVar("S", bound=_Spec)


def render_all(
    write: Callable[[S, Path], int],
    jobs: Sequence[tuple[S, Path]],
    root: Path,
    settings: dict[str, Any],
    workers: int = 2,
    progress: Progress | None = None,
) -> int:
    """Write the ``(spec, path)`` jobs with ``write(spec, path)`` (a module-level function, so
    that worker processes can import it) under the resume rule above, ``settings`` (JSON values)
    recorded in ``root``; returns the frames rendered. ``progress(done, total)`` counts the
    videos kept as done."""
    record = Path(root) / RECORD
    wanted = json.loads(json.dumps({"format": FORMAT, **settings}))  # tuples read back as lists
    text = json.dumps(wanted, indent=2, sort_keys=True) + "\n"
    old = _read_record(record)
    again = old != wanted and (old is not None or any(p.exists() for _, p in jobs))
    if again:
        log.warning("rendering all %d videos in %s again: %s", len(jobs), root,
                    _why(old, wanted))  # fmt: skip
        record.unlink(missing_ok=True)
    elif old != wanted:
        atomic_write_text(text, record)
    todo = [j for j in jobs if again or not j[1].exists()]
    frames = _render(write, todo, len(jobs), workers, progress)
    if again:
        atomic_write_text(text, record)
    return frames


def _read_record(record: Path) -> Any:
    """The settings an earlier run recorded; None when there is none or it cannot be read."""
    try:
        return json.loads(record.read_bytes())
    except (OSError, ValueError):
        return None


def _why(old: Any, wanted: dict[str, Any]) -> str:
    if not isinstance(old, dict):
        return f"they have no readable settings record ({RECORD})"
    keys = sorted(k for k in old.keys() | wanted.keys() if old.get(k) != wanted.get(k))
    return f"they were rendered with other settings ({', '.join(keys)})"


def _render(
    write: Callable[[S, Path], int],
    todo: list[tuple[S, Path]],
    total: int,
    workers: int,
    progress: Progress | None,
) -> int:
    """Render ``todo``, longest first; ``progress`` counts the ``total - len(todo)`` kept."""
    todo = sorted(todo, key=lambda j: -j[0].frames)
    done, frames = total - len(todo), 0
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
