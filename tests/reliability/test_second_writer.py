"""A second process writing while the pipeline writes (issue 7): a bounded wait, then a clear error; the file is
never corrupted, and the wait succeeds when the other writer finishes in time."""

import subprocess
import sys
import textwrap

import duckdb
import pytest

from orchestration.resources import WarehouseLocked, WarehouseResource

pytestmark = pytest.mark.reliability

HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("INSERT INTO t VALUES (2)")
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    """
)


def _hold(path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "holding"
    return proc


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        con.execute("INSERT INTO t VALUES (1)")
    return path


def test_a_held_lock_fails_clearly_after_the_wait_and_corrupts_nothing(warehouse):
    proc = _hold(warehouse, 60)
    try:
        with pytest.raises(WarehouseLocked, match="locked by another process .* close the other connection"):
            with WarehouseResource(database=str(warehouse), lock_wait_s=0.5).get_connection():
                pass
    finally:
        proc.kill()
        proc.wait()
    with WarehouseResource(database=str(warehouse), lock_wait_s=5).get_connection() as con:
        assert con.execute("SELECT list(x ORDER BY x) FROM t").fetchall()[0][0] in ([1], [1, 2])


def test_the_wait_succeeds_when_the_other_writer_finishes(warehouse):
    proc = _hold(warehouse, 0.5)
    with WarehouseResource(database=str(warehouse), lock_wait_s=60).get_connection() as con:
        assert con.execute("SELECT list(x ORDER BY x) FROM t").fetchall()[0][0] == [1, 2]
    proc.wait()


def test_other_io_errors_are_not_retried(tmp_path):
    with pytest.raises(duckdb.Error):
        with WarehouseResource(database=str(tmp_path / "no" / "such" / "dir" / "w.duckdb")).get_connection():
            pass
