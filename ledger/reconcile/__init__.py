"""Moving jobs from `built` to `normalized` through their provider.

- engine.py      the Reconciler: passes, the loop, the STEPS table (state -> step), error handling
- steps/         one module per step: upload, create, poll, download, normalize
- adopt.py       "record intent, find the object carrying my token, adopt it, else act"
- context.py     what every step is given (database, options, provider lookup, lease helpers)
- options.py     ReconcileOptions, ACTIVE_STATES
- quota.py       the enqueued-token cap (--max-enqueued-tokens)
- progress.py    the group commit of unchanged polls
- send.py        sending a run right after the build; adopting a batch made elsewhere
- cancel.py      `ledger cancel`
- downloads.py   verified downloads (ZIP archives included)
"""
