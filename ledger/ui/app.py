"""The dashboard's Starlette application: GET routes only, server-rendered with Jinja2.

Each page is a full document for a browser's own request and, for htmx's (the `HX-Request`
header), only the fragment that changes: the runs list, a run's live part (progress, errors, jobs,
chart data), a page of its requests, one request. A run's live part and a job not yet normalized
poll themselves (`hx-trigger="every 2s"`) and render without the trigger once finished, so polling
stops by itself; the runs list polls every 2 s while a run is live, else every 15 s (so a run
submitted meanwhile appears).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jinja2
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ledger.ui import charts, queries
from ledger.ui.requests import RequestFilter, request_detail, request_page
from ledger.ui.security import Guard
from ledger.usage.pricing import PriceTable, usd

#: Seconds between two refreshes of a page whose runs are live, and of the runs list when idle
#: (so a run submitted meanwhile appears).
LIVE_POLL_SECONDS = 2
IDLE_POLL_SECONDS = 15


def create_app(
    engine: Engine,
    prices: PriceTable,
    *,
    token: str | None = None,
    hosts: tuple[str, ...] = (),
    database: str = "",
) -> Starlette:
    """The dashboard over a read-only `engine` (see `ledger.ui.readonly`)."""
    templates = Jinja2Templates(env=_environment())
    pages = _Pages(engine, prices, templates, database)
    return Starlette(
        routes=pages.routes(),
        middleware=[Middleware(Guard, token=token, hosts=hosts)],
    )


class _Pages:
    def __init__(
        self, engine: Engine, prices: PriceTable, templates: Jinja2Templates, database: str
    ) -> None:
        self.engine = engine
        self.prices = prices
        self.templates = templates
        self.database = database

    def routes(self) -> list[BaseRoute]:
        # Every route is GET (Starlette adds HEAD): nothing on the dashboard can change the ledger.
        def get(path: str, endpoint: Callable[[Request], Response]) -> Route:
            return Route(path, endpoint, methods=["GET"])

        return [
            get("/", self.runs),
            get("/runs/{run_id:int}", self.run),
            get("/runs/{run_id:int}/live", self.run_live),
            get("/runs/{run_id:int}/requests", self.requests),
            get("/runs/{run_id:int}/requests/{request_id:int}", self.request),
            get("/runs/{run_id:int}/jobs/{job_id:int}", self.job),
            Mount("/static", StaticFiles(packages=[("ledger.ui", "static")]), name="static"),
        ]

    def render(self, request: Request, name: str, context: dict[str, Any]) -> Response:
        context = {
            "database": self.database,
            "live_poll": LIVE_POLL_SECONDS,
            "idle_poll": IDLE_POLL_SECONDS,
            **context,
        }
        response = self.templates.TemplateResponse(request, name, context)
        response.headers["Vary"] = "HX-Request"
        return response

    def runs(self, request: Request) -> Response:
        with self.engine.connect() as connection:
            runs = queries.list_runs(connection, self.prices)
        template = "_runs.html" if _fragment(request) else "runs.html"
        return self.render(request, template, {"runs": runs, "shown": queries.RUNS_SHOWN})

    def _run(self, connection: Any, run_id: int) -> queries.RunSummary:
        found = queries.list_runs(connection, self.prices, [run_id])
        if not found:
            raise HTTPException(404, f"no run {run_id}")
        return found[0]

    def _live_context(self, connection: Any, run: queries.RunSummary) -> dict[str, Any]:
        costs = charts.cost_by_model(connection, run.id, self.prices)
        finished = charts.finished_over_time(connection, run.id)
        return {
            "run": run,
            "jobs": queries.run_jobs(connection, run.id),
            "errors": queries.error_groups(connection, run.id),
            "chart_data": charts.chart_data(run, finished, costs),
        }

    def run(self, request: Request) -> Response:
        return self._run_page(request, RequestFilter.from_query(request.query_params))

    def _run_page(self, request: Request, chosen: RequestFilter, detail: Any = None) -> Response:
        run_id = int(request.path_params["run_id"])
        with self.engine.connect() as connection:
            run = self._run(connection, run_id)
            context = self._live_context(connection, run)
            context["page"] = request_page(connection, run_id, chosen)
        context["detail"] = detail
        return self.render(request, "run.html", context)

    def run_live(self, request: Request) -> Response:
        run_id = int(request.path_params["run_id"])
        with self.engine.connect() as connection:
            context = self._live_context(connection, self._run(connection, run_id))
        return self.render(request, "_run_live.html", context)

    def requests(self, request: Request) -> Response:
        chosen = RequestFilter.from_query(request.query_params)
        if not _fragment(request):
            return self._run_page(request, chosen)
        run_id = int(request.path_params["run_id"])
        with self.engine.connect() as connection:
            run = self._run(connection, run_id)
            page = request_page(connection, run_id, chosen)
        return self.render(request, "_request_list.html", {"run": run, "page": page})

    def request(self, request: Request) -> Response:
        run_id = int(request.path_params["run_id"])
        request_id = int(request.path_params["request_id"])
        with self.engine.connect() as connection:
            run = self._run(connection, run_id)
            detail = request_detail(connection, run_id, request_id)
        if detail is None:
            raise HTTPException(404, f"run {run.name} has no request {request_id}")
        if not _fragment(request):
            return self._run_page(request, RequestFilter(), detail)
        return self.render(request, "_request.html", {"run": run, "detail": detail})

    def job(self, request: Request) -> Response:
        run_id = int(request.path_params["run_id"])
        job_id = int(request.path_params["job_id"])
        with self.engine.connect() as connection:
            run = self._run(connection, run_id)
            jobs = queries.run_jobs(connection, run_id, job_id)
        if not jobs:
            raise HTTPException(404, f"run {run.name} has no job {job_id}")
        template = "_job.html" if _fragment(request) else "job.html"
        return self.render(request, template, {"run": run, "job": jobs[0]})


def _fragment(request: Request) -> bool:
    """htmx asked for the changing part only (a history restore wants the whole page)."""
    headers = request.headers
    return "hx-request" in headers and "hx-history-restore-request" not in headers


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("ledger.ui", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters.update(
        utc=utc, duration=duration, usd=usd, num=lambda n: f"{n or 0:,}", compact=compact_json
    )
    return environment


def utc(epoch: float | None) -> str:
    """`2026-11-29 03:43:02Z`."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def duration(seconds: float | None) -> str:
    """`0.15 s`, `42 s`, `3 min 4 s`, `2 h 5 min`, `1 d 3 h`."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.1f} s"
    whole = round(seconds)
    for unit, size, smaller, small_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "min", 60),
        ("min", 60, "s", 1),
    ):
        if whole >= size:
            rest = (whole % size) // small_size
            return f"{whole // size} {unit}" + (f" {rest} {smaller}" if rest else "")
    return f"{whole} s"


def compact_json(value: Any) -> str:
    """A value as one line of JSON (event details)."""
    if value is None:
        return ""
    return json.dumps(value, separators=(", ", ": "), default=str)
