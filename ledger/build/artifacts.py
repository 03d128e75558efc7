"""A build's shards in the artifact store: put when the run is recorded, and rebuilt from the
run's recorded input and options when the stored copy of a shard not yet sent is lost or damaged.

A rebuilt shard is used only when its sha256 is the recorded one: the bytes sent are always the
bytes built and recorded at submit, whichever machine sends them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.artifacts import ArtifactCorrupt, ArtifactError, store_for
from ledger.build.body_options import JsonSchemaFormat
from ledger.build.inputs import InputFile
from ledger.build.plan import input_sha256
from ledger.build.shards import Shard
from ledger.core.models import Run
from ledger.errors import LedgerError


def put_shards(engine: Engine, shards: Iterable[Shard]) -> dict[int, str]:
    """Put each finished shard file into the ledger's artifact store; its ref string by shard
    index. A shard whose stored sha256 is not the one the build computed is refused."""
    store = store_for(engine)
    refs: dict[int, str] = {}
    for shard in shards:
        ref = store.put(shard.path)
        if ref.sha256 != shard.sha256 or ref.size != shard.bytes:
            raise ArtifactCorrupt(
                f"shard {shard.path.name} changed while it was stored "
                f"(built sha256 {shard.sha256[:12]}, stored {ref.sha256[:12]})"
            )
        refs[shard.index] = str(ref)
    return refs


@contextmanager
def rebuilt_shard(engine: Engine, job: Any) -> Iterator[Path]:
    """The job's shard built again from its run's recorded input file and options, in a scratch
    folder removed afterwards. ArtifactError saying why when that cannot give the recorded bytes
    (the input is gone or changed, the job is a retry's, the build differs)."""
    from ledger.build.run import BuildOptions  # run imports this module
    from ledger.build.streaming import build_shards

    label = f"job {job.id}'s shard cannot be rebuilt"
    if job.parent_job_id is not None:
        raise ArtifactError(f"{label}: it is a retry's, cut from its parents' shards")
    with engine.connect() as connection:
        run = connection.execute(select(Run).where(Run.id == job.run_id)).one()
    source = Path(run.input_path)
    try:
        digest = input_sha256(source, str(source))
    except (LedgerError, OSError) as error:
        raise ArtifactError(f"{label}: the run's input {source} cannot be read ({error})") from None
    if digest != run.input_sha256:
        raise ArtifactError(f"{label}: the run's input {source} changed since the submit")
    fields = dict(run.options or {})
    schema = fields.get("json_schema")
    if isinstance(schema, dict):
        fields["json_schema"] = JsonSchemaFormat(**schema)
    options = BuildOptions(provider=run.provider, **fields)
    scratch = Path(tempfile.mkdtemp(prefix="ledger-rebuild-"))
    try:
        try:
            built = build_shards(InputFile(source), scratch, options, None, options.model_table())
        except LedgerError as error:
            raise ArtifactError(f"{label}: building the input again fails ({error})") from None
        built.spool.close()
        found = [shard for shard in built.shards if shard.index == job.shard_index]
        if not found or found[0].sha256 != job.input_sha256:
            raise ArtifactError(f"{label}: building the input again gives other bytes")
        yield found[0].path
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
