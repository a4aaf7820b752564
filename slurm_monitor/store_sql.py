"""Rows written with one statement per batch (``executemany``) instead of ``bulk_create``.

Why: at 100,000 jobs a state poll saves ~1,300 rows and their transitions, and most of
``store.save_jobs``'s CPU went to the ORM's SQL compiler building a statement with a
placeholder group per row (``field_as_sql`` for every value), not to the database (issue 13).
Here the statement is built once per call and each value is adapted exactly as the ORM adapts
it for a save (``Field.get_db_prep_save``), so the rows are the same on SQLite and PostgreSQL.
No model signals are sent (``bulk_create`` sends none either); no defaults are filled in:
pass every column the table needs.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from django.db import connection
from django.db.models import CharField, DateTimeField, Field, IntegerField, Model
from django.db.models.constants import OnConflict

# ``store.save_jobs``'s ClusterJob columns (accounting and its tries are written for a new row
# only: JOB_COLUMNS[2:10] are those a conflict updates, updated_at being auto_now).
JOB_COLUMNS = ("job_id", "cluster", "user", "partition", "state", "record", "updated_at", "array_job_id",
               "ended_at", "left_queue_at", "accounting", "accounting_tries")


def insert_rows(model: type[Model], fields: Sequence[str], rows: Iterable[Sequence[Any]],
                unique: str | None = None, update: Sequence[str] = ()) -> None:
    """INSERT ``rows`` (Python values in ``fields`` order) into ``model``'s table; with
    ``unique``, a row whose ``unique`` value exists updates that row's ``update`` fields
    instead (``bulk_create(update_conflicts=True, ...)``'s contract)."""
    meta = model._meta
    columns = [_field(model, name) for name in fields]
    quote = connection.ops.quote_name
    sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(_column(f)) for f in columns)}) "
           f"VALUES ({', '.join(['%s'] * len(columns))})")
    if unique is not None:
        sql += " " + connection.ops.on_conflict_suffix_sql(
            columns, OnConflict.UPDATE, [_column(_field(model, name)) for name in update],
            [_column(_field(model, unique))])
    adapters = [_adapter(field) for field in columns]
    params = [[adapt(value) for adapt, value in zip(adapters, row)] for row in rows]
    if params:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)


def _field(model: type[Model], name: str) -> Field:
    field = model._meta.get_field(name)
    if not isinstance(field, Field):  # a reverse relation: no column of this table
        raise ValueError(f"{model.__name__}.{name} is not a column")
    return field


def _column(field: Field) -> str:
    return str(field.column)


def _adapter(field: Any) -> Callable[[Any], Any]:
    """``field.get_db_prep_save`` for one value; for a str in a text column or an int in an
    integer one that is the value itself, so it is passed as is (~20 µs a value through the
    field's layers, most of the remaining cost); a datetime is adapted once per distinct value
    (the poll's moment repeats on every row)."""
    prep = field.get_db_prep_save
    if isinstance(field, CharField) and not field.choices:
        return lambda value: value if value is None or type(value) is str else prep(value, connection)
    if isinstance(field, IntegerField) and not field.choices:
        return lambda value: value if value is None or type(value) is int else prep(value, connection)
    if isinstance(field, DateTimeField):
        seen: dict[Any, Any] = {}

        def datetime_value(value: Any) -> Any:
            if value not in seen:
                seen[value] = prep(value, connection)
            return seen[value]
        return datetime_value
    return lambda value: prep(value, connection)
