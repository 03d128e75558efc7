"""The API key never reaches the database, the files, the logs (debug level too), any CLI output
or any error message."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from support.drivers import LEDGER

from ledger.emulator import Emulator, EmulatorConfig

KEY = "sk-proj-LEAKCANARY-4f9a1c0d2b7e"
SECRET_PART = "LEAKCANARY"


def run(
    tmp_path: Path, key: str, *args: str, key_variable: str = "OPENAI_API_KEY"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, key_variable: key}
    env.pop("LEDGER_CRASH_AT", None)
    return subprocess.run(
        [LEDGER, "--db", str(tmp_path / "ledger.db"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def assert_no_secret(text: str, where: str) -> None:
    assert KEY not in text, f"the key leaked into {where}"
    assert SECRET_PART not in text, f"part of the key leaked into {where}"


def test_the_key_appears_nowhere_after_a_whole_lifecycle_and_a_refusal(
    tmp_path: Path, emulator: Any
) -> None:
    """Submit, reconcile at debug level, every read command, then a 401: no trace of the key."""
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps({"id": f"r{i}", "prompt": f"hi {i}"}) + "\n" for i in range(4))
    )
    emulator.configure(faults=[{"kind": "http_500", "every": 5}])
    outputs = [
        run(
            tmp_path,
            KEY,
            "submit",
            "in.jsonl",
            "--model",
            "gpt-4o-mini",
            "--poll-min",
            "0",
            "--base-url",
            emulator.base_url,
        ),
        run(
            tmp_path,
            KEY,
            "reconcile",
            "--until-done",
            "-v",
            "--poll-min",
            "0",
            "--poll-max",
            "0.05",
            "--interval",
            "0.05",
        ),
        run(tmp_path, KEY, "status", "--json"),
        run(tmp_path, KEY, "show", "1"),
        run(tmp_path, KEY, "history"),
        run(tmp_path, KEY, "sql", "select * from jobs"),
        run(tmp_path, KEY, "results", "in"),
    ]
    assert all(o.returncode == 0 for o in outputs), [o.stderr for o in outputs]
    assert "DEBUG" in outputs[1].stderr or "INFO" in outputs[1].stderr
    assert "provider answered 500" in outputs[1].stderr

    with Emulator(EmulatorConfig(api_key="sk-the-right-one", polls_per_stage=1)).start() as guard:
        (tmp_path / "in2.jsonl").write_text('{"id": "x", "prompt": "hi"}\n')
        refused = run(
            tmp_path,
            KEY,
            "submit",
            "in2.jsonl",
            "--model",
            "gpt-4o-mini",
            "--base-url",
            guard.base_url,
            "--poll-min",
            "0",
        )
    assert refused.returncode == 1
    assert "refused the credentials (401)" in refused.stderr
    outputs.append(refused)

    for number, output in enumerate(outputs):
        assert_no_secret(output.stdout + output.stderr, f"the output of command {number}")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert_no_secret(path.read_bytes().decode("utf-8", "replace"), str(path))


def test_a_key_named_by_api_key_env_carries_a_run_to_normalized_and_leaks_nowhere(
    tmp_path: Path,
) -> None:
    """[providers.openai] api_key_env = "MY_KEY" with only MY_KEY set: submit and reconcile
    reach `normalized` against a server that takes only that key, and the key is nowhere."""
    assert "OPENAI_API_KEY" not in os.environ
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps({"id": f"r{i}", "prompt": f"hi {i}"}) + "\n" for i in range(3))
    )
    with Emulator(EmulatorConfig(api_key=KEY, polls_per_stage=1)).start() as guard:
        (tmp_path / "ledger.toml").write_text(
            f'[providers.openai]\napi_key_env = "MY_KEY"\nbase_url = "{guard.base_url}"\n'
        )
        outputs = [
            run(tmp_path, KEY, *command, key_variable="MY_KEY")
            for command in (
                ("submit", "in.jsonl", "--model", "gpt-4o-mini", "--poll-min", "0"),
                ("reconcile", "--until-done", "-v", "--poll-min", "0", "--interval", "0.05"),
                ("sql", "--json", "select state from jobs"),
            )
        ]
        assert guard.stats()["batches"]["created"] == 1
    assert all(o.returncode == 0 for o in outputs), [o.stderr for o in outputs]
    assert json.loads(outputs[2].stdout) == [{"state": "normalized"}]
    for number, output in enumerate(outputs):
        assert_no_secret(output.stdout + output.stderr, f"the output of command {number}")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert_no_secret(path.read_bytes().decode("utf-8", "replace"), str(path))
