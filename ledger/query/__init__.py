"""The read side: status reports, read-only SQL over the ledger, and `ledger doctor`."""
