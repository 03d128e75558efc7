"""The state machine and its storage: states and their transition table, the tables, opening a
database, the guarded `advance`/`claim` and leases, crash-safe files. Everything else in ledger
stands on this package; it imports nothing from the rest of ledger."""
