"""A batch of events folded into rows in memory, then written with a few set-based statements.

A projection that folds (`Projection.fold`) never writes per event: it reads and changes rows
of a `Batch`, which loads each row at most once, collapses a create and the updates after it
into one insert, successive updates of a row into one update, and then writes every table with
one COPY (PostgreSQL; plain inserts on SQLite) and one `UPDATE ... FROM (VALUES ...)` per set of
changed columns. The same code runs inline (in the append transaction), in catch-up and in
rebuilds, which may point the batch at shadow tables instead of the live ones.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Field, JSONField, Model

Row = dict[str, Any]
# A value of each kind of primary key, to learn the Python type its rows hold.
_SAMPLE_KEYS = {"UUIDField": "00000000-0000-0000-0000-000000000000", "BigIntegerField": 0,
                "IntegerField": 0, "BigAutoField": 0, "AutoField": 0,
                "PositiveIntegerField": 0, "OneToOneField": "00000000-0000-0000-0000-000000000000",
                "ForeignKey": "00000000-0000-0000-0000-000000000000"}
_UPDATE_CHUNK = 2000  # rows per UPDATE statement: bounded statement size
_COPY_FROM = 50  # rows: fewer go in one INSERT (COPY costs a second round trip)


class Table:
    """The rows of one model that a batch has read or changed, by primary key."""

    def __init__(self, model: type[Model], name: str):
        meta = model._meta
        self.model, self.name = model, name
        self.fields: list[Field] = list(meta.concrete_fields)
        self.columns = [f.column for f in self.fields]
        self.attnames = [f.attname for f in self.fields]
        self.pk: Field = meta.pk
        # Defaults worked out once: a constant, or a callable (a fresh list per row).
        self.constants = {f.attname: f.get_default() for f in self.fields
                          if not (f.has_default() and callable(f.default))}
        self.factories = [(f.attname, f.default) for f in self.fields
                          if f.has_default() and callable(f.default)]
        self._pk_type = type(self.pk.to_python(_SAMPLE_KEYS.get(self.pk.get_internal_type(),
                                                                 "x")))
        self.rows: dict[Any, Row] = {}
        self.absent: set[Any] = set()
        self.new: dict[Any, None] = {}  # in creation order
        self.dirty: dict[Any, set[str]] = {}
        # Updates of rows not read: written without reading them (nothing when absent).
        self.blind: dict[Any, Row] = {}

    def key(self, value: object) -> Any:
        """A primary key in the type the rows hold (event data carries ids as strings)."""
        return value if type(value) is self._pk_type else self.pk.to_python(value)

    def load(self, keys: Iterable[object]) -> None:
        """Read the rows of these keys not seen yet, in one query per thousand."""
        wanted = [k for k in {self.key(k) for k in keys if k is not None}
                  if k not in self.rows and k not in self.absent]
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start:start + 1000]
            self._read(f"{_q(self.pk.column)} IN ({', '.join(['%s'] * len(chunk))})",
                       [self.pk.get_db_prep_value(k, connection) for k in chunk])
            self.absent.update(k for k in chunk if k not in self.rows)

    def get(self, key: object) -> Row | None:
        """The row of this key as it stands in the batch (None when there is none)."""
        key = self.key(key)
        if key not in self.rows and key not in self.absent:
            self.load([key])
        return self.rows.get(key)

    def where(self, **equals: object) -> list[Row]:
        """Rows whose columns (attnames) equal these values: the stored ones and the batch's."""
        clauses = [f"{_q(self.model._meta.get_field(a).column)} = %s" for a in equals]
        params = [self.model._meta.get_field(a).get_db_prep_value(v, connection)
                  for a, v in equals.items()]
        self._read(" AND ".join(clauses), params)
        wanted = [(a, self.model._meta.get_field(a)) for a in equals]
        values = {a: field.to_python(equals[a]) for a, field in wanted}
        return [row for row in self.rows.values()  # the batch may hold ids as strings
                if all(field.to_python(row[a]) == values[a] for a, field in wanted)]

    def create(self, **values: object) -> Row:
        """A new row: the model's defaults, then these values (attnames)."""
        row = self.constants.copy()
        for attname, factory in self.factories:
            if attname not in values:
                row[attname] = factory()
        row.update(values)
        key = row[self.pk.attname] = self.key(row[self.pk.attname])
        if key in self.rows:
            raise ValueError(f"{self.model._meta.label} {key} already exists")
        self.rows[key] = row
        self.absent.discard(key)
        self.new[key] = None
        return row

    def update(self, key: object, **values: object) -> None:
        """Set columns of the row of this key (nothing when there is none, like a filtered
        update); a row the batch has not read is not read for it."""
        key = self.key(key)
        if key in self.rows:
            self.change(self.rows[key], **values)
        elif key not in self.absent:
            self.blind.setdefault(key, {}).update(values)

    def change(self, row: Row, **values: object) -> None:
        """Change a row this batch holds."""
        row.update(values)
        key = row[self.pk.attname]
        if key not in self.new:
            self.dirty.setdefault(key, set()).update(values)

    def upsert(self, key: object, **values: object) -> Row:
        """Update the row of this key, or create it with these values."""
        row = self.get(key)
        if row is None:
            return self.create(**{self.pk.attname: key, **values})
        self.change(row, **values)
        return row

    def _read(self, where: str, params: list[Any]) -> None:
        sql = (f"SELECT {', '.join(_q(c) for c in self.columns)} FROM {_q(self.name)} "  # noqa: S608
               f"WHERE {where}")
        converters = [_from_db(f) for f in self.fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for values in cursor.fetchall():
                row = {a: conv(v) for a, conv, v in zip(self.attnames, converters, values,
                                                        strict=True)}
                key = row[self.pk.attname]
                if key not in self.rows:  # the batch's version of a row is the newer one
                    self.rows[key] = row
                    if key in self.blind:  # set before the row was read
                        self.change(row, **self.blind.pop(key))

    # --- writing ------------------------------------------------------------------------------

    def write(self) -> None:
        """Update the changed rows (grouped by changed columns), then insert the new ones.

        Updates go first because a batch frees values before it reuses them (a project is
        archived, then a new one takes its name), never the other way round.
        """
        groups: dict[tuple[str, ...], list[Row]] = {}
        for key, attnames in self.dirty.items():
            groups.setdefault(tuple(sorted(attnames)), []).append(self.rows[key])
        for key, values in self.blind.items():
            groups.setdefault(tuple(sorted(values)), []).append(
                {**values, self.pk.attname: key})
        for attnames, rows in groups.items():
            for start in range(0, len(rows), _UPDATE_CHUNK):
                self._update(attnames, rows[start:start + _UPDATE_CHUNK])
        if self.new:
            self._insert([self.rows[k] for k in self.new])
        self.new, self.dirty, self.blind = {}, {}, {}

    def _insert(self, rows: list[Row]) -> None:
        if connection.vendor == "postgresql" and len(rows) >= _COPY_FROM:
            attnames = self.attnames
            json_columns = [i for i, f in enumerate(self.fields) if isinstance(f, JSONField)]
            with connection.cursor() as cursor, connection.wrap_database_errors:
                columns = ", ".join(_q(c) for c in self.columns)
                with cursor.cursor.copy(f"COPY {_q(self.name)} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        values = [row[a] for a in attnames]
                        for i in json_columns:
                            values[i] = _json(values[i])
                        copy.write_row(values)
            return
        values = [[f.get_db_prep_save(row[f.attname], connection) for f in self.fields]
                  for row in rows]
        columns = ", ".join(_q(c) for c in self.columns)
        one = f"({', '.join(['%s'] * len(self.columns))})"
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":  # a few rows: one statement, one round trip
                cursor.execute(f"INSERT INTO {_q(self.name)} ({columns}) "  # noqa: S608
                               f"VALUES {', '.join([one] * len(rows))}",
                               [v for row in values for v in row])
            else:
                cursor.executemany(f"INSERT INTO {_q(self.name)} ({columns}) VALUES {one}",  # noqa: S608
                                   values)

    def _update(self, attnames: tuple[str, ...], rows: list[Row]) -> None:
        fields = [self.model._meta.get_field(a) for a in attnames]
        fields = [f for f in fields if f.attname != self.pk.attname]
        if not fields:
            return
        pk = _q(self.pk.column)
        if connection.vendor != "postgresql":
            sql = (f"UPDATE {_q(self.name)} SET "  # noqa: S608
                   f"{', '.join(f'{_q(f.column)} = %s' for f in fields)} WHERE {pk} = %s")
            with connection.cursor() as cursor:
                cursor.executemany(sql, [
                    [f.get_db_prep_save(row[f.attname], connection) for f in fields]
                    + [self.pk.get_db_prep_save(row[self.pk.attname], connection)]
                    for row in rows])
            return
        every = [self.pk, *fields]
        casts = [f.db_type(connection).split("(")[0] for f in every]
        value = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
        names = ", ".join(f"c{i}" for i in range(len(every)))
        sets = ", ".join(f"{_q(f.column)} = v.c{i + 1}" for i, f in enumerate(fields))
        sql = (f"UPDATE {_q(self.name)} AS t SET {sets} "  # noqa: S608
               f"FROM (VALUES {', '.join([value] * len(rows))}) AS v ({names}) "
               f"WHERE t.{pk} = v.c0")
        dumps = [_pg_param(f) for f in every]
        params = [dump(row[f.attname]) for row in rows for f, dump in zip(every, dumps,
                                                                            strict=True)]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


class Batch:
    """The tables one batch of events changes; `write` stores them all."""

    def __init__(self, models: Iterable[type[Model]],
                 names: Mapping[type[Model], str] | None = None):
        names = names or {}
        self.tables = {m: Table(m, names.get(m, m._meta.db_table)) for m in models}

    def __getitem__(self, model: type[Model]) -> Table:
        return self.tables[model]

    def write(self) -> None:
        """Write every table, in the order the projection lists its models (parents first)."""
        for table in self.tables.values():
            table.write()


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _from_db(field: Field):  # noqa: ANN202
    """The converter from a raw column value to what a model instance would hold."""
    converters = connection.ops.get_db_converters(field.get_col(field.model._meta.db_table))
    if hasattr(field, "from_db_value"):
        converters = [*converters, field.from_db_value]
    if not converters:
        return lambda value: value

    def convert(value: object) -> object:
        for converter in converters:
            value = converter(value, None, connection)
        return value
    return convert


def _json(value: object) -> str | None:
    """JSON text of a JSONField's value (psycopg adapts every other column by itself)."""
    return None if value is None else json.dumps(value, cls=DjangoJSONEncoder)


def _pg_param(field: Field):  # noqa: ANN202
    if isinstance(field, JSONField):
        return _json
    return lambda value: field.get_db_prep_save(value, connection)
