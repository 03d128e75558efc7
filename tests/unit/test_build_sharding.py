"""Sharding: no job passes its request, byte or token limit; one model per shard; each job row and
the manifest describe their file exactly."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.buildkit import prompts, query, shard_files, shard_lines, submit, write_jsonl

from cli import cli
from ledger.build.bodies import BatchRequest
from ledger.build.shard_limits import ShardLimits, parse_size
from ledger.build.shards import ShardSet
from ledger.errors import InputError


def shard_sizes(run: str) -> list[int]:
    return [len(lines) for lines in shard_lines(run)]


def test_split_at_the_request_limit(tmp_path: Path) -> None:
    """Five requests at --max-requests 2 are three jobs of 2, 2 and 1, numbered from 1."""
    write_jsonl("in.jsonl", prompts(5))
    assert submit("in.jsonl", "--model", "gpt-4o-mini", "--max-requests", "2").exit_code == 0
    assert shard_sizes("in") == [2, 2, 1]
    assert [p.name for p in shard_files("in")] == [
        "shard-0001.jsonl",
        "shard-0002.jsonl",
        "shard-0003.jsonl",
    ]
    jobs = query("select shard_index, request_count, state from jobs order by shard_index")
    assert jobs == [
        {"shard_index": 1, "request_count": 2, "state": "built"},
        {"shard_index": 2, "request_count": 2, "state": "built"},
        {"shard_index": 3, "request_count": 1, "state": "built"},
    ]


def test_split_at_the_byte_limit(tmp_path: Path) -> None:
    """A shard holds as many whole lines as fit in --max-bytes, never more."""
    write_jsonl("in.jsonl", prompts(6))
    assert submit("in.jsonl", "--model", "gpt-4o-mini", "--run", "probe").exit_code == 0
    line_bytes = [len(line) + 1 for line in shard_files("probe")[0].read_bytes().splitlines()]
    limit = line_bytes[0] + line_bytes[1] + 5  # two lines fit, a third does not
    assert submit("in.jsonl", "--model", "gpt-4o-mini", "--max-bytes", str(limit)).exit_code == 0
    assert shard_sizes("in") == [2, 2, 2]
    for path in shard_files("in"):
        assert path.stat().st_size <= limit
    assert [j["input_bytes"] for j in query("select input_bytes from jobs where run_id = 2")] == [
        p.stat().st_size for p in shard_files("in")
    ]


def test_split_at_the_token_budget(tmp_path: Path) -> None:
    """With --max-tokens-per-job, each job's estimated tokens stay within the budget."""
    write_jsonl("in.jsonl", [{"id": f"t{i}", "prompt": "hello world"} for i in range(5)])
    result = submit("in.jsonl", "--model", "gpt-4o-mini", "--max-tokens-per-job", "20")
    assert result.exit_code == 0, result.output
    # Each request is 9 tokens (see test_build_inputs): two fit in 20, a third does not.
    assert shard_sizes("in") == [2, 2, 1]
    assert [j["est_input_tokens"] for j in query("select est_input_tokens from jobs")] == [
        18,
        18,
        9,
    ]


def test_rows_with_different_models_go_to_different_shards(tmp_path: Path) -> None:
    """The Batch API takes one model per file: rows are grouped by model, in order."""
    rows = [
        {"id": "a", "prompt": "x"},
        {"id": "b", "prompt": "x", "model": "gpt-4o"},
        {"id": "c", "prompt": "x"},
        {"id": "d", "prompt": "x", "model": "gpt-4o"},
        {"id": "e", "prompt": "x"},
    ]
    write_jsonl("in.jsonl", rows)
    assert submit("in.jsonl", "--model", "gpt-4o-mini", "--max-requests", "2").exit_code == 0
    shards = shard_lines("in")
    assert [[line["custom_id"] for line in shard] for shard in shards] == [
        ["a", "c"],
        ["b", "d"],
        ["e"],
    ]
    assert [row["model"] for row in query("select model from jobs order by shard_index")] == [
        "gpt-4o-mini",
        "gpt-4o",
        "gpt-4o-mini",
    ]
    by_id = {
        r["custom_id"]: r["shard_index"]
        for r in query(
            "select custom_id, shard_index from requests join jobs on jobs.id = requests.job_id"
        )
    }
    assert by_id == {"a": 1, "c": 1, "b": 2, "d": 2, "e": 3}


def test_embeddings_inputs_count_toward_the_batch_cap(tmp_path: Path) -> None:
    """An embeddings request with a list counts each of its inputs toward the input cap."""
    shards = ShardSet(tmp_path / "shards", ShardLimits(max_inputs=3))
    requests = [
        BatchRequest(
            n, f"e{n}", "text-embedding-3-small", b"{}", {}, inputs=2, max_output_tokens=None
        )
        for n in (1, 2, 3)
    ]
    shards.place(requests)
    assert [s.requests for s in shards.close()] == [1, 1, 1]


def test_jobs_and_manifest_describe_their_files(tmp_path: Path) -> None:
    """Each job's path, sha256, bytes and count match its file; manifest.json mirrors the jobs."""
    write_jsonl("in.jsonl", prompts(5))
    assert submit("in.jsonl", "--model", "gpt-4o-mini", "--max-requests", "3").exit_code == 0
    jobs = query(
        "select id, shard_index, input_path, input_sha256, input_bytes, request_count, "
        "est_input_tokens, provider, endpoint, model from jobs order by shard_index"
    )
    manifest = json.loads((tmp_path / "runs" / "in" / "manifest.json").read_text())
    for job, entry in zip(jobs, manifest["jobs"], strict=True):
        path = Path(job["input_path"])
        assert path.is_absolute() and path.parent == tmp_path / "runs" / "in" / "batch_inputs"
        data = path.read_bytes()
        assert job["input_sha256"] == hashlib.sha256(data).hexdigest()
        assert job["input_bytes"] == len(data)
        assert job["request_count"] == data.count(b"\n")
        assert (job["provider"], job["endpoint"], job["model"]) == (
            "openai",
            "/v1/responses",
            "gpt-4o-mini",
        )
        assert entry == {
            "job_id": job["id"],
            "shard_index": job["shard_index"],
            "provider": job["provider"],
            "model": job["model"],
            "path": job["input_path"],
            "sha256": job["input_sha256"],
            "bytes": job["input_bytes"],
            "requests": job["request_count"],
            "est_input_tokens": job["est_input_tokens"],
            "max_output_tokens": None,
            # The provider's ids are filled in as they become known (none at build).
            "batch_id": None,
            "output_file_id": None,
            "error_file_id": None,
        }
    [run] = query("select id, name, input_sha256, request_count from runs")
    assert manifest["run"]["id"] == run["id"] and manifest["run"]["request_count"] == 5
    assert (
        manifest["run"]["input_sha256"] == hashlib.sha256(Path("in.jsonl").read_bytes()).hexdigest()
    )
    assert manifest["options"]["max_requests"] == 3
    assert not list(tmp_path.glob("runs/in/**/*.partial"))


def test_workdir_defaults_to_the_sqlite_files_directory(tmp_path: Path) -> None:
    """With --db elsewhere, runs/ goes beside that database; --workdir puts it anywhere."""
    write_jsonl("in.jsonl", prompts(1))
    result = CliRunner().invoke(
        cli,
        ["--db", "data/l.db", "submit", "in.jsonl", "--model", "m", "--dry-run"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "runs" / "in" / "batch_inputs" / "shard-0001.jsonl").exists()
    assert submit("in.jsonl", "--model", "m", "--workdir", "elsewhere", "--dry-run").exit_code == 0
    assert (tmp_path / "elsewhere" / "runs" / "in" / "manifest.json").exists()


@pytest.mark.parametrize(
    ("text", "size"),
    [("200000000", 200_000_000), ("150MB", 150_000_000), ("1.5k", 1500), ("64MiB", 64 << 20)],
)
def test_sizes_read_with_units(text: str, size: int) -> None:
    """--max-bytes takes plain bytes or a unit."""
    assert parse_size(text) == size


def test_limits_above_the_providers_are_refused(tmp_path: Path) -> None:
    """--max-requests above 50,000 or --max-bytes above 200 MB: exit 2, nothing built."""
    write_jsonl("in.jsonl", prompts(1))
    result = submit("in.jsonl", "--model", "m", "--max-requests", "50001")
    assert result.exit_code == 2
    assert result.stderr == "error: --max-requests: must be between 1 and 50000\n"
    result = submit("in.jsonl", "--model", "m", "--max-bytes", "201MB")
    assert result.stderr == "error: --max-bytes: must be between 1 and 200000000\n"
    with pytest.raises(InputError):
        parse_size("lots")


@pytest.mark.parametrize(
    "limits",
    [
        ShardLimits(max_requests=7),
        ShardLimits(max_bytes=300),
        ShardLimits(max_tokens=40),
        ShardLimits(max_inputs=9),
        ShardLimits(max_requests=5, max_bytes=250, max_tokens=30, max_inputs=6),
    ],
)
def test_a_chunk_of_one_model_is_cut_as_a_request_at_a_time_would_be(
    tmp_path: Path, limits: ShardLimits
) -> None:
    """Requests of one model placed as chunks (cut on running totals) are cut where placing
    them a request at a time among another model's cuts them (any chunk size), each shard with
    the same bytes, tokens and output bound; a request past a limit on its own gets a shard."""
    requests = [
        BatchRequest(
            n,
            f"r{n}",
            "gpt-4o-mini",
            b"x" * (20 + n * 7 % 90),
            {},
            inputs=1 + n % 3,
            max_output_tokens=None if n == 23 else n,
            est_tokens=None if n % 5 == 0 else n % 11,
        )
        for n in range(1, 41)
    ]
    in_chunks = ShardSet(tmp_path / "chunks", limits)
    for start in range(0, len(requests), 13):
        in_chunks.place(requests[start : start + 13])
    mixed = ShardSet(tmp_path / "mixed", limits)
    for request in requests:
        mixed.place([request, dataclasses.replace(request, model="gpt-4o")])

    def figures(shards: ShardSet) -> list[tuple[int, int, int, int | None]]:
        return [
            (s.bytes, s.requests, s.est_input_tokens, s.max_output_tokens)
            for s in shards.close()
            if s.model == "gpt-4o-mini"
        ]

    cut = figures(in_chunks)
    assert cut == figures(mixed)
    assert len(cut) > 3
