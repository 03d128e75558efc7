"""The Python API reads ledger.toml as the CLI does: Ledger.open finds the file by the same
rules, [defaults] are the defaults of submit and reconcile, and explicit arguments win."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.buildkit import prompts, query, shard_lines, write_jsonl

from ledger import Ledger
from ledger.config import load_config
from ledger.errors import InputError


def write(path: str, text: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def test_submit_takes_its_defaults_from_the_file_and_arguments_win() -> None:
    """[defaults] model, endpoint, max_requests and max_output_tokens shape a submit; an
    argument given to submit overrides each."""
    write(
        "ledger.toml",
        '[defaults]\nmodel = "gpt-4o"\nendpoint = "chat"\nmax_requests = 1\n'
        "max_output_tokens = 50\n",
    )
    write_jsonl("rows.jsonl", prompts(2))
    with Ledger.open() as ledger:
        plan = ledger.submit("rows.jsonl", run="from-file", send=False)
        other = ledger.submit(
            "rows.jsonl", run="given", model="gpt-4o-mini", max_requests=5, send=False
        )
    assert (len(plan.jobs), len(other.jobs)) == (2, 1)
    models = query("select r.name, j.model, j.endpoint from jobs j join runs r on r.id = j.run_id")
    assert {(m["name"], m["model"], m["endpoint"]) for m in models} == {
        ("from-file", "gpt-4o", "/v1/chat/completions"),
        ("given", "gpt-4o-mini", "/v1/chat/completions"),
    }
    [[first], [_]] = shard_lines("from-file")
    assert first["body"]["max_completion_tokens"] == 50


def test_files_named_in_defaults_are_read_relative_to_the_file() -> None:
    """[defaults] json_schema names a file beside ledger.toml, wherever the code runs."""
    write("conf/schema.json", json.dumps({"type": "object", "properties": {}}))
    write("conf/ledger.toml", '[defaults]\nmodel = "gpt-4o-mini"\njson_schema = "schema.json"\n')
    write_jsonl("rows.jsonl", prompts(1))
    with Ledger.open(config="conf/ledger.toml") as ledger:
        ledger.submit("rows.jsonl", run="schema", send=False)
    [[line]] = shard_lines("schema")
    assert line["body"]["text"]["format"]["type"] == "json_schema"
    assert line["body"]["text"]["format"]["name"] == "schema"


def test_open_finds_the_file_as_the_cli_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """config= names the file, else $LEDGER_CONFIG, else ./ledger.toml; settings already read
    are taken as they are."""
    write("ledger.toml", "[defaults]\npoll_min = 1\n")
    write("conf/a.toml", "[defaults]\npoll_min = 2\n")
    write("conf/b.toml", "[defaults]\npoll_min = 3\n")
    assert Ledger.open().poll_min == 1
    assert Ledger.open(config="conf/a.toml").poll_min == 2
    monkeypatch.setenv("LEDGER_CONFIG", "conf/b.toml")
    assert Ledger.open().poll_min == 3
    assert Ledger.open(config=load_config("conf/a.toml")).poll_min == 2


def test_poll_bounds_come_from_the_argument_then_the_file_then_the_default() -> None:
    """poll_min/poll_max: Ledger.open's argument, else [defaults], else 10 and 120."""
    with Ledger.open() as ledger:
        assert (ledger.poll_min, ledger.poll_max) == (10.0, 120.0)
    write("ledger.toml", "[defaults]\npoll_min = 30\npoll_max = 60\n")
    with Ledger.open() as ledger:
        assert (ledger.poll_min, ledger.poll_max) == (30, 60)
    with Ledger.open(poll_min=0, poll_max=0.5) as ledger:
        assert (ledger.poll_min, ledger.poll_max) == (0, 0.5)


def test_a_bad_file_is_refused_before_the_ledger_is_created(tmp_path: Path) -> None:
    """An unknown key or a value out of range in the file: InputError naming both, no ledger."""
    write("ledger.toml", "[defaults]\nconcurrency = 0\n")
    with pytest.raises(InputError, match=r"ledger.toml: defaults.concurrency: must be at least 1"):
        Ledger.open()
    with pytest.raises(InputError, match=r"nope.toml: no such config file"):
        Ledger.open(config="nope.toml")
    assert not (tmp_path / "ledger.db").exists()


def test_arguments_out_of_range_are_refused_as_the_options_are() -> None:
    """poll_min, concurrency, interval and max_requests obey the same rules as on the command
    line, and nothing is built or sent."""
    with pytest.raises(InputError, match=r"^poll_min: must be at least 0$"):
        Ledger.open(poll_min=-1)
    write_jsonl("rows.jsonl", prompts(1))
    with Ledger.open() as ledger:
        with pytest.raises(InputError, match=r"^concurrency: must be at least 1$"):
            ledger.reconcile(concurrency=0)
        with pytest.raises(InputError, match=r"^interval: must be a finite number$"):
            ledger.reconcile(interval=float("nan"))
        with pytest.raises(InputError, match=r"^max_requests: must be between 1 and 50000$"):
            ledger.submit("rows.jsonl", max_requests=0)
    assert query("select count(*) as n from runs") == [{"n": 0}]
