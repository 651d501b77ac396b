"""Wallet activity end to end on the simulated Polymarket: the makers' splits, merges and redemptions are fetched,
booked in the positions, and every wallet's realised P&L equals the simulator's truth and Polymarket's own books."""

import argparse
import io

import duckdb
import numpy as np
import pandas as pd
import pytest

from assets.ingest.resources import PolymarketResource
from assets.ingest.sim import ACTIVITY_KINDS
from assets.transform.reconcile import OURS_SQL, polymarket_frame, reconcile
from orchestration.cli import reconcile_positions, run_sync
from tests.assets.helpers import small_settings


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    path = tmp_path_factory.mktemp("activity") / "warehouse.duckdb"
    settings = small_settings(path, sim_dirty_share=0.0)  # every fill served whole: the truth is comparable
    result = run_sync(settings, out=io.StringIO())
    assert result.success
    world = PolymarketResource(sim_scale=settings.sim_scale, sim_seed=settings.sim_seed).world()
    return settings, world


def test_every_activity_row_is_loaded_and_booked(synced):
    settings, world = synced
    act = world.activity
    assert act is not None and set(np.unique(act.kind)) == {
        0,
        1,
        2,
    }  # the world has splits, merges, redemptions
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        loaded = dict(con.execute("SELECT type, count(*) FROM raw.activity GROUP BY 1").fetchall())
        booked = con.execute(
            "SELECT type, booked_as, count(*), min(n_legs), max(n_legs), max(abs(redeem_gap)), count(redeem_gap) "
            "FROM marts.fct_activity GROUP BY ALL ORDER BY 1"
        ).fetchall()
        legs = dict(con.execute("SELECT kind, count(*) FROM marts.fct_positions p JOIN "
                                "intermediate.int_position_fills f USING (position_id) GROUP BY 1").fetchall())  # fmt: skip
        n_fills = con.execute("SELECT count(*) FROM marts.fct_fills").fetchone()[0]
    expected = pd.Series(ACTIVITY_KINDS[act.kind]).value_counts().to_dict()
    assert loaded == expected
    by_type = {t: (b, n, lo, hi, gap, n_gap) for t, b, n, lo, hi, gap, n_gap in booked}
    assert by_type["SPLIT"][:4] == ("legs", expected["SPLIT"], 2, 2)  # one leg per outcome
    assert by_type["MERGE"][:4] == ("legs", expected["MERGE"], 2, 2)
    redeem = by_type["REDEEM"]
    # a redemption pays what the shares the marts hold are counted at (to the USDC cent's ten-thousandth)
    assert redeem[0] == "check" and redeem[5] == expected["REDEEM"] and redeem[4] < 1e-6
    assert legs["split"] == 2 * expected["SPLIT"] and legs["merge"] == 2 * expected["MERGE"]
    assert n_fills == len(world.tape)  # the legs are not fills


def test_every_wallets_resolved_pnl_equals_the_simulators_truth(synced):
    settings, world = synced
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        ours = con.execute(
            "SELECT wallet, sum(pnl_gross) FILTER (WHERE is_resolved) AS pnl, bool_or(has_negative_shares) AS short "
            "FROM marts.fct_positions GROUP BY 1"
        ).df()
    truth = world.truth[["address", "wallet_type", "pnl_resolved"]].rename(columns={"address": "wallet"})
    both = truth.merge(ours, on="wallet", how="inner")
    assert len(both) == (world.truth["n_fills"] > 0).sum()
    makers = both[both["wallet_type"] == "maker"]
    assert len(makers) >= 2 and not makers["short"].any()  # splits booked: no maker sells shares it lacks
    err = (both["pnl"].fillna(0.0) - both["pnl_resolved"]).abs() / np.maximum(1.0, both["pnl_resolved"].abs())
    assert err.max() < 1e-9, both.loc[err.idxmax()]


def test_positions_equal_polymarkets_own_books(synced):
    """Polymarket's /closed-positions and /positions (as the simulated exchange keeps them, by its P&L subgraph's
    rules) against the warehouse: every position of the makers and of three traders matches."""
    settings, world = synced
    wallets = world.truth.sort_values("n_fills", ascending=False)
    chosen = [*wallets.loc[wallets["wallet_type"] == "maker", "address"],
              *wallets.loc[wallets["wallet_type"] != "maker", "address"][:3]]  # fmt: skip
    frames = []
    with PolymarketResource(
        sim_scale=settings.sim_scale, sim_seed=settings.sim_seed, sim_dirty_share=0.0
    ).open() as src:
        for wallet in chosen:
            for closed in (True, False):
                rows = [r for page in src.data.positions(user=wallet, closed=closed) for r in page.rows]
                frames.append(polymarket_frame(rows, closed=closed))
    theirs = pd.concat(frames, ignore_index=True)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        ours = con.execute(OURS_SQL, {"wallets": chosen}).df()
    out = reconcile(theirs, ours)
    assert len(out) > 50 and out["closed"].any() and (~out["closed"]).any()
    assert set(out["status"]) == {"match"}, out[out["status"] != "match"]
    # to 1e-9 of the position's size: the average-cost basis is solved in closed form (exp of a sum of logs),
    # exact to about 1e-12 of the money the position moved, not of a small realised figure
    rel = out["difference"].abs() / (1.0 + out["total_bought"])
    assert rel.max() < 1e-9
    closed = out[out["closed"]]  # a closed resolved position: every dollar in and out, to 1e-9 of its P&L
    assert (closed["difference"].abs() / np.maximum(1.0, closed["realized_pnl"].abs())).max() < 1e-9


def test_the_reconcile_command_reads_the_source_and_the_files(synced, tmp_path):
    settings, world = synced
    maker = world.truth.loc[world.truth["wallet_type"] == "maker", "address"].iloc[0]
    args = argparse.Namespace(wallet=[maker], closed_positions=None, positions=None, format="table")
    out = io.StringIO()
    assert reconcile_positions(args, settings, out=out) == 0
    assert "match" in out.getvalue() and "mismatch" not in out.getvalue()
    bad = tmp_path / "bad.json"
    bad.write_text('[{"asset": "1", "realizedPnl": 3}]')
    args = argparse.Namespace(wallet=[], closed_positions=str(bad), positions=None, format="table")
    with pytest.raises(SystemExit, match="bad.json: closed-positions row 0: no proxyWallet"):
        reconcile_positions(args, settings)
