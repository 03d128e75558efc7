"""The adopt-or-act helper: intent is recorded before the side effect, and an object already
carrying a recorded token is adopted instead of being made again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.factories import add_built_job

from adapters.base import OutcomeUnknown, RemoteFile
from adapters.fake import FakeProvider
from ledger.core.crashpoints import set_crash_hook
from ledger.core.models import Job
from ledger.core.states import State
from ledger.core.store import claim, update_leased
from ledger.reconcile.adopt import Adoption, adopt_or_act


class SimulatedCrash(Exception):
    """Raised where a real reconciler would die."""


def name(token: str) -> str:
    return f"ledger-job1-{token}.jsonl"


class Upload:
    """An upload through adopt_or_act on the fake provider; `intents` keeps what was recorded."""

    def __init__(self, provider: FakeProvider, shard: Path) -> None:
        self.provider = provider
        self.shard = shard
        self.intents: list[str] = []

    def __call__(self, recorded_token: str | None) -> Adoption[RemoteFile]:
        return adopt_or_act(
            recorded_token,
            record_intent=self.record_intent,
            find=lambda token: self.provider.find_uploads(name(token)),
            discard=lambda duplicate: self.provider.delete_file(duplicate.id),
            act=lambda token: self.provider.upload_input(self.shard, filename=name(token)),
            before_act="before_upload",
        )

    def record_intent(self, token: str) -> None:
        # What was sent so far proves the intent came first.
        assert not self.provider.calls, self.provider.calls
        self.intents.append(token)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def upload(provider: FakeProvider, tmp_path: Path) -> Upload:
    shard = tmp_path / "shard.jsonl"
    shard.write_text('{"custom_id": "a"}\n')
    return Upload(provider, shard)


@pytest.fixture
def crash_at_before_upload() -> Iterator[None]:
    def crash(point: str) -> None:
        if point == "before_upload":
            raise SimulatedCrash(point)

    set_crash_hook(crash)
    yield
    set_crash_hook(None)


def uploaded_names(provider: FakeProvider) -> list[str]:
    return [filename for filename, _ in provider.files.values()]


def test_no_token_records_intent_then_acts(upload: Upload, provider: FakeProvider) -> None:
    """With no token recorded, a fresh one is recorded first, then the side effect carries it."""
    result = upload(None)
    assert upload.intents == [result.token]
    assert provider.calls == [("upload_input", "")]  # nothing looked up: nothing could exist
    assert not result.adopted
    assert uploaded_names(provider) == [name(result.token)]
    assert result.remote.filename == name(result.token)


def test_a_found_object_is_adopted_and_duplicates_discarded(
    upload: Upload, provider: FakeProvider
) -> None:
    """A recorded token whose object exists: the first is adopted, the others deleted, no act."""
    first = provider.upload_input(upload.shard, filename=name("t1"))
    second = provider.upload_input(upload.shard, filename=name("t1"))
    provider.upload_input(upload.shard, filename=name("other"))
    provider.calls.clear()
    result = upload("t1")
    assert result == Adoption(first, "t1", adopted=True)
    assert provider.deleted == [second.id]
    assert ("upload_input", "") not in provider.calls
    assert upload.intents == []
    assert sorted(uploaded_names(provider)) == [name("other"), name("t1")]


def test_a_token_with_nothing_found_acts_with_that_token(
    upload: Upload, provider: FakeProvider
) -> None:
    """A recorded token that no object carries: the side effect is done, under the same token."""
    result = upload("t1")
    assert [method for method, _ in provider.calls] == ["find_uploads", "upload_input"]
    assert result.token == "t1" and not result.adopted
    assert uploaded_names(provider) == [name("t1")]
    assert upload.intents == []


def test_a_refused_intent_sends_nothing(provider: FakeProvider, upload: Upload) -> None:
    """record_intent raising (a full quota, say) stops everything before the provider is asked."""

    def refuse(token: str) -> None:
        raise RuntimeError("held back")

    with pytest.raises(RuntimeError, match="held back"):
        adopt_or_act(
            None,
            record_intent=refuse,
            find=lambda token: provider.find_uploads(name(token)),
            discard=lambda duplicate: provider.delete_file(duplicate.id),
            act=lambda token: provider.upload_input(upload.shard, filename=name(token)),
            before_act="before_upload",
        )
    assert provider.calls == [] and provider.files == {}


def test_a_lost_reply_is_adopted_on_the_next_attempt(
    upload: Upload, provider: FakeProvider
) -> None:
    """The side effect happened but its reply was lost: the retry adopts it, no second upload."""
    provider.fail_next("upload_input", lambda: OutcomeUnknown("timed out"), after_effect=True)
    with pytest.raises(OutcomeUnknown):
        upload(None)
    [token] = upload.intents
    result = upload(token)
    assert result.adopted and result.token == token
    assert uploaded_names(provider) == [name(token)]


def test_a_crash_between_intent_and_act_leaves_the_token_recorded(
    engine: Engine, tmp_path: Path, provider: FakeProvider, crash_at_before_upload: None
) -> None:
    """Dying after the intent commit and before the upload: the job keeps its token and nothing
    was sent; the next attempt, finding nothing under that token, uploads once."""
    job_id = add_built_job(engine, tmp_path, "r", ["a"])
    with engine.begin() as connection:
        [lease] = claim(connection, "test", states=[State.BUILT], limit=1)
    shard = Path(tmp_path / "runs" / "r" / "batch_inputs" / "shard-0001.jsonl")

    def record_intent(token: str) -> None:
        with engine.begin() as connection:
            update_leased(connection, lease, submit_token=token)

    def attempt(recorded_token: str | None) -> Adoption[RemoteFile]:
        return adopt_or_act(
            recorded_token,
            record_intent=record_intent,
            find=lambda token: provider.find_uploads(name(token)),
            discard=lambda duplicate: provider.delete_file(duplicate.id),
            act=lambda token: provider.upload_input(shard, filename=name(token)),
            before_act="before_upload",
        )

    with pytest.raises(SimulatedCrash):
        attempt(None)
    with engine.connect() as connection:
        token = connection.execute(select(Job.submit_token).where(Job.id == job_id)).scalar_one()
    assert token is not None
    assert provider.files == {}
    set_crash_hook(None)
    result = attempt(token)
    assert not result.adopted and result.token == token
    assert uploaded_names(provider) == [name(token)]
