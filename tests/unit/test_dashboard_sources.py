"""The dashboard's warehouse reads on a tiny DuckDB file: cached until the file changes, bounded, and every
missing piece said with what builds it."""

import os
import time

import duckdb
import pytest

from dashboard.sources import SourceUnavailable, Warehouse


@pytest.fixture()
def tiny(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA analytics; CREATE TABLE analytics.t AS SELECT range AS x FROM range(5)")
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))
    return path


def test_a_read_is_cached_until_the_file_changes(tiny):
    wh = Warehouse(tiny, quiet_s=0.0)
    first = wh.read({"n": "SELECT count(*) AS n FROM analytics.t"})
    assert wh.read({"n": "SELECT count(*) AS n FROM analytics.t"}) is first
    with duckdb.connect(str(tiny)) as con:
        con.execute("INSERT INTO analytics.t VALUES (5)")
    again = wh.read({"n": "SELECT count(*) AS n FROM analytics.t"})
    assert again is not first and again.frames["n"]["n"].tolist() == [6] and again.stale is None


def test_parameters_are_bound_and_the_cache_keeps_the_latest_reads(tiny):
    wh = Warehouse(tiny, quiet_s=0.0, max_cached=2)
    reads = [wh.read({"x": "SELECT x FROM analytics.t WHERE x = ?"}, {"x": [i]}) for i in range(3)]
    assert [r.frames["x"]["x"].tolist() for r in reads] == [[0], [1], [2]]
    assert len(wh._cache) == 2
    assert wh.read({"x": "SELECT x FROM analytics.t WHERE x = ?"}, {"x": [2]}) is reads[2]  # kept
    assert wh.read({"x": "SELECT x FROM analytics.t WHERE x = ?"}, {"x": [0]}) is not reads[0]  # evicted


def test_missing_file_table_and_column_are_said_with_what_builds_them(tiny, tmp_path):
    with pytest.raises(SourceUnavailable, match=r"no warehouse at .*none.duckdb: run `make demo`") as e:
        Warehouse(tmp_path / "none.duckdb").read({"n": "SELECT 1"})
    assert e.value.kind == "missing"
    wh = Warehouse(tiny, quiet_s=0.0)
    with pytest.raises(SourceUnavailable, match=r"has no table nope yet: run `whalecopy demo`"):
        wh.read({"n": "SELECT * FROM analytics.nope"})
    with pytest.raises(
        SourceUnavailable, match=r"lacks a column this page reads .*built by an older whalecopy"
    ):
        wh.read({"n": "SELECT mark FROM analytics.t"})
