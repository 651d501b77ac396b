"""Blocking gates: Great Expectations 1.x suites (``quality.expectations``) as Dagster asset checks.

Each gate validates its table's suite: exact violation counts in DuckDB, plus GX on a bounded batch (see
``quality.expectations``). A raw gate also fails when the share of its entity's rows that went to
``raw.quarantine`` exceeds the configured bound. A failing gate blocks everything downstream of its asset in the
same run. The results are in the check's metadata.

What a gate reads (``scope``, default "new"): the rows written since its table last passed, where the table says
which those are (:class:`Increment`), so that a day's run validates the day and not the history; the whole table
otherwise, and always when the gate has not passed before (``quality.gate_state`` holds where each table last
passed; a failure deletes its row, so the next run validates the whole table again), and once a week
(:data:`WHOLE_EVERY_DAYS`): a row edited in place keeps its stamp, and only a whole read sees it. Uniqueness is
still checked against every stored key and row counts over the table. ``scope="all"`` (``WHALECOPY_GATE_SCOPE=all``)
validates every row every time.

The gates on the tables one step writes run as one step of their own (a multi-asset check: the marts that dbt
builds, the paper book's tables, the live tables, the walk-forward's tables), each still a check of its own table
with its own result: a step costs Dagster about 0.3 s whatever it does, and a gate's next step would wait for the
same step's tables anyway.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import dagster as dg
import duckdb

from assets.warehouse import table_exists

from .expectations import GX_BATCH_ROWS, Scope, validate_connection

SCOPES = ("new", "all")
GATE_STATE = "quality.gate_state"
GATE_STATE_DDL = f"""
CREATE SCHEMA IF NOT EXISTS quality;
CREATE TABLE IF NOT EXISTS {GATE_STATE} (
    table_name     VARCHAR PRIMARY KEY,  -- the gated table, "schema.table"
    stamp          TIMESTAMPTZ,          -- a stamped table: the latest stamp it held when it passed
    build_id       UUID,                 -- a dbt mart: the build (intermediate.int_sync_window) it passed after
    last_day       DATE,                 -- a mart with a day column: its last day when it passed
    rows_in_scope  BIGINT NOT NULL,      -- the rows that validation read
    table_rows     BIGINT NOT NULL,
    passed_at      TIMESTAMPTZ NOT NULL,
    whole_at       TIMESTAMPTZ NOT NULL  -- when a passing validation last read every row
)
"""
#: a gate reads every row again when its last whole read is older than this (an edit in place, which keeps its
#: row's stamp, is then found within the week)
WHOLE_EVERY_DAYS = 7.0
#: a stored pass's last whole read is recent enough (its one parameter: the period in days)
WHOLE_FRESH = "whole_at > now() - to_microseconds(CAST(? * 86400e6 AS BIGINT))"


@dataclass(frozen=True)
class Increment:
    """Which rows of a table were written since it last passed.

    - ``stamp``: a column every write sets to the time of its run (``ingested_at``, ``scored_at``,
      ``computed_at``); rows are never rewritten without it. The new rows: a stamp after the stored one.
    - ``build``: a dbt mart (incremental, ``docs/warehouse.md#incremental-builds``): a SQL predicate naming every
      row the build recomputed, from ``intermediate.int_changes`` (its positions, wallets and first changed
      days), and with ``day``, the days after the stored last day too. It holds only when the stored build is
      the one this build carried on from (``previous_build_id``): any build in between, a full refresh or a run
      of dbt outside whalecopy, and the gate reads the whole table.
    """

    stamp: str | None = None
    build: str | None = None
    day: str | None = None


CHANGES = "intermediate.int_changes"
#: every row of the positions a build recomputed (their fills, themselves), of its wallets, and the days of
#: wallet_daily_returns it replaced: each wallet's from its earliest changed day (a superset: every wallet's from
#: the earliest), and every day after the last one held
BY_POSITION_FILLS = Increment(build=f"(wallet, token_id) IN (SELECT wallet, token_id FROM {CHANGES})")
BY_POSITION = Increment(build=f"position_id IN (SELECT position_id FROM {CHANGES})")
BY_WALLET = Increment(build=f"wallet IN (SELECT wallet FROM {CHANGES})")
BY_DAY = Increment(build=f"day >= (SELECT DATE '1970-01-01' + min(since_d) FROM {CHANGES})", day="day")


@dataclass(frozen=True)
class Gate:
    name: str
    table: str  # "schema.table": the asset key and the key of the suite in quality.expectations.SUITES
    entity: str | None = None  # raw.quarantine entity whose share is bounded (raw tables only)
    #: the step that writes several gated tables: their gates run as one step, "<step>_gates"
    step: str | None = None
    #: how the gate finds the rows written since the table last passed (None: it reads every row)
    increment: Increment | None = None

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(self.table.split("."))


GATES = [
    Gate("raw_trades_gate", "raw.trades", "trades", increment=Increment(stamp="ingested_at")),
    Gate("raw_activity_gate", "raw.activity", "activity", increment=Increment(stamp="ingested_at")),
    Gate("raw_markets_gate", "raw.markets", "markets"),
    Gate(
        "raw_price_history_gate",
        "raw.price_history",
        "price_history",
        increment=Increment(stamp="ingested_at"),
    ),
    Gate("fct_fills_expectations", "marts.fct_fills", step="transform", increment=BY_POSITION_FILLS),
    Gate("fct_positions_expectations", "marts.fct_positions", step="transform", increment=BY_POSITION),
    Gate(
        "wallet_daily_returns_expectations", "marts.wallet_daily_returns", step="transform", increment=BY_DAY
    ),
    Gate("wallet_features_expectations", "marts.wallet_features", step="transform", increment=BY_WALLET),
    Gate("whale_scores_expectations", "analytics.whale_scores", increment=Increment(stamp="scored_at")),
    Gate("whale_universe_expectations", "analytics.whale_universe"),
    Gate("wallet_flags_expectations", "analytics.wallet_flags", step="wallet_flags"),
    Gate("wallet_flags_history_expectations", "analytics.wallet_flags_history", step="wallet_flags"),
    Gate("score_ic_expectations", "evaluation.score_ic"),
    Gate(
        "whale_quarantine_expectations",
        "analytics.whale_quarantine",
        increment=Increment(stamp="computed_at"),
    ),
    Gate("signals_expectations", "analytics.signals"),
    Gate("orders_expectations", "analytics.orders", step="paper_portfolio"),
    Gate("paper_nav_expectations", "analytics.paper_nav", step="paper_portfolio"),
    Gate("paper_fills_expectations", "analytics.paper_fills", step="paper_portfolio"),
    Gate("backtest_daily_expectations", "evaluation.backtest_daily", step="backtest"),
    Gate("backtest_summary_expectations", "evaluation.backtest_summary", step="backtest"),
    Gate("validation_expectations", "evaluation.validation", step="backtest"),
    Gate("targets_expectations", "evaluation.targets", step="backtest"),
    Gate("live_fills_expectations", "live.fills", step="live_tables"),
    Gate("live_decisions_expectations", "live.decisions", step="live_tables"),
    Gate("live_loss_events_expectations", "live.loss_events", step="live_tables"),
]


#: the marts dbt builds that the gates check (their whole reads set the dbt tests' too)
TRANSFORM_TABLES = [g.table for g in GATES if g.step == "transform"]


def _build_ids(con: duckdb.DuckDBPyConnection) -> tuple[str | None, str | None]:
    """(this build's id, the build it carried on from) of the last dbt build, None where there is none."""
    if not table_exists(con, "intermediate.int_sync_window"):
        return None, None
    row = con.execute(
        "SELECT CAST(build_id AS VARCHAR), CAST(previous_build_id AS VARCHAR) FROM intermediate.int_sync_window"
    ).fetchall()
    return row[0] if len(row) == 1 else (None, None)


def gate_scope(
    con: duckdb.DuckDBPyConnection, gate: Gate, whole_every_days: float = WHOLE_EVERY_DAYS
) -> Scope | None:
    """The rows ``gate`` reads: those written since its table last passed (:class:`Increment`), or None for every
    row (no increment, no stored pass, a stored pass it cannot carry on from, or a last whole read more than
    ``whole_every_days`` ago)."""
    inc = gate.increment
    if inc is None or not table_exists(con, GATE_STATE):
        return None
    row = con.execute(
        f"SELECT stamp, CAST(build_id AS VARCHAR), last_day FROM {GATE_STATE} WHERE table_name = ? AND {WHOLE_FRESH}",
        [gate.table, whole_every_days],
    ).fetchall()
    if not row:
        return None
    stamp, build_id, last_day = row[0]
    if inc.stamp is not None:
        if stamp is None:
            return None
        return Scope(f'"{inc.stamp}" > CAST(\'{stamp.isoformat()}\' AS TIMESTAMPTZ)',
                     f"rows with {inc.stamp} after {stamp.isoformat()} (the last pass)")  # fmt: skip
    _, previous = _build_ids(con)
    if build_id is None or previous != build_id or not table_exists(con, CHANGES):
        return None
    where, label = inc.build, f"the rows dbt build {previous[:8]}.. carried on to recomputed"
    if inc.day is not None:
        if last_day is None:
            return None
        where = f"({where}) OR \"{inc.day}\" > DATE '{last_day.isoformat()}'"
        label += f", and the days after {last_day.isoformat()}"
    return Scope(where, label)


def whole_read_due(
    con: duckdb.DuckDBPyConnection, tables: list[str], whole_every_days: float = WHOLE_EVERY_DAYS
) -> str | None:
    """Why the gates of ``tables`` read every row this run (one has not passed yet, or failed last time, or last
    read every row more than ``whole_every_days`` ago), None when each may read only its new rows. The dbt tests
    follow it (assets/transform/model.py:data_test_scope)."""
    if not table_exists(con, GATE_STATE):
        return "no gate has passed yet"
    rows = dict(
        con.execute(
            f"SELECT table_name, {WHOLE_FRESH} FROM {GATE_STATE} WHERE table_name IN (SELECT unnest(?))",
            [whole_every_days, tables],
        ).fetchall()
    )
    for table in tables:
        if table not in rows:
            return f"the gate of {table} has not passed since its last failure or first run"
        if not rows[table]:
            return f"the weekly whole read of {table}"
    return None


def record_gate(
    con: duckdb.DuckDBPyConnection, gate: Gate, passed: bool, rows_in_scope: int, table_rows: int, whole: bool
) -> None:
    """Keep where ``gate``'s table passed (the next run reads only what is written after it) and, ``whole``, that
    this validation read every row; or forget it when the gate failed (the next run reads every row again)."""
    con.execute(GATE_STATE_DDL)
    (whole_at,) = con.execute(
        f"SELECT max(whole_at) FROM {GATE_STATE} WHERE table_name = ?", [gate.table]
    ).fetchall()[0]
    con.execute(f"DELETE FROM {GATE_STATE} WHERE table_name = ?", [gate.table])
    inc = gate.increment
    if not passed or inc is None or (whole_at is None and not whole):
        return
    stamp = build_id = last_day = None
    if inc.stamp is not None:
        (stamp,) = con.execute(f'SELECT max("{inc.stamp}") FROM {gate.table}').fetchall()[0]
    else:
        build_id, _ = _build_ids(con)
        if inc.day is not None:
            (last_day,) = con.execute(f'SELECT max("{inc.day}") FROM {gate.table}').fetchall()[0]
    con.execute(
        f"INSERT INTO {GATE_STATE} VALUES (?, ?, CAST(? AS UUID), ?, ?, ?, now(), "
        "CASE WHEN ? THEN now() ELSE CAST(? AS TIMESTAMPTZ) END)",
        [gate.table, stamp, build_id, last_day, rows_in_scope, table_rows, whole, whole_at],
    )


def evaluate_gate(
    con: duckdb.DuckDBPyConnection,
    gate: Gate,
    max_quarantine_share: float,
    bounds: Mapping[str, float] | None = None,
    batch_rows: int = GX_BATCH_ROWS,
    scope: Scope | None = None,
) -> tuple[bool, dict]:
    """Validate one gate (``bounds``: the run's strategy bounds; ``batch_rows``: GX's batch bound; ``scope``: the
    rows to read, None for all). Returns (passed, metadata)."""
    result = validate_connection(con, gate.table, bounds=bounds, max_rows=batch_rows, scope=scope)
    meta: dict = {
        "rows": int(result.statistics.get("table_rows", 0)),
        "rows_in_scope": int(result.statistics.get("rows_in_scope", 0)),
        "scope": result.statistics.get("scope", "every row"),
        "rows_checked_by_gx": result.rows_checked,
        "sampled": bool(result.statistics.get("sampled", False)),
        "expectations": result.evaluated,
        "expectations_failed": len(result.failed),
        "expectation_results": dg.MetadataValue.json(result.statistics.get("expectations", {})),
    }
    why = list(result.failed)
    if gate.entity is not None:
        (quarantined,) = con.execute(
            "SELECT count(*) FROM raw.quarantine WHERE entity = ?", [gate.entity]
        ).fetchall()[0]
        total = meta["rows"] + int(quarantined)
        share = quarantined / total if total else 0.0
        meta.update(
            quarantined=int(quarantined),
            quarantine_share=round(share, 6),
            max_quarantine_share=max_quarantine_share,
        )
        if share > max_quarantine_share:
            top = con.execute(
                "SELECT reasons, count(*) FROM raw.quarantine WHERE entity = ? GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3",
                [gate.entity],
            ).fetchall()
            most = ", ".join(f"{r} ({n:,})" for r, n in top)
            why.append(f"quarantine share {share:.2%} > {max_quarantine_share:.2%}; most: {most}")
    if why:
        meta["failed_because"] = "; ".join(why)
    return not why, meta


def _description(gate: Gate, max_quarantine_share: float) -> str:
    bound = f"; quarantine share <= {max_quarantine_share:.0%}" if gate.entity else ""
    return f"Great Expectations suite of {gate.table} (quality/expectations.py){bound}"


def build_gates(
    max_quarantine_share: float, batch_rows: int = GX_BATCH_ROWS, scope: str = "new"
) -> list[dg.AssetChecksDefinition]:
    """One blocking asset check per gate, on the asset named like its table; GX validates at most ``batch_rows``
    rows of it (the SQL counts cover every row in scope). ``scope``: "new" (the rows written since the table
    last passed, where it says which) or "all" (module docstring). The gates of one ``step`` run in one step."""
    if scope not in SCOPES:
        raise ValueError(f"gate scope {scope!r}: expected one of {', '.join(SCOPES)}")
    steps: dict[str, list[Gate]] = {}
    for gate in GATES:
        steps.setdefault(gate.step or gate.name, []).append(gate)
    checks = []
    for step, gates in steps.items():

        def make(step: str = step, gates: tuple[Gate, ...] = tuple(gates)) -> dg.AssetChecksDefinition:
            by_key = {dg.AssetCheckKey(g.asset_key, g.name): g for g in gates}

            def results(context: dg.AssetCheckExecutionContext, wanted) -> list[dg.AssetCheckResult]:
                """The ``wanted`` gates' results, on one connection (closed before they are handed on)."""
                # the strategy's bounds: the same config object the run's stages read (a threshold moves both)
                bounds = context.resources.strategy.gate_bounds()
                out = []
                with context.resources.warehouse.get_connection() as con:
                    for key in wanted:
                        gate = by_key[key]
                        rows = gate_scope(con, gate) if scope == "new" else None
                        passed, meta = evaluate_gate(
                            con, gate, max_quarantine_share, bounds, batch_rows, rows
                        )
                        record_gate(
                            con, gate, passed, meta["rows_in_scope"], meta["rows"], whole=rows is None
                        )
                        out.append(dg.AssetCheckResult(
                            asset_key=key.asset_key, check_name=key.name, passed=passed,
                            severity=dg.AssetCheckSeverity.ERROR, metadata=meta,
                        ))  # fmt: skip
                return out

            if len(gates) == 1:
                (gate,) = gates

                @dg.asset_check(
                    asset=gate.asset_key,
                    name=gate.name,
                    blocking=True,
                    description=_description(gate, max_quarantine_share),
                    required_resource_keys={"warehouse", "strategy"},
                )
                def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
                    (result,) = results(context, list(by_key))
                    return result

                return _check

            @dg.multi_asset_check(
                name=f"{step}_gates",
                specs=[
                    dg.AssetCheckSpec(
                        g.name,
                        asset=g.asset_key,
                        blocking=True,
                        description=_description(g, max_quarantine_share),
                    )
                    for g in gates
                ],  # fmt: skip
                can_subset=True,
                required_resource_keys={"warehouse", "strategy"},
            )
            def _checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
                yield from results(context, [k for k in by_key if k in context.selected_asset_check_keys])

            return _checks

        checks.append(make())
    return checks
