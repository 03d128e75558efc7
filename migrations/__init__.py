"""Alembic migrations: the only thing that creates or changes the ledger's schema."""
