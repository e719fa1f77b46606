"""Range partitioning of the event table by position (PostgreSQL), while the platform runs.

`convert` builds a partitioned copy of `eventlog_event` beside it, copies the rows in pages
(each page its own transaction, below the log's safe horizon), then in one short transaction
locks the live table, copies what committed meanwhile and swaps the names. The old table stays
as `eventlog_event__unpartitioned` until an operator drops it.

What changes with partitioning, and why:
- A unique index on a partitioned table must contain the partition key, so "one event per
  (stream, version)" moves to a side table, `eventlog_event_version`, filled by a trigger on
  every insert: a second writer at the same version still fails with a unique violation, which
  `append` turns into a 409 as before.
- A BEFORE ROW trigger may not move a row to another partition, so a position missing from an
  insert comes from the column's default (`eventlog_next_position()`, the same transaction block
  and counter as `append`'s own positions); the position trigger stays but has nothing to do.
- The append-only guards are on the parent (updates, deletes, truncation) and on each partition
  (truncation of one partition); dropping or detaching a partition is an owner's act no trigger
  sees.

Positions are `(transaction id << 12) + n`, so a partition spans `size` transaction ids. A
DEFAULT partition catches any row past the last one, so appends never fail for want of a
partition; `add_partitions` (scheduled, or `manage.py partition_events --ahead N`) keeps
partitions ahead of the head.
"""

from collections.abc import Callable

from django.db import connection, transaction

from eventlog import guards

TABLE = guards.TABLE
NEW = f"{TABLE}__partitioned"
OLD = f"{TABLE}__unpartitioned"
VERSIONS = "eventlog_event_version"
DEFAULT = f"{TABLE}_default"
MAX_PARTITIONS = 1000
# The live table's index names, as its migrations made them, and each one's columns.
INDEXES = {"eventlog_tenant_position": "(tenant_id, position)",
           "eventlog_type_position": "(stream_type, position)",
           "eventlog_stream_version": "(stream_id, version)"}

_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION eventlog_next_position() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
    n := coalesce(nullif(current_setting('eventlog.tx_events', true), ''), '0')::integer;
    IF n >= {guards.MAX_EVENTS_PER_TRANSACTION} THEN
        RAISE EXCEPTION 'eventlog: at most % events per transaction',
            {guards.MAX_EVENTS_PER_TRANSACTION};
    END IF;
    PERFORM set_config('eventlog.tx_events', (n + 1)::text, true);
    RETURN (pg_current_xact_id()::text::bigint << {guards.POSITION_SHIFT}) + n;
END $$;
CREATE OR REPLACE FUNCTION eventlog_claim_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {VERSIONS} (stream_id, version) VALUES (NEW.stream_id, NEW.version);
    RETURN NULL;
END $$;
"""  # noqa: S608 - constant SQL


def is_partitioned() -> bool:
    """Whether the event table is partitioned already."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass",
                       [TABLE])
        return cursor.fetchone() is not None


def convert(size: int, *, ahead: int = 2, page: int = 50_000,
            progress: Callable[[int], None] | None = None) -> int:
    """Make the event table range-partitioned by position; returns the events copied."""
    if connection.vendor != "postgresql":
        raise ValueError("partitioning needs PostgreSQL")
    if size < 1 or ahead < 0:
        raise ValueError("size must be at least 1 transaction id, ahead 0 or more")
    if is_partitioned():
        raise ValueError(f"{TABLE} is partitioned already; add partitions with --ahead")
    _create_new(size, ahead)
    copied, after = 0, 0
    while True:  # pages below the safe horizon: nothing copied can be preceded later
        with transaction.atomic():
            count, after = _copy_page(after, page, horizon=True)
        copied += count
        if progress is not None:
            progress(copied)
        if count < page:
            break
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        while True:  # under the lock every event is committed: the rest, no horizon
            count, after = _copy_page(after, page, horizon=False)
            copied += count
            if count < page:
                break
        _swap(size)
    return copied


def add_partitions(ahead: int) -> list[str]:
    """Create the partitions up to `ahead` beyond the one the log's head is in; their names."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT obj_description(%s::regclass, 'pg_class')", [TABLE])
        comment = (cursor.fetchone() or [None])[0] or ""
    if not comment.startswith("partition size "):
        raise ValueError(f"{TABLE} was not partitioned by partition_events")
    return _create_partitions(TABLE, int(comment.split()[-1]), ahead)


# --- steps --------------------------------------------------------------------------------------

def _span(size: int) -> int:
    return size << guards.POSITION_SHIFT


def _create_new(size: int, ahead: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {NEW}")  # what a failed run left
        cursor.execute(f"DROP TABLE IF EXISTS {VERSIONS}")
        cursor.execute(_FUNCTIONS)
        cursor.execute(f"CREATE TABLE {NEW} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING "
                       "CONSTRAINTS INCLUDING STORAGE) PARTITION BY RANGE (position)")
        cursor.execute(f"ALTER TABLE {NEW} ALTER position SET DEFAULT eventlog_next_position()")
        cursor.execute(f"ALTER TABLE {NEW} ADD CONSTRAINT {NEW}_pkey PRIMARY KEY (position)")
        for name, columns in INDEXES.items():
            cursor.execute(f"CREATE INDEX {name}__new ON {NEW} {columns}")
        cursor.execute(f"CREATE TABLE {VERSIONS} (stream_id varchar(64) NOT NULL, "
                       "version integer NOT NULL, PRIMARY KEY (stream_id, version))")
        cursor.execute(f"CREATE TABLE {DEFAULT} PARTITION OF {NEW} DEFAULT")
    _create_partitions(NEW, size, ahead, first_from=TABLE)


def _create_partitions(parent: str, size: int, ahead: int, first_from: str | None = None
                       ) -> list[str]:
    span = _span(size)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(position) FROM {first_from or parent}")  # noqa: S608
        lowest = cursor.fetchone()[0]
        cursor.execute(f"SELECT pg_current_xact_id()::text::bigint << {guards.POSITION_SHIFT}")
        head = cursor.fetchone()[0]
        first, last = (lowest if lowest is not None else head) // span, head // span + ahead
        if last - first + 1 > MAX_PARTITIONS:
            raise ValueError(f"{last - first + 1} partitions of {size} transaction ids: choose "
                             f"a size that gives at most {MAX_PARTITIONS}")
        if first_from is None:  # adding: from the newest existing partition on
            cursor.execute("SELECT max(substring(c.relname from '_p([0-9]+)$')::bigint) "
                           "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                           "WHERE i.inhparent = %s::regclass", [parent])
            newest = cursor.fetchone()[0]
            first = first if newest is None else newest + 1
        made = []
        for number in range(first, last + 1):
            name = f"{TABLE}_p{number}"
            cursor.execute(f"CREATE TABLE {name} PARTITION OF {parent} "
                           f"FOR VALUES FROM ({number * span}) TO ({(number + 1) * span})")
            cursor.execute(f"CREATE TRIGGER eventlog_no_truncate BEFORE TRUNCATE ON {name} "
                           "FOR EACH STATEMENT EXECUTE FUNCTION eventlog_refuse_change()")
            made.append(name)
        return made


def _copy_page(after: int, page: int, *, horizon: bool) -> tuple[int, int]:
    """Copy the next `page` events after a position; (how many, the last position)."""
    limit = f"AND position < {guards.safe_horizon_sql(connection)}" if horizon else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), max(position) FROM (SELECT position FROM {TABLE} "  # noqa: S608
                       f"WHERE position > %s {limit} ORDER BY position LIMIT %s) AS p",
                       [after, page])
        count, last = cursor.fetchone()
        if not count:
            return 0, after
        cursor.execute(f"INSERT INTO {NEW} SELECT * FROM {TABLE} "  # noqa: S608
                       "WHERE position > %s AND position <= %s", [after, last])
        cursor.execute(f"INSERT INTO {VERSIONS} SELECT stream_id, version FROM {TABLE} "  # noqa: S608
                       "WHERE position > %s AND position <= %s", [after, last])
        return count, last


def _swap(size: int) -> None:
    """Give the partitioned table the live names, its guards and the version trigger."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
        cursor.execute(f"ALTER INDEX {TABLE}_pkey RENAME TO {OLD}_pkey")
        cursor.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT eventlog_stream_version "
                       f"TO {OLD}_stream_version")
        for name in INDEXES:
            if name != "eventlog_stream_version":
                cursor.execute(f"ALTER INDEX {name} RENAME TO {name}__old")
        cursor.execute(f"ALTER TABLE {NEW} RENAME TO {TABLE}")
        cursor.execute(f"ALTER INDEX {NEW}_pkey RENAME TO {TABLE}_pkey")
        for name in INDEXES:
            cursor.execute(f"ALTER INDEX {name}__new RENAME TO {name}")
        cursor.execute(f"COMMENT ON TABLE {TABLE} IS 'partition size {size}'")
        cursor.execute(
            f"CREATE TRIGGER eventlog_claim_version AFTER INSERT ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION eventlog_claim_version()")
        # The migration's triggers on the parent: the guards (updates, deletes, truncation;
        # row triggers reach every partition) and the position trigger, which never fires for
        # a position of the writing transaction (append's, or the column default's).
        guards.install(connection)
        cursor.execute(f"CREATE TRIGGER eventlog_no_truncate BEFORE TRUNCATE ON {DEFAULT} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION eventlog_refuse_change()")
        cursor.execute(f"CREATE TRIGGER eventlog_no_update_delete BEFORE UPDATE OR DELETE "
                       f"ON {VERSIONS} FOR EACH ROW EXECUTE FUNCTION eventlog_refuse_change()")
        cursor.execute(f"CREATE TRIGGER eventlog_no_truncate BEFORE TRUNCATE ON {VERSIONS} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION eventlog_refuse_change()")
