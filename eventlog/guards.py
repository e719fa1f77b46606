"""Database-side rules of the event table: append-only, and gap-free positions on PostgreSQL.

PostgreSQL: each row's position is `(transaction id << 12) + n`, n counting the events of the
transaction. `eventlog.store.append` computes these positions in its INSERT; a trigger assigns
them to any other insert (its WHEN clause skips rows that already carry one of the writing
transaction's positions). Every transaction whose id is below
`pg_snapshot_xmin(pg_current_snapshot())` has finished, so a reader that only returns positions
below `xmin << 12` can never later meet a smaller position committing late: following the log
by position is gap-free without any lock between writers. At most 4,096 events per transaction.
"""

from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "eventlog_event"
POSITION_SHIFT = 12
MAX_EVENTS_PER_TRANSACTION = 1 << POSITION_SHIFT

_POSTGRES_POSITION = f"""
CREATE OR REPLACE FUNCTION eventlog_assign_position() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
    n := coalesce(nullif(current_setting('eventlog.tx_events', true), ''), '0')::integer;
    IF n >= {MAX_EVENTS_PER_TRANSACTION} THEN
        RAISE EXCEPTION 'eventlog: at most {MAX_EVENTS_PER_TRANSACTION} events per transaction';
    END IF;
    PERFORM set_config('eventlog.tx_events', (n + 1)::text, true);
    NEW.position := (pg_current_xact_id()::text::bigint << {POSITION_SHIFT}) + n;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS eventlog_position ON {TABLE};
CREATE TRIGGER eventlog_position BEFORE INSERT ON {TABLE}
    FOR EACH ROW
    WHEN (NEW.position >> {POSITION_SHIFT} IS DISTINCT FROM pg_current_xact_id()::text::bigint)
    EXECUTE FUNCTION eventlog_assign_position();
"""

_POSTGRES_GUARDS = f"""
CREATE OR REPLACE FUNCTION eventlog_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'eventlog is append-only: % refused on {TABLE}', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
DROP TRIGGER IF EXISTS eventlog_no_update_delete ON {TABLE};
CREATE TRIGGER eventlog_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION eventlog_refuse_change();
DROP TRIGGER IF EXISTS eventlog_no_truncate ON {TABLE};
CREATE TRIGGER eventlog_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION eventlog_refuse_change();
"""

_POSTGRES_DROP_GUARDS = f"""
DROP TRIGGER IF EXISTS eventlog_no_update_delete ON {TABLE};
DROP TRIGGER IF EXISTS eventlog_no_truncate ON {TABLE};
"""

_SQLITE_GUARDS = [
    f"""CREATE TRIGGER IF NOT EXISTS eventlog_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'eventlog is append-only: UPDATE refused on {TABLE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS eventlog_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'eventlog is append-only: DELETE refused on {TABLE}'); END""",
]
_SQLITE_DROP_GUARDS = ["DROP TRIGGER IF EXISTS eventlog_no_update",
                       "DROP TRIGGER IF EXISTS eventlog_no_delete"]


def install(connection: BaseDatabaseWrapper) -> None:
    """Create the position trigger (PostgreSQL) and the append-only guards."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_POSTGRES_POSITION)
            cursor.execute(_POSTGRES_GUARDS)
        elif connection.vendor == "sqlite":
            for statement in _SQLITE_GUARDS:
                cursor.execute(statement)
        else:
            raise NotImplementedError(f"eventlog has no guards for {connection.vendor}")


def drop_guards(connection: BaseDatabaseWrapper) -> None:
    """Remove the append-only guards; only `flush` (wiping the whole database) does this."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_POSTGRES_DROP_GUARDS)
        else:
            for statement in _SQLITE_DROP_GUARDS:
                cursor.execute(statement)


# The position block of the current transaction: (base, events already appended in it).
POSTGRES_TX_BLOCK = (
    f"SELECT (pg_current_xact_id()::text::bigint << {POSITION_SHIFT}) AS base, "
    "coalesce(nullif(current_setting('eventlog.tx_events', true), ''), '0')::integer AS n"
)
POSTGRES_CLAIM = "set_config('eventlog.tx_events', (tx.n + {count})::text, true)"


def safe_horizon_sql(connection: BaseDatabaseWrapper) -> str | None:
    """SQL for the first position a reader must not return yet, or None when all are safe."""
    if connection.vendor == "postgresql":
        return (f"(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {POSITION_SHIFT})")
    return None
