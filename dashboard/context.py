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
        found = self.live.strategy()
        if found:
            return found
        from assets.strategy import StrategyConfig

        return StrategyConfig().model_dump()


@st.cache_resource
def context() -> Context:
    """One per server process, shared by every session: the warehouse reads are cached in it."""
    settings = Settings.from_env()
    return Context(settings, Warehouse(settings.warehouse_path, settings.dashboard_quiet_s),
                   LiveStore(settings.live_root))  # fmt: skip
