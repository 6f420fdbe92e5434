"""``tc3d serve``: one local web page and ``POST /api/predict``.

Why Starlette + uvicorn and one static page, not Gradio: the page has to work with no network
at all, and Gradio's default theme loads web fonts from a CDN and its front end is a large
bundle we would have to audit for other fetches; its components also have no place for a
per-window timeline or an inline anomaly curve. The API has a fixed contract (field
``video``, 413 over the limit, ``{"error": ...}`` on bad input) that is a few lines of
Starlette, and the page is one HTML file, one script and one style sheet shipped as package
data, all served from memory under a Content-Security-Policy that forbids any other origin.
Starlette and uvicorn are small, typed, widely used, and depend on nothing heavy.

Handlers are thin: parse the request, call :func:`tc3d.serve.analysis.analyse`
(itself the library's predict, stream, CAM and anomaly functions), return JSON. Uploads go
to a temporary file that is deleted as soon as the analysis ends; no URL maps to a path on the
server (static files and examples are looked up by name in fixed tables).
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tc3d.api import load_model
from tc3d.apps.teach import default_dir
from tc3d.errors import first_line
from tc3d.serve.analysis import ServedModel, UnreadableVideo, analyse
from tc3d.serve.examples import Example, make_examples
from tc3d.serve.live import live
from tc3d.serve.middleware import BodyLimit, RequestLog
from tc3d.serve.teach import Teacher

log = logging.getLogger(__name__)

MB = 1 << 20
MULTIPART_SLACK = 64 * 1024  # field headers and boundaries around the file
STATIC = {  # URL name -> (package file, media type): the only files the page can read
    "page.js": ("page.js", "text/javascript; charset=utf-8"),
    "page.css": ("page.css", "text/css; charset=utf-8"),
    "live.js": ("live.js", "text/javascript; charset=utf-8"),
}
HEADERS = {
    # The page may load nothing from any other origin: it must work offline, and a CSP makes
    # the browser refuse, not just us avoid, any outside fetch.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; style-src 'self'; script-src 'self'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass
class ServeConfig:
    models: list[str] = field(default_factory=lambda: ["motion"])  # files or shipped names
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: float = 500.0  # MiB
    device: str = "cpu"
    precision: str = "fp32"
    top: int = 5
    teach_dir: str | None = None  # teach mode's clips, runs and models (None: tc3d's cache)
    teach_iters: int | None = None  # training steps of a teach run (None: the recipe's)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=HEADERS)


def _display_name(filename: str | None) -> str:
    """The user's file name without any directory part or control characters."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(c for c in name if c.isprintable())[:200].strip()
    return name or "upload"


def _save(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with open(path, "wb") as f:
        shutil.copyfileobj(upload.file, f, MB)


@dataclass
class _Ask:
    """What one ``POST /api/predict`` asks for, checked."""

    upload: UploadFile
    served: ServedModel
    top: int
    cam: bool
    name: str  # the user's file name, the only name the answer shows


class _Site:
    """The page's handlers over the served models and examples."""

    def __init__(self, models: dict[str, ServedModel], examples: dict[str, Example],
                 upload_dir: Path, max_upload_bytes: int, top: int):  # fmt: skip
        self.models, self.examples, self.upload_dir = models, examples, upload_dir
        self.max_upload_bytes, self.top = max_upload_bytes, top
        self.teacher: Teacher | None = None
        self.loader: Callable[[str, Path], ServedModel] | None = None
        self.loading = threading.Lock()
        static = resources.files("tc3d.serve") / "static"
        self.page = (static / "index.html").read_bytes()
        self.files = {k: ((static / f).read_bytes(), t) for k, (f, t) in STATIC.items()}
        self.limit_text = f"upload over the {max_upload_bytes / MB:g} MB limit"

    def served(self, name: str | None) -> ServedModel | None:
        """The model the page calls ``name`` (None: the first one); a taught model is loaded
        the first time it is asked for. None when there is no such model."""
        if not name:
            return next(iter(self.models.values()))
        if name in self.models:
            return self.models[name]
        path = self.teacher.model_file(name) if self.teacher else None
        if path is not None and self.loader is not None:
            self.add_model(name, path)
        return self.models.get(name)

    def add_model(self, name: str, path: Path) -> None:
        with self.loading:
            if name not in self.models:
                self.models[name] = self.loader(name, path)
                log.info("loaded the taught model %s", name)

    async def live(self, ws: WebSocket) -> None:
        name = ws.query_params.get("model")
        served = await run_in_threadpool(self.served, name)
        await live(ws, served, f"unknown model; this server has: {', '.join(self.models)}")

    async def index(self, request: Request) -> Response:
        return Response(self.page, media_type="text/html; charset=utf-8", headers=HEADERS)

    async def static_file(self, request: Request) -> Response:
        hit = self.files.get(request.path_params["name"])
        if hit is None:
            return _error(404, "not found")
        return Response(hit[0], media_type=hit[1], headers=HEADERS)

    async def info(self, request: Request) -> Response:
        return JSONResponse(
            {
                "models": [m.describe() for m in self.models.values()],
                "examples": [e.describe() for e in self.examples.values()],
                "max_upload_mb": self.max_upload_bytes / MB,
                "top": self.top,
            },
            headers=HEADERS,
        )

    async def example(self, request: Request) -> Response:
        hit = self.examples.get(request.path_params["name"])
        if hit is None:
            return _error(404, "not found")
        return FileResponse(hit.path, media_type="video/x-msvideo", headers=HEADERS)

    async def predict(self, request: Request) -> Response:
        try:
            form = await request.form(max_files=1, max_fields=8)
        except HTTPException as e:  # malformed multipart (or cut short by the size limit)
            if request.scope.get("tc3d.over_limit"):
                return _error(413, self.limit_text)
            return _error(400, f"bad upload: {e.detail}")
        except ClientDisconnect:  # the user left mid-upload: nobody reads the answer
            return _error(400, "upload interrupted")
        try:
            ask = self._ask(request, form)
            return ask if isinstance(ask, Response) else await self._answer(request, ask)
        finally:
            await form.close()

    def _ask(self, request: Request, form) -> _Ask | Response:
        """The checked request, or the error answer."""
        if request.scope.get("tc3d.over_limit"):
            return _error(413, self.limit_text)
        upload = form.get("video")
        if not isinstance(upload, UploadFile):
            got = ", ".join(sorted(set(form.keys()))) or "none"
            return _error(400, f"send the video as the multipart field 'video' (got: {got})")
        served = self.served(str(form.get("model") or ""))
        if served is None:
            return _error(400, f"unknown model; this server has: {', '.join(self.models)}")
        try:
            k = int(form.get("top") or self.top)
        except ValueError:
            return _error(400, "top must be a whole number")
        k = max(1, min(k, len(served.model.classes)))
        cam = str(form.get("cam") or "").lower() in ("1", "true", "yes", "on")
        name = _display_name(upload.filename)
        if not upload.size:
            return _error(400, f"{name}: empty upload")
        if upload.size > self.max_upload_bytes:
            return _error(413, self.limit_text)
        return _Ask(upload, served, k, cam, name)

    async def _answer(self, request: Request, ask: _Ask) -> Response:
        """Save the upload, analyse it, delete it; the analysis or the error as JSON."""
        name = ask.name
        suffix = Path(name).suffix
        suffix = suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""
        path = self.upload_dir / f"{uuid.uuid4().hex}{suffix}"
        try:
            await run_in_threadpool(_save, ask.upload, path)
            result = await run_in_threadpool(analyse, ask.served, path, name, ask.top, ask.cam)
        except UnreadableVideo as e:
            request.scope["tc3d.note"] = f"{name}: unreadable"
            line = first_line(str(e).replace(str(path), name))
            return _error(422, f"{name}: {line}")
        except Exception as e:  # a bug or a resource failure: say so, keep serving
            log.warning("analysis of %s failed", name, exc_info=log.isEnabledFor(10))
            line = first_line(e).replace(str(path), name)
            return _error(500, f"{name}: analysis failed: {line}")
        finally:
            path.unlink(missing_ok=True)
        best = result["results"][0]["labels"][0]
        request.scope["tc3d.note"] = f"{name} -> {best['label']} ({result['seconds']:.2f} s)"
        return JSONResponse(result, headers=HEADERS)

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail).lower())


def create_app(
    models: dict[str, ServedModel],
    examples: dict[str, Example],
    upload_dir: Path,
    max_upload_bytes: int,
    top: int = 5,
    teach_dir: Path | None = None,
    loader: Callable[[str, Path], ServedModel] | None = None,
    teach_iters: int | None = None,
):
    """The ASGI app: the page, its script and style, ``/api/info``, ``/examples/NAME``,
    ``POST /api/predict``, ``WS /api/live`` and teach mode's routes (clips, runs and models kept
    under ``teach_dir``; ``loader(name, file)`` loads a taught model). Uploads are written under
    ``upload_dir`` and deleted after use."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    site = _Site(models, examples, upload_dir, max_upload_bytes, top)
    site.loader = loader or _load_taught
    teacher = site.teacher = Teacher(teach_dir or default_dir(), site.add_model, teach_iters)
    app = Starlette(
        routes=[
            Route("/", site.index),
            Route("/static/{name}", site.static_file),
            Route("/api/info", site.info),
            Route("/examples/{name}", site.example),
            Route("/api/predict", site.predict, methods=["POST"]),
            WebSocketRoute("/api/live", site.live),
            Route("/api/teach", teacher.overview),
            Route("/api/teach", teacher.add, methods=["POST"]),
            Route("/api/teach/train", teacher.train, methods=["POST"]),
            Route("/api/teach/{job}", teacher.status),
            Route("/api/models/{file}", teacher.download),
        ],
        exception_handlers={HTTPException: site.http_error},
    )
    return RequestLog(BodyLimit(app, max_upload_bytes + MULTIPART_SLACK, site.limit_text))


def _model_names(models: list[str]) -> list[str]:
    """Page names: a shipped model's name, else the file's stem; repeats numbered."""
    names: list[str] = []
    for m in models:
        path = Path(m)
        base = m if "/" not in m and not path.suffix else path.stem
        if base in ("best", "last") and path.parent.name:  # runs/s3/best.pt -> s3-best
            base = f"{path.parent.name}-{base}"
        name, i = base, 2
        while name in names:
            name, i = f"{base}-{i}", i + 1
        names.append(name)
    return names


def load_served(name: str, spec: str | Path, cfg: ServeConfig, calibration: list[Path]):
    """One model, loaded, its engine made (int8 calibrates, on the examples when the model's
    training videos are not at hand) and warmed up on one example."""
    model = load_model(spec, cfg.device, cfg.precision)
    model.engine(calibration_fallback=[str(p) for p in calibration])
    if calibration:
        model.predict(calibration[:1])  # the first request should not pay the warm-up
    return ServedModel.wrap(name, model)


def load_served_models(cfg: ServeConfig, calibration: list[Path]) -> dict[str, ServedModel]:
    """Every ``--model`` (:func:`load_served`)."""
    names = _model_names(cfg.models)
    return {n: load_served(n, s, cfg, calibration) for n, s in zip(names, cfg.models, strict=True)}


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free one); OSError says why not, e.g. port in use."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock


def serve(cfg: ServeConfig, announce: Callable[[str], None] = print) -> str:
    """Run the server until interrupted; returns its URL. ``announce`` gets the start-up lines
    (the URL once the server accepts connections)."""
    import uvicorn

    sock = bind(cfg.host, cfg.port)  # first: a port in use fails before minutes of loading
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    try:
        with tempfile.TemporaryDirectory(prefix="tc3d-serve-") as tmp:
            work = Path(tmp)
            announce("rendering the example videos, loading the model(s)...")
            examples = make_examples(work / "examples")
            models = load_served_models(cfg, [e.path for e in examples.values()])
            limit = int(cfg.max_upload_mb * MB)
            calibration = [e.path for e in examples.values()]
            teach_dir = Path(cfg.teach_dir).expanduser() if cfg.teach_dir else default_dir()
            app = create_app(models, examples, work / "uploads", limit, cfg.top, teach_dir,
                             lambda n, p: load_served(n, p, cfg, calibration),
                             cfg.teach_iters)  # fmt: skip
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                    timeout_graceful_shutdown=5)  # fmt: skip
            announce(f"serving {', '.join(models)} at {url}  (Ctrl-C stops)")
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return url


def _load_taught(name: str, path: Path) -> ServedModel:
    """A taught model with its engine ready (fp32 on OpenVINO converts here, once), so the
    live view's first decision on it does not wait for the conversion."""
    model = load_model(path, "cpu")
    model.engine()
    return ServedModel.wrap(name, model)
