"""The artifact stores: content-addressed, idempotent, streamed in bounded memory, and verified on
every read, whether the bytes sit in a folder, in the database or behind an fsspec URL."""

from __future__ import annotations

import dataclasses
import io
import stat
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from support.artifacts import (
    MIB,
    cut_short,
    flip_a_byte,
    peak_python_memory,
    random_file,
    read_all_blocks,
)

from ledger.artifacts import (
    ArtifactCorrupt,
    ArtifactRef,
    ArtifactStore,
    ArtifactUnreachable,
    DatabaseStore,
    FsspecStore,
    LocalFolderStore,
    open_store,
    resolve,
)
from ledger.core.db import open_ledger
from ledger.errors import ConfigError

STORES = ["local", "database", "fsspec-memory", "fsspec-file"]
#: The stores whose bytes live outside the Python heap, so their memory can be measured.
STREAMING_STORES = ["local", "database", "fsspec-file"]


def make_store(kind: str, tmp_path: Path) -> ArtifactStore:
    if kind == "local":
        return LocalFolderStore(tmp_path / "artifacts")
    if kind == "database":
        return DatabaseStore(open_ledger(tmp_path / "ledger.db"))
    if kind == "fsspec-memory":
        return FsspecStore(f"memory://artifacts-{uuid.uuid4().hex}")
    return FsspecStore((tmp_path / "shared").as_uri())


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    """An empty store of each built-in kind."""
    made = make_store(request.param, tmp_path)
    yield made
    if isinstance(made, DatabaseStore):
        made.engine.dispose()
    if isinstance(made, FsspecStore) and made.url.startswith("memory://"):
        made.fs.rm(made.url, recursive=True)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A 3.5 MB file: several chunks, the last one partial."""
    return random_file(tmp_path / "shard-0001.jsonl", 3 * MIB + MIB // 2)


def test_round_trip_returns_the_bytes_put(
    store: ArtifactStore, source: Path, tmp_path: Path
) -> None:
    """What `put` stores, `open` and `copy_to` give back byte for byte."""
    ref = store.put(source)
    assert (ref.sha256, ref.size) == (_sha256(source), source.stat().st_size)
    with store.open(ref) as stream:
        assert stream.read() == source.read_bytes()
    store.copy_to(ref, tmp_path / "copy.jsonl")
    assert (tmp_path / "copy.jsonl").read_bytes() == source.read_bytes()
    assert store.exists(ref)


def test_an_empty_file_is_an_artifact_too(store: ArtifactStore) -> None:
    """Zero bytes round-trip and verify like any other content."""
    ref = store.put(io.BytesIO(b""))
    assert ref.size == 0
    with store.open(ref) as stream:
        assert stream.read() == b""


def test_same_bytes_give_the_same_ref_and_are_stored_once(
    store: ArtifactStore, source: Path
) -> None:
    """A path and a stream of the same bytes, put twice, are one artifact."""
    first = store.put(source)
    with source.open("rb") as stream:
        second = store.put(stream)
    assert second == first
    assert list(store.list()) == [first]


def test_list_sees_everything_put(store: ArtifactStore) -> None:
    """`list` returns one ref per distinct content, equal to the refs `put` returned."""
    refs = {store.put(io.BytesIO(f"content {n}\n".encode() * 1000)) for n in range(3)}
    assert len(refs) == 3
    assert set(store.list()) == refs


@pytest.mark.parametrize("offset", [0, MIB + 7, 3 * MIB + MIB // 2 - 1])
def test_a_damaged_copy_is_corrupt_never_returned(
    store: ArtifactStore, source: Path, tmp_path: Path, offset: int
) -> None:
    """One changed byte (first, middle or last chunk) raises ArtifactCorrupt on every read path,
    even for a reader that stops at exactly the recorded size, and copy_to writes nothing."""
    ref = store.put(source)
    flip_a_byte(store, ref, offset)
    with store.open(ref) as stream, pytest.raises(ArtifactCorrupt, match="sha256 differs"):
        stream.read()
    with store.open(ref) as stream, pytest.raises(ArtifactCorrupt):
        stream.read(ref.size)
    with pytest.raises(ArtifactCorrupt):
        store.copy_to(ref, tmp_path / "copy.jsonl")
    assert list(tmp_path.glob("*copy.jsonl*")) == []


def test_a_copy_cut_short_is_corrupt(store: ArtifactStore, source: Path, tmp_path: Path) -> None:
    """A truncated copy (a lost tail, a missing last chunk) raises ArtifactCorrupt."""
    ref = store.put(source)
    cut_short(store, ref)
    with pytest.raises(ArtifactCorrupt, match="ends after"):
        store.copy_to(ref, tmp_path / "copy.jsonl")
    assert list(tmp_path.glob("*copy.jsonl*")) == []


def test_a_ref_recording_another_size_is_corrupt(store: ArtifactStore, source: Path) -> None:
    """The recorded size is checked too: the stored bytes are longer or shorter than the ref."""
    ref = store.put(source)
    for size in (ref.size - 1, ref.size + 1):
        with pytest.raises(ArtifactCorrupt):
            read_all_blocks(store, dataclasses.replace(ref, size=size))


def test_a_deleted_artifact_is_unreachable(
    store: ArtifactStore, source: Path, tmp_path: Path
) -> None:
    """After delete: exists is False, open and copy_to raise ArtifactUnreachable, list is empty,
    and deleting again is harmless."""
    ref = store.put(source)
    store.delete(ref)
    assert not store.exists(ref)
    with pytest.raises(ArtifactUnreachable):
        store.open(ref)
    with pytest.raises(ArtifactUnreachable):
        store.copy_to(ref, tmp_path / "copy.jsonl")
    assert list(store.list()) == []
    store.delete(ref)


def test_a_source_that_fails_leaves_nothing(store: ArtifactStore) -> None:
    """A source stream that breaks midway raises its own error and stores nothing."""

    class Broken(io.RawIOBase):
        sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: object) -> int:
            if self.sent >= 2:
                raise ConnectionResetError("the source went away")
            self.sent += 1
            view = memoryview(buffer).cast("B")  # type: ignore[arg-type]
            view[:] = b"x" * len(view)
            return len(view)

    with pytest.raises(ConnectionResetError):
        store.put(io.BufferedReader(Broken()))
    assert list(store.list()) == []
    if isinstance(store, LocalFolderStore):
        assert list(store.root.iterdir()) == []


@pytest.mark.parametrize("kind", STREAMING_STORES)
def test_20_mb_streams_through_in_bounded_memory(kind: str, tmp_path: Path) -> None:
    """A 20 MB file goes in (from a path and from a stream) and out (read and copy_to) with a
    Python peak under a quarter of its size: no store holds a whole file."""
    store = make_store(kind, tmp_path)
    source = random_file(tmp_path / "big.bin", 20 * MIB)
    with source.open("rb") as stream:
        peak_put_stream = peak_python_memory(lambda: store.put(stream))
    refs: list[ArtifactRef] = []
    peak_put_path = peak_python_memory(lambda: refs.append(store.put(source)))
    peak_read = peak_python_memory(lambda: read_all_blocks(store, refs[0]))
    peak_copy = peak_python_memory(lambda: store.copy_to(refs[0], tmp_path / "copy.bin"))
    assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()
    limit = 5 * MIB
    assert max(peak_put_stream, peak_put_path, peak_read, peak_copy) < limit, (
        peak_put_stream,
        peak_put_path,
        peak_read,
        peak_copy,
    )


def test_the_ref_string_round_trips_for_every_store(store: ArtifactStore, source: Path) -> None:
    """str(ref) is one column value, and parsing it gives the same ref back."""
    ref = store.put(source)
    assert str(ref).endswith(f"{ref.sha256}#size={ref.size}")
    assert ArtifactRef.parse(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        "db:sha256:abc#size=1",
        "db:sha256:" + "a" * 64,
        "db:sha256:" + "a" * 64 + "#size=-1",
        "db:sha256:" + "a" * 64 + "#bytes=1",
        "s3://bucket/" + "A" * 64 + "#size=1",
        "s3://bucket/" + "a" * 63 + "#size=1",
        "s3://bucket/" + "a" * 64 + "#size=1",
        "s3://bucket/ab/" + "a" * 64 + "#size=1",
        "db:sha256:" + "a" * 64 + "#size=+1",
    ],
)
def test_a_malformed_ref_string_is_unreachable(text: str) -> None:
    """Anything but `<location ending in the sha256>#size=<n>` is refused with the text quoted."""
    with pytest.raises(ArtifactUnreachable, match="not an artifact reference"):
        ArtifactRef.parse(text)


@pytest.mark.parametrize(
    ("kind", "reader"),
    [
        ("local", LocalFolderStore),
        ("database", DatabaseStore),
        ("fsspec-memory", FsspecStore),
        # The same layout as a local folder, read without fsspec.
        ("fsspec-file", LocalFolderStore),
    ],
)
def test_resolve_opens_the_store_a_recorded_ref_names(
    kind: str, reader: type, tmp_path: Path
) -> None:
    """A ref string alone (plus the ledger's engine for `db:` refs) finds its bytes again, through
    a store object that never saw the put: what a reconciler on another machine does."""
    store = make_store(kind, tmp_path)
    ref = store.put(io.BytesIO(b"one line\n" * 5000))
    engine = store.engine if isinstance(store, DatabaseStore) else None
    found, parsed = resolve(str(ref), engine=engine)
    assert found is not store and type(found) is reader
    assert parsed == ref and parsed.kind == reader.kind
    with found.open(parsed) as stream:
        assert stream.read() == b"one line\n" * 5000


def test_resolve_needs_the_engine_for_a_database_ref() -> None:
    """A `db:` ref cannot be read without the ledger database it was recorded in."""
    with pytest.raises(ArtifactUnreachable, match="in a database"):
        resolve("db:sha256:" + "a" * 64 + "#size=3")


def test_a_folder_this_machine_lacks_is_unreachable(tmp_path: Path) -> None:
    """A `file://` ref into a folder not mounted here resolves; reading it says it is missing."""
    absent = (tmp_path / "not-mounted").as_uri()
    store, ref = resolve(f"{absent}/aa/{'a' * 64}#size=3")
    with pytest.raises(ArtifactUnreachable, match="missing"):
        store.open(ref)


def test_the_default_store_is_a_folder_beside_a_sqlite_ledger(tmp_path: Path) -> None:
    """No setting on SQLite: `<ledger dir>/artifacts`; "database" and URLs choose the others."""
    engine = open_ledger(tmp_path / "data" / "ledger.db")
    default = open_store(None, engine=engine)
    assert isinstance(default, LocalFolderStore)
    assert default.root == tmp_path / "data" / "artifacts"
    assert open_store("local", engine=engine, ledger_dir=tmp_path).url == (
        (tmp_path / "artifacts").as_uri()
    )
    assert isinstance(open_store("database", engine=engine), DatabaseStore)
    shared = open_store("file:///mnt/shared/ledger", engine=engine)
    assert isinstance(shared, LocalFolderStore) and shared.root == Path("/mnt/shared/ledger")
    assert isinstance(open_store("memory://bucket/prefix", engine=engine), FsspecStore)
    engine.dispose()


def test_the_default_store_on_postgresql_is_the_database() -> None:
    """No setting on PostgreSQL: the database store ("local" needs an explicit folder there)."""
    engine = create_engine("postgresql+psycopg://ledger@127.0.0.1:1/ledger")  # never connected
    assert isinstance(open_store("", engine=engine), DatabaseStore)
    with pytest.raises(ConfigError, match="needs a folder"):
        open_store("local", engine=engine)
    assert isinstance(open_store("local", engine=engine, ledger_dir=Path("/srv")), LocalFolderStore)


@pytest.mark.parametrize("setting", ["s3", "folder/artifacts", "file://otherhost/srv/artifacts"])
def test_a_bad_setting_is_an_input_error(setting: str, tmp_path: Path) -> None:
    """A setting that names no store is one ConfigError line (exit code 2)."""
    engine = open_ledger(tmp_path / "ledger.db")
    with pytest.raises(ConfigError, match="artifact_store"):
        open_store(setting, engine=engine)
    engine.dispose()


def test_without_fsspec_a_url_store_is_unreachable_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a machine without the extra, the error names the package to install."""
    monkeypatch.setitem(sys.modules, "fsspec.core", None)
    with pytest.raises(ArtifactUnreachable, match=r"llm-batch-ledger\[artifacts-fsspec\]"):
        FsspecStore("s3://bucket/prefix")


def test_an_unknown_url_scheme_is_unreachable() -> None:
    """A URL fsspec has no filesystem for is reported, not a traceback."""
    with pytest.raises(ArtifactUnreachable, match="cannot be opened"):
        FsspecStore("nosuchfs://bucket/prefix")


def test_local_files_are_private_and_written_whole(tmp_path: Path, source: Path) -> None:
    """Artifacts are 0600 in 0700 folders, and no temporary file is left after a put."""
    store = LocalFolderStore(tmp_path / "artifacts")
    ref = store.put(source)
    path = store.path_of(ref.sha256)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    assert [p.name for p in store.root.iterdir()] == [ref.sha256[:2]]


def test_putting_again_repairs_a_damaged_local_copy(tmp_path: Path, source: Path) -> None:
    """The same bytes put again replace a damaged file with a whole one."""
    store = LocalFolderStore(tmp_path / "artifacts")
    ref = store.put(source)
    flip_a_byte(store, ref, 10)
    assert store.put(source) == ref
    assert read_all_blocks(store, ref) == ref.size


def test_a_store_that_cannot_be_written_is_unreachable(tmp_path: Path, source: Path) -> None:
    """A store root that is not a folder (or a full disk) raises ArtifactUnreachable."""
    (tmp_path / "artifacts").write_text("not a folder")
    with pytest.raises(ArtifactUnreachable, match="cannot be written"):
        LocalFolderStore(tmp_path / "artifacts").put(source)


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_writing_into_a_local_store_gives_the_ref_a_put_of_the_same_bytes_gives(
    tmp_path: Path, source: Path
) -> None:
    """Bytes written straight into the store in pieces of every size are the artifact a put of
    the same file makes: same ref, private, readable, and no temporary file left."""
    store = LocalFolderStore(tmp_path / "artifacts")
    data = source.read_bytes()
    with store.writing() as writer:
        at = 0
        for size in (1, 7, MIB, 3, 2 * MIB, len(data)):
            writer.write(data[at : at + size])
            at += size
    ref = writer.ref
    assert ref is not None and ref == store.put(source)
    assert read_all_blocks(store, ref) == len(data)
    assert stat.S_IMODE(store.path_of(ref.sha256).stat().st_mode) == 0o600
    assert [p.name for p in store.root.iterdir()] == [ref.sha256[:2]]


def test_writing_that_fails_midway_leaves_nothing_in_the_store(tmp_path: Path) -> None:
    """An exception inside the block: no artifact, no partial file, no ref."""
    store = LocalFolderStore(tmp_path / "artifacts")
    with pytest.raises(RuntimeError, match="the writer died"), store.writing() as writer:
        writer.write(b"x" * (2 * MIB))
        raise RuntimeError("the writer died")
    assert writer.ref is None
    assert list(store.list()) == []
    assert list(store.root.iterdir()) == []


def test_writing_onto_a_full_disk_is_unreachable_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block that fails to be written (the disk fills after the first MB) makes the writing
    raise ArtifactUnreachable, whichever write or the end sees it, and no artifact is left."""
    import errno

    from ledger.artifacts import local

    class FillingFile(io.FileIO):
        def write(self, data: object) -> int:
            if self.tell() >= MIB:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)  # type: ignore[arg-type]

    monkeypatch.setattr(local, "open", FillingFile, raising=False)
    store = LocalFolderStore(tmp_path / "artifacts")
    with pytest.raises(ArtifactUnreachable, match="No space left"), store.writing() as writer:
        for _ in range(8):
            writer.write(b"x" * MIB)
    assert writer.ref is None
    assert list(store.root.iterdir()) == []
