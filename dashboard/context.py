"""What every page reads from: the settings (from the environment, once per server process) and the sources."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dashboard.sources import LiveStore, Warehouse
from orchestration.settings import Settings


@dataclass(frozen=True)
class Context:
    settings: Settings
    warehouse: Warehouse
    live: LiveStore

    def strategy(self) -> dict:
        """The batch's strategy bounds (from the live snapshot's meta), else the defaults."""
        return self.live.strategy() or default_strategy()


def default_strategy() -> dict:
    """The defaults of the bounds the pages show, from the pure models (``StrategyConfig`` takes them from the same
    constants; importing it would import Dagster, seconds of a first page load)."""
    from assets.risk import model as risk
    from assets.signal.model import SignalParams

    p = SignalParams()
    return {"max_exposure_nav": p.max_exposure_nav, "max_category_nav": p.max_category_nav,
            "strike_min_sharpe": risk.STRIKE_MIN_SHARPE, "strike_max_drawdown": risk.STRIKE_MAX_DRAWDOWN,
            "strike_min_consistency": risk.STRIKE_MIN_CONSISTENCY}  # fmt: skip


@st.cache_resource
def context() -> Context:
    """One per server process, shared by every session: the warehouse reads are cached in it."""
    settings = Settings.from_env()
    return Context(settings, Warehouse(settings.warehouse_path, settings.dashboard_quiet_s),
                   LiveStore(settings.live_root))  # fmt: skip
