"""Set-based inserts for the hot paths, below SQLAlchemy's per-row parameter handling.

SQLite gets one `executemany` with plain tuples; PostgreSQL gets `COPY ... FROM
STDIN` (psycopg 3), both inside the caller's transaction. Used where a batch
writes tens of thousands of rows (journal lines, note shares).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[object, ...]]) -> None:
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.dbapi_connection  # a psycopg 3 connection
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", list(rows))
