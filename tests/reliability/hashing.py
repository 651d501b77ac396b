"""Content hashes of a whole warehouse, for comparing two builds.

Every table and view is hashed: each row cast to text, the rows sorted, the text hashed, so the order rows were
written in does not matter and everything else does. Provenance is left out: the run-time stamps (when a row was
ingested, fetched, scored, computed or quarantined, the report generated, an alert found or posted, the paper
book kept) and ``origin`` (the request URL or
file a row came from, which names the query window), and the id of the dbt build that wrote a row (the
incremental marts' bookkeeping: build ids and the ingestion times a build covered). They say when and how a row arrived, not what it is, and
differ between runs by construction. So does the gates' bookkeeping (the ``quality`` schema: where each table last
passed its gate and how many rows that read), which is left out whole.
"""

from pathlib import Path

import duckdb

#: columns that record when and how a run wrote a row, not what the row is
PROVENANCE_COLUMNS = frozenset(
    {
        "ingested_at",
        "fetched_at",
        "updated_at",
        "scored_at",
        "quarantined_at",
        "computed_at",
        "generated_at",
        "found_at",
        "posted_at",
        "kept_at",
        "origin",
        "build_id",
        "previous_build_id",
        "trades_ingested_from",
        "trades_ingested_to",
        "activity_ingested_from",
        "activity_ingested_to",
    }
)


def _content_columns(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> str:
    """The quoted columns of ``schema.name`` that say what a row is (provenance left out), in table order."""
    columns = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    return ", ".join(f'"{c}"' for (c,) in columns if c not in PROVENANCE_COLUMNS)


def relation_hash(
    con: duckdb.DuckDBPyConnection, relation: str, where: str = "TRUE", params: list | None = None
) -> tuple[int, str]:
    """(rows, md5 of the sorted rows) of ``relation`` (schema.name, from the catalog), provenance left out;
    ``where`` (a condition, with ``params`` bound) selects the rows."""
    schema, name = relation.split(".")
    cols = _content_columns(con, schema, name)
    return con.execute(
        f"SELECT count(*), md5(coalesce(string_agg(r, chr(10) ORDER BY r), '')) "
        f'FROM (SELECT CAST(ROW({cols}) AS VARCHAR) AS r FROM "{schema}"."{name}" WHERE {where})',
        params or [],
    ).fetchone()


def relation_digest(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[int, int]:
    """(rows, sum of the rows' 64-bit hashes) of ``relation``, provenance left out: the same test as
    :func:`relation_hash`, in a fraction of its time (no text, no sort), with a 2^-64 chance per differing row of
    missing it."""
    schema, name = relation.split(".")
    cols = _content_columns(con, schema, name)
    return con.execute(
        f'SELECT count(*), coalesce(sum(hash(ROW({cols}))::HUGEINT), 0) FROM "{schema}"."{name}"'
    ).fetchone()


#: schemas that record what was checked when, not what the warehouse holds
BOOKKEEPING_SCHEMAS = frozenset({"quality"})


def warehouse_hashes(path: str | Path, *, schemas: tuple[str, ...] | None = None, fast: bool = False) -> dict:
    """relation -> (rows, hash) for every table and view in the warehouse file (in ``schemas``, if given; the
    bookkeeping schemas left out otherwise); ``fast``: :func:`relation_digest` instead of :func:`relation_hash`."""
    digest = relation_digest if fast else relation_hash
    with duckdb.connect(str(path), read_only=True) as con:
        relations = [
            f"{s}.{n}"
            for s, n in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2"
            ).fetchall()
            if (s not in BOOKKEEPING_SCHEMAS if schemas is None else s in schemas)
        ]
        return {rel: digest(con, rel) for rel in relations}


def differences(a: dict, b: dict) -> list[str]:
    """What differs between two ``warehouse_hashes`` results, one line per relation."""
    out = []
    for rel in sorted(set(a) | set(b)):
        if rel not in a or rel not in b:
            out.append(f"{rel}: only in {'the first' if rel in a else 'the second'}")
        elif a[rel] != b[rel]:
            out.append(f"{rel}: {a[rel][0]} rows, hash {a[rel][1]} vs {b[rel][0]} rows, hash {b[rel][1]}")
    return out
