"""Shared helpers for asset tests: small settings, table content hashes, the sim's expected rows."""

import dataclasses
from pathlib import Path

import duckdb
import numpy as np

from orchestration.settings import Settings

SMALL_SCALE = 0.03  # 60 markets, 150 wallets, ~31k fills


def small_settings(warehouse: Path, **changes) -> Settings:
    base = Settings(warehouse_path=warehouse, source="sim", sim_scale=SMALL_SCALE, sim_seed=7,
                    report_path=Path(warehouse).with_suffix(".html"))  # fmt: skip
    return dataclasses.replace(base, **changes)


def content_hash(path: Path, table: str, order_by: str) -> str:
    """A hash of every column of every row (load metadata included) in a fixed order."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            f"SELECT md5(coalesce(string_agg(CAST(t AS VARCHAR), '\n' ORDER BY {order_by}), '')) FROM {table} t"
        ).fetchone()[0]


def tape_keys(world, exclude: np.ndarray | None = None) -> list[tuple]:
    """(tx hash, wallet, token, side, size, price, ts) of every tape row, as the API serves it."""
    t, m = world.tape, world.markets
    rows = np.arange(len(t)) if exclude is None else np.flatnonzero(~exclude)
    token = np.where(t.outcome_index[rows] == 0, m.token_yes[t.market[rows]], m.token_no[t.market[rows]])
    wallets = world.wallets["address"].to_numpy()[t.wallet[rows]]
    side = np.where(t.side[rows] == 0, "BUY", "SELL")
    return list(
        zip(
            world.tx_hash[t.tx[rows]],
            wallets,
            token,
            side,
            t.size[rows],
            t.price[rows],
            t.ts[rows],
            strict=True,
        )
    )


def warehouse_keys(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "SELECT transaction_hash, proxy_wallet, asset, side, size, price, ts FROM raw.trades"
        ).fetchall()


def insert_late_fill(con: duckdb.DuckDBPyConnection, wallet: str, token: str, ts: int, *, side: str = "BUY",
                     size_factor: float = 1.0, tx: str = "0xlate") -> None:  # fmt: skip
    """A fill arriving late in ``raw.trades``: a copy of ``wallet``'s first fill of ``token`` at ``ts`` (epoch s),
    as ``side``, ``size_factor`` times its size, with transaction hash ``tx`` (the natural key follows)."""
    from assets.ingest.store import FILL_KEY_SQL

    con.execute(
        f"""INSERT INTO raw.trades
            SELECT {FILL_KEY_SQL} AS fill_key, * EXCLUDE (fill_key) FROM (
                SELECT fill_key, proxy_wallet, ? AS side, asset, condition_id, size * ? AS size, price, ? AS ts,
                       DATE '1970-01-01' + CAST(? // 86400 AS INTEGER) AS trade_date, outcome, outcome_index,
                       title, slug, event_slug, name, pseudonym, ? AS transaction_hash, source, now() AS ingested_at
                FROM raw.trades WHERE proxy_wallet = ? AND asset = ? ORDER BY ts LIMIT 1)""",
        [side, size_factor, ts, ts, tx, wallet, token],
    )
