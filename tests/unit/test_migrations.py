"""Migrations are the schema's one source of truth, and the models never drift from them."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, inspect, text
from sqlalchemy.engine import Engine

from ledger.artifacts import tables as artifact_tables
from ledger.core.db import alembic_config, open_ledger, schema_revision
from ledger.core.models import Base, partial_indexes

TABLES = {"runs", "jobs", "job_events", "requests", "artifacts", "artifact_chunks"}
VIEWS = {"job_history", "job_overview", "run_progress"}


def head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def ledger_metadata() -> MetaData:
    """Every table the migrations create: the job tables and the artifact store's."""
    partial_indexes()  # declared apart from their table (`ledger.core.models`)
    combined = MetaData()
    for metadata in (Base.metadata, artifact_tables.metadata):
        for table in metadata.tables.values():
            table.to_metadata(combined)
    return combined


def run_alembic(engine: Engine, verb: str, target: str) -> None:
    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        getattr(command, verb)(config, target)
        connection.commit()


def test_open_upgrades_to_head_and_twice_is_a_no_op(db_url: str) -> None:
    """Opening an empty database migrates it to head; opening it again changes nothing."""
    engine = open_ledger(db_url)
    assert schema_revision(engine) == head()
    first = set(inspect(engine).get_table_names()) | set(inspect(engine).get_view_names())
    engine.dispose()
    engine = open_ledger(db_url)
    second = set(inspect(engine).get_table_names()) | set(inspect(engine).get_view_names())
    assert schema_revision(engine) == head()
    assert first == second
    assert second >= TABLES | VIEWS
    engine.dispose()


def test_downgrade_to_base_and_up_again(engine: Engine) -> None:
    """Every migration can be undone and redone."""
    run_alembic(engine, "downgrade", "base")
    inspector = inspect(engine)
    assert not (TABLES | VIEWS) & (
        set(inspector.get_table_names()) | set(inspector.get_view_names())
    )
    run_alembic(engine, "upgrade", "head")
    assert schema_revision(engine) == head()
    assert set(inspect(engine).get_view_names()) >= VIEWS


def test_models_match_the_migrated_schema(engine: Engine) -> None:
    """compare_metadata between the models and the migrated database is empty: no drift."""
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), ledger_metadata())
    assert diff == []


def test_views_answer_on_an_empty_ledger(engine: Engine) -> None:
    """Each view is valid SQL on this database."""
    from sqlalchemy import text

    with engine.connect() as connection:
        for view in VIEWS:
            assert connection.execute(text(f"SELECT * FROM {view}")).all() == []


def test_partial_indexes_are_the_ones_the_migrations_create(tmp_path: Path) -> None:
    """compare_metadata ignores an index's WHERE, so the models' partial indexes are checked by
    their DDL: created from the models they read as the migrated ledger's, word for word."""
    migrated = open_ledger(tmp_path / "migrated.db")
    from_models = create_engine(f"sqlite:///{tmp_path / 'models.db'}")
    indexes = partial_indexes()
    Base.metadata.create_all(from_models)
    query = text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql LIKE '%WHERE%'")
    with migrated.connect() as a, from_models.connect() as b:
        assert dict(a.execute(query).all()) == dict(b.execute(query).all())
        assert set(dict(a.execute(query).all())) == {index.name for index in indexes}
