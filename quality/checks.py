"""Blocking gates: Great Expectations 1.x suites (``quality.expectations``) as Dagster asset checks.

Each gate validates its table's suite: exact violation counts over the full table in DuckDB, plus GX on a
bounded batch (see ``quality.expectations``). A raw gate also fails when the share of its entity's rows that
went to ``raw.quarantine`` exceeds the configured bound. A failing gate blocks everything downstream of its
asset in the same run. The results are in the check's metadata.

The gates on the tables one step writes run as one step of their own (a multi-asset check: the marts that dbt
builds, the paper book's tables, the live tables, the walk-forward's tables), each still a check of its own table
with its own result: a step costs Dagster about 0.3 s whatever it does, and a gate's next step would wait for the
same step's tables anyway.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import dagster as dg
import duckdb

from .expectations import GX_BATCH_ROWS, validate_connection


@dataclass(frozen=True)
class Gate:
    name: str
    table: str  # "schema.table": the asset key and the key of the suite in quality.expectations.SUITES
    entity: str | None = None  # raw.quarantine entity whose share is bounded (raw tables only)
    #: the step that writes several gated tables: their gates run as one step, "<step>_gates"
    step: str | None = None

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(self.table.split("."))


GATES = [
    Gate("raw_trades_gate", "raw.trades", "trades"),
    Gate("raw_markets_gate", "raw.markets", "markets"),
    Gate("raw_price_history_gate", "raw.price_history", "price_history"),
    Gate("fct_fills_expectations", "marts.fct_fills", step="transform"),
    Gate("fct_positions_expectations", "marts.fct_positions", step="transform"),
    Gate("wallet_daily_returns_expectations", "marts.wallet_daily_returns", step="transform"),
    Gate("wallet_features_expectations", "marts.wallet_features", step="transform"),
    Gate("whale_scores_expectations", "analytics.whale_scores"),
    Gate("whale_universe_expectations", "analytics.whale_universe"),
    Gate("score_ic_expectations", "evaluation.score_ic"),
    Gate("whale_quarantine_expectations", "analytics.whale_quarantine"),
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


def evaluate_gate(
    con: duckdb.DuckDBPyConnection,
    gate: Gate,
    max_quarantine_share: float,
    bounds: Mapping[str, float] | None = None,
    batch_rows: int = GX_BATCH_ROWS,
) -> tuple[bool, dict]:
    """Validate one gate (``bounds``: the run's strategy bounds; ``batch_rows``: GX's batch bound). Returns
    (passed, metadata)."""
    result = validate_connection(con, gate.table, bounds=bounds, max_rows=batch_rows)
    meta: dict = {
        "rows": int(result.statistics.get("table_rows", 0)),
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
        ).fetchone()
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
    max_quarantine_share: float, batch_rows: int = GX_BATCH_ROWS
) -> list[dg.AssetChecksDefinition]:
    """One blocking asset check per gate, on the asset named like its table; GX validates at most ``batch_rows``
    rows of it (the SQL counts cover every row). The gates of one ``step`` run in one step (module docstring)."""
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
                        passed, meta = evaluate_gate(
                            con, by_key[key], max_quarantine_share, bounds, batch_rows
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
