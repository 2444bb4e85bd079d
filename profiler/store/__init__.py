"""The measurement store, and every SQL statement lutfarm runs.

One SQLite file (WAL mode) or a lab's PostgreSQL database behind one interface
(``drivers``), a versioned schema whose column lists everything else reads (``schema``), the
record every layer uses (``records``), the store itself (``store``), and what else speaks SQL:
``db copy`` (``copy``), the shared case queue (``queue``) and the dashboard's aggregates
(``aggregates``). Nothing outside this package touches a connection.
"""

from lutfarm.profiler.store.drivers import StoreError, StoreUnavailable, is_postgres
from lutfarm.profiler.store.records import ARENA_METHODS, MEASUREMENT_COLUMNS, Measurement, Span
from lutfarm.profiler.store.schema import _MIGRATIONS, _SCHEMA, SCHEMA_VERSION, table_columns
from lutfarm.profiler.store.store import LeaseLost, Store, default_db_path

__all__ = ["ARENA_METHODS", "MEASUREMENT_COLUMNS", "SCHEMA_VERSION", "LeaseLost", "Measurement",
           "Span", "Store", "StoreError", "StoreUnavailable", "_MIGRATIONS", "_SCHEMA", "default_db_path",
           "is_postgres", "table_columns"]
