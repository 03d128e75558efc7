"""Arrow in a process that is ledger's own (the `ledger results --format parquet` command): two
process-wide choices that take about 75 MB off the Parquet export's peak (bench/parquet.py), and
that a library call must not make for its caller's process.

- The allocator. pyarrow's bundled allocator (mimalloc) keeps the pages of each written row group
  for reuse, and the Parquet writer allocates from Arrow's process default, which no argument
  reaches: only `ARROW_DEFAULT_MEMORY_POOL`, read when Arrow first allocates, picks the C
  library's malloc, which gives them back (about 25 MB less at the peak).
- pandas. pyarrow's first conversion of a Python list imports pandas, when installed, only to ask
  whether the list is a pandas object (about 50 MB of modules): refused here, pyarrow records
  that there is no pandas and converts lists as lists. Asked for pandas later (`to_pandas`), it
  imports it then.

Both are set for the `with` block only, before pyarrow is imported: a pyarrow already loaded
keeps its allocator, and a pandas already loaded is used as it is.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType

ALLOCATOR_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


class _RefusePandas(importlib.abc.MetaPathFinder):
    """Makes `import pandas` fail as if pandas were not installed."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ImportError("pandas is not imported while ledger writes Parquet")
        return None


@contextmanager
def lean_arrow() -> Iterator[None]:
    """Within the block, Arrow allocates with malloc (unless the variable is set already) and
    pandas is not imported."""
    chosen = os.environ.get(ALLOCATOR_VARIABLE)
    if chosen is None:
        os.environ[ALLOCATOR_VARIABLE] = "system"
    refuse = _RefusePandas()
    sys.meta_path.insert(0, refuse)
    try:
        yield
    finally:
        sys.meta_path.remove(refuse)
        if chosen is None:
            os.environ.pop(ALLOCATOR_VARIABLE, None)
