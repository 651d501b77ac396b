import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
# Tests run on ephemeral Dagster instances: never write test runs into the user's instance (make exports it).
os.environ.pop("DAGSTER_HOME", None)

FIXTURES = Path(__file__).parent / "fixtures" / "polymarket"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "polymarket"
MIDTERMS = SHARED / "real" / "midterms_2022"


def load_fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def midterms() -> Path:
    if not (MIDTERMS / "trades.jsonl.gz").exists():
        pytest.skip(
            f"../shared is absent here ({MIDTERMS} not found): the real midterms dump is not available"
        )
    return MIDTERMS


@pytest.fixture
def warehouse(tmp_path) -> Path:
    return tmp_path / "warehouse.duckdb"
