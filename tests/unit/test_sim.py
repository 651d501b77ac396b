"""Properties of the simulated Polymarket: calibrated prices, real edges, neutral wash trading, determinism."""

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from scipy.stats import spearmanr

from assets.ingest.sim import SimConfig, generate_markets, generate_world
from assets.ingest.sim_api import DATA_URL, GAMMA_URL, SimPolymarket


@pytest.fixture(scope="module")
def world():
    return generate_world(SimConfig(seed=3, n_markets=1500, n_wallets=1500, n_trades=400_000))


def test_prices_are_calibrated_over_12000_markets():
    """A market priced p resolves YES about p of the time (each market sampled at one random hour)."""
    cfg = SimConfig(seed=11, n_markets=12_000)
    rng = np.random.default_rng(11)
    markets, grid = generate_markets(cfg, rng)
    done = np.isin(markets.outcome, [0.0, 1.0])
    k = (rng.random(len(markets)) * (markets.grid_len - 1)).astype(
        np.int64
    )  # never the final (resolved) point
    p = grid[markets.grid_start + k][done]
    y = markets.outcome[done]
    assert len(p) >= 10_000
    z = (y - p).sum() / np.sqrt((p * (1 - p)).sum())
    assert abs(z) < 4, f"aggregate calibration z = {z:.2f}"
    bins = np.clip((p * 10).astype(int), 0, 9)
    for b in range(10):
        sel = bins == b
        n = sel.sum()
        se = np.sqrt((p[sel] * (1 - p[sel])).mean() / n)
        assert abs(y[sel].mean() - p[sel].mean()) < 4 * se + 1e-3, (
            f"bin {b}: {y[sel].mean():.3f} vs {p[sel].mean():.3f}"
        )


def realised_edges(world):
    """Per wallet: win rate minus average price paid over BUY fills in markets resolved 0/1."""
    t, m = world.tape, world.markets
    outcome = m.outcome[t.market]
    sel = (t.side == 0) & np.isin(outcome, [0.0, 1.0])
    won = np.where(t.outcome_index[sel] == 0, outcome[sel], 1 - outcome[sel])
    w = t.wallet[sel]
    n = np.bincount(w, minlength=len(world.wallets))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.bincount(w, won, len(n)) - np.bincount(w, t.price[sel], len(n))) / n, n


def test_informed_wallets_have_positive_realised_edge_ordered_like_their_true_edge(world):
    edge, n = realised_edges(world)
    truth = world.truth
    informed = (truth["wallet_type"] == "informed").to_numpy() & (n >= 40)
    noise = (truth["wallet_type"] == "noise").to_numpy() & (n >= 40)
    assert informed.sum() >= 20
    assert np.median(edge[informed]) > 0.02
    assert np.median(edge[informed]) > np.median(edge[noise]) + 0.02
    rho = spearmanr(edge[informed], truth["true_edge"].to_numpy()[informed]).statistic
    assert rho > 0.3, f"realised edge vs true edge: Spearman {rho:.2f}"
    assert abs(np.median(edge[noise])) < 0.02  # noise traders have no edge (less half a spread)


def test_wash_round_trips_net_zero_before_fees(world):
    t = world.tape
    wash = np.flatnonzero((world.truth["wallet_type"] == "wash").to_numpy())
    sel = np.isin(t.wallet, wash)
    cash = np.where(t.side[sel] == 1, 1.0, -1.0) * t.size[sel] * t.price[sel]
    volume = (t.size[sel] * t.price[sel]).sum()
    assert volume > 0 and abs(cash.sum()) / volume < 1e-9
    share = volume / (t.size * t.price).sum()
    assert share > 0.01  # and they do inflate volume


def test_same_seed_same_world_other_seed_other_world():
    a = generate_world(SimConfig(seed=5, n_markets=50, n_wallets=80, n_trades=5000))
    b = generate_world(SimConfig(seed=5, n_markets=50, n_wallets=80, n_trades=5000))
    c = generate_world(SimConfig(seed=6, n_markets=50, n_wallets=80, n_trades=5000))
    for field in ("wallet", "market", "size", "price", "ts", "tx"):
        assert np.array_equal(getattr(a.tape, field), getattr(b.tape, field))
    assert list(a.tx_hash) == list(b.tx_hash)
    assert not np.array_equal(a.tape.price[:100], c.tape.price[: min(100, len(c.tape))])


def test_no_position_goes_short(world):
    t = world.tape
    key = (t.wallet.astype(np.int64) * len(world.markets) + t.market) * 2 + t.outcome_index
    signed = np.where(t.side == 0, t.size, -t.size)
    order = np.lexsort((np.arange(len(key)), key))
    k, s = key[order], signed[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    running = np.cumsum(s) - np.repeat(np.r_[0, np.cumsum(s)[starts[1:] - 1]], np.diff(np.r_[starts, len(s)]))
    assert running.min() > -1e-6


def test_the_served_api_keeps_the_real_traps(world):
    server = SimPolymarket(world, dirty_share=0.0)
    client = httpx.Client(transport=server)
    cid = world.markets.condition_id[int(np.bincount(world.tape.market).argmax())]
    rows_default = orjson.loads(
        client.get(f"{DATA_URL}/trades", params={"market": cid, "limit": 9999}).content
    )
    assert len(rows_default) == 500  # the page cap, whatever limit asks
    in_market = world.tape.market == np.flatnonzero(world.markets.condition_id == cid)[0]
    taker = orjson.loads(
        client.get(f"{DATA_URL}/trades", params={"market": cid, "limit": 500, "offset": 0}).content
    )
    all_ = orjson.loads(
        client.get(f"{DATA_URL}/trades", params={"market": cid, "takerOnly": "false", "limit": 500}).content
    )
    assert len(taker) <= 500 and len(all_) == min(500, in_market.sum())
    n_taker_total = (in_market & ~world.tape.is_maker).sum()
    assert n_taker_total < in_market.sum()  # takerOnly=true (the default) hides maker fills
    assert client.get(f"{DATA_URL}/trades", params={"market": cid, "offset": 3500}).status_code == 400
    assert [r["timestamp"] for r in all_] == sorted((r["timestamp"] for r in all_), reverse=True)
    row = all_[0]
    assert set(row) >= {"proxyWallet", "side", "asset", "conditionId", "size", "price", "timestamp", "outcomeIndex",
                        "transactionHash", "eventSlug", "title"}  # fmt: skip
    assert isinstance(row["asset"], str) and len(row["asset"]) >= 70
    open_ = orjson.loads(client.get(f"{GAMMA_URL}/markets", params={"limit": 500}).content)
    closed = orjson.loads(client.get(f"{GAMMA_URL}/markets", params={"limit": 500, "closed": "true"}).content)
    assert all(not m["closed"] for m in open_) and all(
        m["closed"] for m in closed
    )  # closed needs closed=true
    m = closed[0]
    assert isinstance(m["outcomes"], str) and isinstance(m["clobTokenIds"], str)  # JSON-encoded strings
    assert m["closedTime"].endswith("+00") and " " in m["closedTime"]  # Postgres style
    resolved = [m for m in closed if m.get("umaResolutionStatus") == "resolved"]
    assert all(orjson.loads(m["outcomePrices"]) in (["1", "0"], ["0", "1"], ["0.5", "0.5"]) for m in resolved)


def test_dirty_rows_are_fixed_per_row(world):
    server = SimPolymarket(world, dirty_share=0.01)
    rows = np.arange(len(world.tape))
    dirty = server.dirty_rows(rows)
    assert 0.005 < dirty.mean() < 0.015
    assert np.array_equal(dirty, server.dirty_rows(rows))


def test_a_cached_world_is_the_generated_one_and_a_torn_file_is_generated_again(tmp_path, monkeypatch):
    from assets.ingest import sim

    cfg = sim.SimConfig.scaled(0.01, seed=11, days=60)
    fresh = sim.generate_world(cfg)
    sim.cached_world.cache_clear()
    first = sim.cached_world(cfg, str(tmp_path))
    path = sim.world_cache_path(cfg, tmp_path)
    assert path.exists() and list(tmp_path.iterdir()) == [path]  # no temporary file left
    sim.cached_world.cache_clear()
    monkeypatch.setattr(sim, "generate_world", lambda c: pytest.fail("loaded, not generated"))
    loaded = sim.cached_world(cfg, str(tmp_path))
    for world in (first, loaded):
        for name in ("wallet", "market", "side", "size", "price", "ts", "tx"):
            np.testing.assert_array_equal(getattr(world.tape, name), getattr(fresh.tape, name))
        np.testing.assert_array_equal(world.markets.condition_id, fresh.markets.condition_id)
        np.testing.assert_array_equal(world.tx_hash, fresh.tx_hash)
        pd.testing.assert_frame_equal(world.truth, fresh.truth)
    # another config, or another version of the simulator, is another file
    assert sim.world_cache_path(sim.SimConfig.scaled(0.01, seed=12, days=60), tmp_path) != path
    monkeypatch.setattr(sim, "_simulator_digest", lambda: "another source")
    assert sim.world_cache_path(cfg, tmp_path) != path
    monkeypatch.undo()

    path.write_bytes(path.read_bytes()[:1000])  # torn
    sim.cached_world.cache_clear()
    again = sim.cached_world(cfg, str(tmp_path))
    np.testing.assert_array_equal(again.tape.ts, fresh.tape.ts)
    assert path.stat().st_size > 1000  # written whole again
    sim.cached_world.cache_clear()


def test_the_world_cache_keeps_the_most_recently_used(tmp_path):
    from assets.ingest import sim

    sim.cached_world.cache_clear()
    paths = []
    for seed in range(sim.CACHE_WORLDS + 2):
        cfg = sim.SimConfig.scaled(0.002, seed=seed, days=10)
        sim.cached_world(cfg, str(tmp_path))
        paths.append(sim.world_cache_path(cfg, tmp_path))
    assert sorted(tmp_path.glob("world-*.pkl")) == sorted(paths[-sim.CACHE_WORLDS :])
    sim.cached_world.cache_clear()
