"""A DuckDB connection for SQL a user types (``whalecopy sql``): it reads the warehouse and nothing else.

The warehouse is opened read-only, so no statement can change it (CREATE, INSERT, DROP fail). External access is
off, so no statement can read or write another file or reach the network: ``read_csv``, ``read_parquet``,
``COPY ... TO``, ``ATTACH`` of another database, ``EXPORT DATABASE``, ``glob`` and http URLs all fail. No extension
can be installed or loaded, and the temp directory is off (with a temp directory DuckDB allows file access inside
it). The configuration is locked, so a query cannot ``SET`` any of this back.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

#: the settings of a sandboxed connection (each one tested in tests/reliability/test_security.py)
SANDBOX_CONFIG: dict[str, str | bool] = {
    "enable_external_access": False,  # no file or network access beyond the database file itself
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_persistent_secrets": False,
    "temp_directory": "",  # no spilling to disk: a temp directory would be a place the query may write files
    "lock_configuration": True,  # last: SET / RESET of any option fails from here on
}


def connect_sandboxed(path: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse at ``path`` that cannot touch any other file (see the module
    docstring). The file must exist: a read-only connection never creates one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no warehouse at {path}")
    return duckdb.connect(str(path), read_only=True, config=dict(SANDBOX_CONFIG))
