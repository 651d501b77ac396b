"""The one place that reads the environment.

Everything configurable from outside the process is read here, once, into a frozen dataclass. Other modules
receive values (through Dagster resources and configs built in ``orchestration.definitions``); none of them
reads ``os.environ`` itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

SOURCES = ("sim", "live", "files")
#: how a file source's trades file is written (the file source checks the same list: assets/ingest/dumps.py:FORMATS)
TRADE_FORMATS = ("data-api", "poly-data", "orderfilled")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from exc


#: DuckDB's own limits, the settings that bound a build's memory: Settings field -> (DuckDB setting, variable)
DUCKDB_LIMITS = {
    "duckdb_memory_limit": ("memory_limit", "WHALECOPY_DUCKDB_MEMORY_LIMIT"),
    "duckdb_threads": ("threads", "WHALECOPY_DUCKDB_THREADS"),
    "duckdb_temp_dir": ("temp_directory", "WHALECOPY_DUCKDB_TEMP_DIR"),
}
_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.IGNORECASE)


def _duckdb_limits() -> dict:
    memory = os.environ.get("WHALECOPY_DUCKDB_MEMORY_LIMIT") or None
    if memory is not None and not _MEMORY.match(memory):
        raise ValueError(
            f"environment variable WHALECOPY_DUCKDB_MEMORY_LIMIT={memory!r} is not a size such as 8GB or 512MB"
        )
    threads = os.environ.get("WHALECOPY_DUCKDB_THREADS") or None
    if threads is not None and not (threads.isdigit() and int(threads) > 0):
        raise ValueError(
            f"environment variable WHALECOPY_DUCKDB_THREADS={threads!r} is not a positive integer"
        )
    return {
        "duckdb_memory_limit": memory,
        "duckdb_threads": int(threads) if threads else None,
        "duckdb_temp_dir": os.environ.get("WHALECOPY_DUCKDB_TEMP_DIR") or None,
    }


def _env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from exc
    if minimum is not None and value < minimum:
        raise ValueError(f"environment variable {name}={raw!r} must be at least {minimum}")
    return value


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _env(name, default)
    if value not in choices:
        raise ValueError(f"environment variable {name}={value!r}: expected one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class Settings:
    """Process-wide settings. Defaults are the documented values (README, docs/warehouse.md)."""

    warehouse_path: Path = Path("data/warehouse.duckdb")
    source: str = "sim"
    # simulated Polymarket
    sim_seed: int = 7
    sim_scale: float = 1.0
    sim_start: str = "2024-11-01"
    sim_days: int = 730
    sim_dirty_share: float = 0.001
    sim_throttle_share: float = 0.0
    #: where generated simulated worlds are kept between processes (None: each process generates its own)
    sim_cache_dir: Path | None = None
    # file source
    trades_path: str | None = None
    markets_path: str | None = None
    #: how the trades file is written: data-api (the Data API's trade objects), poly-data (poly_data's processed
    #: trades) or orderfilled (the on-chain OrderFilled events): assets/ingest/dumps.py
    trades_format: str = "data-api"
    #: the Data API's /activity rows (splits, merges, redemptions, conversions, rewards, rebates), or None
    activity_path: str | None = None
    file_batch_rows: int = 100_000  # the trades read, parsed and loaded at a time (a dump larger than memory)
    # live APIs
    data_api_url: str = "https://data-api.polymarket.com"
    gamma_api_url: str = "https://gamma-api.polymarket.com"
    clob_api_url: str = "https://clob.polymarket.com"
    http_timeout_s: float = 30.0
    http_max_attempts: int = 6
    live_days: int = 30
    # gates and costs
    fee_rate: float = 0.02
    quarantine_max_share: float = 0.05
    gx_batch_rows: int = (
        50_000  # the rows GX validates per gate (the exact SQL counts cover every row in scope)
    )
    #: the rows a gate reads: "new" (written since its table last passed, quality/checks.py) or "all"
    gate_scope: str = "new"
    # how long a run waits for another process's write lock on the warehouse before it fails
    lock_wait_s: float = 60.0
    # DuckDB's limits for the warehouse's connections and dbt's (none: DuckDB's defaults, 80% of the memory and
    # every core); past the memory limit DuckDB spills to the temp directory (default <warehouse>.tmp)
    duckdb_memory_limit: str | None = None
    duckdb_threads: int | None = None
    duckdb_temp_dir: str | None = None
    partition_start: str = "2020-01-01"
    # alerts: a Slack-style incoming webhook (JSON {"text": ...}); none by default
    alert_webhook_url: str | None = None
    # the report (evaluation.report, `whalecopy report`) and the warehouse of real trades for its second section
    report_path: Path = Path("data/report.html")
    real_warehouse_path: Path | None = None
    # the real trades the demo also runs on (the 2022 midterms dump beside the checkout)
    real_dump_dir: Path = Path("../shared/fixtures/polymarket/real/midterms_2022")
    # the live loop (`whalecopy live`): its directory (store, snapshot from the batch, intents, lock), RTDS
    live_dir: Path | None = None  # default: "live" beside the warehouse (one live loop per warehouse)
    rtds_url: str = "wss://ws-live-data.polymarket.com"
    live_watchlist: Path | None = None
    live_max_fill_age_s: float = 60.0  # a BUY seen later than this after its fill is skipped_stale
    live_horizon_s: float = 3600.0  # how far back the loop recovers a gap before it records a loss
    live_poll_every_s: float = 60.0  # a reconciliation pass over the tracked wallets
    live_latency_budget_ms: float = 50.0  # the check on the live decisions: p99 from frame to decision
    # the check: the share of tracked fills RTDS delivered (the polls found the rest)
    live_coverage_min: float = 0.95
    # the dashboard (`whalecopy dashboard`): its port on 127.0.0.1, how often its live parts re-read the live
    # store, and how long the warehouse file must be quiet before it is re-read (a batch writing it is left alone)
    dashboard_port: int = 8501
    dashboard_refresh_s: float = 2.0
    dashboard_quiet_s: float = 3.0

    @property
    def live_root(self) -> Path:
        """The live loop's directory: ``WHALECOPY_LIVE_DIR``, else ``live/`` beside the warehouse."""
        return self.live_dir if self.live_dir is not None else self.warehouse_path.parent / "live"

    def source_info(self) -> dict:
        """What the warehouse's data comes from, for the live snapshot (the simulated world's parameters)."""
        info: dict = {"source": self.source}
        if self.source == "sim":
            info |= {"sim_seed": self.sim_seed, "sim_scale": self.sim_scale, "sim_start": self.sim_start,
                     "sim_days": self.sim_days}  # fmt: skip
        return info

    def duckdb_config(self) -> dict[str, str]:
        """DuckDB's configuration for the limits that are set (``duckdb.connect(config=...)``)."""
        return {
            setting: str(getattr(self, field))
            for field, (setting, _) in DUCKDB_LIMITS.items()
            if getattr(self, field) is not None
        }

    @property
    def source_description(self) -> str:
        if self.source == "sim":
            return f"simulated Polymarket (seed {self.sim_seed}, scale {self.sim_scale:g})"
        fmt = "" if self.trades_format == "data-api" else f", {self.trades_format}"
        return {"live": "Polymarket's live APIs", "files": f"files ({self.trades_path}{fmt})"}.get(
            self.source, self.source
        )

    @classmethod
    def from_env(cls) -> Settings:
        source = _env("WHALECOPY_SOURCE", "sim")
        if source not in SOURCES:
            raise ValueError(f"WHALECOPY_SOURCE={source!r}: expected one of {', '.join(SOURCES)}")
        trades_format = _env("WHALECOPY_TRADES_FORMAT", "data-api")
        if trades_format not in TRADE_FORMATS:
            raise ValueError(
                f"WHALECOPY_TRADES_FORMAT={trades_format!r}: expected one of {', '.join(TRADE_FORMATS)}"
            )
        return cls(
            warehouse_path=Path(_env("WAREHOUSE_PATH", "data/warehouse.duckdb")),
            source=source,
            sim_seed=_env_int("WHALECOPY_SIM_SEED", 7),
            sim_scale=_env_float("WHALECOPY_SIM_SCALE", 1.0),
            sim_start=_env("WHALECOPY_SIM_START", "2024-11-01"),
            sim_days=_env_int("WHALECOPY_SIM_DAYS", 730),
            sim_dirty_share=_env_float("WHALECOPY_SIM_DIRTY_SHARE", 0.001),
            sim_throttle_share=_env_float("WHALECOPY_SIM_THROTTLE_SHARE", 0.0),
            sim_cache_dir=None
            if (cache := _env("WHALECOPY_SIM_CACHE_DIR", "data/sim_cache")) == "off"
            else Path(cache),
            trades_path=os.environ.get("WHALECOPY_TRADES_PATH") or None,
            alert_webhook_url=os.environ.get("WHALECOPY_ALERT_WEBHOOK_URL") or None,
            report_path=Path(_env("WHALECOPY_REPORT_PATH", "data/report.html")),
            real_dump_dir=Path(
                _env("WHALECOPY_REAL_DUMP", "../shared/fixtures/polymarket/real/midterms_2022")
            ),
            real_warehouse_path=Path(p) if (p := os.environ.get("WHALECOPY_REAL_WAREHOUSE")) else None,
            markets_path=os.environ.get("WHALECOPY_MARKETS_PATH") or None,
            trades_format=trades_format,
            activity_path=os.environ.get("WHALECOPY_ACTIVITY_PATH") or None,
            file_batch_rows=_env_int("WHALECOPY_FILE_BATCH_ROWS", 100_000, minimum=1),
            data_api_url=_env("POLYMARKET_DATA_API_URL", "https://data-api.polymarket.com"),
            gamma_api_url=_env("POLYMARKET_GAMMA_API_URL", "https://gamma-api.polymarket.com"),
            clob_api_url=_env("POLYMARKET_CLOB_API_URL", "https://clob.polymarket.com"),
            http_timeout_s=_env_float("WHALECOPY_HTTP_TIMEOUT_S", 30.0),
            http_max_attempts=_env_int("WHALECOPY_HTTP_MAX_ATTEMPTS", 6),
            live_days=_env_int("WHALECOPY_LIVE_DAYS", 30),
            fee_rate=_env_float("WHALECOPY_FEE_RATE", 0.02),
            quarantine_max_share=_env_float("WHALECOPY_QUARANTINE_MAX_SHARE", 0.05),
            gx_batch_rows=_env_int("WHALECOPY_GX_BATCH_ROWS", 50_000, minimum=1),
            gate_scope=_env_choice("WHALECOPY_GATE_SCOPE", "new", ("new", "all")),
            lock_wait_s=_env_float("WHALECOPY_LOCK_WAIT_S", 60.0),
            **_duckdb_limits(),
            partition_start=_env("WHALECOPY_PARTITION_START", "2020-01-01"),
            live_dir=Path(p) if (p := os.environ.get("WHALECOPY_LIVE_DIR")) else None,
            rtds_url=_env("WHALECOPY_RTDS_URL", "wss://ws-live-data.polymarket.com"),
            live_watchlist=Path(p) if (p := os.environ.get("WHALECOPY_WATCHLIST")) else None,
            live_max_fill_age_s=_env_float("WHALECOPY_LIVE_MAX_FILL_AGE_S", 60.0),
            live_horizon_s=_env_float("WHALECOPY_LIVE_HORIZON_S", 3600.0),
            live_poll_every_s=_env_float("WHALECOPY_LIVE_POLL_EVERY_S", 60.0),
            live_latency_budget_ms=_env_float("WHALECOPY_LIVE_LATENCY_BUDGET_MS", 50.0),
            live_coverage_min=_env_float("WHALECOPY_LIVE_COVERAGE_MIN", 0.95),
            dashboard_port=_env_int("WHALECOPY_DASHBOARD_PORT", 8501),
            dashboard_refresh_s=_env_float("WHALECOPY_DASHBOARD_REFRESH_S", 2.0),
            dashboard_quiet_s=_env_float("WHALECOPY_DASHBOARD_QUIET_S", 3.0),
        )
