"""`ledger ui` in a real browser, over a ledger the emulator filled: what a person sees.

Set LEDGER_UPDATE_SCREENSHOTS=1 to write the screenshots these tests take into docs/img/ (they
are always taken, into the test's tmp_path, and checked to be real images).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from support.uikit import (
    FINISHED_RUN,
    LIVE_RUN,
    MODEL_REQUESTS,
    DashboardLedger,
    build_dashboard_ledger,
    running_ui,
)

from ledger.core.db import open_ledger
from ledger.core.models import Job
from ledger.query.sql import run_readonly_query

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> DashboardLedger:
    """The finished run and the live run, recorded once for the module."""
    return build_dashboard_ledger(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="module")
def ui(ledger: DashboardLedger) -> Iterator[str]:
    """`ledger ui` over that ledger; yields its URL."""
    with running_ui(ledger.url) as running:
        yield running.url


def sql(ledger: DashboardLedger, query: str) -> list[tuple[Any, ...]]:
    return run_readonly_query(ledger.url, query).rows


def run_id(ledger: DashboardLedger, name: str) -> int:
    return sql(ledger, f"SELECT id FROM runs WHERE name = '{name}'")[0][0]


def shoot(target: Any, name: str, tmp_path: Path) -> Path:
    """A screenshot of a page or an element: a real PNG of some size, kept for docs/ when asked."""
    path = tmp_path / name
    target.screenshot(path=str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    if os.environ.get("LEDGER_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / name)
    return path


def test_runs_page_shows_each_run_with_its_progress(
    page: Any, ui: str, ledger: DashboardLedger
) -> None:
    """Both runs by name, their counts, a progress bar split by status, cost against the estimate;
    the list keeps refreshing while a run is live."""
    from playwright.sync_api import expect

    page.goto(ui)
    finished = page.locator(f'tr.run[data-run="{FINISHED_RUN}"]')
    expect(finished.locator(".run-name")).to_have_text(FINISHED_RUN)
    expect(finished.locator(".badge")).to_have_text("finished")
    expect(finished.locator(".done")).to_have_text("60 of 60 done")
    statuses = dict(
        sql(ledger, "SELECT status, count(*) FROM requests WHERE run_id = 1 GROUP BY status")
    )
    bar_width = finished.locator(".bar").bounding_box()["width"]
    for status, count in statuses.items():
        segment = finished.locator(f".bar .seg-{status}")
        expect(segment).to_have_attribute("data-count", str(count))
        drawn = segment.bounding_box()["width"] / bar_width
        assert abs(drawn - count / 60) < 0.02, status
    expect(finished.locator(".legend")).to_contain_text(f"{statuses['failed']} failed")
    expect(finished).to_contain_text("estimated")
    expect(finished).to_contain_text("4 normalized")

    live = page.locator(f'tr.run[data-run="{LIVE_RUN}"]')
    expect(live.locator(".badge")).to_have_text("live")
    expect(live.locator(".done")).to_have_text("0 of 20 done")
    expect(live).to_contain_text("2 submitted")
    expect(page.locator("#runs")).to_have_attribute("hx-trigger", "every 2s")


def test_run_page_shows_its_jobs_their_timelines_and_errors_by_code(
    page: Any, ui: str, ledger: DashboardLedger, tmp_path: Path
) -> None:
    """The run's counts, each job (state, provider, model, batch id, event timeline), and the
    errors grouped by code with their counts; a finished run's page does not poll."""
    from playwright.sync_api import expect

    page.goto(f"{ui}runs/{run_id(ledger, FINISHED_RUN)}")
    expect(page.locator("h1")).to_have_text(FINISHED_RUN)
    expect(page.locator("#done-count")).to_have_text("60 of 60 done")
    expect(page.locator("#run-summary")).not_to_have_attribute("hx-trigger", "every 2s")

    jobs = sql(ledger, "SELECT id, model, batch_id FROM jobs WHERE run_id = 1 ORDER BY id")
    rows = page.locator("tr.job")
    expect(rows).to_have_count(len(jobs))
    for index, (job_id, model, batch_id) in enumerate(jobs):
        row = rows.nth(index)
        expect(row).to_have_attribute("data-state", "normalized")
        expect(row).to_contain_text(f"#{job_id}")
        expect(row).to_contain_text("openai")
        expect(row).to_contain_text(model)
        expect(row.locator("code.batch")).to_have_text(batch_id)
        steps = row.locator(".timeline .step")
        expect(steps.first).to_contain_text("built")
        expect(steps.last).to_contain_text("normalized")
    expect(rows.nth(3).locator(".timeline")).to_contain_text("expired")

    groups = sql(
        ledger,
        "SELECT error_code, count(*) FROM requests WHERE run_id = 1 AND status != 'succeeded' "
        "GROUP BY error_code",
    )
    shown = page.locator("tr.error-group")
    expect(shown).to_have_count(len(groups))
    for code, count in groups:
        expect(page.locator(f'tr.error-group[data-code="{code}"]')).to_have_attribute(
            "data-count", str(count)
        )
    page.set_viewport_size({"width": 1280, "height": 1180})
    shoot(page, "ui-run.png", tmp_path)


def test_charts_are_drawn_from_the_runs_data(page: Any, ui: str, ledger: DashboardLedger) -> None:
    """Requests with a result over time ends at each status's count; cost by model has a bar per
    model; both canvases have a size and painted pixels."""
    page.goto(f"{ui}runs/{run_id(ledger, FINISHED_RUN)}")
    for canvas in ("#chart-finished", "#chart-cost"):
        box = page.locator(canvas).bounding_box()
        assert box["width"] > 200 and box["height"] > 150, canvas
        painted = page.evaluate(
            """(selector) => {
                const canvas = document.querySelector(selector);
                const pixels = canvas.getContext("2d")
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let count = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) count++;
                return count;
            }""",
            canvas,
        )
        assert painted > 2_000, canvas
    finished = page.evaluate(
        """() => Chart.getChart("chart-finished").data.datasets.map(
            (d) => [d.label, d.data[d.data.length - 1].y])"""
    )
    statuses = sql(ledger, "SELECT status, count(*) FROM requests WHERE run_id = 1 GROUP BY status")
    assert sorted(finished) == sorted([status, count] for status, count in statuses)
    cost = page.evaluate(
        """() => { const c = Chart.getChart("chart-cost");
                   return [c.data.labels, c.data.datasets.map((d) => d.data)]; }"""
    )
    labels, (spent, estimated) = cost
    assert labels == sorted(MODEL_REQUESTS)
    assert all(value > 0 for value in spent) and all(
        e > s for s, e in zip(spent, estimated, strict=True)
    )


def test_the_filter_narrows_the_requests_list(
    page: Any, ui: str, ledger: DashboardLedger, tmp_path: Path
) -> None:
    """Choosing a status, an error code or a model narrows the list in place (a page at a time);
    the address keeps the filter, so a reload shows the same list."""
    from playwright.sync_api import expect

    page.goto(f"{ui}runs/{run_id(ledger, FINISHED_RUN)}")
    rows = page.locator("tr.request")
    expect(page.locator("#matching")).to_have_text("60 matching")
    expect(rows).to_have_count(50)
    page.locator("a[rel=next]").click()
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text("q051")
    page.goto(f"{ui}runs/{run_id(ledger, FINISHED_RUN)}/requests?page=99")
    expect(rows).to_have_count(10)  # past the end: the last page

    page.select_option("select[name=status]", "failed")
    failed = sql(ledger, "SELECT count(*) FROM requests WHERE status = 'failed'")[0][0]
    expect(page.locator("#matching")).to_have_text(f"{failed} matching")
    expect(rows).to_have_count(failed)
    assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.status)")) == {"failed"}
    assert "status=failed" in page.url

    # Which codes the emulator's failures got depends on its batch ids: take the commonest.
    code, limited = sql(
        ledger,
        "SELECT error_code, count(*) AS n FROM requests WHERE status = 'failed' "
        "GROUP BY error_code ORDER BY n DESC, error_code LIMIT 1",
    )[0]
    page.select_option("select[name=error_code]", code)
    expect(rows).to_have_count(limited)
    # When every failure has that code the count does not change: wait for the address instead,
    # which htmx updates once the filtered list has arrived.
    expect(page).to_have_url(re.compile(rf"error_code={re.escape(code)}"))
    page.reload()
    expect(rows).to_have_count(limited)
    expect(page.locator("select[name=error_code]")).to_have_value(code)

    page.select_option("select[name=error_code]", "")
    page.select_option("select[name=status]", "")
    page.select_option("select[name=model]", "gpt-4o")
    expect(page.locator("#matching")).to_have_text(f"{MODEL_REQUESTS['gpt-4o']} matching")
    assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.model)")) == {"gpt-4o"}


def test_a_request_shows_its_input_result_and_error(
    page: Any, ui: str, ledger: DashboardLedger, tmp_path: Path
) -> None:
    """Clicking a request shows the line that was sent, its normalized result and its error."""
    from playwright.sync_api import expect

    page.goto(f"{ui}runs/{run_id(ledger, FINISHED_RUN)}/requests?status=failed")
    first = page.locator("tr.request").first
    custom_id = first.locator("a.custom-id").inner_text()
    code, message, line = sql(
        ledger,
        "SELECT error_code, error_message, line_number FROM requests "
        f"WHERE custom_id = '{custom_id}'",
    )[0]
    first.locator("a.custom-id").click()
    detail = page.locator(".request-detail")
    expect(detail.locator("h3")).to_contain_text(custom_id)
    expect(detail.locator(".error-box")).to_contain_text(code)
    expect(detail.locator(".error-box")).to_contain_text(message[:40])
    expect(detail.locator("pre.input")).to_contain_text(f"(question {line})")
    expect(detail.locator("pre.result")).to_contain_text('"status": "failed"')
    page.set_viewport_size({"width": 1280, "height": 1000})
    shoot(page.locator("section.panel:has(#requests)"), "ui-requests.png", tmp_path)

    page.select_option("select[name=status]", "succeeded")
    succeeded = page.locator('tr.request[data-status="succeeded"]').first
    succeeded.locator("a.custom-id").click()
    expect(detail.locator("pre.answer")).to_contain_text("Echo: Explain")


def test_a_job_page_shows_its_whole_event_history(
    page: Any, ui: str, ledger: DashboardLedger, tmp_path: Path
) -> None:
    """Every state change of a job, in order, with who made it and its detail."""
    from playwright.sync_api import expect

    job_id, run = sql(ledger, "SELECT id, run_id FROM jobs WHERE run_id = 1 ORDER BY id")[1]
    events = [
        row[0]
        for row in sql(
            ledger, f"SELECT to_state FROM job_events WHERE job_id = {job_id} ORDER BY at, id"
        )
    ]
    page.goto(f"{ui}runs/{run}/jobs/{job_id}")
    expect(page.locator("h1")).to_contain_text(f"Job #{job_id}")
    shown = page.locator("tr.event").evaluate_all("rows => rows.map(r => r.dataset.to)")
    assert shown == events
    expect(page.locator("tr.event").last).to_contain_text('"counts"')
    shoot(page.locator("section.panel").first, "ui-job.png", tmp_path)


def test_a_live_run_refreshes_itself(
    page: Any, ui: str, ledger: DashboardLedger, tmp_path: Path
) -> None:
    """While a batch runs, the provider's progress appears on the open page without a reload,
    and on the runs list as the striped part of the bar."""
    from playwright.sync_api import expect

    live_id = run_id(ledger, LIVE_RUN)
    page.goto(f"{ui}runs/{live_id}")
    expect(page.locator("#done-count")).to_have_text("0 of 20 done")
    expect(page.locator("#run-summary")).to_have_attribute("hx-trigger", "every 2s")
    page.evaluate("() => { window.notReloaded = true; }")
    [job_id] = sql(ledger, f"SELECT min(id) FROM jobs WHERE run_id = {live_id}")[0]
    # What the reconciler records when a poll reports progress (the dashboard only reads).
    writer = open_ledger(ledger.url)
    try:
        with writer.begin() as connection:
            connection.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(state="in_progress", provider_status="in_progress", requests_completed=6)
            )
        expect(page.locator("#done-count")).to_have_text("6 of 20 done", timeout=6000)
        expect(page.locator(".bar .seg-provider")).to_have_attribute("data-count", "6")
        expect(page.locator(f'tr.job[data-job="{job_id}"]')).to_have_attribute(
            "data-state", "in_progress"
        )
        assert page.evaluate("() => window.notReloaded") is True
        page.goto(ui)
        live = page.locator(f'tr.run[data-run="{LIVE_RUN}"]')
        expect(live.locator(".done")).to_have_text("6 of 20 done")
        expect(live.locator(".legend")).to_contain_text("6 done at the provider")
        page.set_viewport_size({"width": 1280, "height": 330})
        shoot(page, "ui-runs.png", tmp_path)
    finally:
        with writer.begin() as connection:
            connection.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(state="submitted", provider_status="validating", requests_completed=None)
            )
        writer.dispose()
