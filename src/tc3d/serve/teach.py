"""Teach mode's routes (DESIGN A9b): add clips, train in the background, follow, download.

Handlers are thin over :mod:`tc3d.apps.teach`: a clip goes into the teach set's folder
(``--teach-dir``, in the ``folder`` layout ``tc3d train --data`` reads), and "Train" runs ``tc3d
teach train`` on that folder as a child process, exactly as a user would at a terminal. Why a
process, not a thread of the server: training sets the process's thread count and forks data
loader workers, neither of which belongs inside a server that is also answering the camera; and
the run then lives on its own: it writes ``runs/NAME/status.json`` as it goes, keeps its
checkpoints in the run folder, and carries on whether or not any page is still watching. One
run at a time (two would halve each other's speed on a small machine). The child is in a
session of its own: stopping the server (Ctrl-C) does not stop a run half way; it finishes, and
a server started later on the same ``--teach-dir`` serves its model.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response

from tc3d.apps.teach import TeachError, TeachSet, clean_label, new_name, valid_name
from tc3d.errors import first_line
from tc3d.video.decode import VideoReadError, open_video

log = logging.getLogger(__name__)

HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=HEADERS)


def _check_clip(path: Path) -> int:
    """Frames of a readable clip; :class:`TeachError` otherwise."""
    try:
        with open_video(path) as video:
            n = sum(1 for _ in video.frames())
    except VideoReadError as e:
        raise TeachError(f"not a readable video: {e.reason}") from None
    if n < 1:
        raise TeachError("the clip has no frames")
    return n


class Teacher:
    """The teach set of one server and its training runs (child processes)."""

    def __init__(self, root: Path, on_model=None, iters: int | None = None):
        self.set, self.iters = TeachSet(root), iters
        self.procs: dict[str, subprocess.Popen] = {}
        self.on_model = on_model  # called with (name, file) when a run is found finished

    def running(self) -> str | None:
        """The run still training (its process alive and its status not yet final)."""
        for name, proc in self.procs.items():
            if proc.poll() is None and (self.set.status(name) or {}).get("state") == "running":
                return name
        return None

    def model_file(self, name: str) -> Path | None:
        if not valid_name(name):
            return None
        path = self.set.model_file(name)
        return path if path.is_file() else None

    async def overview(self, request: Request) -> Response:
        return JSONResponse({"classes": self.set.counts(), "running": self.running()},
                            headers=HEADERS)  # fmt: skip

    async def add(self, request: Request) -> Response:
        """``POST /api/teach`` (multipart ``label``, ``video``): one clip into the set."""
        try:
            form = await request.form(max_files=1, max_fields=4)
        except HTTPException as e:
            return _error(413 if request.scope.get("tc3d.over_limit") else 400,
                          f"bad upload: {e.detail}")  # fmt: skip
        except ClientDisconnect:
            return _error(400, "upload interrupted")
        try:
            upload = form.get("video")
            if not isinstance(upload, UploadFile) or not upload.size:
                return _error(400, "send the clip as the multipart field 'video'")
            try:
                label = clean_label(str(form.get("label") or ""))
                suffix = Path(upload.filename or "").suffix.lower() or ".webm"
                frames = await run_in_threadpool(self._save, upload, label, suffix)
            except TeachError as e:
                return _error(422, str(e))
        finally:
            await form.close()
        request.scope["tc3d.note"] = f"teach clip: {label}, {frames} frames"
        return JSONResponse({"label": label, "frames": frames, "classes": self.set.counts()},
                            headers=HEADERS)  # fmt: skip

    def _save(self, upload: UploadFile, label: str, suffix: str) -> int:
        with tempfile.NamedTemporaryFile(suffix=suffix if len(suffix) <= 6 else ".webm") as tmp:
            upload.file.seek(0)
            while chunk := upload.file.read(1 << 20):
                tmp.write(chunk)
            tmp.flush()
            frames = _check_clip(Path(tmp.name))
            self.set.add(label, tmp.name, suffix)
        return frames

    async def train(self, request: Request) -> Response:
        """``POST /api/teach/train``: start a run; ``{"job": NAME}``."""
        busy = self.running()
        if busy:
            return _error(409, f"a model is being taught already (job {busy})")
        counts = self.set.counts()
        if len(counts) < 2:
            return _error(400, f"teach at least two classes first (have: {counts or 'none'})")
        form = await request.form(max_files=0, max_fields=4)
        iters = str(form.get("iters") or self.iters or "")
        await form.close()
        name = new_name()
        cmd = [sys.executable, "-m", "tc3d", "teach", "train", "--dir", str(self.set.root),
               "--name", name, "--json"]  # fmt: skip
        if iters.isdigit() and 0 < int(iters) <= 10_000:
            cmd += ["--iters", iters]
        self.set.write_status(name, "running", 0)
        log_file = open(self.set.run_dir(name) / "teach.log", "ab")  # noqa: SIM115 - the child's
        self.procs[name] = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL,
                                            start_new_session=True)  # fmt: skip
        log_file.close()
        request.scope["tc3d.note"] = f"teach job {name}: {counts}"
        return JSONResponse({"job": name}, headers=HEADERS)

    def job(self, name: str) -> dict | None:
        """``{state, progress, model, error}`` of a run (None: no such run)."""
        status = self.set.status(name) if valid_name(name) else None
        if status is None:
            return None
        proc = self.procs.get(name)
        if status["state"] == "running" and proc is not None and proc.poll() is not None:
            status = self.set.status(name) or status  # it may have finished just now
            if status["state"] == "running":
                why = self._last_line(name) or f"exit code {proc.returncode}"
                status = self.set.write_status(name, "failed", 0, why)
        if status["state"] == "done" and self.on_model is not None:
            path = self.model_file(name)
            if path is not None:
                self.on_model(name, path)
        return status

    def _last_line(self, name: str) -> str:
        try:
            lines = (self.set.run_dir(name) / "teach.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return first_line(next((x for x in reversed(lines) if x.strip()), ""))

    async def status(self, request: Request) -> Response:
        status = await run_in_threadpool(self.job, request.path_params["job"])
        if status is None:
            return _error(404, "no such teach job")
        return JSONResponse(status, headers=HEADERS)

    async def download(self, request: Request) -> Response:
        """``GET /api/models/NAME.tc3d``: a taught model's file."""
        file = request.path_params["file"]
        path = self.model_file(file[: -len(".tc3d")]) if file.endswith(".tc3d") else None
        if path is None:
            return _error(404, "no such model")
        return FileResponse(path, media_type="application/octet-stream", filename=path.name,
                            headers=HEADERS)  # fmt: skip
