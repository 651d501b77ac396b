"""The pipeline's writing stages as plain calls, for the reliability tests that run them many times.

The same code the job's assets run: the ingest loops on the simulated API (committing every ``commit_rows`` rows),
the dbt project (models only: its tests change no table) through dbt's programmatic runner, and the scoring
assets materialised by Dagster.
"""

import json
import os
import tempfile
from pathlib import Path

SCALE, SEED, FEE_RATE = 0.03, 7, 0.02


def ingest_window(warehouse: str | Path, start: int | None = None, end: int | None = None, *,
                  scale: float = SCALE, seed: int = SEED, commit_rows: int = 2_000) -> None:  # fmt: skip
    """Markets, then trades, activity and prices in [start, end] (epoch s, inclusive; default the sim's whole history)."""
    import duckdb

    from assets.ingest import ingest
    from assets.ingest.resources import PolymarketResource
    from assets.ingest.store import ensure_raw

    ingest.COMMIT_ROWS = commit_rows
    pm = PolymarketResource(sim_scale=scale, sim_seed=seed, sim_dirty_share=0.002)
    lo, hi = pm.history()
    start, end = lo if start is None else start, hi if end is None else end
    with pm.open() as src, duckdb.connect(str(warehouse)) as con:
        ensure_raw(con)
        ingest.ingest_markets(con, src)
        ingest.ingest_trades(con, src, start=start, end=end, markets_per_request=2)
        ingest.ingest_activity(con, src, start=start, end=end)
        ingest.ingest_prices(con, src, start=start, end=end)


def dbt_models(warehouse: str | Path, *, full_refresh: bool = False) -> None:
    """``dbt run`` of every model on ``warehouse``, in this process: incremental where the job's would be
    (``assets/transform/model.py:sync_mode``)."""
    import duckdb

    from assets.transform.model import sync_mode
    from assets.transform.project import read_sync_state

    with duckdb.connect(str(warehouse)) as con:
        full_refresh, _ = sync_mode(read_sync_state(con), full_refresh=full_refresh)
    outcome = dbt_command(warehouse, ["run"] + (["--full-refresh"] if full_refresh else []))
    if not outcome.success:
        raise RuntimeError(f"dbt run failed: {outcome.exception or chr(10).join(outcome.failures)}")


def dbt_command(warehouse: str | Path, args: list[str]):
    """``dbt <args> --quiet`` with the tests' fee rate on ``warehouse``, in this process; its ``DbtOutcome``."""
    from assets.transform.project import DBT_PROJECT_DIR
    from assets.transform.runner import run_dbt

    os.environ["WHALECOPY_DBT_DATABASE"] = str(warehouse)
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    # this process's own target directory: the project's target/manifest.json is what other test processes read
    return run_dbt(
        [*args, "--quiet", "--vars", json.dumps({"fee_rate": FEE_RATE})],
        project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR,
        target_path=Path(tempfile.gettempdir()) / f"whalecopy-dbt-{os.getpid()}",
    )  # fmt: skip


def score(warehouse: str | Path) -> None:
    """The ``analytics.whale_scores``, ``analytics.wallet_flags`` (and its history) and ``analytics.whale_universe``
    assets on ``warehouse``."""
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from assets.score.assets import wallet_flags, whale_scores, whale_universe
    from assets.strategy import StrategyConfig

    dg.materialize(
        [whale_scores, wallet_flags, whale_universe],
        resources={"warehouse": DuckDBResource(database=str(warehouse)), "strategy": StrategyConfig()},
        raise_on_error=True,
    )
