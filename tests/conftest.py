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


@pytest.fixture(scope="session")
def live_batch(tmp_path_factory):
    """A batch through the live week's eve on a small clean world, built once for every live test (its warehouse
    and snapshot; copy it with ``tests.live.world.fresh_copy`` before changing anything)."""
    from tests.live.world import build_batch

    root = tmp_path_factory.mktemp("live-batch")
    build_batch(root)
    return root
