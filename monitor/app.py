"""The FastAPI app factory: ``create_app(settings)``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, OperationalError

from monitor import __version__, metrics, migrate
from monitor.api.routes import (
    alerts,
    health,
    live,
    points,
    rules,
    runs,
    samples,
    series,
    session,
    webhooks,
)
from monitor.db import is_psycopg, make_engine, make_sessionmaker
from monitor.encoding import json_safe, shown, text_fault
from monitor.errors import BadRequest, NotFound
from monitor.guard import GuardMiddleware
from monitor.gzip_request import GzipRequestMiddleware
from monitor.ingest import sweep_stalled
from monitor.notify import Listener
from monitor.schemas import ErrorPublic
from monitor.settings import Settings
from monitor.webhooks.outbox import Handoff
from monitor.webhooks.worker import DeliveryWorker

log = logging.getLogger("ganwatch")


def web_dir() -> Path:
    """The dashboard's static files: the checkout's web/, or the copy installed as monitor/web."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "web", here / "web"):
        if (candidate / "index.html").is_file():
            return candidate
    raise RuntimeError(f"the dashboard files are missing: neither {here.parent / 'web'} "
                       f"nor {here / 'web'} holds index.html; reinstall ganwatch")


def plotly_js() -> Path:
    """Plotly.js as bundled in the installed ``plotly`` package, so the dashboard works offline."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


ERROR_RESPONSES = {
    code: {"model": ErrorPublic, "description": text} for code, text in (
        (400, "Bad request (e.g. a body that claims gzip and is not)"),
        (404, "No such run, series, sample, alert or webhook"),
        (413, "Over a configured limit (named in the detail)"),
        (415, "Not the media type expected"),
        (422, "Malformed or invalid request"),
        (503, "The database is unavailable; retry later"))}


def plain_text_params(request: Request) -> None:
    """Path and query parameters are plain text, as bodies are (monitor/schemas.py text_fault):
    a NUL in one is a 422 here, not an error of the database's. Runs before ``authorize``,
    whose project check looks the run id up: the same 422 on every database."""
    for where, params in (("path", list(request.path_params.items())),
                          ("query", request.query_params.multi_items())):
        for name, value in params:
            fault = text_fault(value) if isinstance(value, str) else None
            if fault is not None:
                raise HTTPException(422, f"the {where} parameter {shown(name)!r} {fault}")


def api_router() -> APIRouter:
    api = APIRouter(prefix="/api/v1", responses={
        **ERROR_RESPONSES, 401: {"model": ErrorPublic, "description": "No valid token"},
        403: {"model": ErrorPublic, "description": "The token may not do this"}},
        dependencies=[Depends(plain_text_params)])
    for module in (health, session, runs, points, series, samples, alerts, rules,
                   webhooks, live):
        api.include_router(module.router)
    return api


# The dashboard's pages: each path serves its HTML file, which loads its data from the API.
PAGES = (("/", "index.html"), ("/compare", "compare.html"), ("/login", "login.html"),
         ("/webhooks", "webhooks.html"), ("/runs/{run_id}", "run.html"))


def _page(path: Path):
    def serve() -> FileResponse:  # path parameters (a run's id) are the page script's to read
        return FileResponse(path)
    return serve


async def _sweep_stalled_runs(app: FastAPI, interval: float) -> None:
    """Every ``interval`` seconds, fire the stalled rule for runs that stopped reporting (a rule
    on a clock: no ingest happens for a run that went silent)."""

    def sweep() -> None:
        with app.state.sessionmaker() as session:
            sweep_stalled(session, handoff=app.state.handoff)

    while True:  # until the server shuts down (the task is cancelled)
        try:
            await asyncio.to_thread(sweep)
        except Exception:  # the database may be down for a while: try again next time
            log.warning("stalled-run check failed", exc_info=True)
        await asyncio.sleep(interval)


class Services:
    """What the server runs beside its routes, for the app's lifetime: the database (migrated
    on start), the live-stream listener, the webhook worker and the stalled-run sweep."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @asynccontextmanager
    async def lifespan(self, app: FastAPI):
        settings = self.settings
        engine = make_engine(settings.resolved_database_url())
        migrate.upgrade(engine)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        log.info("ganwatch %s storing in %s", __version__, engine.url.render_as_string())
        app.state.listener = Listener()
        worker = DeliveryWorker(app.state.sessionmaker, settings)
        # this process's alerts go out at once, to this worker
        app.state.handoff = Handoff(settings.resolved_public_url(), worker)
        tasks = [asyncio.create_task(_sweep_stalled_runs(app, settings.stall_check_interval)),
                 asyncio.create_task(worker.run_forever())]
        if is_psycopg(engine):
            conninfo = engine.url.set(drivername="postgresql").render_as_string(
                hide_password=False)
            tasks.append(asyncio.create_task(app.state.listener.run_forever(conninfo)))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        engine.dispose()


def add_middleware(app: FastAPI, settings: Settings) -> None:
    # first added is innermost: the route is captured next to the router, counted outermost
    app.add_middleware(metrics.RouteCapture)
    app.add_middleware(GzipRequestMiddleware, max_body_bytes=settings.max_body_bytes)
    # Host, Origin and the token before any body is read; nosniff and the CSP on the way out
    app.add_middleware(GuardMiddleware, settings=settings)
    app.add_middleware(metrics.MetricsMiddleware)


def _detail(status: int, detail) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def _out_of_range(exc: Exception) -> JSONResponse:
    # a value the database cannot store (SQLite raises OverflowError for a number too large,
    # PostgreSQL a DataError): the client's mistake, and nothing of it was stored
    first = shown(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 200)
    if isinstance(exc, OverflowError) or "out of range" in first:
        what = "a number in the request is out of range for the database (integers must " \
               "fit in 64 bits)"
    elif "NUL" in first or "0x00" in first:
        what = "text in the request holds a NUL character, which the database cannot store"
    else:
        what = "the database cannot store a value of the request"
    return _detail(422, f"{what}: {first}")


def _database_down(exc: Exception) -> JSONResponse:
    log.warning("database error: %s", exc)
    return _detail(503, "the database is unavailable; retry later")


# Errors as answers, never a 500: (exception, its response). FastAPI's own answer to a
# validation error echoes the input as it came, which may not encode as JSON (a lone
# surrogate, NaN) or be huge: the same errors, made JSON-safe and cut short.
ERROR_HANDLERS = (
    (NotFound, lambda exc: _detail(404, str(exc))),
    (BadRequest, lambda exc: _detail(422, str(exc))),
    (RequestValidationError, lambda exc: _detail(422, json_safe(exc.errors()))),
    (OverflowError, _out_of_range),
    (DataError, _out_of_range),
    (OperationalError, _database_down),
)


def add_error_handlers(app: FastAPI) -> None:
    for exc_type, answer in ERROR_HANDLERS:
        async def handle(_request: Request, exc: Exception, answer=answer) -> JSONResponse:
            return answer(exc)
        app.add_exception_handler(exc_type, handle)


def add_dashboard(app: FastAPI) -> None:
    """The static files, the bundled Plotly, the pages, and Prometheus' /metrics."""
    static = web_dir()
    app.mount("/static", StaticFiles(directory=static), name="static")
    # cacheable: a returning browser reuses the file and its compiled code (megabytes)
    app.add_api_route("/static-vendor/plotly.min.js", lambda: FileResponse(
        plotly_js(), media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"}), include_in_schema=False)
    app.add_api_route("/metrics", _metrics, include_in_schema=False)
    for path, page in PAGES:
        app.add_api_route(path, _page(static / page), methods=["GET"], include_in_schema=False)


def _metrics(request: Request) -> Response:
    """Prometheus text format: this process's counters and the database's queue depths."""
    return Response(metrics.render(request.app.state.sessionmaker),
                    media_type="text/plain; version=0.0.4; charset=utf-8")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(title="ganwatch", version=__version__, lifespan=Services(settings).lifespan,
                  description="Training-health diagnostics for GANs.")
    app.state.settings = settings
    add_middleware(app, settings)
    add_error_handlers(app)
    app.include_router(api_router())
    add_dashboard(app)
    return app
