"""A reconciler watched from outside, against the emulator: Prometheus metrics over HTTP that
match the ledger, a command run when a run ends, and JSON log lines carrying the job's ids."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from support.drivers import LEDGER, reconcile_process
from support.factories import add_built_job

from ledger.core.db import open_ledger
from ledger.core.models import Job


def built_run(tmp_path: Path) -> tuple[Path, int]:
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b", "c"])
    engine.dispose()
    return db, job_id


def normalized_jobs(engine: Engine) -> int:
    with engine.connect() as connection:
        query = select(func.count()).where(Job.state == "normalized")
        return connection.execute(query).scalar_one()


def test_metrics_port_serves_prometheus_text_matching_the_ledger(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """--metrics-port: jobs, requests, provider calls, passes; counts equal the ledger's."""
    db, _ = built_run(tmp_path)
    command = [LEDGER, "--db", str(db), "reconcile", "--loop", "--metrics-port", "0"]
    command += ["--poll-min", "0", "--poll-max", "0.05", "--interval", "0.05"]
    command += ["--base-url", emulator.base_url]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        assert process.stderr is not None
        url = process.stderr.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        engine = open_ledger(db)
        deadline = time.monotonic() + 60
        while normalized_jobs(engine) != 1:
            assert time.monotonic() < deadline, "the job did not finish"
            time.sleep(0.1)
        engine.dispose()
        time.sleep(0.3)  # the pass that normalized it has ended and been timed
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=30)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        name: {tuple(sorted(s.labels.items())): s.value for s in families[name].samples}
        for name in ("ledger_jobs", "ledger_requests")
    }
    assert samples["ledger_jobs"] == {(("provider", "openai"), ("state", "normalized")): 1.0}
    assert samples["ledger_requests"] == {(("run", "r"), ("status", "succeeded")): 3.0}
    calls = {
        s.labels["method"]: s.value
        for s in families["ledger_provider_call_seconds"].samples
        if s.name.endswith("_count")
    }
    assert calls["upload_input"] == 1 and calls["create_batch"] == 1 and calls["get_batch"] >= 1
    assert "ledger_cost_usd" in families and "ledger_provider_call_errors" in families
    passes = [s for s in families["ledger_pass_seconds"].samples if s.name.endswith("_count")]
    assert passes[0].value >= 1
    assert "ledger_lease_takeovers" in families


def test_on_done_runs_the_command_once_when_the_run_ends(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """--on-done: the shell command sees $LEDGER_RUN and $LEDGER_RUN_STATUS, once."""
    db, _ = built_run(tmp_path)
    done = tmp_path / "done.txt"
    hook = f'echo "$LEDGER_RUN $LEDGER_RUN_STATUS" >> {done}'
    result = reconcile_process(
        db, emulator.base_url, "--until-done", "--on-done", hook, env={"OPENAI_API_KEY": api_key}
    )
    assert result.returncode == 0, result.stderr
    assert done.read_text() == "r succeeded\n"


def test_json_logs_are_one_object_a_line_with_run_job_and_batch_ids(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """--log-format json: every stderr line parses, transitions carry run, job and batch ids."""
    db, job_id = built_run(tmp_path)
    result = reconcile_process(
        db,
        emulator.base_url,
        "--until-done",
        "--log-format",
        "json",
        env={"OPENAI_API_KEY": api_key},
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    mine = [line for line in lines if line.get("job_id") == job_id]
    assert any(line["message"].endswith("built -> uploaded") for line in mine)
    assert all(line["run"] == "r" for line in mine)
    assert any(line.get("batch_id", "").startswith("batch_") for line in mine)
    assert api_key not in result.stderr
