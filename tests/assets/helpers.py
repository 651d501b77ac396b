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
