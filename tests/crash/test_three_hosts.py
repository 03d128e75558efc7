"""Three hosts, one PostgreSQL ledger: reconcilers on separate machines (network namespaces on a
bridge, each with its own host name, PID namespace and empty working folder) share the work of a
run submitted on a fourth, and are killed with `kill -9` at random instants while the provider
answers 500 and 429. Afterwards: exactly one batch per job at the provider, one result per input
row, and the same results read from every host.

Nothing but the database URL and the provider key reaches a host: the submitting host's files
(input, shards) vanish with its tmpfs when `ledger submit` ends, so the reconcilers can only
finish the run through the artifact store in the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url
from support.drivers import LEDGER
from support.netns import Hosts, TcpForwarder, namespaces_unavailable

from ledger.core.models import Job
from ledger.emulator import Emulator, EmulatorConfig

POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL")
ROWS = 24
KEY = "sk-test-threehosts-CANARY42"
SUBMITTER, RECONCILERS = 3, (0, 1, 2)


def skip_reason() -> str | None:
    reason = namespaces_unavailable()
    if reason is None and not POSTGRES_URL:
        reason = "LEDGER_TEST_POSTGRES_URL is not set"
    return reason


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema on the test server, dropped afterwards."""
    assert POSTGRES_URL
    name = f"hosts_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


class Cluster:
    """The hosts, with the database and the emulator reachable at the bridge's address."""

    def __init__(self, hosts: Hosts, database_url: str, emulator: Any) -> None:
        self.hosts = hosts
        self.database_url = database_url
        self.base_url = f"http://{hosts.address}:{emulator.port}/v1"
        self.env = {**os.environ, "OPENAI_API_KEY": KEY, "LEDGER_DB": database_url}
        for name in ("LEDGER_CRASH_AT", "LEDGER_CONFIG", "OPENAI_BASE_URL"):
            self.env.pop(name, None)

    def run(self, host: int, *argv: str, stdin: Any = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.hosts.command(host, argv),
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start_reconciler(self, host: int) -> subprocess.Popen[str]:
        argv = [LEDGER, "reconcile", "--loop", "--interval", "0.1"]
        argv += ["--poll-min", "0", "--poll-max", "0.2", "--lease-seconds", "4"]
        return subprocess.Popen(
            self.hosts.command(host, argv),
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )


def kill_9(process: subprocess.Popen[str]) -> str:
    """SIGKILL the whole host command (its PID namespace dies with its PID 1)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    _, stderr = process.communicate(timeout=30)
    return stderr


@pytest.mark.timeout(300)
def test_three_hosts_killed_at_random_under_faults_finish_with_one_batch_per_job(
    tmp_path: Path, schema: str
) -> None:
    reason = skip_reason()
    if reason is not None:
        if os.environ.get("CI") and POSTGRES_URL:
            pytest.fail(f"CI must run the three-host test: {reason}")
        pytest.skip(reason)
    assert POSTGRES_URL
    chaos = random.Random(int(os.environ.get("LEDGER_CHAOS_SEED", time.time_ns())))
    rows = [{"id": f"row{i}", "prompt": f"question {i}"} for i in range(ROWS)]
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    with Hosts(4) as hosts, TcpForwarder(hosts.address, ("127.0.0.1", 5432)) as postgres:
        url = make_url(POSTGRES_URL).set(host=hosts.address, port=postgres.port)
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
        config = EmulatorConfig(host=hosts.address, polls_per_stage=1)
        with Emulator(config).start() as emulator:
            cluster = Cluster(hosts, url.render_as_string(hide_password=False), emulator)
            submit = cluster.run(
                SUBMITTER,
                "sh",
                "-c",
                f'cat > input.jsonl && exec "{LEDGER}" submit input.jsonl --run three '
                f"--model gpt-4o-mini --max-requests 4 --base-url {cluster.base_url}",
                stdin=lines,
            )
            assert submit.returncode == 0, submit.stderr
            emulator.configure(
                faults=[
                    {"kind": "http_500", "every": 5},
                    {"kind": "http_429", "every": 7, "seconds": 0.2},
                ]
            )
            running = {host: cluster.start_reconciler(host) for host in RECONCILERS}
            logs: list[str] = []
            try:
                # Chaos: every 0.5-2 s one reconciler is killed and, a moment later, restarted.
                chaos_ends = time.monotonic() + 12
                while time.monotonic() < chaos_ends:
                    time.sleep(chaos.uniform(0.5, 2.0))
                    victim = chaos.choice(RECONCILERS)
                    logs.append(kill_9(running[victim]))
                    time.sleep(chaos.uniform(0.0, 0.5))
                    running[victim] = cluster.start_reconciler(victim)
                emulator.configure(faults=[])
                engine = create_engine(cluster_local_url(url, postgres.port))
                deadline = time.monotonic() + 150
                while not all_normalized(engine):
                    assert time.monotonic() < deadline, f"the run did not finish: {jobs_of(engine)}"
                    time.sleep(0.5)
                engine.dispose()
            finally:
                for process in running.values():
                    logs.append(kill_9(process))
            stats = emulator.stats()
            readings = [cluster.run(host, LEDGER, "results", "three") for host in RECONCILERS]
    jobs = ROWS // 4
    assert stats["batches"]["created"] == jobs
    assert sorted(stats["batches"]["by_input_filename"].values()) == [1] * jobs
    for reading in readings:
        assert reading.returncode == 0, reading.stderr
    results = [[json.loads(line) for line in reading.stdout.splitlines()] for reading in readings]
    assert [result["custom_id"] for result in results[0]] == [row["id"] for row in rows]
    assert {result["status"] for result in results[0]} == {"succeeded"}
    assert results[0] == results[1] == results[2]
    assert not any(KEY in log for log in logs)


def cluster_local_url(url: Any, port: int) -> str:
    """The hosts' database URL as the test process (in the root namespace) reaches it."""
    return url.set(port=port).render_as_string(hide_password=False)


def all_normalized(engine: Any) -> bool:
    with engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(Job)).scalar_one()
        done = connection.execute(
            select(func.count()).where(Job.state == "normalized")
        ).scalar_one()
    return total > 0 and done == total


def jobs_of(engine: Any) -> list[tuple[Any, ...]]:
    """Each job's id, state and last error: what a failure shows."""
    with engine.connect() as connection:
        rows = connection.execute(select(Job.id, Job.state, Job.last_error).order_by(Job.id))
        return [tuple(row) for row in rows]
