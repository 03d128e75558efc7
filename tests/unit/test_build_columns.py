"""A chunk of plain prompt rows to one target is taken as columns (`ledger.build.prompt_columns`),
with no request object per row: the build it gives is the one the general steps give, byte for
byte (shards, request rows with their hashes and jobs, the problems said), whatever else the input
holds around it. The copy of the request rows into the ledger names each one's job alike however
the shards' jobs are looked up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from support.buildkit import query, write_jsonl

from ledger.build import prompt_columns, record, streaming
from ledger.build.endpoints import CHAT, RESPONSES
from ledger.build.run import BuildOptions, build_run
from ledger.core.db import open_ledger

#: Long enough that the input spans several of the chunks it is read in (a MiB each).
PADDING = "x" * 200


def rows() -> list[dict[str, Any]]:
    """Plain prompt rows, with in later chunks a duplicate custom_id, a row naming its model and
    rows without an id (one with a parameter of its own)."""
    made: list[dict[str, Any]] = [
        {"id": f"q{n}", "prompt": f"What is {n} + {n}? {PADDING}"} for n in range(1, 15_001)
    ]
    made[9_000] = {"id": "q5", "prompt": "a duplicate of line 5's custom_id"}
    made[9_001] = {"custom_id": "q5", "prompt": "and another"}
    made[13_000] = {"id": "m1", "prompt": "to a model", "model": "gpt-4o"}
    made[14_000] = {"prompt": "no id: row-014001"}
    made[14_500] = {"prompt": "two fields, no id", "temperature": 0.5}
    made[14_501] = {"prompt": "two fields, no id", "model": None}
    return made


def build(folder: Path, endpoint: str, **options: Any) -> dict[str, Any]:
    """Build the rows in `folder`; what it left: the shards' bytes, the request rows, the
    problems said."""
    folder.mkdir()
    source = write_jsonl(folder / "in.jsonl", rows())
    engine = open_ledger(folder / "ledger.db")
    said: list[str] = []
    build_options = BuildOptions(
        model="gpt-4o-mini",
        endpoint=endpoint,
        count_tokens=False,
        skip_invalid=True,
        workdir=folder,
        **options,
    )
    build_run(engine, source, build_options, on_skip=said.append)
    engine.dispose()
    shards = sorted((folder / "runs" / "in" / "batch_inputs").glob("shard-*.jsonl"))
    recorded = query(
        "select custom_id, line_number, requests.est_input_tokens, body_hash, shard_index, "
        "jobs.request_count, jobs.input_sha256, jobs.est_input_tokens as job_tokens "
        "from requests join jobs on jobs.id = requests.job_id order by requests.line_number",
        folder / "ledger.db",
    )
    return {
        "shards": [(path.name, path.read_bytes()) for path in shards],
        "requests": recorded,
        "said": [message.removeprefix(str(folder)) for message in said],
    }


@pytest.mark.parametrize("endpoint", [CHAT, RESPONSES])
@pytest.mark.parametrize("options", [{}, {"max_requests": 2_500, "system": "Be brief."}])
def test_chunks_taken_as_columns_build_what_the_general_steps_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str, options: dict[str, Any]
) -> None:
    """Shards cut at the same lines with the same bytes, the same request rows (hashes and jobs
    too) and the same problems (the duplicates, each naming line 5), whether the chunks that
    can be are taken as columns or every one goes the general way; and some were."""
    taken: list[bool] = []

    def counted(*args: Any) -> bool:
        taken.append(prompt_columns.take_prompt_columns(*args))
        return taken[-1]

    monkeypatch.setattr(streaming, "take_prompt_columns", counted)
    as_columns = build(tmp_path / "columns", endpoint, **options)
    assert taken.count(True) >= 2 and not all(taken)
    monkeypatch.setattr(streaming, "take_prompt_columns", lambda *_args: False)
    general = build(tmp_path / "general", endpoint, **options)
    assert as_columns == general
    assert general["said"] == [
        '/in.jsonl:9001: field "custom_id": duplicate of line 5',
        '/in.jsonl:9002: field "custom_id": duplicate of line 5',
    ]
    assert len(general["requests"]) == 14_998
    assert len(general["shards"]) == (7 if options else 2)


@pytest.mark.parametrize("in_statement", [1_000, 0])
def test_request_rows_name_their_shards_job_however_it_is_looked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_statement: int
) -> None:
    """Each request row names the job of the shard its line is in, for two models cut at 3
    requests, whether the shards' first lines are written into the copy's statement or looked
    up per request (a build of more shards than `SHARDS_IN_STATEMENT`)."""
    monkeypatch.setattr(record, "SHARDS_IN_STATEMENT", in_statement)
    models = ["gpt-4o-mini", "gpt-4o"] * 8
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [{"id": f"r{n}", "prompt": "hi", "model": m} for n, m in enumerate(models, 1)],
    )
    engine = open_ledger(tmp_path / "ledger.db")
    options = BuildOptions(count_tokens=False, max_requests=3, workdir=tmp_path)
    build_run(engine, source, options)
    engine.dispose()
    in_shard = {
        orjson.loads(line)["custom_id"]: int(path.stem.removeprefix("shard-"))
        for path in (tmp_path / "runs" / "in" / "batch_inputs").glob("shard-*.jsonl")
        for line in path.read_bytes().splitlines()
    }
    recorded = query(
        "select custom_id, shard_index from requests join jobs on jobs.id = requests.job_id",
        tmp_path / "ledger.db",
    )
    assert {r["custom_id"]: r["shard_index"] for r in recorded} == in_shard
    assert len(in_shard) == 16 and len(set(in_shard.values())) == 6
