"""Database capture: PostgreSQL trigger functions capture DB events in the writing statement.

With `EVENTING["CAPTURE"] = "database"` every table with DB triggers gets one statement-level
AFTER trigger per event kind. Its function stores the statement's rows (the transition table as
JSON, only the columns the table's triggers read, split over several captures when large) in the
narrow, append-only `event_captures` table and `pg_notify`s at commit; that is all a write pays.
After commit the listener (the sweeper when no listener runs) calls the table's generated
*expander* on each capture: it builds the same `data` the signal receivers build, applies each
trigger's watch list, filter and payload fields in SQL, inserts one `event_logs` row per
(row, trigger) with a single `INSERT … SELECT` and deletes the capture in the same transaction.

Modules, each on those before it: `sql` (literals, identifiers), `mode` (which models are
served), `render` (values as json_safe writes them), `conditions` (filters), `writer` (the
trigger function and its trust boundary), `plan` (the generated functions), `catalog` (what the
triggers want, what the database holds), `expand_function` (the versioned
event_captures_expand), `expand` (captures into events), `install` (status, sync, drop),
`switch` (who records a write while modes change), `service` (triggers changed, migrate).
"""

from eventing.capture.database.catalog import read_catalog, wanted_functions
from eventing.capture.database.expand import (
    Expanded,
    expand_all,
    expand_captures,
    pending_captures,
)
from eventing.capture.database.install import (
    BROKEN,
    DISABLED,
    MISSING,
    OK,
    ORPHAN,
    STALE,
    UNSERVED,
    TableStatus,
    broken_lines,
    capture_status,
    describe_capture,
    drop,
    sync,
)
from eventing.capture.database.mode import (
    CHANNEL,
    DATABASE,
    KINDS,
    MODES,
    PREFIX,
    SIGNALS,
    capture_mode,
    database_capture,
    served_by_database,
    unservable_reason,
)
from eventing.capture.database.service import (
    capture_connect,
    triggers_changed,
    triggers_changing,
)

__all__ = [
    "BROKEN",
    "broken_lines",
    "CHANNEL",
    "DATABASE",
    "DISABLED",
    "KINDS",
    "MISSING",
    "MODES",
    "OK",
    "ORPHAN",
    "PREFIX",
    "SIGNALS",
    "STALE",
    "UNSERVED",
    "Expanded",
    "TableStatus",
    "capture_connect",
    "capture_mode",
    "capture_status",
    "database_capture",
    "describe_capture",
    "drop",
    "expand_all",
    "expand_captures",
    "pending_captures",
    "read_catalog",
    "served_by_database",
    "sync",
    "triggers_changed",
    "triggers_changing",
    "unservable_reason",
    "wanted_functions",
]
