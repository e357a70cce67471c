"""The Starlette application: two pages, a JSON API under them, two actions.

Reads go through :class:`WorkspaceReader` (read-only SQLite) in a worker thread, so a
slow disk never stalls the event loop. The actions (cancel, refresh) need to write and
to call providers; they use the core's :class:`relay_core.AsyncRelayClient`, opened on
the first action only, so a dashboard nobody acts through never opens the workspace for
writing.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import attrs
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from relay_core.plugin import BatchInputError, JobNotFound, RelayError, unstructure
from relay_dashboard import _auth, _html
from relay_dashboard._reader import (
    FilterError,
    Filters,
    ResultRow,
    ResultsPage,
    Summary,
    WorkspaceReader,
)
from relay_dashboard._settings import Settings, is_loopback

if TYPE_CHECKING:
    from relay_core import AsyncRelayClient, Hub, Job

__all__ = ["create_app"]

T = TypeVar("T")
MAX_LIMIT = 500
# Browsers send this header only from our own script: a page on another origin cannot
# add it without a CORS preflight, which this server never grants. It is what stops a
# hostile site from making a visitor's browser cancel jobs on their localhost dashboard.
ACTION_HEADER = "x-relay-dashboard"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class _Dashboard:
    """What the routes share: the settings, the reader, the client for actions."""

    def __init__(
        self,
        workspace: str | os.PathLike[str],
        settings: Settings,
        hub: Hub | None,
        store: str | None = None,
    ) -> None:
        self.settings = settings.check()
        catalog = settings.catalog or (hub.catalog if hub is not None else None)
        self.reader = WorkspaceReader(Path(workspace), catalog, store)
        self._store = store
        self._hub = hub
        self._client: AsyncRelayClient | None = None

    async def client(self) -> AsyncRelayClient:
        if self._client is None:
            from relay_core import AsyncRelayClient

            self._client = AsyncRelayClient(
                self.reader.directory, self.settings.catalog, hub=self._hub, store=self._store
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self.reader.close()

    @property
    def page_data(self) -> dict[str, object]:
        return {
            "refresh": f"{self.settings.refresh:g}",
            "actions": int(self.settings.actions),
            "token-required": int(self.settings.token is not None),
        }

    async def read(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(function, *args, **kwargs)


def _dashboard(request: Request) -> _Dashboard:
    dashboard: _Dashboard = request.app.state.dashboard
    return dashboard


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FilterError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise FilterError(f"{name} must be from {low} to {high}, not {value}")
    return value


# ---------------------------------------------------------------------------- JSON shapes


def job_json(job: Job) -> dict[str, Any]:
    """A job as the API gives it: every field always present (the core's serializer
    leaves out defaults, which suits files but not a page reading ``counts.failed``)."""
    data = attrs.asdict(job, recurse=True)
    data["providers"] = list(job.providers)
    data["provider_batches"] = list(job.provider_batches)
    data["done"] = job.done
    return data


def row_json(row: ResultRow) -> dict[str, Any]:
    """A request's row: ``response`` and ``error`` as ``results.jsonl`` stores them, and
    beside them, always present, what the page shows."""
    item = row.item
    response = item.response if item else None
    return {
        "index": row.index,
        "custom_id": row.custom_id,
        "state": row.state,
        "preview": _html.preview(row),
        "input_tokens": response.usage.input_tokens if response else None,
        "output_tokens": response.usage.output_tokens if response else None,
        "cost": response.cost.amount if response else None,
        "response": unstructure(response) if response else None,
        "error": attrs.asdict(item.error) if item and item.error else None,
        "problem": row.problem,
    }


def page_json(page: ResultsPage) -> dict[str, Any]:
    return {
        "job_id": page.job_id,
        "offset": page.offset,
        "limit": page.limit,
        "state": page.state,
        "total": page.total,
        "next_offset": page.next_offset,
        "items": [row_json(row) for row in page.rows],
    }


def summary_json(summary: Summary) -> dict[str, Any]:
    return attrs.asdict(summary)


# ---------------------------------------------------------------------------- reads


async def _jobs_and_filters(request: Request) -> tuple[list[Job], Filters]:
    filters = Filters.parse(request.query_params)
    dashboard = _dashboard(request)
    return await dashboard.read(dashboard.reader.jobs, filters), filters


async def api_jobs(request: Request) -> Response:
    jobs, filters = await _jobs_and_filters(request)
    return JSONResponse(
        {"filters": filters.as_query(), "count": len(jobs), "jobs": [job_json(j) for j in jobs]}
    )


async def api_summary(request: Request) -> Response:
    jobs, _ = await _jobs_and_filters(request)
    return JSONResponse(summary_json(Summary.of(jobs)))


async def api_job(request: Request) -> Response:
    dashboard = _dashboard(request)
    job = await dashboard.read(dashboard.reader.job, request.path_params["job_id"])
    return JSONResponse(job_json(job))


async def _page(request: Request) -> ResultsPage:
    dashboard = _dashboard(request)
    offset = _int(request, "offset", 0, low=0, high=2**62)
    limit = _int(request, "limit", dashboard.settings.page_size, low=1, high=MAX_LIMIT)
    state = request.query_params.get("state") or None
    return await dashboard.read(
        dashboard.reader.results,
        request.path_params["job_id"],
        offset=offset,
        limit=limit,
        state=state,
    )


async def api_results(request: Request) -> Response:
    return JSONResponse(page_json(await _page(request)))


async def download(request: Request) -> Response:
    dashboard = _dashboard(request)
    job_id = request.path_params["job_id"]
    path = await dashboard.read(dashboard.reader.results_file, job_id)
    if path is None:
        return _problem(409, f"job {job_id!r} has no results yet; they come when it is done")
    # FileResponse sends the file in chunks: a million-line file never sits in memory.
    return FileResponse(
        path,
        media_type="application/x-ndjson",
        filename=f"{job_id}.results.jsonl",
    )


async def jobs_page(request: Request) -> Response:
    dashboard = _dashboard(request)
    filters = Filters.parse(request.query_params)
    everything = await dashboard.read(dashboard.reader.jobs)
    jobs = [job for job in everything if filters.matches(job)]
    providers = sorted({provider for job in everything for provider in job.providers})
    return HTMLResponse(
        _html.jobs_page(
            jobs=jobs,
            summary=Summary.of(jobs),
            filters=filters,
            providers=providers,
            workspace=str(dashboard.reader.directory),
            data=dashboard.page_data,
        )
    )


async def job_page(request: Request) -> Response:
    dashboard = _dashboard(request)
    job = await dashboard.read(dashboard.reader.job, request.path_params["job_id"])
    page = await _page(request)
    return HTMLResponse(
        _html.job_page(
            job=job, page=page, actions=dashboard.settings.actions, data=dashboard.page_data
        )
    )


# ---------------------------------------------------------------------------- actions


def _refuse(request: Request) -> Response | None:
    """Why this action request may not go ahead, or None when it may."""
    dashboard = _dashboard(request)
    if not dashboard.settings.actions:
        return _problem(403, "this dashboard is read-only (started with --read-only)")
    if request.headers.get(ACTION_HEADER) != "1":
        return _problem(403, f"actions must send the {ACTION_HEADER}: 1 header")
    token = dashboard.settings.token
    if token is None or _auth.authorised(request, token):
        return None
    return _problem(401, "this action needs the dashboard's token (Authorization: Bearer)")


async def cancel(request: Request) -> Response:
    if (refused := _refuse(request)) is not None:
        return refused
    client = await _dashboard(request).client()
    job = await client.cancel_batch(request.path_params["job_id"])
    return JSONResponse(job_json(job))


async def refresh(request: Request) -> Response:
    """Ask a provider batch job's providers for news; fetch its results once it is done."""
    if (refused := _refuse(request)) is not None:
        return refused
    client = await _dashboard(request).client()
    job_id = request.path_params["job_id"]
    job = await client.monitor_batch(job_id)
    if job.mode == "batch" and job.done and not job.has_results:
        job = await client.retrieve(job_id)
    return JSONResponse(job_json(job))


# ---------------------------------------------------------------------------- the app


def _status_of(error: Exception) -> int:
    from relay_core.plugin import JobConflict, ProviderError, ResultsNotReady, WorkspaceError

    if isinstance(error, FilterError):
        return 400
    if isinstance(error, WorkspaceError):
        return 503  # the disk refused (full, read-only): nothing the caller can change
    if isinstance(error, (JobNotFound, BatchInputError)):
        return 404  # a malformed id names no job either
    if isinstance(error, (JobConflict, ResultsNotReady)):
        return 409
    if isinstance(error, ProviderError):
        return 502  # the provider failed an action: not the caller's fault, nor ours
    return 500


async def _error(request: Request, error: Exception) -> Response:
    status = _status_of(error)
    message = str(error)
    if request.url.path.startswith("/api/"):
        return _problem(status, message)
    title = {
        400: "Bad request",
        404: "Job not found",
        503: "The workspace cannot be used",
    }.get(status, "Something went wrong")
    page = _html.error_page(title, message, data=_dashboard(request).page_data)
    return HTMLResponse(page, status_code=status)


def _host_allowed(dashboard: _Dashboard, host_header: str) -> bool:
    """On loopback, answer only requests addressed to a loopback name: a page on a
    hostile site can point its own DNS name at 127.0.0.1 (DNS rebinding), and its
    requests then carry that name."""
    if not is_loopback(dashboard.settings.host):
        return True
    name = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    return name.lower() in LOOPBACK_NAMES


# What a caller without the token may fetch where reads are guarded: the login form,
# and the page's script and style (no workspace data in either).
PUBLIC_PATHS = ("/login", "/static/")


def _is_public(path: str) -> bool:
    return path == PUBLIC_PATHS[0] or path.startswith(PUBLIC_PATHS[1])


async def _login_page(request: Request) -> Response:
    dashboard = _dashboard(request)
    if dashboard.settings.token is None:
        return _problem(404, "this dashboard has no token, so no login")
    next_path = request.query_params.get("next", "/")
    return _auth.login_form(request, next_path, status=200, data=dashboard.page_data)


async def _login(request: Request) -> Response:
    dashboard = _dashboard(request)
    return await _auth.login(request, dashboard.settings.token, dashboard.page_data)


def _without_token(request: Request) -> str:
    kept = [(key, value) for key, value in request.query_params.multi_items() if key != "token"]
    return request.url.path + (f"?{urlencode(kept)}" if kept else "")


def _unauthorised(request: Request, dashboard: _Dashboard) -> Response | None:
    """The answer to a read without the token where reads need it, else None."""
    token = dashboard.settings.token
    if not dashboard.settings.guards_reads or _is_public(request.url.path):
        return None
    if token is None:  # Settings.check refuses this; never serve data by mistake
        return _problem(403, "this dashboard has no token and listens beyond localhost")
    if _auth.authorised(request, token):
        return None
    given = request.query_params.get("token")
    if given is not None and request.method == "GET" and _auth.token_matches(given, token):
        # Opened once as /...?token=: the cookie stands for it from now on, and the
        # token leaves the address bar (history, bookmarks, a shared link).
        return _auth.with_session(
            RedirectResponse(_without_token(request), status_code=303), request, token
        )
    if request.url.path.startswith("/api/"):
        return _problem(401, "this dashboard needs its token: Authorization: Bearer <token>")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _auth.login_form(request, target, data=dashboard.page_data)


async def _guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    dashboard = _dashboard(request)
    if not _host_allowed(dashboard, request.headers.get("host", "")):
        response: Response = _problem(421, "this dashboard answers on localhost only")
    elif (refused := _unauthorised(request, dashboard)) is not None:
        response = refused
    else:
        response = await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    return response


def create_app(
    workspace: str | os.PathLike[str],
    settings: Settings | None = None,
    *,
    hub: Hub | None = None,
    store: str | None = None,
) -> Starlette:
    """The dashboard over ``workspace`` as an ASGI application (for tests, or to mount
    in your own server).

    The actions call providers through ``hub`` when given (it stays yours to close),
    else through a hub over ``settings.catalog``. Raises :class:`relay_core.ConfigError`
    when ``workspace`` is not a Relay workspace or ``settings`` cannot be served (see
    :meth:`Settings.check`). ``store`` is the workspace's store when its records are not
    in the directory's SQLite (a URL, or ``$env.NAME``): pages read it read-only."""
    dashboard = _Dashboard(workspace, settings or Settings(), hub, store)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await dashboard.close()

    static = StaticFiles(directory=Path(__file__).parent / "static")
    app = Starlette(
        routes=[
            Route("/", jobs_page),
            Route("/login", _login_page, methods=["GET"]),
            Route("/login", _login, methods=["POST"]),
            Route("/jobs/{job_id}", job_page),
            Route("/api/jobs", api_jobs),
            Route("/api/summary", api_summary),
            Route("/api/jobs/{job_id}", api_job),
            Route("/api/jobs/{job_id}/results", api_results),
            Route("/api/jobs/{job_id}/results.jsonl", download),
            Route("/api/jobs/{job_id}/cancel", cancel, methods=["POST"]),
            Route("/api/jobs/{job_id}/refresh", refresh, methods=["POST"]),
            Mount("/static", static, name="static"),
        ],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=_guard)],
        exception_handlers={RelayError: _error, FilterError: _error},
        lifespan=lifespan,
    )
    app.state.dashboard = dashboard
    return app
