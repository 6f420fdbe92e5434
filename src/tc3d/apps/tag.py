"""Tag every video under a folder with its top-k labels (paper Section IV-B, video tagging).

Built for large folders and interruptions: results are appended to the output file one video
at a time (one ``write`` of a whole line, flushed), so a run killed at any moment keeps every
video it finished; a torn last line is dropped (and the file rewritten atomically) when the
next run starts. Re-running skips videos already in the file. Videos that cannot be read are
listed, never fatal, and remembered in ``FILE.failed.jsonl`` with their size and modification
time, so a re-run does not retry them unless the file changed (or ``retry_failed``).

Each chunk of videos is scored by :meth:`tc3d.api.Model.predict` (the inference engine:
background decoding, clips batched across videos, fp32/bf16/int8) and recorded by
:meth:`TagJob.record_predictions`, here as on a Ray worker (:mod:`tc3d.cluster`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tc3d.datasets.files import list_videos
from tc3d.errors import TC3DError
from tc3d.io import atomic_write_text
from tc3d.progress import Progress

if TYPE_CHECKING:
    from tc3d.api import Model

log = logging.getLogger(__name__)

CHUNK = 8  # videos scored between two writes (and per Ray task): a kill loses at most these


class TagError(TC3DError, RuntimeError):
    """Unusable output file or folder; str(e) is one line."""


def _key(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _stamp(path: Path) -> list:
    try:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return [None, None]


class _Output:
    """The tag file (CSV or JSONL): what it holds, and appending whole lines to it."""

    def __init__(self, path: Path, top_k: int):
        self.path = path
        self.csv = path.suffix.lower() == ".csv"
        if not self.csv and path.suffix.lower() not in (".jsonl", ".json"):
            raise TagError(f"{path}: output must end in .csv or .jsonl")
        self.top_k = top_k
        self.header = ["video"] + [
            f"{n}_{i}" for i in range(1, top_k + 1) for n in ("label", "prob")
        ]
        self.done: set[str] = set()
        if path.exists():
            self._load()

    def _load(self) -> None:
        text = self.path.read_text(encoding="utf-8", errors="replace")
        lines = text.splitlines(keepends=True)
        torn = bool(lines) and not lines[-1].endswith("\n")
        good = lines[:-1] if torn else lines
        if self.csv:
            rows = list(csv.reader(io.StringIO("".join(good))))
            if rows and rows[0][:1] == ["video"]:
                if len(rows[0]) != len(self.header):
                    k = (len(rows[0]) - 1) // 2
                    raise TagError(f"{self.path} was written with --top {k}; pass --top {k}")
                rows = rows[1:]
            self.done = {r[0] for r in rows if r}
        else:
            for line in good:
                try:
                    self.done.add(json.loads(line)["video"])
                except (ValueError, KeyError, TypeError):
                    msg = f"{self.path}: not a tc3d tag file (bad line {line[:60]!r})"
                    raise TagError(msg) from None
        if torn:  # an interrupted write: keep every whole line, atomically
            log.warning("%s: dropped an incomplete last line", self.path)
            atomic_write_text("".join(good), self.path)

    def append(self, key: str, labels: list[dict]) -> None:
        if self.csv:
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            if not self.path.exists() or self.path.stat().st_size == 0:
                writer.writerow(self.header)
            writer.writerow([key] + [v for x in labels for v in (x["label"], f"{x['prob']:.6f}")])
            line = buf.getvalue()
        else:
            line = json.dumps({"video": key, "labels": labels}) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
        self.done.add(key)


class TagJob:
    """One run over a folder: what is left to tag, and recording each outcome as it comes.

    Holds the resume logic (skip videos already in the output, skip known failures whose file
    did not change) so the local loop and the cluster driver (:mod:`tc3d.cluster`) share it.
    """

    def __init__(self, root: str | Path, out: str | Path, top_k: int = 5, retry_failed=False):
        self.root, self.out = Path(root).resolve(), Path(out)
        if not self.root.is_dir():
            raise TagError(f"{self.root}: not a folder")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.output = _Output(self.out, top_k)
        self.failed_file = self.out.with_name(self.out.name + ".failed.jsonl")
        known: dict[str, dict] = {}
        if self.failed_file.exists() and not retry_failed:
            for line in self.failed_file.read_text(errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                    known[rec["video"]] = rec
                except (ValueError, KeyError, TypeError):
                    continue
        self.videos = list_videos(self.root)
        self.todo: list[Path] = []
        self.failed: list[dict] = []
        self.skipped = self.tagged = 0
        for p in self.videos:
            key = _key(p, self.root)
            if key in self.output.done:
                self.skipped += 1
            elif key in known and known[key].get("stamp") == _stamp(p):
                self.failed.append({"path": str(p), "error": known[key]["error"]})
            else:
                self.todo.append(p)
        self._failures = {k: v for k, v in known.items() if k not in self.output.done}

    def record(self, path: Path, labels: list[dict] | None = None, error: str = "") -> None:
        """Append a tagged video to the output, or remember why it failed."""
        key = _key(path, self.root)
        if labels is not None:
            self.output.append(key, labels)
            self._failures.pop(key, None)
            self.tagged += 1
        else:
            self.failed.append({"path": str(path), "error": error})
            self._failures[key] = {"video": key, "error": error, "stamp": _stamp(path)}

    def record_predictions(self, paths: Sequence[Path], predictions: Sequence[dict]) -> None:
        """Record a chunk as :meth:`tc3d.api.Model.predict` scored it (here or on a Ray
        worker), then save the failures: the same code for a local and a cluster run."""
        for path, p in zip(paths, predictions, strict=True):
            self.record(path, p.get("labels"), p.get("error", "could not be scored"))
        self.save_failures()

    def save_failures(self) -> None:
        """Rewrite ``FILE.failed.jsonl`` (atomically) when there is anything to say."""
        if self.failed or self._failures or self.failed_file.exists():
            text = "".join(json.dumps(v) + "\n" for v in self._failures.values())
            atomic_write_text(text, self.failed_file)

    def summary(self) -> dict:
        return {
            "videos": len(self.videos),
            "tagged": self.tagged,
            "skipped": self.skipped,
            "failed": self.failed,
            "file": str(self.out),
        }


def tag_folder(
    model: Model,
    root: str | Path,
    out: str | Path,
    top_k: int = 5,
    retry_failed: bool = False,
    progress: Progress | None = None,
) -> dict:
    """``tc3d tag``: returns ``{videos, tagged, skipped, failed:[{path, error}], file}``.

    The model's engine serves every chunk: int8 calibrates once (on the model's training
    videos, else the first videos to tag), and only if there is work.
    """
    job = TagJob(root, out, top_k, retry_failed)
    todo = job.todo
    if todo:
        model.engine(todo, videos=len(job.videos))  # the whole job's runtime, resumed or not
    if progress:
        progress(0, len(todo))
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        job.record_predictions(chunk, model.predict(chunk, top_k))
        if progress:
            progress(start + len(chunk), len(todo))
    return job.summary()
