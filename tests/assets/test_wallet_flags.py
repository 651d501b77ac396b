"""Wallet flags (assets/score/flags.py) against the simulator's truth: market makers, airdrop farmers, bots and
wash traders, each flag's precision and recall at least 0.9 (docs/metrics.md#wallet-flags)."""

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from assets.ingest import ingest
from assets.ingest.sim import SimConfig, generate_world
from assets.ingest.sim_api import CLOB_URL, DATA_URL, GAMMA_URL, SimPolymarket
from assets.ingest.sources import build_api_source
from assets.ingest.store import ensure_raw
from assets.score import flags
from assets.score.assets import wallet_flags, whale_scores, whale_universe
from assets.strategy import StrategyConfig
from tests.reliability import stages

TRUTH = {"market_maker": "maker", "farmer": "farmer", "bot": "bot", "wash": "wash"}


@pytest.fixture(scope="module")
def flagged(tmp_path_factory):
    """A world of 500 traders with 10 market makers, 20 farmers, 20 bots and its wash traders, through the HTTP
    clients into the marts, and the flags asset run on them."""
    path = tmp_path_factory.mktemp("flags") / "w.duckdb"
    world = generate_world(SimConfig.scaled(0.1, n_makers=10, n_farmers=20, n_bots=20))
    src = build_api_source("sim", data_url=DATA_URL, gamma_url=GAMMA_URL, clob_url=CLOB_URL, limits={},
                           transport=SimPolymarket(world, dirty_share=0.0), now_ts=world.now)  # fmt: skip
    with duckdb.connect(str(path)) as con:
        ensure_raw(con)
        ingest.ingest_markets(con, src)
        ingest.ingest_trades(con, src, start=world.config.start_ts, end=world.now - 1)
        ingest.ingest_activity(con, src, start=world.config.start_ts, end=world.now - 1)
    stages.dbt_models(path)
    resources = {"warehouse": DuckDBResource(database=str(path)), "strategy": StrategyConfig()}
    result = dg.materialize([whale_scores, wallet_flags, whale_universe], resources=resources)
    assert result.success
    with duckdb.connect(str(path), read_only=True) as con:
        table = con.execute("SELECT * FROM analytics.wallet_flags").df()
        traded = {w for (w,) in con.execute("SELECT DISTINCT wallet FROM marts.fct_fills").fetchall()}
    truth = world.truth.rename(columns={"address": "wallet"})
    return table, truth[truth["wallet"].isin(traded)], path


@pytest.mark.parametrize("flag", list(TRUTH))
def test_each_flags_precision_and_recall_is_at_least_090(flagged, flag):
    table, truth, _ = flagged
    got = set(table.loc[table["flag"] == flag, "wallet"])
    true = set(truth.loc[truth["wallet_type"] == TRUTH[flag], "wallet"])
    assert len(true) >= 5
    precision, recall = len(got & true) / max(len(got), 1), len(got & true) / len(true)
    assert precision >= 0.9 and recall >= 0.9, (flag, precision, recall, len(got), len(true))


def test_no_informed_wallet_is_flagged_and_every_flag_carries_its_evidence(flagged):
    table, truth, _ = flagged
    informed = set(truth.loc[truth["wallet_type"].isin(["informed", "decaying"]), "wallet"])
    assert informed and not (informed & set(table["wallet"]))
    assert table["evidence"].str.len().min() > 10 and table["computed_at"].notna().all()
    assert not table.duplicated(["wallet", "flag"]).any()


def _universe(path, **strategy) -> pd.DataFrame:
    resources = {"warehouse": DuckDBResource(database=str(path)), "strategy": StrategyConfig(**strategy)}
    assert dg.materialize([whale_universe], resources=resources).success
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT * FROM analytics.whale_universe").df()


def test_the_history_ends_with_the_latest_flags_and_the_universe_leaves_flagged_wallets_out_unless_kept(
    flagged,
):
    table, _, path = flagged
    with duckdb.connect(str(path), read_only=True) as con:
        history = con.execute("SELECT * FROM analytics.wallet_flags_history").df()
        scored = con.execute(
            "SELECT count(DISTINCT as_of), max(as_of) FROM analytics.whale_scores"
        ).fetchall()[0]
        # wallets flagged at the universe's date with a score (the universe's bound lowered to 0 below)
        (eligible_flagged,) = con.execute(
            "SELECT count(DISTINCT s.wallet) FROM analytics.whale_scores s JOIN analytics.wallet_flags_history h "
            "USING (as_of, wallet) WHERE s.as_of = (SELECT max(as_of) FROM analytics.whale_scores) AND s.wqs >= 0"
        ).fetchall()[0]
    last = history[history["as_of"] == history["as_of"].max()]
    assert set(map(tuple, last[["wallet", "flag"]].values)) == set(
        map(tuple, table[["wallet", "flag"]].values)
    )
    assert history["as_of"].nunique() >= scored[0] - 5  # flagged wallets at nearly every score date
    assert eligible_flagged > 0
    default = _universe(path, universe_min_wqs=0.0)
    kept = _universe(path, universe_min_wqs=0.0, keep_flagged_wallets=True)
    assert default["flags"].isna().all()
    assert len(kept) == len(default) + eligible_flagged
    assert kept["flags"].notna().sum() == eligible_flagged


def _stats(**changes) -> pd.DataFrame:
    """One wallet's statistics, none of them near a bound, with ``changes``."""
    row = {"wallet": "0x" + "a" * 40, "n_fills": 100, "volume": 100_000.0, "n_small": 10,
           "buy_volume": 60_000.0, "sell_volume": 40_000.0, "n_farm": 0, "farm_volume": 0.0, "n_markets": 10,
           "two_sided_markets": 0, "wash_volume": 0.0, "resolved_pnl": 20_000.0, "split_markets": 0}  # fmt: skip
    return pd.DataFrame([{**row, **changes}])


@pytest.mark.parametrize(
    ("flag", "on", "off"),
    [
        (
            "market_maker",
            {"split_markets": 3, "resolved_pnl": 3_000.0},
            {"split_markets": 3, "resolved_pnl": 3_000.01},
        ),
        (
            "market_maker",
            {"two_sided_markets": 5, "resolved_pnl": -3_000.0},
            {"two_sided_markets": 4, "resolved_pnl": 0.0},
        ),
        (
            "market_maker",
            {"two_sided_markets": 5, "n_markets": 5, "resolved_pnl": 0.0},
            {"two_sided_markets": 4, "n_markets": 4, "resolved_pnl": 0.0},
        ),
        ("farmer", {"n_farm": 10, "farm_volume": 30_000.0}, {"n_farm": 9, "farm_volume": 30_000.0}),
        ("farmer", {"n_farm": 10, "farm_volume": 30_000.0}, {"n_farm": 10, "farm_volume": 29_999.0}),
        ("bot", {"n_fills": 300, "n_small": 150}, {"n_fills": 299, "n_small": 150}),
        ("bot", {"n_fills": 300, "n_small": 150}, {"n_fills": 300, "n_small": 149}),
        ("wash", {"wash_volume": 50_000.0}, {"wash_volume": 49_999.0}),
    ],
)
def test_a_wallet_exactly_on_a_bound_is_flagged_and_one_just_short_is_not(flag, on, off):
    assert flags.flag_wallets(_stats(**on))["flag"].tolist() == [flag]
    assert flags.flag_wallets(_stats(**off))["flag"].tolist() == []


def test_a_bot_or_a_wash_trader_is_not_also_a_market_maker():
    two_way = {"split_markets": 5, "resolved_pnl": 0.0}
    assert flags.flag_wallets(_stats(**two_way, n_fills=400, n_small=300))["flag"].tolist() == ["bot"]
    assert flags.flag_wallets(_stats(**two_way, wash_volume=80_000.0))["flag"].tolist() == ["wash"]
    assert flags.flag_wallets(_stats(volume=0.0, buy_volume=0.0, sell_volume=0.0, split_markets=5)).empty
