"""The production offline store's tables: write scenario rows into PostgreSQL, read labels back.

Feast reads feature tables itself (``PostgreSQLSource``); driftloop writes them and keeps
the label log beside them, so every pod that can reach the database sees the same data.
Connections come from the rendered ``offline_store`` section (host, port, database, user,
password), the same settings Feast uses. psycopg 3 is imported inside the functions.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

_SQL_TYPES = {"i": "bigint", "u": "bigint", "f": "double precision", "b": "boolean", "M": "timestamptz"}


def connect(config: dict[str, Any]) -> Any:
    """A psycopg connection to the offline store described by Feast's ``offline_store`` section."""
    import psycopg

    return psycopg.connect(
        host=config["host"],
        port=int(config.get("port", 5432)),
        dbname=config["database"],
        user=config["user"],
        password=config.get("password") or None,
        sslmode=config.get("sslmode") or None,
        connect_timeout=10,
        options=f"-c search_path={config.get('db_schema') or 'public'}",  # where Feast looks for the tables too
    )


def sql_type(values: pd.Series) -> str:
    """The PostgreSQL column type for a pandas column (text for anything not numeric or a time).

    >>> sql_type(pd.Series([1, 2])), sql_type(pd.Series([0.5])), sql_type(pd.Series(["a"]))
    ('bigint', 'double precision', 'text')
    >>> sql_type(pd.Series(pd.to_datetime(["2025-01-01"], utc=True)))
    'timestamptz'
    """
    return _SQL_TYPES.get(values.dtype.kind, "text")


def _ident(name: str) -> str:
    from psycopg import sql

    return sql.Identifier(name).as_string(None)  # type: ignore[no-any-return]


def write_table(config: dict[str, Any], table: str, frame: pd.DataFrame, keys: Sequence[str], append: bool = False) -> int:
    """Store ``frame`` as ``table`` (primary key ``keys``); return the rows it then holds.

    ``append=False`` replaces the table in one transaction (readers see the old rows or the
    new ones, never an empty table); ``append=True`` upserts: a row with the same keys
    replaces the stored one.
    """
    frame = frame.drop_duplicates(list(keys), keep="last")
    cols = list(frame.columns)
    col_defs = ", ".join(f"{_ident(c)} {sql_type(frame[c])}" for c in cols)
    col_list = ", ".join(_ident(c) for c in cols)
    key_list = ", ".join(_ident(k) for k in keys)
    csv = io.StringIO()
    frame.to_csv(csv, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f%z")
    with connect(config) as conn, conn.cursor() as cur:
        target = _ident(table)
        if not append:
            cur.execute(f"DROP TABLE IF EXISTS {target}")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {target} ({col_defs}, PRIMARY KEY ({key_list}))")
        staging = _ident(f"_stage_{table}")
        cur.execute(f"CREATE TEMP TABLE {staging} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP")
        with cur.copy(f"COPY {staging} ({col_list}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(csv.getvalue())
        updates = ", ".join(f"{_ident(c)} = EXCLUDED.{_ident(c)}" for c in cols if c not in keys) or None
        conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        cur.execute(f"INSERT INTO {target} ({col_list}) SELECT {col_list} FROM {staging} ON CONFLICT ({key_list}) {conflict}")
        cur.execute(f"SELECT count(*) FROM {target}")
        row = cur.fetchone()
    return int(row[0]) if row else 0


def read_table(config: dict[str, Any], table: str, where: str = "", params: Sequence[Any] = ()) -> pd.DataFrame | None:
    """Rows of ``table`` matching the SQL condition ``where`` (``%s`` placeholders), or None if it does not exist."""
    with connect(config) as conn, conn.cursor() as cur:
        if not exists(cur, table):
            return None
        cur.execute(f"SELECT * FROM {_ident(table)}" + (f" WHERE {where}" if where else ""), list(params))
        names = [d.name for d in cur.description or []]
        frame = pd.DataFrame(cur.fetchall(), columns=names)
    for c in names:
        if frame[c].dtype == object and len(frame) and hasattr(frame[c].iloc[0], "tzinfo"):
            frame[c] = pd.to_datetime(frame[c], utc=True)
    return frame


def min_value(config: dict[str, Any], table: str, column: str) -> Any:
    """The smallest ``column`` value of ``table`` (None when the table is missing or empty)."""
    with connect(config) as conn, conn.cursor() as cur:
        if not exists(cur, table):
            return None
        cur.execute(f"SELECT min({_ident(column)}) FROM {_ident(table)}")
        row = cur.fetchone()
    return row[0] if row else None


def exists(cur: Any, table: str) -> bool:
    """Whether ``table`` exists on the connection's search path."""
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", [_ident(table)])
    row = cur.fetchone()
    return bool(row and row[0])
