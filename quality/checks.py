"""Blocking gates on the raw tables: SQL pushed down to DuckDB, so they stay fast at 10M rows.

Each gate counts rule violations in one scan and fails (blocking the downstream assets in the same run) when
any count is non-zero or when the share of the entity's rows that went to quarantine exceeds the bound.
"""


from dataclasses import dataclass

import dagster as dg
from dagster_duckdb import DuckDBResource

WALLET = "'^0x[0-9a-f]{40}$'"
HEX64 = "'^0x[0-9a-f]{64}$'"
TOKEN = "'^[0-9]{1,78}$'"


@dataclass(frozen=True)
class Gate:
    name: str
    table: str  # schema.table, a constant of this module
    entity: str  # raw.quarantine entity
    rules: dict[str, str]  # rule name -> SQL boolean expression that is TRUE for a violating row


GATES = [
    Gate(
        "raw_trades_gate",
        "raw.trades",
        "trades",
        {
            "bad_wallet": f"NOT regexp_full_match(proxy_wallet, {WALLET})",
            "bad_condition_id": f"NOT regexp_full_match(condition_id, {HEX64})",
            "bad_token_id": f"NOT regexp_full_match(asset, {TOKEN})",
            "bad_side": "side NOT IN ('BUY', 'SELL')",
            "size_not_positive_or_not_finite": "NOT (size > 0 AND isfinite(size))",
            "price_outside_0_1": "NOT (price BETWEEN 0 AND 1)",
            "timestamp_out_of_range": "ts < 1500000000 OR ts > epoch(now()) + 300",
        },
    ),
    Gate(
        "raw_markets_gate",
        "raw.markets",
        "markets",
        {
            "bad_condition_id": f"NOT regexp_full_match(condition_id, {HEX64})",
            "outcomes_tokens_mismatch": "json_array_length(outcomes) IS DISTINCT FROM json_array_length(clob_token_ids)",
        },
    ),
    Gate(
        "raw_price_history_gate",
        "raw.price_history",
        "price_history",
        {
            "bad_token_id": f"NOT regexp_full_match(token_id, {TOKEN})",
            "price_outside_0_1": "NOT (price BETWEEN 0 AND 1 AND isfinite(price))",
            "timestamp_out_of_range": "ts < 1500000000 OR ts > epoch(now()) + 300",
        },
    ),
]


def evaluate_gate(con, gate: Gate, max_quarantine_share: float) -> tuple[bool, dict]:
    """Run one gate's rules in one scan. Returns (passed, metadata)."""
    counts = ", ".join(f"count(*) FILTER (WHERE {expr}) AS {name}" for name, expr in gate.rules.items())
    row = con.execute(f"SELECT count(*) AS n_rows, {counts} FROM {gate.table}").fetchone()
    n_rows, violations = int(row[0]), dict(zip(gate.rules, (int(v) for v in row[1:]), strict=True))
    extra: dict[str, int] = {}
    if gate.table == "raw.trades":
        (distinct,) = con.execute("SELECT count(DISTINCT fill_key) FROM raw.trades").fetchone()
        extra["duplicate_fills"] = n_rows - int(distinct)
    (quarantined,) = con.execute("SELECT count(*) FROM raw.quarantine WHERE entity = ?", [gate.entity]).fetchone()
    total = n_rows + int(quarantined)
    share = quarantined / total if total else 0.0
    failed = {k: v for k, v in {**violations, **extra}.items() if v}
    passed = not failed and share <= max_quarantine_share
    meta = {
        "rows": n_rows,
        "quarantined": int(quarantined),
        "quarantine_share": round(share, 6),
        "max_quarantine_share": max_quarantine_share,
        **{f"violations/{k}": v for k, v in {**violations, **extra}.items()},
    }
    if not passed:
        why = [f"{k}={v}" for k, v in failed.items()]
        if share > max_quarantine_share:
            why.append(f"quarantine share {share:.2%} > {max_quarantine_share:.2%}")
        meta["failed_because"] = "; ".join(why)
    return passed, meta


def build_raw_gates(max_quarantine_share: float) -> list[dg.AssetChecksDefinition]:
    """Blocking asset checks on the raw assets (a failure stops everything downstream in the run)."""
    checks = []
    for gate in GATES:
        key = dg.AssetKey(gate.table.split("."))

        def make(gate: Gate = gate, key: dg.AssetKey = key):
            @dg.asset_check(
                asset=key,
                name=gate.name,
                blocking=True,
                description=f"{gate.table}: {', '.join(gate.rules)}; quarantine share <= {max_quarantine_share:.0%}",
            )
            def _check(warehouse: DuckDBResource) -> dg.AssetCheckResult:
                with warehouse.get_connection() as con:
                    exists = con.execute(
                        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                        gate.table.split("."),
                    ).fetchone()[0]
                    if not exists:
                        return dg.AssetCheckResult(passed=False, metadata={"failed_because": f"{gate.table} missing"})
                    passed, meta = evaluate_gate(con, gate, max_quarantine_share)
                return dg.AssetCheckResult(
                    passed=passed, severity=dg.AssetCheckSeverity.ERROR, metadata=meta
                )

            return _check

        checks.append(make())
    return checks
