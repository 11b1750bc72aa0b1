"""The full re-link's bulk reads and writes, as Arrow columns: every stored record read in one pass
(PostgreSQL: one `COPY ... TO STDOUT` parsed by pyarrow's CSV reader), the splink input taken from the
stored feature columns (the rows already hold pinyin, loose pinyin and the blocking keys), and the
changed links written back through a COPY-filled temporary table. No Python object per record.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection

from rhip.identity.train import SPLINK_COLUMNS

# what the re-link needs of each record, in this order
_LINK = ("id", "person_id", "pinned", "band", "probability")
_FEATURES = SPLINK_COLUMNS[1:]  # everything but unique_id, stored under the same names
READ_COLUMNS = (*_LINK, *_FEATURES)
_TYPES: dict[str, pa.DataType] = {c: pa.string() for c in READ_COLUMNS}
_TYPES.update({"id": pa.int64(), "pinned": pa.bool_(), "probability": pa.float64()})
_SCHEMA = pa.schema([(c, _TYPES[c]) for c in READ_COLUMNS])
WRITE_COLUMNS = ("id", "person_id", "band", "probability", "linked_by")
_COPY_CHUNK = 1 << 20


def _select_sql(birth_date: str) -> str:
    cols = [birth_date if c == "birth_date" else c for c in READ_COLUMNS]
    return f"SELECT {', '.join(cols)} FROM identity_records ORDER BY id"


def read_records(conn: Connection) -> pa.Table:
    """Every stored record's link and features, ordered by id (birth dates as ISO text)."""
    if conn.dialect.name == "postgresql":
        return _read_copy(conn)
    cur = conn.exec_driver_sql(_select_sql("birth_date"))  # SQLite keeps dates as ISO text already
    rows = cur.fetchall()
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in READ_COLUMNS]
    arrays = [
        pa.array([bool(x) for x in v] if c == "pinned" else list(v), _TYPES[c])
        for c, v in zip(READ_COLUMNS, cols, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=_SCHEMA)


def _read_copy(conn: Connection) -> pa.Table:
    raw = conn.connection.dbapi_connection
    assert raw is not None
    sql = _select_sql("to_char(birth_date, 'YYYY-MM-DD')")
    chunks: list[bytes] = []
    with raw.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:  # type: ignore[attr-defined]
        for data in copy:
            chunks.append(bytes(data))
    if not chunks:
        return _SCHEMA.empty_table()
    return pacsv.read_csv(
        pa.BufferReader(b"".join(chunks)),
        read_options=pacsv.ReadOptions(column_names=list(READ_COLUMNS)),
        convert_options=pacsv.ConvertOptions(
            column_types=_TYPES,
            null_values=[""],  # COPY's csv: NULL is an unquoted empty field, '' a quoted one
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    ).select(list(READ_COLUMNS))


def splink_input(records: pa.Table) -> pa.Table:
    """The splink input of stored records: unique_id is the row position, the rest stored columns."""
    uid = pa.array(range(records.num_rows), pa.int64())
    return pa.Table.from_arrays(
        [uid, *(records.column(c).cast(pa.string()) for c in _FEATURES)], names=list(SPLINK_COLUMNS)
    )


def write_back(conn: Connection, changes: pa.Table) -> None:
    """Set person, band, probability and linked_by of the changed records (columns WRITE_COLUMNS)."""
    if changes.num_rows == 0:
        return
    if conn.dialect.name != "postgresql":
        values = [
            changes.column(c).to_pylist() for c in ("person_id", "band", "probability", "linked_by", "id")
        ]
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.executemany(
                "UPDATE identity_records SET person_id = ?, band = ?, probability = ?, linked_by = ? "
                "WHERE id = ?",
                list(zip(*values, strict=True)),
            )
        finally:
            cur.close()
        return
    conn.exec_driver_sql(
        "CREATE TEMP TABLE identity_relink (id BIGINT PRIMARY KEY, person_id VARCHAR(32), band VARCHAR(8), "
        "probability DOUBLE PRECISION, linked_by VARCHAR(48)) ON COMMIT DROP"
    )
    sink = io.BytesIO()
    pacsv.write_csv(changes.select(list(WRITE_COLUMNS)), sink, pacsv.WriteOptions(include_header=False))
    data = sink.getbuffer()
    raw = conn.connection.dbapi_connection
    assert raw is not None
    names = ", ".join(WRITE_COLUMNS)
    with raw.cursor() as cur, cur.copy(f"COPY identity_relink ({names}) FROM STDIN (FORMAT csv)") as copy:  # type: ignore[attr-defined]
        for i in range(0, len(data), _COPY_CHUNK):
            copy.write(data[i : i + _COPY_CHUNK])
    del data
    conn.exec_driver_sql(
        "UPDATE identity_records r SET person_id = t.person_id, band = t.band, probability = t.probability, "
        "linked_by = t.linked_by FROM identity_relink t WHERE r.id = t.id"
    )
    conn.exec_driver_sql("DROP TABLE identity_relink")


def changed(records: pa.Table, person: pa.Array, band: pa.Array, probability: pa.Array) -> pa.Array:
    """Which records' person, band or probability differ from the stored ones (a boolean mask)."""
    return pc.or_(
        pc.or_(pc.not_equal(records.column("person_id"), person), pc.not_equal(records.column("band"), band)),
        pc.not_equal(records.column("probability"), probability),
    )
