"""`submit --reuse` while the input streams: which requests are sent, and which are answered
without a send.

A request whose hash (`ledger.build.body_hash`) is the hash of a request that already succeeded in
any run of this ledger is not placed in a shard: it is reused from that request (its answer is
copied when the run is recorded: `ledger.build.reuse_record`). A request whose hash an earlier
request of the same run has is a within-run duplicate: it is not placed either, and rides with the
job of its first copy, whose answer normalize copies to it (`ledger.results.duplicates`); a
duplicate of a reused request is reused from the same source.

The first copy of each body seen in the run is kept in the build's spool (`bodies`), so memory
stays flat however large the input. Nothing here writes the ledger; the lookup only reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from ledger.build.row_checks import BatchRequest
from ledger.build.spool import RequestSpool
from ledger.build.sql import placeholders

#: The status of the only results ever reused (never failed, expired, truncated, filtered or
#: invalid ones).
SUCCEEDED = "succeeded"
#: Hashes looked up in the ledger per query.
LOOKUP_BATCH = 500


@dataclass(frozen=True)
class ReuseSource:
    """A succeeded request of an earlier run whose answer a new request can copy."""

    #: Its `requests` row, the job whose results hold its answer, and its custom_id there.
    request_id: int
    job_id: int
    custom_id: str
    #: The request that paid for the answer: itself, or the one it was itself copied from.
    lineage: int


#: Finds, for some hashes, a succeeded request of each (the hashes found none for are absent).
Lookup = Callable[[Sequence[bytes]], Mapping[bytes, ReuseSource]]


def ledger_lookup(engine: Engine) -> Lookup:
    """The lookup over the ledger's `requests` (`ix_requests_body_hash`: one probe a hash),
    straight to the driver: SQLAlchemy's compiling of an expanding IN per batch cost more than
    the query (bench/reuse.py)."""

    def lookup(hashes: Sequence[bytes]) -> dict[bytes, ReuseSource]:
        found: dict[bytes, ReuseSource] = {}
        with engine.connect() as connection:
            for start in range(0, len(hashes), LOOKUP_BATCH):
                batch = tuple(hashes[start : start + LOOKUP_BATCH])
                # The status a literal: the index holds only succeeded rows (migration 0011),
                # and a partial index serves a query whose WHERE names its condition as written.
                query = (
                    "SELECT body_hash, id, job_id, custom_id, reused_from FROM requests "
                    f"WHERE status = '{SUCCEEDED}' "
                    f"AND body_hash IN ({placeholders(connection, len(batch))})"
                )
                for digest, row_id, job_id, custom_id, reused_from in connection.exec_driver_sql(
                    query, batch
                ):
                    lineage = reused_from if reused_from is not None else row_id
                    # PostgreSQL's driver gives a memoryview: the spool keys on bytes.
                    key = bytes(digest or b"")
                    found.setdefault(key, ReuseSource(row_id, job_id, custom_id, lineage))
        return found

    return lookup


@dataclass
class ReusedTally:
    """The requests of one (provider, model) reused from earlier runs: the job that will hold
    them is recorded with these figures (its estimate is the money the reuse saved)."""

    requests: int = 0
    est_input_tokens: int = 0
    #: Sum of their output bounds; None once one has none.
    max_output_tokens: int | None = 0


@dataclass
class Reuser:
    """Splits each chunk's requests into those sent and those answered without a send."""

    spool: RequestSpool
    lookup: Lookup
    #: Reused requests by (provider, model).
    reused: dict[tuple[str, str], ReusedTally] = field(default_factory=dict)
    #: Within-run duplicates (each answered by its first copy's send).
    duplicates: int = 0

    def __post_init__(self) -> None:
        db = self.spool.connection
        db.execute(
            "CREATE TABLE bodies (body_hash BLOB PRIMARY KEY, custom_id TEXT NOT NULL, "
            "line_number INTEGER NOT NULL, source INTEGER) WITHOUT ROWID"
        )
        db.execute(
            "CREATE TABLE sources (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL, "
            "custom_id TEXT NOT NULL, lineage INTEGER NOT NULL)"
        )

    def take(self, requests: list[BatchRequest]) -> list[BatchRequest]:
        """The requests to send; the others are recorded in the spool as copies."""
        firsts = self._firsts(requests)
        found = self.lookup([r.body_hash for r in firsts]) if firsts else {}
        db = self.spool.connection
        if found:
            db.executemany(
                "INSERT OR IGNORE INTO sources VALUES (?, ?, ?, ?)",
                [(s.request_id, s.job_id, s.custom_id, s.lineage) for s in found.values()],
            )
            db.executemany(
                "UPDATE bodies SET source = ? WHERE body_hash = ?",
                [(s.request_id, digest) for digest, s in found.items()],
            )
        first_ids = {r.custom_id for r in firsts}
        sent, copies = [], []
        for request in requests:
            if request.custom_id in first_ids:
                known = found.get(request.body_hash)
                if known is None:
                    sent.append(request)
                    continue
                first_id, first_line, source = None, None, known.request_id
            else:
                first_id, first_line, source = db.execute(
                    "SELECT custom_id, line_number, source FROM bodies WHERE body_hash = ?",
                    (request.body_hash,),
                ).fetchone()
            if source is not None:
                self._tally(request)
                copies.append((None, None, source, request.custom_id))
            else:
                self.duplicates += 1
                copies.append((first_line, first_id, None, request.custom_id))
        if copies:
            db.executemany(
                "UPDATE accepted SET answer_line = ?, first_custom_id = ?, source = ? "
                "WHERE custom_id = ?",
                copies,
            )
        return sent

    def _firsts(self, requests: list[BatchRequest]) -> list[BatchRequest]:
        """Record each body first seen in the run; the requests that are such first copies."""
        db = self.spool.connection
        before = db.total_changes
        db.executemany(
            "INSERT OR IGNORE INTO bodies (body_hash, custom_id, line_number) VALUES (?, ?, ?)",
            [(r.body_hash, r.custom_id, r.line_number) for r in requests],
        )
        if db.total_changes - before == len(requests):
            return requests
        firsts = []
        for request in requests:
            (first,) = db.execute(
                "SELECT custom_id FROM bodies WHERE body_hash = ?", (request.body_hash,)
            ).fetchone()
            if first == request.custom_id:
                firsts.append(request)
        return firsts

    def _tally(self, request: BatchRequest) -> None:
        tally = self.reused.setdefault((request.provider, request.model), ReusedTally())
        tally.requests += 1
        tally.est_input_tokens += request.est_tokens or 0
        cap, total = request.max_output_tokens, tally.max_output_tokens
        tally.max_output_tokens = None if cap is None or total is None else total + cap
