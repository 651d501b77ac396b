"""A reference build shared by the kill test and the increments test: the three stages of ``stages.py`` over the
simulated history once, uninterrupted, with how long each stage took."""

import time

import pytest

from tests.reliability import stages


@pytest.fixture(scope="session")
def reference_build(tmp_path_factory):
    path = tmp_path_factory.mktemp("reference") / "reference.duckdb"
    durations = {}
    for name, stage in (
        ("ingest", stages.ingest_window),
        ("dbt", stages.dbt_models),
        ("score", stages.score),
    ):
        t0 = time.monotonic()
        stage(path)
        durations[name] = time.monotonic() - t0
    return path, durations
