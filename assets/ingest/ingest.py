"""Fetch -> parse -> load loops, one per raw table. Plain functions (no Dagster): the assets call them.

Each loop commits in units: the rows of a group of completed queries, their quarantine and the cursors of the
streams those queries finished, in one transaction. A crash loses at most the unit in flight, which the next
run fetches again (exact repeats are dropped by the natural key).
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import numpy as np

from .clients import Page
from .http import NonJsonBodyError
from .records import (
    ACTIVITY_SCHEMA,
    WALLET_RE,
    Batch,
    Parsed,
    empty_quarantine,
    parse_activity,
    parse_leaderboard,
    parse_markets,
    parse_price_history,
    parse_trades,
)
from .sources import ApiSource, FileSource, batch_times
from .store import (
    LoadResult,
    Transaction,
    covered,
    load_activity,
    load_leaderboard,
    load_markets,
    load_price_history,
    load_trades,
)

Log = Callable[[str], None]
COMMIT_ROWS = 200_000  # rows gathered before a parse + commit
_WALLET = re.compile(WALLET_RE)


@dataclass
class IngestReport:
    entity: str
    load: LoadResult = field(default_factory=LoadResult)
    streams_done: int = 0
    streams_skipped: int = 0
    pages: int = 0
    seconds: float = 0.0
    window: tuple[int, int] | None = None
    #: fields the source sent that the API reference does not list: ignored, and reported (schema drift)
    unknown_fields: set[str] = field(default_factory=set)

    def metadata(self) -> dict:
        out = {
            "rows_received": self.load.received,
            "rows_inserted": self.load.inserted,
            "exact_repeats_dropped": self.load.repeats,
            "rows_quarantined": self.load.quarantined,
            "streams_fetched": self.streams_done,
            "streams_already_covered": self.streams_skipped,
            "pages": self.pages,
            "seconds": round(self.seconds, 2),
        }
        if self.window:
            out["window_utc"] = f"{_iso(self.window[0])} .. {_iso(self.window[1])}"
        if self.unknown_fields:
            out["unknown_fields_ignored"] = ", ".join(sorted(self.unknown_fields))
        return out

    def drift_note(self) -> str | None:
        """A warning line when the source sent fields the reference does not list, else None."""
        if not self.unknown_fields:
            return None
        return (f"{self.entity}: the source sent fields the API reference does not list, ignored: "
                f"{', '.join(sorted(self.unknown_fields))} (schema drift? see docs/warehouse.md#schema-drift)")  # fmt: skip


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _quiet(_: str) -> None:
    pass


def record_body_error(
    con: duckdb.DuckDBPyConnection, entity: str, source: str, exc: NonJsonBodyError
) -> None:
    """Keep the body that broke a run (HTML page, truncated JSON) in the quarantine before the run fails."""
    import pyarrow as pa

    from quality.quarantine import write_quarantine

    table = pa.table(
        {
            "entity": [entity], "source": [source], "origin": [exc.url], "reason_code": ["non_json_body"],
            "reasons": ["non_json_body"], "record": [exc.excerpt], "record_ref": [""],
        }
    )  # fmt: skip
    with Transaction(con):
        write_quarantine(con, table)


# ---------------------------------------------------------------------------------------------- markets


def ingest_markets(
    con: duckdb.DuckDBPyConnection, source: ApiSource | FileSource, log: Log = _quiet
) -> IngestReport:
    t0 = time.perf_counter()
    report = IngestReport("markets")
    if isinstance(source, FileSource):
        batch = source.market_batch()
        report.pages = 1
    else:
        batch = Batch()
        for page in source.market_pages():
            batch.add(page)
            report.pages += 1
    parsed = parse_markets(batch, source=source.name)
    report.load = load_markets(con, parsed.accepted, parsed.rejected, source=source.name)
    report.seconds = time.perf_counter() - t0
    log(
        f"markets: {parsed.n_accepted} accepted ({report.load.inserted} new or changed), {parsed.n_rejected} quarantined"
    )
    return report


# ---------------------------------------------------------------------------------------------- trades


def markets_active_in(con: duckdb.DuckDBPyConnection, start: int, end: int) -> list[str]:
    """Markets whose life overlaps [start, end] (unknown dates count as overlapping)."""
    rows = con.execute(
        """
        SELECT condition_id FROM raw.markets
        WHERE coalesce(epoch(try_cast(start_date AS TIMESTAMPTZ)), 0) <= ?
          AND coalesce(epoch(try_cast(closed_time AS TIMESTAMPTZ)), epoch(try_cast(end_date AS TIMESTAMPTZ)) + 86400 * 30,
                       9e18) >= ?
        ORDER BY condition_id
        """,
        [end, start],
    ).fetchall()
    return [r[0] for r in rows]


def universe_wallets(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The seeded whale universe: wallets on the latest leaderboard snapshot."""
    rows = con.execute(
        """
        SELECT DISTINCT proxy_wallet FROM raw.leaderboard
        WHERE snapshot_date = (SELECT max(snapshot_date) FROM raw.leaderboard) ORDER BY 1
        """
    ).fetchall()
    return [r[0] for r in rows]


def accepted_by(parsed: Parsed, column: str) -> dict[str, int]:
    """How many rows ``parsed`` accepted per value of ``column`` (a stream's row count for its cursor)."""
    agg = parsed.accepted.group_by(column).aggregate([([], "count_all")])
    return dict(zip(agg.column(column).to_pylist(), agg.column("count_all").to_pylist(), strict=True))


def _commit_trades(
    con,
    batch: Batch,
    source: ApiSource | FileSource,
    streams: Sequence[str],
    report: IngestReport,
    window: tuple[int, int],
    *,
    key_column: str | None,
    prefix: str,
    counted: int = 0,
) -> int:
    """Parse, then load rows, quarantine and the cursors of ``streams`` (completely fetched) in one transaction.
    A stream's row count is its accepted rows, counted per ``key_column`` (condition id or wallet), or with no
    key column the batch's plus ``counted`` (a stream's earlier batches). Returns the batch's accepted rows."""
    parsed = parse_trades(batch, source=source.name, now_ts=source.now_ts)
    report.unknown_fields.update(parsed.unknown_fields)
    if key_column is None:
        counts = {s: parsed.n_accepted + counted for s in streams}
    else:
        counts = {prefix + k: n for k, n in accepted_by(parsed, key_column).items()}
    cursors = {s: (window[0], window[1], int(counts.get(s, 0))) for s in streams}
    report.load += load_trades(con, parsed.accepted, parsed.rejected, source=source.name, cursors=cursors)
    return parsed.n_accepted


def ingest_trades(
    con: duckdb.DuckDBPyConnection,
    source: ApiSource | FileSource,
    *,
    start: int,
    end: int,
    scope: str = "markets",
    markets_per_request: int = 20,
    large_trade_usd: float = 10_000.0,
    refetch: bool = False,
    log: Log = _quiet,
) -> IngestReport:
    """Fills in [start, end] (epoch s, inclusive).

    ``scope='markets'``: the full tape of every market alive in the window (batched ``market=`` queries).
    ``scope='wallets'``: every fill of the whale universe (leaderboard wallets plus wallets with a trade of at
    least ``large_trade_usd`` in the window), by wallet-scoped queries. Both use ``takerOnly=false``.
    Streams whose stored window already covers [start, end] are skipped unless ``refetch``.
    """
    t0 = time.perf_counter()
    report = IngestReport("trades", window=(start, end))
    if isinstance(source, FileSource):
        _ingest_trade_file(con, source, start, end, report, refetch, log, t0)
        report.seconds = time.perf_counter() - t0
        log(f"trades (file): {report.load.inserted} inserted, {report.load.quarantined} quarantined")
        if report.drift_note():
            log(report.drift_note())
        return report
    if scope == "markets":
        keys = markets_active_in(con, start, end)
        prefix = "trades/market/"
    elif scope == "wallets":
        found = Batch()
        for page in source.large_trade_pages(min_cash=large_trade_usd, start=start, end=end):
            found.add(page)
            report.pages += 1
        big = {r.get("proxyWallet") for r in found.rows if isinstance(r, dict)}
        # a wallet becomes a query and a stream name: a malformed one is skipped (its fills would be quarantined)
        keys = sorted(
            set(universe_wallets(con)) | {w for w in big if isinstance(w, str) and _WALLET.fullmatch(w)}
        )
        prefix = "trades/user/"
    else:
        raise ValueError(f"scope must be 'markets' or 'wallets', not {scope!r}")
    done = set() if refetch else covered(con, prefix, start, end)
    todo = [k for k in keys if prefix + k not in done]
    report.streams_skipped = len(keys) - len(todo)
    step = markets_per_request if scope == "markets" else 1
    groups = [todo[i : i + step] for i in range(0, len(todo), step)]
    log(
        f"trades: {len(todo)} {scope} to fetch in {len(groups)} queries, {report.streams_skipped} already covered"
    )
    batch, streams = Batch(), []
    key_column = "condition_id" if scope == "markets" else "proxy_wallet"
    last_log = time.perf_counter()
    for n, group in enumerate(groups, start=1):
        pages: Iterator[Page] = (
            source.trade_pages(start=start, end=end, markets=group)
            if scope == "markets"
            else source.trade_pages(start=start, end=end, user=group[0])
        )
        for page in pages:
            batch.add(page)
            report.pages += 1
        streams.extend(prefix + key for key in group)
        report.streams_done += len(group)
        if len(batch) >= COMMIT_ROWS or n == len(groups):
            _commit_trades(
                con, batch, source, streams, report, (start, end), key_column=key_column, prefix=prefix
            )
            batch, streams = Batch(), []
        if time.perf_counter() - last_log > 10 or n == len(groups):
            last_log = time.perf_counter()
            log(
                f"trades: {n}/{len(groups)} queries, {report.pages} pages, {report.load.inserted:,} new fills, "
                f"{report.load.quarantined} quarantined, {time.perf_counter() - t0:.1f} s"
            )
    if report.drift_note():
        log(report.drift_note())
    report.seconds = time.perf_counter() - t0
    return report


def in_window(part: Batch, start: int, end: int, origin: str) -> Batch:
    """A file's batch cut to the partition window [start, end]: rows outside it belong to other partitions; rows
    with no usable time are kept for the validation to quarantine."""
    ts = batch_times(part)
    with np.errstate(invalid="ignore"):
        keep = np.flatnonzero(~np.isfinite(ts) | (ts < 1.5e9) | (ts >= 1e11) | ((ts >= start) & (ts <= end)))
    return part.take(keep, origin)


def _ingest_trade_file(
    con, source: FileSource, start: int, end: int, report: IngestReport, refetch: bool, log: Log, t0: float
) -> None:
    """The trades file a batch at a time (``source.batch_rows`` records): each batch's fills and quarantined rows
    are committed on their own, and the file's stream is marked covered (with its count of accepted fills) only
    after the last. A run stopped half-way leaves the stream uncovered, so the next run reads the file again; the
    batches already loaded are then exact repeats (the natural key, the quarantine's record key) and add nothing.

    Memory stays at about a batch: a batch's frames sit in reference cycles until a full collection, so each batch
    is collected when it is loaded, with the objects of before the load frozen (``gc.freeze``) so that a
    collection reads only the batch's own."""
    stream = f"trades/file/{source.trades_path}"
    if not refetch and stream in covered(con, stream, start, end):
        report.streams_skipped = 1
        return
    accepted, read, last_log = 0, 0, time.perf_counter()
    gc.freeze()
    try:
        for part in source.trade_batches():
            batch = in_window(part, start, end, str(source.trades_path))
            accepted += _commit_trades(
                con, batch, source, [], report, (start, end), key_column=None, prefix=""
            )
            read += len(part)
            report.pages += 1
            del part, batch
            gc.collect()
            if time.perf_counter() - last_log > 10:
                last_log = time.perf_counter()
                log(f"trades (file): {read:,} records read, {report.load.inserted:,} new fills, "
                    f"{report.load.quarantined:,} quarantined, {time.perf_counter() - t0:.1f} s")  # fmt: skip
    finally:
        gc.unfreeze()
    _commit_trades(
        con, Batch(), source, [stream], report, (start, end), key_column=None, prefix="", counted=accepted
    )
    report.streams_done = 1


# ---------------------------------------------------------------------------------------------- activity


def activity_wallets(con: duckdb.DuckDBPyConnection, min_volume_usd: float = 0.0) -> list[str]:
    """The wallets whose ``/activity`` the warehouse keeps: the seeded universe (the latest leaderboard) and every
    wallet whose fills add up to at least ``min_volume_usd`` (0: every wallet that traded). All of them, not only
    those that traded in a window: a redemption comes after a wallet's last fill, a split before its first."""
    rows = con.execute(
        """
        SELECT proxy_wallet FROM raw.trades GROUP BY 1 HAVING sum(size * price) >= ?
        UNION
        SELECT proxy_wallet FROM raw.leaderboard
        WHERE snapshot_date = (SELECT max(snapshot_date) FROM raw.leaderboard)
        ORDER BY 1
        """,
        [min_volume_usd],
    ).fetchall()
    return [r[0] for r in rows if _WALLET.fullmatch(r[0])]


def activity_plan(
    wallets: Sequence[str], held: dict[str, tuple[int, int]], start: int, end: int, history_start: int,
    refetch: bool = False,
) -> list[tuple[str, int]]:  # fmt: skip
    """``(wallet, fetch_from)`` for each wallet whose activity [start, end] needs, fetched up to ``end``. A
    wallet's stream (``held``: its fetched [from, to]) is carried on from where it stopped, so no day between is
    skipped; a wallet without one is fetched from ``history_start`` (a split before the wallet's first fill in the
    window is in its history). One whose stream covers [start, end] is left out, unless ``refetch``."""
    plan = []
    for wallet in wallets:
        got = held.get(wallet)
        if refetch:
            plan.append((wallet, start))
        elif got is None:
            plan.append((wallet, min(start, history_start)))
        elif not (got[0] <= start and got[1] >= end):
            plan.append((wallet, min(start, got[1] + 1)))
    return plan


def ingest_activity(
    con: duckdb.DuckDBPyConnection,
    source: ApiSource | FileSource,
    *,
    start: int,
    end: int,
    min_volume_usd: float = 0.0,
    refetch: bool = False,
    log: Log = _quiet,
) -> IngestReport:
    """The wallets' ``/activity`` rows up to ``end`` (epoch s, inclusive) other than trades: splits, merges,
    redemptions, conversions, rewards and rebates (``activity_wallets``; a stream per wallet,
    ``activity/user/<wallet>``, carried on from where it stopped, or from the first fill the warehouse holds:
    ``activity_plan``). A file source reads its activity file, if it has one, a batch at a time (rows outside the
    window are left to their own partitions). Rows are validated (``records.parse_activity``) and loaded with
    their cursors in one transaction a batch."""
    t0 = time.perf_counter()
    report = IngestReport("activity", window=(start, end))
    if isinstance(source, FileSource):
        stream = f"activity/file/{source.activity_path}"
        if source.activity_path is None or (not refetch and stream in covered(con, stream, start, end)):
            report.streams_skipped = int(source.activity_path is not None)
            return report
        accepted = 0
        for part in source.activity_batches():
            batch = in_window(part, start, end, str(source.activity_path))
            parsed = parse_activity(batch, source=source.name, now_ts=source.now_ts)
            report.unknown_fields.update(parsed.unknown_fields)
            report.load += load_activity(con, parsed.accepted, parsed.rejected, source=source.name)
            accepted += parsed.n_accepted
            report.pages += 1
        # the file's stream is marked covered only after its last batch (a run stopped half-way reads it again)
        report.load += load_activity(con, ACTIVITY_SCHEMA.empty_table(), empty_quarantine(), source=source.name,
                                     cursors={stream: (start, end, accepted)})  # fmt: skip
        report.streams_done = 1
        report.seconds = time.perf_counter() - t0
        log(f"activity (file): {report.load.inserted} inserted, {report.load.quarantined} quarantined")
        return report
    prefix = "activity/user/"
    wallets = activity_wallets(con, min_volume_usd)
    held = {
        stream.removeprefix(prefix): (lo, hi)
        for stream, lo, hi in con.execute(
            "SELECT stream, start_ts, cursor_ts FROM raw.ingest_state WHERE starts_with(stream, ?)", [prefix]
        ).fetchall()
    }
    (first_fill,) = con.execute("SELECT min(ts) FROM raw.trades").fetchone()
    todo = activity_plan(wallets, held, start, end, start if first_fill is None else int(first_fill), refetch)
    report.streams_skipped = len(wallets) - len(todo)
    log(f"activity: {len(todo)} wallets to fetch, {report.streams_skipped} already covered")
    batch, streams, last_log = Batch(), [], time.perf_counter()

    def commit() -> None:
        parsed = parse_activity(batch, source=source.name, now_ts=source.now_ts)
        report.unknown_fields.update(parsed.unknown_fields)
        counts = accepted_by(parsed, "proxy_wallet")
        cursors = {prefix + w: (lo, end, int(counts.get(w, 0))) for w, lo in streams}
        report.load += load_activity(
            con, parsed.accepted, parsed.rejected, source=source.name, cursors=cursors
        )

    for n, (wallet, fetch_from) in enumerate(todo, start=1):
        for page in source.activity_pages(user=wallet, start=fetch_from, end=end):
            batch.add(page)
            report.pages += 1
        streams.append((wallet, fetch_from))
        report.streams_done += 1
        if len(batch) >= COMMIT_ROWS or n == len(todo) or len(streams) >= 2_000:
            commit()
            batch, streams = Batch(), []
        if time.perf_counter() - last_log > 10 or n == len(todo):
            last_log = time.perf_counter()
            log(f"activity: {n}/{len(todo)} wallets, {report.pages} pages, {report.load.inserted:,} new rows, "
                f"{report.load.quarantined} quarantined, {time.perf_counter() - t0:.1f} s")  # fmt: skip
    if report.drift_note():
        log(report.drift_note())
    report.seconds = time.perf_counter() - t0
    return report


# ---------------------------------------------------------------------------------------------- leaderboard


def ingest_leaderboard(
    con: duckdb.DuckDBPyConnection, source: ApiSource, *, limit: int = 500, log: Log = _quiet
) -> IngestReport:
    """Seed the whale universe: the all-time top ``limit`` wallets by P&L and by volume."""
    t0 = time.perf_counter()
    report = IngestReport("leaderboard")
    snapshot = datetime.fromtimestamp(source.now_ts, UTC).date().isoformat()
    for order_by in ("PNL", "VOL"):
        batch = Batch()
        for page in source.leaderboard_pages(order_by=order_by, limit=limit):
            batch.add(page)
            report.pages += 1
        parsed = parse_leaderboard(
            batch, source=source.name, category="OVERALL", time_period="ALL", order_by=order_by
        )
        report.load += load_leaderboard(
            con, parsed.accepted, parsed.rejected, source=source.name, snapshot_date=snapshot
        )
    report.seconds = time.perf_counter() - t0
    log(f"leaderboard: {report.load.inserted} rows for snapshot {snapshot}")
    return report


# ---------------------------------------------------------------------------------------------- prices


PRICE_WINDOWS_SQL = """
WITH u AS (
    SELECT DISTINCT proxy_wallet FROM raw.leaderboard
    WHERE snapshot_date = (SELECT max(snapshot_date) FROM raw.leaderboard)
), tokens AS (
    SELECT asset, any_value(condition_id) AS condition_id FROM raw.trades t
    WHERE t.ts <= $end AND (NOT EXISTS (SELECT 1 FROM u) OR t.proxy_wallet IN (SELECT proxy_wallet FROM u))
    GROUP BY asset
), windows AS (
    SELECT k.asset,
           CASE WHEN s.stream IS NULL
                THEN least($start, coalesce(CAST(epoch(try_cast(m.start_date AS TIMESTAMPTZ)) AS BIGINT), $start))
                ELSE least($start, s.cursor_ts + 1) END AS fetch_from,
           s.start_ts, s.cursor_ts
    FROM tokens k
    LEFT JOIN raw.markets m USING (condition_id)
    LEFT JOIN raw.ingest_state s ON s.stream = 'prices/' || k.asset
    WHERE coalesce(epoch(try_cast(m.closed_time AS TIMESTAMPTZ)),
                   epoch(try_cast(m.end_date AS TIMESTAMPTZ)) + 86400 * 30, 9e18) >= $start
)
SELECT asset, fetch_from, coalesce(start_ts <= fetch_from AND cursor_ts >= $end, FALSE) AS covered
FROM windows ORDER BY asset
"""


def price_windows(
    con: duckdb.DuckDBPyConnection, start: int, end: int, refetch: bool = False
) -> tuple[list[tuple[str, int]], int]:
    """(token, fetch from) for the tokens to price up to ``end``: every token the whale universe (or, with no
    universe seeded, anyone) has traded by ``end`` whose market is still open at ``start``, so a held position is
    marked on days nobody trades it. Each token is fetched from where its stream stopped: a token never priced
    before from its market's start (when that is before ``start``), a known one from its cursor. So thirty daily
    runs price exactly what one run over the thirty days does. Returns the windows to fetch and how many tokens
    were left out because their stored window already covers theirs (none with ``refetch``)."""
    rows = con.execute(PRICE_WINDOWS_SQL, {"start": start, "end": end}).fetchall()
    todo = [(token, int(since)) for token, since, done in rows if refetch or not done]
    return todo, len(rows) - len(todo)


def ingest_prices(
    con: duckdb.DuckDBPyConnection,
    source: ApiSource,
    *,
    start: int,
    end: int,
    fidelity_min: int = 1440,
    refetch: bool = False,
    log: Log = _quiet,
) -> IngestReport:
    t0 = time.perf_counter()
    report = IngestReport("price_history", window=(start, end))
    todo, report.streams_skipped = price_windows(con, start, end, refetch)
    log(f"price_history: {len(todo)} tokens to fetch, {report.streams_skipped} already covered")
    pending: list[Page] = []
    pending_rows = 0
    last_log = time.perf_counter()
    for i, page in enumerate(source.price_pages(todo, end=end, fidelity_min=fidelity_min), start=1):
        pending.append(page)
        pending_rows += len(page.rows)
        report.pages += 1
        if pending_rows >= COMMIT_ROWS:
            _commit_prices(con, pending, source, end, report)
            pending, pending_rows = [], 0
        if time.perf_counter() - last_log > 10:
            last_log = time.perf_counter()
            log(f"price_history: {i}/{len(todo)} tokens, {report.load.inserted:,} points")
    if pending:
        _commit_prices(con, pending, source, end, report)
    report.streams_done = len(todo)
    report.seconds = time.perf_counter() - t0
    log(f"price_history: {report.load.inserted:,} points for {len(todo)} tokens in {report.seconds:.1f} s")
    return report


def _commit_prices(con, pages: Sequence[Page], source, end: int, report: IngestReport) -> None:
    parsed = parse_price_history(pages, source=source.name, now_ts=source.now_ts)
    cursors = {
        f"prices/{(p.context or {}).get('token_id')}": ((p.context or {})["start"], end, len(p.rows))
        for p in pages
    }
    report.load += load_price_history(
        con, parsed.accepted, parsed.rejected, source=source.name, cursors=cursors
    )
