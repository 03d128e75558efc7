"""Every page of `ledger ui` answers from SQLite and from PostgreSQL alike, as a browser and as
htmx ask for it (the browser tests look at them closely, on SQLite)."""

from __future__ import annotations

import http.client
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from support.uikit import FINISHED_RUN, LIVE_RUN, build_dashboard_ledger, running_ui

from ledger.query.sql import run_readonly_query


def get(url: str, path: str, *, htmx: bool = False) -> str:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection.request("GET", path, headers={"HX-Request": "true"} if htmx else {})
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    assert response.status == 200, (path, response.status, body[:500])
    return body


def test_every_page_answers_on_each_database(db_url: str, tmp_path: Path) -> None:
    """Runs, a run, its live part, a filtered page of requests, one request and a job."""
    ledger = build_dashboard_ledger(tmp_path, db_url)

    def one(query: str) -> tuple[Any, ...]:
        return run_readonly_query(db_url, query).rows[0]

    (run,) = one(f"SELECT id FROM runs WHERE name = '{FINISHED_RUN}'")
    request, custom_id = one(
        f"SELECT id, custom_id FROM requests WHERE run_id = {run} AND status = 'failed' "
        "ORDER BY line_number LIMIT 1"
    )
    (failed,) = one(f"SELECT count(*) FROM requests WHERE run_id = {run} AND status = 'failed'")
    (job,) = one(f"SELECT min(id) FROM jobs WHERE run_id = {run}")
    with running_ui(ledger.url) as ui:
        runs = get(ui.url, "/")
        assert FINISHED_RUN in runs and LIVE_RUN in runs and "60</b> of 60 done" in runs
        assert 'hx-trigger="every 2s"' in get(ui.url, "/", htmx=True)
        page = get(ui.url, f"/runs/{run}")
        assert "Errors by code" in page and 'id="chart-data"' in page
        live = get(ui.url, f"/runs/{run}/live", htmx=True)
        assert 'hx-swap-oob="true"' in live and "<html" not in live
        listed = get(ui.url, f"/runs/{run}/requests?status=failed", htmx=True)
        assert f"{failed} matching" in listed and listed.count('class="request"') == failed
        assert "<html" in get(ui.url, f"/runs/{run}/requests?status=failed")
        detail = get(ui.url, f"/runs/{run}/requests/{request}", htmx=True)
        assert custom_id in detail and "Input, as sent" in detail
        assert "Timeline" in get(ui.url, f"/runs/{run}/jobs/{job}")


def test_a_request_page_reads_the_stored_files_with_the_run_folder_gone(
    db_url: str, tmp_path: Path
) -> None:
    """The dashboard on a machine without the run's folder: a request's input line and result
    are read from the artifact store."""
    ledger = build_dashboard_ledger(tmp_path, db_url)
    [(run, request, custom_id)] = run_readonly_query(
        db_url,
        f"SELECT r.id, q.id, q.custom_id FROM runs r JOIN requests q ON q.run_id = r.id "
        f"WHERE r.name = '{FINISHED_RUN}' AND q.status = 'failed' ORDER BY q.line_number LIMIT 1",
    ).rows
    shutil.rmtree(tmp_path / "runs")
    with running_ui(ledger.url) as ui:
        detail = get(ui.url, f"/runs/{run}/requests/{request}", htmx=True)
    assert "cannot read" not in detail and "not in" not in detail
    assert detail.count(custom_id) >= 2  # the line as sent and its result
    assert "no result yet" not in detail
